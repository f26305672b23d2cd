"""``cessio assign``: gather facts, decide eligibility, claim the eligible invoices, notify credit notes,
then drain the outbox. Reads invoices, limits and exposures from the store; writes decisions, claims
and audit rows in the same transactions; sends only through :mod:`connector.factors.outbox`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.clock import today as clock_today
from connector.clock import utcnow
from connector.factors.api import DeliveryError
from connector.factors.eligibility import Candidate, DebtorLimit, Decision, Portfolio, decide_all
from connector.factors.outbox import drain
from connector.factors.profile import FactorProfile, after_last_cutoff, profiles
from connector.model import Invoice
from connector.money import Money

log = logging.getLogger("cessio.assign")
CLAIM_CHUNK = 200  # decisions and claims per transaction: short write locks, nothing half-done


def idempotency_key(factor: str, seller_key: str, kind: str, number: str, version: int) -> str:
    """Stable across retries and restarts: the same invoice version to the same factor, the same key."""
    material = f"{factor}|{seller_key}|{kind}|{number.strip().upper()}|{version}"
    return "cessio-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def item_payload(invoice: Invoice, amount: Money, key: str) -> dict[str, Any]:
    buyer = invoice.buyer
    return {"idempotency_key": key, "invoice_key": invoice.invoice_key, "number": invoice.number,
            "kind": invoice.kind.value, "seller": invoice.seller.key,
            "debtor": {"key": buyer.key, "name": buyer.name, "country": buyer.country, "vat_id": buyer.vat_id,
                       "legal_id": buyer.legal_id},
            "currency": amount.currency, "amount": str(amount.amount),
            "issue_date": invoice.issue_date.isoformat(),
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
            "preceding_invoices": list(invoice.preceding_invoices)}


@dataclass
class AssignReport:
    factor: str
    decisions: list[tuple[dict[str, Any], Decision]] = field(default_factory=list)
    claimed: int = 0
    credit_notes: int = 0
    limits_requested: int = 0
    held: list[str] = field(default_factory=list)
    held_settled: list[str] = field(default_factory=list)  # claimed, then paid/cancelled in the ERP: not sent
    sending: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    changed_after_sent: list[str] = field(default_factory=list)
    erp_settled: list[str] = field(default_factory=list)  # assigned, then paid/cancelled in the ERP: tell the factor
    after_cutoff: str | None = None  # "16:00" when run after the factor's last cut-off of the day


def _limits(store: Any, factor: str) -> dict[str, DebtorLimit]:
    result = {}
    for row in store.debtor_limit_rows(factor):
        result[row["debtor_key"]] = DebtorLimit(
            row["status"], Money.from_minor(row["amount_minor"], row["currency"]),
            dt.date.fromisoformat(row["valid_from"]) if row["valid_from"] else None,
            dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None)
    return result


def gather(store: Any, profile: FactorProfile) -> tuple[list[tuple[dict, Candidate]], Portfolio, list[tuple]]:
    """Candidates, the portfolio (exposure and unreferenced credit notes) and the open credit notes."""
    rows = store.assignment_candidates()
    invoices = [(row, store.get_invoice(row["id"])) for row in rows]
    numbers = {(inv.seller.key, inv.buyer.key, inv.number.strip()): inv.invoice_key for _, inv in invoices}
    credited: dict[str, Money] = {}
    portfolio = Portfolio()
    notes = []
    for row in store.open_credit_note_rows():
        if row["erp_status"] == "cancelled":
            continue  # a cancelled credit note reduces nothing
        note = store.get_invoice(row["id"])
        notes.append((row, note))
        targets = [numbers.get((note.seller.key, note.buyer.key, ref.strip())) for ref in note.preceding_invoices]
        target = next((t for t in targets if t), None)
        if target is not None:
            credited[target] = credited.get(target, Money.zero(note.currency)) + note.amount_due
        else:
            key = (note.buyer.key, note.currency)
            portfolio.credit_notes[key] = portfolio.credit_notes.get(key, Money.zero(note.currency)) + note.amount_due
    for row in store.factor_exposure_rows(profile.name):
        portfolio.exposure[(row["buyer_key"], row["currency"])] = Money.from_minor(row["amount_minor"],
                                                                                   row["currency"])
    # the status column, not the document: a status-only change (paid in a later export) makes no new version
    candidates = [(row, Candidate(inv, disputed=bool(row["disputed"]), assigned=bool(row["assigned"]),
                                  credited=credited.get(inv.invoice_key), erp_status=row["erp_status"]))
                  for row, inv in invoices]
    return candidates, portfolio, notes


def sync_limits(store: Any, profile: FactorProfile, channel: Any, candidates: list[tuple[dict, Candidate]]) -> int:
    """Ask the factor for a limit for each identified debtor that has none yet (api channel)."""
    if not profile.request_limits or not hasattr(channel, "request_limit"):
        return 0
    known = {row["debtor_key"] for row in store.debtor_limit_rows(profile.name)}
    asked = 0
    for _, candidate in candidates:
        buyer = candidate.invoice.buyer
        if buyer.key in known or not buyer.identified:
            continue
        known.add(buyer.key)
        amount = Money.of(profile.default_limit_request, candidate.invoice.currency, rounding="ROUND_HALF_EVEN")
        try:
            answer = channel.request_limit({"key": buyer.key, "name": buyer.name, "country": buyer.country,
                                            "vat_id": buyer.vat_id, "legal_id": buyer.legal_id}, amount)
        except DeliveryError as exc:
            log.warning("limit request for %s not answered: %s", buyer.key, exc)
            continue
        with store.transaction():
            store.save_debtor_limit(profile.name, buyer.key, answer["status"],
                                    Money.parse(answer["limit"], answer["currency"]).minor_units,
                                    answer["currency"], answer.get("valid_from"), answer.get("valid_to"))
        asked += 1
    return asked


def decide_and_claim(store: Any, profile: FactorProfile, *, today: dt.date | None = None, dry_run: bool = False,
                     channel: Any = None) -> AssignReport:
    report = AssignReport(profile.name)
    if not dry_run:
        with store.transaction():
            report.held = store.hold_changed_claims(profile.name)
            report.held_settled = store.hold_erp_settled_claims(profile.name)
    report.erp_settled = surface_erp_settled(store, profile, record=not dry_run)
    candidates, portfolio, notes = gather(store, profile)
    if not dry_run and channel is not None:
        report.limits_requested = sync_limits(store, profile, channel, candidates)
    decisions = decide_all([c for _, c in candidates], _limits(store, profile.name), portfolio, profile,
                           today or clock_today())
    report.decisions = [(row, decision) for (row, _), decision in zip(candidates, decisions, strict=True)]
    if dry_run:
        return report
    pairs = list(zip(candidates, decisions, strict=True))
    for start in range(0, len(pairs), CLAIM_CHUNK):
        with store.transaction():
            for (row, candidate), decision in pairs[start:start + CLAIM_CHUNK]:
                invoice = candidate.invoice
                store.record_decision(row["id"], row["current_version"], profile.name, decision.eligible,
                                      decision.reasons_json())
                if decision.eligible:
                    key = idempotency_key(profile.name, invoice.seller.key, "assignment", invoice.number,
                                          row["current_version"])
                    # the invoice goes as issued (gross): a credit note naming it was netted for the decision
                    # and is notified to the factor as its own item below, so it is never deducted twice
                    amount = invoice.amount_due if candidate.credited is not None else decision.amount
                    store.create_assignment(invoice_id=row["id"], invoice_key=invoice.invoice_key,
                                            version=row["current_version"], factor=profile.name, kind="assignment",
                                            idempotency_key=key, amount_minor=amount.minor_units,
                                            currency=amount.currency, payload=item_payload(invoice, amount, key))
                    report.claimed += 1
    # credit notes: netted above; notified to the factor when their debtor has invoices assigned there
    exposed = {row["buyer_key"] for row in store.factor_exposure_rows(profile.name)}
    with store.transaction():
        for row, note in notes:
            if row["financing_state"] != "new" or note.buyer.key not in exposed:
                continue
            key = idempotency_key(profile.name, note.seller.key, "credit_note", note.number, row["current_version"])
            store.create_assignment(invoice_id=row["id"], invoice_key=note.invoice_key,
                                    version=row["current_version"], factor=profile.name, kind="credit_note",
                                    idempotency_key=key, amount_minor=note.amount_due.minor_units,
                                    currency=note.currency, payload=item_payload(note, note.amount_due, key))
            report.credit_notes += 1
    return report


def erp_settled_action(status: str, mode: str) -> str:
    """What the factor must be told about an invoice it holds that the ERP reports ``status``."""
    if status == "cancelled":
        return "ask the factor to cancel the assignment (or notify a credit note)"
    if mode == "confidential":
        return "report the collection to the factor (the debtor paid the company, as agreed)"
    return "indirect payment: the debtor paid the company, not the factor; pass the money on and report it"


def surface_erp_settled(store: Any, profile: FactorProfile, *, record: bool = True) -> list[str]:
    """Invoices assigned to ``profile`` that the ERP later reported paid, partly paid or cancelled: one line
    each for the report, and (``record``) one audit row per assignment and status, written once."""
    rows = store.erp_settled_assignments(profile.name)
    if record and any(not row["flagged"] for row in rows):
        with store.transaction():
            for row in rows:
                if not row["flagged"]:
                    store.flag_erp_settled_assignment(profile.name, row,
                                                      erp_settled_action(row["erp_status"], profile.mode))
    lines = []
    for row in rows:
        text = f"{row['number']} ({row['erp_status']}, assignment {row['state']}): " \
               f"{erp_settled_action(row['erp_status'], profile.mode)}"
        log.warning("factor %s holds invoice %s", profile.name, text)
        lines.append(text)
    return lines


def run_assign(store: Any, config: Any, *, factor: str | None = None, dry_run: bool = False,
               today: dt.date | None = None, max_seconds: float | None = None,
               channel_factory: Callable[[FactorProfile], Any] | None = None) -> list[AssignReport]:
    """Decide, claim and send for every configured factor (or one)."""
    from connector.factors.channel import make_channel

    reports = []
    now = local_now(config)
    for profile in profiles(config, factor):
        channel = None if dry_run else (channel_factory or make_channel)(profile)
        report = decide_and_claim(store, profile, today=today, dry_run=dry_run, channel=channel)
        report.after_cutoff = after_last_cutoff(profile, now.time())
        report.changed_after_sent = [f"{r['number']} (v{r['invoice_version']} sent, now v{r['current_version']})"
                                     for r in store.changed_after_sent(profile.name)]
        for text in report.changed_after_sent:
            log.warning("factor %s holds an older version of invoice %s", profile.name, text)
        if channel is not None:
            report.sending = dict(drain(store, profile, channel, max_seconds=max_seconds or profile.deadline))
            report.outbox = store.outbox_counts(profile.name)
        reports.append(report)
    return reports


def local_now(config: Any) -> dt.datetime:
    """Now in the agent's time zone (``[agent] timezone``), where the factors' cut-off times are read."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = None
    if config is not None and hasattr(config, "section"):
        name = config.section("agent").get("timezone")
    try:
        zone = ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return utcnow().astimezone(zone)


