"""Factor events into Cessio: fetched incrementally with the factor's cursor; each becomes a
``factor_events`` row, moves the invoice's financing state, and posts signed movements to the factor's
running accounts (``factor_ledger``). Events, ledger rows, state changes and the new cursor commit in one
transaction per page, so a crash re-fetches the page and the (factor, event id) key ignores replays.

Accounts, seen from the company: ``current`` is what the factor owes us now (available funding),
``reserve`` what it holds back, ``fees``/``fees_vat`` what it charged, ``funded`` what it paid out,
``outstanding`` the assigned receivables it still carries, ``collected``/``charged_back`` their ends.
"""

from __future__ import annotations

from typing import Any

from connector.factors.profile import FactorProfile
from connector.money import Money

# kind → (financing state of the invoice, ledger movements as (account, sign, which amount))
EFFECTS: dict[str, tuple[str | None, list[tuple[str, int, str]]]] = {
    "assignment.accepted": ("accepted", [("outstanding", 1, "amount"), ("current", 1, "amount")]),
    "assignment.partly_accepted": ("accepted", [("outstanding", 1, "amount"), ("current", 1, "amount")]),
    "assignment.declined": ("declined", []),
    "assignment.cancelled": ("cancelled", [("outstanding", -1, "amount"), ("current", -1, "amount")]),
    "reserve.held": (None, [("current", -1, "amount"), ("reserve", 1, "amount")]),
    "reserve.released": (None, [("reserve", -1, "amount"), ("current", 1, "amount")]),
    "fee.charged": (None, [("current", -1, "amount"), ("current", -1, "vat"), ("fees", 1, "amount"),
                           ("fees_vat", 1, "vat")]),
    "funding.paid": ("funded", [("current", -1, "amount"), ("funded", 1, "amount")]),
    "collection.received": ("collected", [("outstanding", -1, "amount"), ("collected", 1, "amount")]),
    "chargeback": ("charged_back", [("outstanding", -1, "amount"), ("current", -1, "amount"),
                                    ("charged_back", 1, "amount")]),
    # the credit note itself moves on: the factor took it into account (it is never funded)
    "credit_note.applied": ("accepted", [("outstanding", -1, "amount"), ("current", -1, "amount")]),
    "limit.decided": (None, []),
}


def _minor(text: str | None, currency: str | None) -> int | None:
    return None if text is None or currency is None else Money.parse(text, currency).minor_units


def ledger_movements(kind: str, amount_minor: int | None, vat_minor: int | None) -> list[tuple[str, int]]:
    """Signed movements per account; several on one account are summed (one row per account and event)."""
    totals: dict[str, int] = {}
    for account, sign, which in EFFECTS.get(kind, (None, []))[1]:
        value = amount_minor if which == "amount" else vat_minor
        if value:
            totals[account] = totals.get(account, 0) + sign * value
    return list(totals.items())


def ingest_events(store: Any, profile: FactorProfile, channel: Any, *, page_size: int = 500,
                  max_pages: int = 1000) -> dict[str, int]:
    """Fetch every new event; returns counts per kind (replayed events are not counted twice).

    File-based channels (files, ISO 20022) have no feed: their reply files are imported instead, into
    the same factor events (:meth:`connector.channels.file_channel.FileChannel.ingest_replies`)."""
    if hasattr(channel, "ingest_replies"):
        return channel.ingest_replies(store)
    source = f"factor:{profile.name}"
    cursor = str(store.get_cursor(source, "events") or "0")
    counts: dict[str, int] = {}
    for _ in range(max_pages):
        page = channel.events(cursor, page_size)
        with store.transaction():
            for raw in page["events"]:
                currency = raw.get("currency")
                event = {"event_id": raw["event_id"], "kind": raw["kind"], "invoice_key": raw.get("invoice_key"),
                         "amount_minor": _minor(raw.get("amount"), currency), "vat_minor": _minor(raw.get("vat"),
                                                                                                 currency),
                         "currency": currency, "reason_code": raw.get("reason_code"),
                         "occurred_on": raw["occurred_on"],
                         "detail": {**(raw.get("detail") or {}), "assignment_id": raw.get("assignment_id"),
                                    "debtor_key": raw.get("debtor_key")}}
                state = EFFECTS.get(raw["kind"], (None, []))[0]
                if raw["kind"] == "collection.received" and profile.mode == "confidential":
                    state = "collected"
                fresh = store.record_factor_event(
                    profile.name, event, ledger_movements(raw["kind"], event["amount_minor"], event["vat_minor"]),
                    state)
                if fresh and raw["kind"] == "limit.decided" and raw.get("debtor_key"):
                    detail = raw.get("detail") or {}
                    store.save_debtor_limit(profile.name, raw["debtor_key"], detail.get("status", "approved"),
                                            event["amount_minor"] or 0, currency, detail.get("valid_from"),
                                            detail.get("valid_to"), source="event")
                if fresh:
                    counts[raw["kind"]] = counts.get(raw["kind"], 0) + 1
            store.save_cursor(source, page["next_cursor"], "events")
        cursor = page["next_cursor"]
        if not page.get("has_more"):
            break
    return counts
