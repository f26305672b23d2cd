"""Decisions of finance staff on the engine's proposals: accept, reject, allocate by hand; the review queue.

Used by ``cessio reconcile accept|reject|allocate`` and by the review desk. Each decision is one
transaction with its audit row naming who decided (``actor``); the store refuses (rolls back) any decision
that would make a line's allocations exceed the line or an invoice receive more than it has open.

- :func:`accept_suggestion` turns a suggested proposal (every piece of it) into ``manual`` allocations,
  sets the line's other proposals aside (remembered, see below) and records the rest of the line as
  unapplied cash.
- :func:`reject_suggestion` on a suggestion declines it (the engine never proposes that pair again); on
  an accepted suggestion it undoes the acceptance: the proposal is a suggestion again and the proposals
  it had set aside come back, so accept-then-reject restores the previous state; on an ``auto`` or a
  hand-made allocation it takes the decision back and the line waits for review again.
- :func:`allocate_manually` applies amounts of the line to invoices chosen by a person (credit notes are
  netted as negative amounts), on top of decided allocations, replacing pending proposals.
"""

from __future__ import annotations

import json
from typing import Any

from connector.errors import InvariantViolation, StopAndAsk
from connector.money import Money


def _marker(allocation_id: int) -> str:
    return f"decision:{allocation_id}"


def _line_or_fail(store: Any, line_id: int) -> dict[str, Any]:
    line = store.statement_line(line_id)
    if line is None:
        raise StopAndAsk(f"statement line {line_id} does not exist")
    return line


def _group(active: list[dict[str, Any]], allocation: dict[str, Any]) -> list[dict[str, Any]]:
    """The pieces of the allocation's proposal (same proposal number and status); rows written without a
    proposal number are proposals of their own."""
    if allocation["proposal"] is None:
        return [allocation]
    return [a for a in active if a["proposal"] == allocation["proposal"] and a["status"] == allocation["status"]]


def _record_unapplied(store: Any, line: dict[str, Any], group_first: int, proposal: int, actor: str) -> None:
    decided = sum(a["amount_minor"] for a in store.recon_line_allocations(line["id"])
                  if a["status"] in ("auto", "manual"))
    rest = line["amount_minor"] - decided
    if rest > 0:
        store.recon_add_allocation(line_id=line["id"], invoice_id=None, amount_minor=rest, currency=line["currency"],
                                   status="unmatched", rule="unapplied_cash", confidence="1",
                                   evidence=[f"left unapplied by {actor}"], proposal=proposal,
                                   run_id=_marker(group_first))


def accept_suggestion(store: Any, allocation_id: int, *, actor: str) -> list[int]:
    """Accept the proposal this suggested allocation belongs to; returns the allocation ids now decided."""
    with store.transaction():
        allocation = store.recon_allocation(allocation_id)
        if allocation is None:
            raise StopAndAsk(f"allocation {allocation_id} does not exist")
        if allocation["status"] != "suggested" or not allocation["active"]:
            raise InvariantViolation(f"allocation {allocation_id} is {allocation['status']}"
                                     f"{'' if allocation['active'] else ' (inactive)'}, not a suggestion to accept")
        line = _line_or_fail(store, allocation["line_id"])
        active = store.recon_line_allocations(line["id"])
        group = _group(active, allocation)
        others = [a for a in active if a["id"] not in {g["id"] for g in group}
                  and a["status"] in ("suggested", "unmatched")]
        ids = [a["id"] for a in group]
        first = min(ids)
        store.recon_set_allocations(ids, status="manual", decided_by=actor)
        store.recon_set_allocations([a["id"] for a in others], active=0, superseded_by=first)
        _record_unapplied(store, line, first, allocation["proposal"], actor)
        store.recon_set_line_status(line["id"], "matched")
        store.recon_check(line["id"], [a["invoice_id"] for a in group])
        store.audit("reconcile.accepted", f"allocation:{allocation_id}",
                    {"line": line["id"], "allocations": ids, "set_aside": [a["id"] for a in others],
                     "pieces": [[a["invoice_id"], a["amount_minor"]] for a in group]}, actor=actor)
    return ids


