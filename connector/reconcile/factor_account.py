"""The factor current account: the factor's statement against Cessio's own view, day by day.

Reads: the statement lines of each account named in ``[reconciliation] factor_accounts`` (imported like
any statement: camt.053, MT940 or CFONB), the movements Cessio derived from the factor's events on the
``current`` account (``factor_ledger``: assignments accepted, fundings, reserve, fees and their VAT,
chargebacks), assignments with their amounts and the factor's terms (``[factors.NAME]``: advance rate, fee
rate, VAT rate on fees). Writes: the balance-gap journal (``factor_balance_gaps``, audited when a day
changes), the statement lines' status (``matched`` when a Cessio movement accounts for them, else left
for review with the reason) — through the store.

For each day: Cessio's balance of the current account, the factor's (opening balance plus its lines),
the gap, and what explains it: movements booked on different days on each side (timing, within
``gap_window_days``), movements only one side has (flagged: a fee Cessio did not expect, a funding the
factor has not booked), and checks of fees and fundings against the schedule (fee = rate × assigned
amount, VAT = VAT rate × fee, funding = advance rate × assigned amount). Statement lines are classified
with the factor statement rules of :mod:`connector.channels.factor_camt` (funding, fee, reserve...).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.money import minor_unit_exponent

DEFAULT_WINDOW = 5


def _classify(line: dict[str, Any]) -> str:
    try:
        from connector.channels.factor_camt import classify, load_rules

        direction = "CRDT" if line["amount_minor"] >= 0 else "DBIT"
        return classify(load_rules(), direction=direction, code=line.get("bank_transaction_code"),
                        text=" ".join(x for x in (line.get("remittance"), line.get("counterparty_name")) if x))
    except Exception:  # classification is a label for people; never a reason to stop
        return "unclassified"


def _fmt(minor: int, currency: str) -> str:
    exponent = minor_unit_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f} {currency}"


def pair_movements(lines: list[dict[str, Any]], movements: list[dict[str, Any]], window: int
                   ) -> tuple[list[tuple[dict, dict]], list[dict], list[dict]]:
    """Pair statement lines with Cessio movements of the same signed amount and currency, booked within
    ``window`` days, the nearest date first; an event id naming the line's bank reference wins outright.
    Pure; returns (pairs, lines left, movements left)."""
    free = list(movements)
    pairs, left_lines = [], []
    for line in sorted(lines, key=lambda x: (x["booking_date"], x["id"])):
        day = dt.date.fromisoformat(line["booking_date"])
        best, best_key = None, None
        for n, move in enumerate(free):
            if move["amount_minor"] != line["amount_minor"] or move["currency"] != line["currency"]:
                continue
            distance = abs((dt.date.fromisoformat(move["occurred_on"]) - day).days)
            named = bool(line.get("bank_reference")) and line["bank_reference"] in (move.get("event_id") or "")
            if distance > window and not named:
                continue
            key = (not named, distance)
            if best_key is None or key < best_key:
                best, best_key = n, key
        if best is None:
            left_lines.append(line)
        else:
            pairs.append((line, free.pop(best)))
    return pairs, left_lines, free


def balance_gap_journal(lines: list[dict[str, Any]], movements: list[dict[str, Any]], *, opening_minor: int,
                        opening_day: dt.date | None, window: int, currency: str | None = None
                        ) -> list[dict[str, Any]]:
    """One row per day: Cessio's balance, the factor's, the gap and what explains it (the account's
    ``currency`` only, when given: a factor account in EUR says nothing of Cessio's GBP movements). Pure."""
    if currency is not None:
        lines = [x for x in lines if x["currency"] == currency]
        movements = [m for m in movements if m["currency"] == currency]
    pairs, only_factor, only_cessio = pair_movements(lines, movements, window)
    days = sorted({line["booking_date"] for line in lines} | {m["occurred_on"] for m in movements
                                                                if opening_day is None
                                                                or m["occurred_on"] >= opening_day.isoformat()})
    currencies = {x["currency"] for x in lines} | {m["currency"] for m in movements}
    before = opening_day.isoformat() if opening_day else ""
    rows = []
    for currency in sorted(currencies):
        cessio_start = sum(m["amount_minor"] for m in movements if m["currency"] == currency
                           and before and m["occurred_on"] < before)
        for day in days:
            cessio = cessio_start + sum(m["amount_minor"] for m in movements if m["currency"] == currency
                                        and (not before or m["occurred_on"] >= before) and m["occurred_on"] <= day)
            factor = opening_minor + sum(x["amount_minor"] for x in lines if x["currency"] == currency
                                         and x["booking_date"] <= day)
            gap = factor - cessio
            explained, notes = 0, []
            for line, move in pairs:
                if line["currency"] != currency:
                    continue
                on_factor, on_cessio = line["booking_date"] <= day, move["occurred_on"] <= day
                if on_factor != on_cessio:
                    signed = line["amount_minor"] if on_factor else -move["amount_minor"]
                    explained += signed
                    side = "the factor booked" if on_factor else "Cessio recorded"
                    notes.append(f"timing: {side} {move.get('kind') or line.get('kind')} "
                                 f"{_fmt(move['amount_minor'], currency)} first (factor {line['booking_date']}, "
                                 f"Cessio {move['occurred_on']})")
            flagged = []
            for line in only_factor:
                if line["currency"] == currency and line["booking_date"] <= day:
                    flagged.append(f"on the factor's statement only: {line.get('kind')} "
                                   f"{_fmt(line['amount_minor'], currency)} on {line['booking_date']} "
                                   f"({(line.get('remittance') or '')[:60]})")
            for move in only_cessio:
                if move["currency"] == currency and move["occurred_on"] <= day and (
                        not before or move["occurred_on"] >= before):
                    flagged.append(f"in Cessio only: {move.get('kind')} {_fmt(move['amount_minor'], currency)} on "
                                   f"{move['occurred_on']} (event {move['event_id']})")
            if before and cessio_start != opening_minor and day == days[0]:
                flagged.append(f"opening: the factor's statement opens at {_fmt(opening_minor, currency)}, Cessio's "
                               f"events before it sum to {_fmt(cessio_start, currency)}")
            status = "agreed" if gap == 0 else ("explained" if gap == explained else "flagged")
            rows.append({"day": day, "currency": currency, "cessio_minor": cessio, "factor_minor": factor,
                         "gap_minor": gap, "explained_minor": explained, "status": status,
                         "detail": {"explained": notes, "flagged": flagged if status == "flagged" else []}})
    return rows


def schedule_checks(store: Any, factor: str, terms: dict[str, Any]) -> list[str]:
    """Fees, their VAT and fundings compared with the terms of ``[factors.NAME]`` (findings in words)."""
    findings = []
    fee_rate, vat_rate = Decimal(str(terms.get("fee_rate") or "0")), Decimal(str(terms.get("fee_vat_rate") or "0"))
    advance = Decimal(str(terms.get("advance_rate") or "0"))
    assigned = {r["invoice_key"]: r["amount_minor"] for r in store.assignment_rows(factor)
                if r["kind"] == "assignment"}
    for event in store.ledger_factor_events():
        if event["factor"] != factor or not event["invoice_key"] or event["invoice_key"] not in assigned:
            continue
        base = assigned[event["invoice_key"]]
        amount = abs(event["amount_minor"] or 0)
        if event["kind"] in ("fee.charged", "fee") and fee_rate:
            expected = int((Decimal(base) * fee_rate).quantize(Decimal(1), ROUND_HALF_UP))
            expected_vat = int((Decimal(expected) * vat_rate).quantize(Decimal(1), ROUND_HALF_UP))
            if abs(amount - expected) > 1:
                findings.append(f"fee {event['event_id']}: {_fmt(amount, event['currency'])} charged, the schedule "
                                f"gives {_fmt(expected, event['currency'])} ({fee_rate} of the assigned amount)")
            if event["vat_minor"] is not None and abs(abs(event["vat_minor"]) - expected_vat) > 1:
                findings.append(f"fee VAT {event['event_id']}: {_fmt(abs(event['vat_minor']), event['currency'])}, "
                                f"expected {_fmt(expected_vat, event['currency'])} ({vat_rate})")
        elif event["kind"] in ("funding.paid", "funding") and advance:
            expected = int((Decimal(base) * advance).quantize(Decimal(1), ROUND_HALF_UP))
            if amount > expected + 1:
                findings.append(f"funding {event['event_id']}: {_fmt(amount, event['currency'])} paid, more than the "
                                f"expected advance {_fmt(expected, event['currency'])} ({advance})")
    return findings


def reconcile_factor_accounts(store: Any, config: Any, factor_map: dict[str, str]) -> list[dict[str, Any]]:
    section = config.section("reconciliation") if config is not None else {}
    window = int(section.get("gap_window_days") or DEFAULT_WINDOW)
    summaries = []
    for account, factor in sorted(factor_map.items()):
        lines = store.statement_line_rows(account=account)
        for line in lines:
            line["kind"] = _classify(line)
        movements = store.factor_current_movements(factor)
        statements = store.statement_rows(account=account)
        first = next((s for s in statements if s["opening_minor"] is not None), None)
        opening = first["opening_minor"] if first else 0
        opening_day = dt.date.fromisoformat(first["from_date"]) if first and first["from_date"] else None
        currency = first["currency"] if first else (statements[0]["currency"] if statements else None)
        rows = balance_gap_journal(lines, movements, opening_minor=opening, opening_day=opening_day, window=window,
                                   currency=currency)
        movements = [m for m in movements if currency is None or m["currency"] == currency]
        terms = (config.factors or {}).get(factor, {}) if config is not None else {}
        findings = schedule_checks(store, factor, terms) if terms else []
        pairs, only_factor, _ = pair_movements(lines, movements, window)
        changed = 0
        with store.transaction():
            for row in rows:
                if findings and row is rows[-1]:
                    row["detail"]["schedule"] = findings
                changed += store.save_factor_gap({"factor": factor, "account": account, **row})
            for line, move in pairs:  # a factor movement Cessio knows: reconciled, not a customer payment
                if line["match_status"] != "not_receivable":
                    store.recon_set_line_status(line["id"], "not_receivable")
                    store.audit("factor.line_matched", f"statement_line:{line['id']}",
                                {"factor": factor, "event_id": move["event_id"], "kind": line["kind"]})
        counts = defaultdict(int)
        for row in rows:
            counts[row["status"]] += 1
        summaries.append({"factor": factor, "account": account, "days": len(rows), "agreed": counts["agreed"],
                          "explained": counts["explained"], "flagged": counts["flagged"], "changed": changed,
                          "unmatched_lines": len(only_factor), "schedule_findings": findings})
    return summaries
