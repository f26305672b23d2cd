"""``cessio reconcile``: the store's undecided statement lines and open items through the matching cascade,
the decisions written back in one transaction.

Reads: statement lines waiting for a decision (``open``/``suggested``), every invoice and credit note with
what is applied to it, payer accounts learned from decided allocations, pairs a person rejected, the
``[reconciliation]`` config. Writes: allocations (``auto``, ``suggested``, ``unmatched``), the lines'
``match_status``, audit rows listing every line whose decision changed (200 lines per row); then the factor
current accounts (:mod:`connector.reconcile.factor_account`) when ``[reconciliation] factor_accounts`` names
some.

Re-running changes nothing: a line already decided is never touched again, and an undecided line whose
new decision equals its stored one is not rewritten (the matcher reaches a fixpoint within one run). The
whole run commits at once, so a crash at any instant leaves the store as before the run.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.clock import utc_iso
from connector.errors import RetryLater
from connector.money import minor_unit_exponent
from connector.reconcile.matching import Decision, LineView, MatchConfig, OpenItem, norm_iban, run_matching

log = logging.getLogger("cessio.reconcile")
CLOSED_STATES = ("collected", "released", "cancelled")
CLOSED_ERP = ("paid", "cancelled", "credited")


@dataclass
class ReconcileSummary:
    lines: int = 0
    auto: int = 0
    suggested: int = 0
    unmatched: int = 0
    not_receivable: int = 0
    unchanged: int = 0
    written: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    factor_accounts: list[dict[str, Any]] = field(default_factory=list)
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("run_id", "lines", "auto", "suggested", "unmatched", "not_receivable",
                                              "unchanged", "written", "rules", "seconds", "factor_accounts")}

    def text(self) -> str:
        out = [f"reconcile: {self.lines} line(s) considered: {self.auto} auto, {self.suggested} suggested for review, "
               f"{self.unmatched} unmatched, {self.not_receivable} not receivables; {self.written} decision(s) "
               f"written, {self.unchanged} unchanged ({sum(self.seconds.values()):.1f} s)"]
        for rule, count in sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  {count:6d}  {rule}")
        for account in self.factor_accounts:
            out.append(f"  factor {account['factor']} account {account['account']}: {account['days']} day(s), "
                       f"{account['agreed']} agreed, {account['explained']} explained, {account['flagged']} flagged")
        return "\n".join(out)


def match_config(config: Any) -> MatchConfig:
    section = config.section("reconciliation") if config is not None else {}
    company = config.section("company") if config is not None else {}
    own = {norm_iban(x) for x in (section.get("accounts") or [])}
    if company.get("iban"):
        own.add(norm_iban(company["iban"]))
    payers = section.get("factor_payers") or []
    return MatchConfig(
        auto_threshold=Decimal(section.get("auto_threshold") or "0.95"),
        fee_tolerance=Decimal(section.get("fee_tolerance") or "25"),
        discount_rate_max=Decimal(section.get("discount_tolerance_rate") or "0.03"),
        own_ibans=frozenset(x for x in own if x),
        factor_ibans=frozenset(norm_iban(p) for p in payers if norm_iban(p) and any(c.isdigit() for c in p)),
        factor_names=tuple(p for p in payers if not any(c.isdigit() for c in p)),
    )


def factor_accounts(config: Any) -> dict[str, str]:
    """``[reconciliation] factor_accounts = ["bpce=FR76..."]`` → {account: factor}."""
    section = config.section("reconciliation") if config is not None else {}
    out = {}
    for entry in section.get("factor_accounts") or []:
        factor, _, account = entry.partition("=")
        if account.strip():
            out[account.strip().replace(" ", "")] = factor.strip()
    return out


def open_item(row: dict[str, Any]) -> OpenItem:
    open_minor = row["amount_due_minor"] - row["applied_minor"]
    if row["financing_state"] in CLOSED_STATES or (row["erp_status"] in CLOSED_ERP and not row["applied_minor"]):
        open_minor = 0
    references = tuple(r for r in (row["payment_reference"], *(row["factor_refs"] or "").split()) if r)
    ibans = tuple(json.loads(row["buyer_ibans"]) if row["buyer_ibans"] else ())
    return OpenItem(
        invoice_id=row["id"], number=row["number"], kind=row["kind"], currency=row["currency"],
        open_minor=max(open_minor, 0), debtor_key=row["buyer_key"], debtor_name=row["buyer_name"],
        due_date=dt.date.fromisoformat(row["due_date"]) if row["due_date"] else None,
        issue_date=dt.date.fromisoformat(row["issue_date"]) if row["issue_date"] else None,
        references=references, ibans=ibans)


def line_view(row: dict[str, Any]) -> LineView:
    charges = row["charges_minor"] if row["charges_currency"] == row["currency"] else None
    return LineView(
        line_id=row["id"], booking_date=dt.date.fromisoformat(row["booking_date"]), amount_minor=row["amount_minor"],
        currency=row["currency"], account=row["account"], name=row["counterparty_name"],
        iban=row["counterparty_iban"], text=row["remittance"], structured_reference=row["structured_reference"],
        end_to_end_id=row["end_to_end_id"], references=tuple(json.loads(row["refs"]) if row["refs"] else ()),
        bank_code=row["bank_transaction_code"], charges_minor=charges, instructed_minor=row["instructed_minor"],
        instructed_currency=row["instructed_currency"], reversal=bool(row["reversal"]))


def signature(decision: Decision, line: dict[str, Any]) -> tuple:
    """The stored form of a decision (as ``Store.recon_active_signatures`` returns it) for comparison."""
    rows = []
    if decision.status in ("auto", "suggested"):
        for number, proposal in enumerate(decision.proposals, start=1):
            for piece in proposal.pieces:
                rows.append((decision.status, proposal.rule, number, piece.invoice_id, piece.amount_minor,
                             piece.invoice_amount_minor, piece.writeoff_minor, piece.writeoff_kind))
            if decision.status == "auto" and proposal.unapplied_minor > 0:
                rows.append(("unmatched", "unapplied_cash", number, None, proposal.unapplied_minor, None, 0, None))
    else:
        rows.append(("unmatched", decision.rule, 1, None, line["amount_minor"], None, 0, None))
    return tuple(rows)


def run_reconciliation(store: Any, config: Any) -> ReconcileSummary:
    """Match every undecided line; write what changed in one transaction; reconcile factor accounts.

    The cyclic garbage collector is paused for the run: the run allocates millions of small acyclic
    objects (rows, index entries, decisions), and every collection walks the whole heap, which made the
    time grow faster than the data (the run frees everything when it returns)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(store, config)
    finally:
        if enabled:
            gc.enable()