def reject_suggestion(store: Any, allocation_id: int, *, actor: str) -> list[int]:
    """Reject a suggestion, or take back a decision (see the module docstring); returns the ids changed."""
    with store.transaction():
        allocation = store.recon_allocation(allocation_id)
        if allocation is None:
            raise StopAndAsk(f"allocation {allocation_id} does not exist")
        if not allocation["active"] or allocation["status"] not in ("suggested", "manual", "auto"):
            raise InvariantViolation(f"allocation {allocation_id} is {allocation['status']}"
                                     f"{'' if allocation['active'] else ' (inactive)'}: nothing to reject")
        line = _line_or_fail(store, allocation["line_id"])
        active = store.recon_line_allocations(line["id"])
        group = _group(active, allocation)
        ids = [a["id"] for a in group]
        first = min(ids)
        restored = store.recon_superseded_by(ids)
        unapplied = [a["id"] for a in active if a["run_id"] == _marker(first) or (
            allocation["status"] == "auto" and a["status"] == "unmatched" and a["rule"] == "unapplied_cash"
            and a["proposal"] == allocation["proposal"] and a["proposal"] is not None)]
        if allocation["status"] == "manual" and allocation["rule"] != "manual":
            # an accepted suggestion: undo the acceptance
            store.recon_set_allocations(ids, status="suggested")
            event = "reconcile.accept_undone"
            new_status = "suggested"
        else:
            store.recon_set_allocations(ids, status="rejected", active=0, decided_by=actor)
            event = "reconcile.rejected"
            new_status = None
        store.recon_set_allocations(unapplied, active=0)
        store.recon_set_allocations(restored, active=1, clear_superseded=True)
        remaining = store.recon_line_allocations(line["id"])
        if new_status is None:
            if any(a["status"] in ("auto", "manual") for a in remaining):
                new_status = "matched"
            elif any(a["status"] == "suggested" for a in remaining):
                new_status = "suggested"
            elif any(a["status"] == "unmatched" and (a["rule"] or "").startswith("not_receivable")
                     for a in remaining):
                new_status = "not_receivable"
            else:
                new_status = "open"
        store.recon_set_line_status(line["id"], new_status)
        store.recon_check(line["id"], [a["invoice_id"] for a in group + remaining if a["status"] != "unmatched"])
        store.audit(event, f"allocation:{allocation_id}",
                    {"line": line["id"], "allocations": ids, "restored": restored, "line_status": new_status},
                    actor=actor)
    return ids


def allocate_manually(store: Any, line_id: int, allocations: list[tuple[int, Money]], *, actor: str) -> list[int]:
    """Apply ``(invoice id, amount)`` pieces of the line (amounts in the line's currency)."""
    if not allocations:
        raise InvariantViolation("no allocation given")
    with store.transaction():
        line = _line_or_fail(store, line_id)
        pieces = []
        for invoice_id, amount in allocations:
            invoice = store.invoice_row(invoice_id)
            if invoice is None:
                raise StopAndAsk(f"invoice {invoice_id} does not exist")
            if not isinstance(amount, Money) or amount.currency != line["currency"]:
                raise InvariantViolation(f"amount {amount} is not in the line's currency {line['currency']}")
            if invoice["currency"] != line["currency"]:
                raise InvariantViolation(f"invoice {invoice['number']} is in {invoice['currency']}, the line in "
                                         f"{line['currency']}: allocate an FX payment through a suggestion")
            minor = abs(amount.minor_units) * (-1 if invoice["kind"] == "credit_note" else 1)
            if minor == 0:
                raise InvariantViolation(f"amount for invoice {invoice['number']} is zero")
            pieces.append((invoice, minor))
        active = store.recon_line_allocations(line_id)
        pending = [a for a in active if a["status"] in ("suggested", "unmatched")]
        proposal = max([a["proposal"] or 0 for a in store.recon_line_allocations(line_id, active_only=False)]
                       or [0]) + 1
        ids = [store.recon_add_allocation(
            line_id=line_id, invoice_id=invoice["id"], amount_minor=minor, currency=line["currency"],
            status="manual", rule="manual", confidence="1", evidence=[f"allocated by {actor}"], proposal=proposal,
            invoice_amount_minor=minor, invoice_currency=invoice["currency"], decided_by=actor)
            for invoice, minor in pieces]
        store.recon_set_allocations([a["id"] for a in pending], active=0, superseded_by=min(ids))
        _record_unapplied(store, line, min(ids), proposal, actor)
        store.recon_set_line_status(line_id, "matched")
        store.recon_check(line_id, [invoice["id"] for invoice, _ in pieces])
        store.audit("reconcile.manual", f"statement_line:{line_id}",
                    {"allocations": ids, "pieces": [[invoice["id"], minor] for invoice, minor in pieces],
                     "set_aside": [a["id"] for a in pending]}, actor=actor)
    return ids


def review_queue(store: Any, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Lines waiting for a decision (oldest first) with their candidates, evidence and confidence."""
    from connector.reconcile.export import _amount

    with store.snapshot():
        lines = store.recon_queue(limit=limit, offset=offset)
        allocations = store.recon_allocations_of([line["id"] for line in lines])
    by_line: dict[int, list[dict[str, Any]]] = {}
    for a in allocations:
        by_line.setdefault(a["line_id"], []).append(a)
    out = []
    for line in lines:
        candidates = [{
            "allocation_id": a["id"], "proposal": a["proposal"], "invoice_id": a["invoice_id"],
            "invoice_number": a["invoice_number"], "debtor": a["buyer_name"],
            "amount": _amount(a["amount_minor"], a["currency"]), "writeoff": _amount(a["writeoff_minor"], a["currency"])
            if a["writeoff_minor"] else None, "writeoff_kind": a["writeoff_kind"], "status": a["status"],
            "rule": a["rule"], "confidence": a["confidence"], "evidence": json.loads(a["evidence"] or "[]"),
        } for a in by_line.get(line["id"], [])]
        out.append({
            "line_id": line["id"], "statement_line_id": line["bank_reference"] or line["identity"].split("|", 1)[-1],
            "account": line["account"], "date": line["booking_date"], "amount": _amount(line["amount_minor"],
                                                                                           line["currency"]),
            "currency": line["currency"], "counterparty": line["counterparty_name"],
            "counterparty_iban": line["counterparty_iban"], "remittance": line["remittance"],
            "status": line["match_status"], "candidates": candidates})
    return out
