"""Reverse factoring at the buyer: approved supplier invoices submitted exactly once as confirmed payables
to the supply-chain-finance platform, the suppliers' early-payment events followed, and the buyer's
payment to the platform at maturity expected and matched against the bank statement.

Reads: received supplier invoices in the store (the ERP's purchase invoices or received UBL/CII/Factur-X,
stored like any invoice: the supplier is the seller), the platform's API (JSON over HTTP, explicit
timeouts) and the buyer's booked bank statement lines. Writes: ``reverse_payables`` rows (the claim,
with an idempotency key, committed before any call), the platform's events as factor events, audit.

Exactly once: a payable is claimed before it is sent; an ambiguous failure (timeout, dropped
connection) marks it ``unknown`` and the next run looks it up by its key before any resend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from connector.channels.http import BearerApi
from connector.errors import Quarantine, RetryLater, StopAndAsk
from connector.model import FactorEvent
from connector.money import Money

APPROVED_STATUSES = frozenset({"approved", "open"})
MATCH_WINDOW_DAYS = 5


class AmbiguousFailure(RetryLater):
    """The platform may or may not have received the request: look it up before any resend."""


class PlatformApi(BearerApi):
    """The platform's HTTP API (see :mod:`connector.sandbox.platform` for the contract it plays)."""

    def submit(self, payable: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            response = self.session.post(f"{self.base_url}/payables", json=dict(payable), timeout=self.timeout,
                                         headers={"Idempotency-Key": idempotency_key})
        except (requests.ConnectionError, requests.Timeout) as exc:
            # the request may have reached the platform: only a look-up can tell
            raise AmbiguousFailure(f"platform did not answer ({exc.__class__.__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise AmbiguousFailure(f"platform answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise Quarantine(f"platform refused the payable: HTTP {response.status_code} {response.text[:200]}",
                             source=payable.get("number"))
        return response.json()

    def find(self, idempotency_key: str) -> dict[str, Any] | None:
        try:
            response = self.session.get(f"{self.base_url}/payables", params={"idempotency_key": idempotency_key},
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryLater(f"platform look-up failed ({exc.__class__.__name__})") from None
        if response.status_code != 200:
            raise RetryLater(f"platform look-up answered HTTP {response.status_code}")
        items = response.json().get("items", [])
        return items[0] if items else None

    def events(self, after: int) -> list[dict[str, Any]]:
        try:
            response = self.session.get(f"{self.base_url}/events", params={"after": after}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryLater(f"platform events failed ({exc.__class__.__name__})") from None
        if response.status_code != 200:
            raise RetryLater(f"platform events answered HTTP {response.status_code}")
        return response.json().get("events", [])


# -- claims ---------------------------------------------------------------------------------------------

def payable_candidates(store: Any, buyer_key: str) -> list[int]:
    """Supplier invoices received by ``buyer_key`` (us) that the ERP approved for payment, not yet claimed."""
    marks = ", ".join("?" for _ in APPROVED_STATUSES)
    return [row["id"] for row in store.invoice_rows(
        where=f"buyer_key = ? AND kind = 'invoice' AND erp_status IN ({marks})",
        params=(buyer_key, *sorted(APPROVED_STATUSES)))]


def claim_payables(store: Any, platform: str, invoice_ids: Iterable[int]) -> list[int]:
    """Claim approved supplier invoices for the platform (once each); returns the new claims' ids.

    Credit notes, invoices without a due date and invoices the ERP does not show as approved are refused
    with the reason (quarantined), the others go on.
    """
    created = []
    for invoice_id in invoice_ids:
        invoice = store.get_invoice(invoice_id)
        row = store.invoice_row(invoice_id)
        where = f"invoice:{invoice.number}"
        try:
            if invoice.is_credit_note:
                raise Quarantine("a credit note is netted by the ERP, not submitted as a payable", source=where)
            if invoice.due_date is None:
                raise Quarantine("a confirmed payable needs a due date", source=where, field="due_date")
            if (invoice.erp_status or "approved") not in APPROVED_STATUSES:
                raise Quarantine(f"the ERP says {invoice.erp_status!r}, not approved for payment", source=where,
                                 field="erp_status")
        except Quarantine as exc:
            with store.transaction():
                store.quarantine(exc, source=f"platform:{platform}", location=where)
            continue
        key = f"rf-{platform}-{invoice.invoice_key}-v{row['current_version']}"
        with store.transaction():
            payable_id, new = store.reverse_add_payable(
                platform=platform, invoice_id=invoice_id, invoice_key=invoice.invoice_key,
                supplier_key=invoice.seller.key, number=invoice.number,
                amount_minor=invoice.amount_due.minor_units, currency=invoice.currency,
                due_date=invoice.due_date.isoformat(), idempotency_key=key)
        if new:
            created.append(payable_id)
    return created


def _request_body(store: Any, row: Mapping[str, Any]) -> dict[str, Any]:
    invoice = store.get_invoice(row["invoice_id"])
    return {"supplier": invoice.seller.key, "supplier_name": invoice.seller.name,
            "supplier_iban": (invoice.seller.ibans or (invoice.payment.iban,))[0],
            "buyer": invoice.buyer.key, "number": row["number"],
            "amount": str(Money.from_minor(row["amount_minor"], row["currency"]).amount),
            "currency": row["currency"], "due_date": row["due_date"], "issue_date": invoice.issue_date.isoformat()}


def submit_pending(store: Any, platform: str, api: PlatformApi) -> dict[str, int]:
    """Send every claimed payable not yet confirmed; look up first whatever may have reached the platform."""
    counts = {"confirmed": 0, "found": 0, "unknown": 0, "rejected": 0}
    for row in store.reverse_payables(platform, states=("pending", "unknown")):
        if row["state"] == "unknown" or row["attempts"] > 0:
            found = api.find(row["idempotency_key"])
            if found is not None:
                with store.transaction():
                    store.reverse_set_state(row["id"], "confirmed", remote_id=found["id"])
                counts["found"] += 1
                continue
        with store.transaction():  # the attempt is counted before the call: a crash leaves "unknown"
            store.reverse_set_state(row["id"], "unknown", error="sending")
        try:
            answer = api.submit(_request_body(store, row), row["idempotency_key"])
        except AmbiguousFailure as exc:
            with store.transaction():
                store.reverse_set_state(row["id"], "unknown", error=str(exc))
            counts["unknown"] += 1
            continue
        except Quarantine as exc:
            with store.transaction():
                store.reverse_set_state(row["id"], "rejected", error=exc.reason)
            counts["rejected"] += 1
            continue
        with store.transaction():
            store.reverse_set_state(row["id"], "confirmed", remote_id=answer["id"])
        counts["confirmed"] += 1
    return counts


def follow_events(store: Any, platform: str, api: PlatformApi) -> int:
    """Read the platform's new events (cursor kept in the store); early payments update their payable."""
    source = f"platform:{platform}"
    cursor = int(store.get_cursor(source, "events") or 0)
    events = api.events(cursor)
    by_remote = {r["remote_id"]: r for r in store.reverse_payables(platform) if r["remote_id"]}
    recorded = 0
    for event in events:
        with store.transaction():
            if event["type"] == "early_payment":
                payable = by_remote.get(event["payable_id"])
                if payable is None:
                    raise StopAndAsk(f"platform reports early payment of unknown payable {event['payable_id']}")
                paid = Money.parse(event["paid_amount"], event["currency"])
                recorded += store.channel_record_factor_event(FactorEvent(
                    factor=platform, event_id=event["id"], kind="early_payment",
                    occurred_on=dt.date.fromisoformat(event["paid_on"]), invoice_key=payable["invoice_key"],
                    amount=paid, detail={"supplier": event["supplier"], "discount": event["discount"],
                                         "number": event["number"], "payable": event["payable_id"]}))
                if payable["state"] == "confirmed":
                    store.reverse_set_state(payable["id"], "early_paid", early_paid_minor=paid.minor_units,
                                            early_paid_on=event["paid_on"])
            store.save_cursor(source, event["seq"], "events")
    return recorded


# -- payment at maturity ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpectedPayment:
    payable_id: int
    number: str
    remote_id: str | None
    amount: Money
    due_date: dt.date


def expected_payments(store: Any, platform: str, *, until: dt.date) -> list[ExpectedPayment]:
    """What the buyer owes the platform by ``until``: the full invoice amount at maturity, whether the
    supplier took early payment or not (the discount is the supplier's cost, not the buyer's)."""
    return [ExpectedPayment(r["id"], r["number"], r["remote_id"], Money.from_minor(r["amount_minor"], r["currency"]),
                            dt.date.fromisoformat(r["due_date"]))
            for r in store.reverse_payables(platform, states=("confirmed", "early_paid"))
            if dt.date.fromisoformat(r["due_date"]) <= until]


def _mentions(line: Mapping[str, Any], expected: ExpectedPayment) -> bool:
    text = " ".join(str(line.get(k) or "") for k in ("remittance", "structured_reference", "end_to_end_id"))
    return expected.number in text or bool(expected.remote_id and expected.remote_id in text)


def match_payments(lines: Sequence[Mapping[str, Any]], expected: Sequence[ExpectedPayment]) -> list[tuple[int, int]]:
    """Pair outgoing statement lines with expected payments: exact amount, reference named in the
    remittance, booked within a few days of the due date. Pure; returns (payable id, line id) pairs."""
    pairs = []
    used: set[int] = set()
    for payment in expected:
        for line in lines:
            if line["id"] in used or line["currency"] != payment.amount.currency:
                continue
            if -line["amount_minor"] != payment.amount.minor_units:
                continue
            booked = dt.date.fromisoformat(line["booking_date"])
            if abs((booked - payment.due_date).days) > MATCH_WINDOW_DAYS or not _mentions(line, payment):
                continue
            pairs.append((payment.payable_id, line["id"]))
            used.add(line["id"])
            break
    return pairs


def reconcile_maturity(store: Any, platform: str, *, until: dt.date) -> list[tuple[int, int]]:
    """Match the buyer's payments to the platform and mark those payables settled (audited)."""
    expected = expected_payments(store, platform, until=until + dt.timedelta(days=MATCH_WINDOW_DAYS))
    currencies = {e.amount.currency for e in expected}
    lines = [line for c in sorted(currencies) for line in store.reverse_open_statement_lines(c)]
    pairs = match_payments(lines, expected)
    for payable_id, line_id in pairs:
        with store.transaction():
            store.reverse_set_state(payable_id, "settled", settled_line_id=line_id)
    return pairs


def payables_summary(store: Any, platform: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in store.reverse_payables(platform):
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts

