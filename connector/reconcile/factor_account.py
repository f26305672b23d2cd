"""The factor current account: the factor's statement against Cessio's own view, day by day.

Reads: the statement lines of each account named in ``[reconciliation] factor_accounts`` (imported like
any statement: camt.053, MT940 or CFONB), the movements Cessio derived from the factor's events on the
``current`` account (``factor_ledger``: assignments accepted, fundings, reserve, fees and their VAT,
chargebacks), the factor's collection events, the assignments with their amounts, the bank allocations
to assigned invoices, and the factor's terms (``[factors.NAME]``: mode, advance rate, reserve rate, fee
rate, VAT rate on fees). Writes: the balance-gap journal (``factor_balance_gaps``, audited when a day
changes), the statement lines' status (``not_receivable`` once a Cessio movement accounts for them; else
left for review with the reason) — through the store.

For each day: Cessio's balance of the current account, the factor's (opening balance plus its lines),
the gap, and what explains it:

- the same movement booked on different days on each side (timing, within ``gap_window_days``); one
  factor line may stand for several Cessio movements (a bordereau of several invoices, one funding) and
  one Cessio movement for several lines (the fee and its VAT booked apart): exact sums pair them;
- a collection the factor credits to the current account (Cessio books collections on the outstanding
  receivables, not on the current account): explained by the collection event it pairs with;
- what only one side has is flagged (a fee Cessio did not expect, a funding the factor has not booked);
- checks against the contract (``schedule``), on the day of the event, flagged: fundings against the
  expected advance (advance rate × assigned amount), fees against the fee rate and their VAT against the
  VAT rate, reserve held against the reserve rate, chargebacks against what is still outstanding (and
  never after a collection), collections against the invoice (in notified mode the debtor pays the
  factor: a payment of an assigned invoice on the company's own bank account is an indirect payment to
  pass on, flagged on its day).

A day is ``agreed`` (no gap, nothing flagged), ``explained`` (the gap is fully explained) or ``flagged``.
Statement lines are labelled with the kind of factor movement they are (funding, fee, reserve...).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.money import minor_unit_exponent
from connector.reconcile.matching import fold, subset_sums

DEFAULT_WINDOW = 5
GROUP_CANDIDATES = 12  # nearest unpaired entries tried in an exact-sum group (bounded in time)

# the current account seen from the company: a credit is owed to it, a debit paid out or charged
LINE_KINDS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple((sign, kind, re.compile(pattern)) for sign, kind,
                                                                  pattern in (
    ("C", "reserve_release", r"LIBERATION|RESTITUTION|RELEASE|DEBLOCAGE"),
    ("D", "chargeback", r"DEFINANCEMENT|IMPAYE|RECOURS|CHARGE ?BACK|RETROCESSION|REPRISE"),
    ("D", "reserve", r"RETENUE|RESERVE|FONDS DE GARANTIE|HOLDBACK"),
    ("D", "fee_vat", r"\bTVA\b|\bVAT\b|\bMWST\b"),
    ("D", "interest", r"AGIOS|INTERETS?|INTEREST|COMMISSION DE FINANCEMENT"),
    ("D", "fee", r"COMMISSION|FRAIS|\bFEES?\b"),
    ("D", "funding", r"FINANCEMENT|FUNDING|AVANCE|ADVANCE|VIREMENT|PAYOUT|MISE A DISPOSITION"),
    ("C", "collection", r"ENCAISSEMENT|COLLECTION|REGLEMENT DEBITEUR|PAIEMENT DEBITEUR"),
    ("C", "assignment", r"CESSION|BORDEREAU|REMISE|ASSIGN|CREANCES?"),
    ("D", "credit_note", r"AVOIR|CREDIT NOTE"),
))
EVENT_KINDS = {"assignment.accepted": "assignment", "assignment.partly_accepted": "assignment",
               "assignment.cancelled": "cancellation", "reserve.held": "reserve", "reserve.released": "reserve_release",
               "fee.charged": "fee", "funding.paid": "funding", "chargeback": "chargeback",
               "credit_note.applied": "credit_note", "collection.received": "collection", "interest": "interest"}
COMPATIBLE = {"fee_vat": "fee"}


def classify_line(line: dict[str, Any]) -> str:
    """The kind of factor movement a statement line of the current account is (from its sign and texts)."""
    sign = "C" if line["amount_minor"] >= 0 else "D"
    text = fold(" ".join(x for x in (line.get("remittance"), line.get("counterparty_name")) if x))
    for wanted, kind, pattern in LINE_KINDS:
        if wanted == sign and pattern.search(text):
            return kind
    return "unclassified"


def _fmt(minor: int, currency: str) -> str:
    exponent = minor_unit_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f} {currency}"


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _move_kind(move: dict[str, Any]) -> str:
    return EVENT_KINDS.get(move.get("kind") or "", move.get("kind") or "movement")


def _kinds_agree(line: dict[str, Any], move: dict[str, Any]) -> bool:
    kind = line.get("kind") or "unclassified"
    return kind == "unclassified" or COMPATIBLE.get(kind, kind) == _move_kind(move)


def pair_movements(lines: list[dict[str, Any]], movements: list[dict[str, Any]], window: int
                   ) -> tuple[list[tuple[dict, dict]], list[dict], list[dict]]:
    """Pair statement lines with Cessio movements of the same signed amount and currency, booked within
    ``window`` days: an event id naming the line's bank reference first, then the same kind, then the
    nearest date. A collection (not a current-account movement in Cessio's books) pairs only with a line
    that reads as one. Pure; returns (pairs, lines left, movements left)."""
    free = list(movements)
    pairs, left_lines = [], []
    for line in sorted(lines, key=lambda x: (x["booking_date"], x["id"])):
        day = _day(line["booking_date"])
        best, best_key = None, None
        for n, move in enumerate(free):
            if move["amount_minor"] != line["amount_minor"] or move["currency"] != line["currency"]:
                continue
            if move.get("off_current") and line.get("kind") not in ("collection", "unclassified", None):
                continue
            distance = abs((_day(move["occurred_on"]) - day).days)
            named = bool(line.get("bank_reference")) and line["bank_reference"] in (move.get("event_id") or "")
            if distance > window and not named:
                continue
            key = (not named, not _kinds_agree(line, move), distance)
            if best_key is None or key < best_key:
                best, best_key = n, key
        if best is None:
            left_lines.append(line)
        else:
            pairs.append((line, free.pop(best)))
    return pairs, left_lines, free


def _group_one(target: dict[str, Any], pool: list[dict[str, Any]], *, target_date: str, pool_date: str,
               window: int) -> list[int] | None:
    """Indexes of the entries of ``pool`` (same currency and sign, within the window, the nearest first) whose
    amounts sum exactly to ``target``'s, when exactly one such set of two or more exists."""
    day = _day(target[target_date])
    near = [(abs((_day(p[pool_date]) - day).days), n) for n, p in enumerate(pool)
            if p["currency"] == target["currency"] and (p["amount_minor"] > 0) == (target["amount_minor"] > 0)
            and abs((_day(p[pool_date]) - day).days) <= window and not p.get("off_current")]
    near = sorted(near)[:GROUP_CANDIDATES]
    if len(near) < 2:
        return None
    found = subset_sums([pool[n]["amount_minor"] for _, n in near], target["amount_minor"], limit=2, budget=20_000)
    if not found or len(found) != 1 or len(found[0]) < 2:
        return None
    return [near[k][1] for k in found[0]]


def group_movements(lines: list[dict[str, Any]], movements: list[dict[str, Any]], window: int
                    ) -> tuple[list[tuple[list[dict], list[dict]]], list[dict], list[dict]]:
    """Pairs (one to one), then exact-sum groups: one Cessio movement for several lines (a fee and its VAT
    booked apart) and one line for several movements (a bordereau of several invoices). Pure; returns
    (groups as (lines, movements), lines left, movements left)."""
    pairs, left_lines, left_moves = pair_movements(lines, movements, window)
    groups: list[tuple[list[dict], list[dict]]] = [([line], [move]) for line, move in pairs]
    for move in sorted(left_moves, key=lambda m: (m["occurred_on"], m["event_id"])):
        if move.get("off_current") or not any(m is move for m in left_moves):
            continue
        chosen = _group_one(move, left_lines, target_date="occurred_on", pool_date="booking_date", window=window)
        if chosen:
            members = [left_lines[n] for n in chosen]
            groups.append((members, [move]))
            left_lines = [x for n, x in enumerate(left_lines) if n not in chosen]
            left_moves = [m for m in left_moves if m is not move]
    for line in sorted(left_lines, key=lambda x: (x["booking_date"], x["id"])):
        if not any(x is line for x in left_lines):
            continue
        chosen = _group_one(line, left_moves, target_date="booking_date", pool_date="occurred_on", window=window)
        if chosen:
            members = [left_moves[n] for n in chosen]
            groups.append(([line], members))
            left_moves = [m for n, m in enumerate(left_moves) if n not in chosen]
            left_lines = [x for x in left_lines if x is not line]
    return groups, left_lines, left_moves


def _describe(lines: list[dict[str, Any]], moves: list[dict[str, Any]]) -> str:
    kinds = sorted({_move_kind(m) for m in moves})
    return "/".join(kinds) + (f" ({len(moves)} events)" if len(moves) > 1 else "") + \
        (f" in {len(lines)} lines" if len(lines) > 1 else "")


def balance_gap_journal(lines: list[dict[str, Any]], movements: list[dict[str, Any]], *, opening_minor: int,
                        opening_day: dt.date | None, window: int, currency: str | None = None,
                        findings: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per day: Cessio's balance, the factor's, the gap and what explains it (the account's
    ``currency`` only, when given). ``movements`` marked ``off_current`` (collections) do not count in
    Cessio's balance; they only explain factor lines. ``findings`` (``{"day", "text"}``, contract checks)
    flag their day. Pure."""
    if currency is not None:
        lines = [x for x in lines if x["currency"] == currency]
        movements = [m for m in movements if m["currency"] == currency]
    before = opening_day.isoformat() if opening_day else ""
    groups, only_factor, only_cessio = group_movements(lines, movements, window)
    findings = [f for f in findings or [] if not before or f["day"] >= before]
    days = sorted({line["booking_date"] for line in lines}
                  | {m["occurred_on"] for m in movements if not m.get("off_current") and m["occurred_on"] >= before}
                  | {f["day"] for f in findings})
    currencies = {x["currency"] for x in lines} | {m["currency"] for m in movements}
    current = [m for m in movements if not m.get("off_current")]
    rows = []
    for currency in sorted(currencies):
        cessio_start = sum(m["amount_minor"] for m in current if m["currency"] == currency
                           and before and m["occurred_on"] < before)
        for day in days:
            cessio = cessio_start + sum(m["amount_minor"] for m in current if m["currency"] == currency
                                        and (not before or m["occurred_on"] >= before) and m["occurred_on"] <= day)
            factor = opening_minor + sum(x["amount_minor"] for x in lines if x["currency"] == currency
                                         and x["booking_date"] <= day)
            gap = factor - cessio
            explained, notes, flagged = 0, [], []
            for group_lines, group_moves in groups:
                if group_lines[0]["currency"] != currency:
                    continue
                on_factor = sum(x["amount_minor"] for x in group_lines if x["booking_date"] <= day)
                if group_moves[0].get("off_current"):
                    if on_factor:
                        move = group_moves[0]
                        explained += on_factor
                        notes.append(f"collection {_fmt(on_factor, currency)} credited by the factor to the current "
                                     f"account on {group_lines[0]['booking_date']} (event {move['event_id']}"
                                     f"{', invoice ' + move['invoice_number'] if move.get('invoice_number') else ''})"
                                     ": Cessio books collections on the receivables the factor carries")
                    continue
                on_cessio = sum(m["amount_minor"] for m in group_moves if m["occurred_on"] <= day
                                and (not before or m["occurred_on"] >= before))
                if on_factor != on_cessio:
                    explained += on_factor - on_cessio
                    side = "the factor booked" if abs(on_factor) > abs(on_cessio) else "Cessio recorded"
                    total = sum(m["amount_minor"] for m in group_moves)
                    notes.append(f"timing: {side} {_describe(group_lines, group_moves)} {_fmt(total, currency)} "
                                 f"first (factor {', '.join(sorted({x['booking_date'] for x in group_lines}))}, "
                                 f"Cessio {', '.join(sorted({m['occurred_on'] for m in group_moves}))})")
            for line in only_factor:
                if line["currency"] == currency and line["booking_date"] <= day:
                    flagged.append(f"on the factor's statement only: {line.get('kind')} "
                                   f"{_fmt(line['amount_minor'], currency)} on {line['booking_date']} "
                                   f"({(line.get('remittance') or '')[:60]})")
            for move in only_cessio:
                if move.get("off_current"):
                    continue
                if move["currency"] == currency and move["occurred_on"] <= day and (
                        not before or move["occurred_on"] >= before):
                    flagged.append(f"in Cessio only: {_move_kind(move)} {_fmt(move['amount_minor'], currency)} on "
                                   f"{move['occurred_on']} (event {move['event_id']})")
            if before and cessio_start != opening_minor and day == days[0]:
                flagged.append(f"opening: the factor's statement opens at {_fmt(opening_minor, currency)}, Cessio's "
                               f"events before it sum to {_fmt(cessio_start, currency)}")
            schedule = [f["text"] for f in findings if f["day"] == day and f.get("currency", currency) == currency]
            if gap == 0 and not flagged and not schedule:
                status = "agreed"
            elif gap == explained and not flagged and not schedule:
                status = "explained"
            else:
                status = "flagged"
            detail: dict[str, Any] = {"explained": notes, "flagged": flagged if status == "flagged" else []}
            if schedule:
                detail["schedule"] = schedule
            rows.append({"day": day, "currency": currency, "cessio_minor": cessio, "factor_minor": factor,
                         "gap_minor": gap, "explained_minor": explained, "status": status, "detail": detail})
    return rows


# -- the contract --------------------------------------------------------------------------------------

def _rate(terms: dict[str, Any], key: str) -> Decimal:
    value = terms.get(key)
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _times(base: int, rate: Decimal) -> int:
    return int((Decimal(base) * rate).quantize(Decimal(1), ROUND_HALF_UP))


def schedule_findings(events: list[dict[str, Any]], assignments: list[dict[str, Any]], terms: dict[str, Any], *,
                      bank_payments: list[dict[str, Any]] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The factor's events checked against the contract: (findings ``{"day", "currency", "text"}``, totals).

    ``events``: this factor's events (kind, invoice key and number, amount, VAT, date); ``assignments``:
    its assignment rows (the assigned amount per invoice key); ``bank_payments``: decided allocations of
    the company's bank lines to invoices assigned to this factor (indirect payments in notified mode).
    A tolerance of one minor unit absorbs the factor's rounding. Pure."""
    fee_rate, vat_rate = _rate(terms, "fee_rate"), _rate(terms, "fee_vat_rate")
    advance, reserve_rate = _rate(terms, "advance_rate"), _rate(terms, "reserve_rate")
    notified = (terms.get("mode") or "notified") == "notified"
    assigned = {r["invoice_key"]: r["amount_minor"] for r in assignments
                if r["kind"] == "assignment" and r["state"] not in ("declined", "cancelled", "rejected")}
    findings: list[dict[str, Any]] = []
    collected: dict[str, int] = defaultdict(int)
    collected_on: dict[str, str] = {}
    credited: dict[str, int] = defaultdict(int)
    totals = {"expected_advance_minor": 0, "funded_minor": 0, "accepted_minor": 0}

    def flag(event: dict[str, Any], text: str) -> None:
        findings.append({"day": event["occurred_on"][:10], "currency": event["currency"], "text": text})

    for event in sorted(events, key=lambda e: (e["occurred_on"], e["event_id"])):
        kind, key, currency = event["kind"], event.get("invoice_key"), event["currency"] or "EUR"
        amount = abs(event["amount_minor"] or 0)
        name = event.get("invoice_number") or key or "?"

        def show(minor: int, c: str = currency) -> str:
            return _fmt(minor, c)

        if kind in ("assignment.accepted", "assignment.partly_accepted"):
            totals["accepted_minor"] += amount
            totals["expected_advance_minor"] += _times(amount, advance)
        elif kind in ("funding.paid", "funding"):
            totals["funded_minor"] += amount
        if key is None or key not in assigned:
            if kind in ("chargeback", "collection.received"):
                flag(event, f"{kind} {event['event_id']} of {show(amount)} for {name}: not an invoice assigned to "
                            "this factor")
            continue
        base = assigned[key] - credited[key]
        if kind in ("fee.charged", "fee") and fee_rate:
            expected = _times(assigned[key], fee_rate)
            if abs(amount - expected) > 1:
                flag(event, f"fee {event['event_id']} ({name}): {show(amount)} charged, the schedule gives "
                            f"{show(expected)} ({fee_rate} of {show(assigned[key])})")
            if vat_rate and event.get("vat_minor") is not None:
                expected_vat = _times(amount, vat_rate)
                if abs(abs(event["vat_minor"]) - expected_vat) > 1:
                    flag(event, f"fee VAT {event['event_id']} ({name}): {show(abs(event['vat_minor']))}, expected "
                                f"{show(expected_vat)} ({vat_rate} of the fee {show(amount)})")
            elif vat_rate and not event.get("vat_minor"):
                flag(event, f"fee {event['event_id']} ({name}): no VAT charged, the schedule gives "
                            f"{show(_times(amount, vat_rate))}")
        elif kind in ("reserve.held", "reserve") and reserve_rate:
            expected = _times(assigned[key], reserve_rate)
            if abs(amount - expected) > 1:
                flag(event, f"reserve {event['event_id']} ({name}): {show(amount)} held, the schedule gives "
                            f"{show(expected)} ({reserve_rate} of {show(assigned[key])})")
        elif kind in ("funding.paid", "funding") and advance:
            expected = _times(assigned[key], advance)
            if abs(amount - expected) > 1:
                what = "more than" if amount > expected else "less than"
                flag(event, f"funding {event['event_id']} ({name}): {show(amount)} paid, {what} the expected advance "
                            f"{show(expected)} ({advance} of {show(assigned[key])})")
        elif kind in ("collection.received", "collection"):
            collected[key] += amount
            collected_on.setdefault(key, event["occurred_on"][:10])
            if collected[key] > base + 1:
                flag(event, f"collection {event['event_id']} ({name}): {show(collected[key])} collected in all, more "
                            f"than the {show(base)} assigned")
        elif kind == "credit_note.applied":
            credited[key] += amount
        elif kind == "chargeback":
            outstanding = base - collected[key]
            if collected[key] >= base:
                flag(event, f"chargeback {event['event_id']} ({name}): {show(amount)} charged back although the "
                            f"factor reported collecting it on {collected_on.get(key)}")
            elif abs(amount - outstanding) > 1:
                flag(event, f"chargeback {event['event_id']} ({name}): {show(amount)} charged back, "
                            f"{show(outstanding)} was still outstanding")
    if totals["funded_minor"] > totals["expected_advance_minor"] + 1 and advance:
        last = max((e for e in events if e["kind"] in ("funding.paid", "funding")), key=lambda e: e["occurred_on"])
        flag(last, f"fundings total {_fmt(totals['funded_minor'], last['currency'])}, more than the advances expected "
                   f"on the accepted invoices ({_fmt(totals['expected_advance_minor'], last['currency'])})")
    if notified:
        for payment in bank_payments:
            key = payment["invoice_key"]
            if key not in assigned:
                continue
            text = (f"indirect payment: {_fmt(payment['amount_minor'], payment['currency'])} for {payment['number']} "
                    f"reached the company's account {payment['account']} on {payment['booking_date']} (line "
                    f"{payment['bank_reference'] or payment['line_id']}); the invoice is assigned in notified mode: "
                    "the cash belongs to the factor, transfer it")
            if key in collected_on:
                text += f" (the factor also reported collecting it on {collected_on[key]}: paid twice?)"
            findings.append({"day": payment["booking_date"], "currency": payment["currency"], "text": text})
    return findings, totals


def reconcile_factor_accounts(store: Any, config: Any, factor_map: dict[str, str]) -> list[dict[str, Any]]:
    section = config.section("reconciliation") if config is not None else {}
    window = int(section.get("gap_window_days") or DEFAULT_WINDOW)
    summaries = []
    all_events = store.ledger_factor_events()
    for account, factor in sorted(factor_map.items()):
        lines = store.statement_line_rows(account=account)
        for line in lines:
            line["kind"] = classify_line(line)
        events = [e for e in all_events if e["factor"] == factor]
        numbers = {e["event_id"]: e["invoice_number"] for e in events}
        movements = store.factor_current_movements(factor)
        for move in movements:
            move["invoice_number"] = numbers.get(move["event_id"])
        movements += [{"event_id": e["event_id"], "amount_minor": e["amount_minor"], "currency": e["currency"],
                       "invoice_key": e["invoice_key"], "invoice_number": e["invoice_number"],
                       "occurred_on": e["occurred_on"], "kind": e["kind"], "off_current": True}
                      for e in events if e["kind"] == "collection.received" and e["amount_minor"]]
        statements = store.statement_rows(account=account)
        first = next((s for s in statements if s["opening_minor"] is not None), None)
        opening = first["opening_minor"] if first else 0
        opening_day = dt.date.fromisoformat(first["from_date"]) if first and first["from_date"] else None
        currency = first["currency"] if first else (statements[0]["currency"] if statements else None)
        terms = (config.factors or {}).get(factor, {}) if config is not None else {}
        findings, totals = schedule_findings(
            events, store.assignment_rows(factor), terms,
            bank_payments=[p for p in store.recon_payments_of_assigned(factor) if p["account"] not in factor_map]
        ) if terms else ([], {})
        rows = balance_gap_journal(lines, movements, opening_minor=opening, opening_day=opening_day, window=window,
                                   currency=currency, findings=findings)
        movements = [m for m in movements if currency is None or m["currency"] == currency]
        groups, only_factor, _ = group_movements(lines, movements, window)
        changed = 0
        with store.transaction():
            for row in rows:
                changed += store.save_factor_gap({"factor": factor, "account": account, **row})
            for group_lines, group_moves in groups:  # factor movements Cessio knows: not customer payments
                for line in group_lines:
                    if line["match_status"] != "not_receivable":
                        store.recon_set_line_status(line["id"], "not_receivable")
                        store.audit("factor.line_matched", f"statement_line:{line['id']}",
                                    {"factor": factor, "events": [m["event_id"] for m in group_moves],
                                     "kind": line["kind"]})
        counts: dict[str, int] = defaultdict(int)
        for row in rows:
            counts[row["status"]] += 1
        summaries.append({"factor": factor, "account": account, "days": len(rows), "agreed": counts["agreed"],
                          "explained": counts["explained"], "flagged": counts["flagged"], "changed": changed,
                          "unmatched_lines": len(only_factor), "schedule_findings": [f["text"] for f in findings],
                          **totals})
    return summaries