def render_report(report: AssignReport, *, dry_run: bool) -> list[str]:
    lines = [f"factor {report.factor}:"]
    if report.after_cutoff:
        lines.append(f"  after the factor's last cut-off ({report.after_cutoff}): what is sent now is processed "
                     "on its next business day (the agent waits for it)")
    for row, decision in report.decisions:
        verdict = "eligible" if decision.eligible else "not eligible"
        lines.append(f"  {row['number']} {decision.amount} debtor {row['buyer_name'] or row['buyer_key']}: {verdict}")
        lines += [f"    - {reason.code}: {reason.message}" for reason in decision.reasons]
    if not report.decisions:
        lines.append("  no invoice waiting for a decision")
    if dry_run:
        lines.append("  dry run: nothing recorded, nothing sent")
    else:
        lines.append(f"  claimed {report.claimed} invoice(s), {report.credit_notes} credit note(s) to notify; "
                     f"limits requested: {report.limits_requested}")
        if report.held:
            lines.append(f"  HOLD (invoice changed after its claim): {', '.join(report.held)}")
        if report.held_settled:
            lines.append("  HOLD (the ERP reports it paid or cancelled after its claim; not sent): "
                         + ", ".join(report.held_settled))
    if report.changed_after_sent:
        lines.append("  CHANGED AFTER SENT (the factor holds the older version; credit, cancel or re-assign): "
                     + ", ".join(report.changed_after_sent))
    if report.erp_settled:
        lines.append("  SETTLED IN THE ERP AFTER ASSIGNMENT (the factor must be told):")
        lines += [f"    - {text}" for text in report.erp_settled]
    if not dry_run:
        lines.append(f"  sending: {report.sending or 'nothing to send'}; outbox now: {report.outbox}")
    return lines