class StaleSnapshot(Exception):
    """Another run or a reviewer changed lines or invoices this run read; it starts again from a new snapshot."""


# Two runs may overlap (the agent's job and a manual ``cessio reconcile``); the one that writes second sees
# that its snapshot is stale and matches again. Three rounds are plenty: the other run has finished by then.
MAX_ROUNDS = 3


def _run(store: Any, config: Any) -> ReconcileSummary:
    started = time.perf_counter()
    factor_map = factor_accounts(config)
    for round_number in range(1, MAX_ROUNDS + 1):
        summary = ReconcileSummary(run_id=uuid.uuid4().hex[:12])
        try:
            matched, written = _match_and_write(store, config, factor_map, summary, started)
            break
        except StaleSnapshot as exc:
            if round_number == MAX_ROUNDS:
                raise RetryLater(f"reconciliation: the store kept changing under the run ({exc}); "
                                     "it runs again next time") from None
            log.info("reconcile run %s: %s changed since the snapshot; matching again", summary.run_id, exc)
    if factor_map:
        from connector.reconcile.factor_account import reconcile_factor_accounts

        summary.factor_accounts = reconcile_factor_accounts(store, config, factor_map)
    summary.seconds = {**summary.seconds, "write": round(written - matched, 3),
                       "factor": round(time.perf_counter() - written, 3)}
    log.info("reconcile run %s: %d lines, %d auto, %d suggested, %d written", summary.run_id, summary.lines,
             summary.auto, summary.suggested, summary.written)
    return summary


def _match_and_write(store: Any, config: Any, factor_map: dict[str, str], summary: ReconcileSummary,
                     started: float) -> tuple[float, float]:
    with store.snapshot():
        rows = store.recon_undecided_lines(accounts_excluded=factor_map)
        item_rows = store.recon_open_items()
        learned = store.recon_learned_ibans()
        rejected = store.recon_rejected_pairs()
        stored = store.recon_active_signatures()
    items = [open_item(r) for r in item_rows]
    applied_at_snapshot = {r["id"]: r["applied_minor"] for r in item_rows}
    loaded = time.perf_counter()
    currencies = {r["currency"] for r in rows} | {i.currency for i in items}
    exponents = {c: minor_unit_exponent(c) for c in currencies}
    decisions, timings = run_matching([line_view(r) for r in rows], items, match_config(config), exponents=exponents,
                                      learned_ibans=learned, rejected=rejected)
    matched = time.perf_counter()
    by_id = {r["id"]: r for r in rows}
    now = utc_iso()
    summary.lines = len(rows)
    changes = []
    for decision in decisions:
        setattr(summary, decision.status, getattr(summary, decision.status) + 1)
        summary.rules[decision.rule] = summary.rules.get(decision.rule, 0) + 1
        line = by_id[decision.line_id]
        if stored.get(decision.line_id) == signature(decision, line):
            summary.unchanged += 1
        else:
            changes.append((line, decision))
    if changes:
        expected_lines = {line["id"]: stored.get(line["id"], ()) for line, _ in changes}
        touched = {piece.invoice_id for _, decision in changes if decision.status == "auto"
                   for proposal in decision.proposals for piece in proposal.pieces}
        with store.transaction():
            # the write lock is held from here: check the snapshot is still what the store holds
            stale = store.recon_changed_since(expected_lines, {i: applied_at_snapshot.get(i, 0) for i in touched})
            if stale:
                raise StaleSnapshot(f"{len(stale)} lines or invoices ({', '.join(stale[:3])}"
                                    f"{', ...' if len(stale) > 3 else ''})")
            store.recon_record_decisions(changes, run_id=summary.run_id, now=now, had_allocations=set(stored))
    summary.written = len(changes)
    written = time.perf_counter()
    summary.seconds = {"load": round(loaded - started, 3), "index": round(timings["index_seconds"], 3),
                       "match": round(timings["match_seconds"], 3)}
    return matched, written
