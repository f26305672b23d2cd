"""Credit-limit requests to the factor: request, increase, reduce, cancel or prolong a debtor's limit, in
the UN/EDIFACT RECECO vocabulary, through the factor's API or as a CSV file; decisions tracked with
their validity and fed to the eligibility engine; limits about to expire reported ahead of time.

Reads: the caller's request (debtor, type, amount), the factor's answers (API JSON or a CSV decision
file). Writes: ``limit_requests`` rows (claimed with an idempotency key before anything is sent),
the debtor's current limit in ``debtor_limits`` (what eligibility reads), audit rows, and the request
file's bytes for the file channel.

RECECO codes (docs/factoring.md §(d)): request types 4505 (2 new, 3 increase, 4 preliminary,
6 cancellation, 7 reduction, 8 prolongation), responses 4507 (1 preliminary assessment, 2 approved,
3 not approved, 4 conditional approval, 5 partly approved, 6 still investigating, 8 cancellation,
9 reduction), reasons 4509 (kept as given).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from connector.channels.http import BearerApi
from connector.clock import today, utc_iso
from connector.errors import Quarantine, RetryLater, StopAndAsk
from connector.model import Party
from connector.money import Money

REQUEST_CODES = {"new": "2", "increase": "3", "preliminary": "4", "cancel": "6", "reduce": "7", "prolong": "8"}
# RECECO 4507 → the debtor-limit status the eligibility engine reads (approved / partly_approved are the
# only statuses it finances against; a conditional approval waits for a person to accept the condition)
RESPONSE_STATUS = {
    "1": "preliminary", "2": "approved", "3": "declined", "4": "conditionally_approved",
    "5": "partly_approved", "6": "investigating", "8": "cancelled", "9": "approved",
}
NAMED_RESPONSES = {"approved": "2", "refused": "3", "declined": "3", "conditional": "4",
                   "conditionally_approved": "4", "partly_approved": "5", "investigating": "6",
                   "cancelled": "8", "reduced": "9", "preliminary": "1"}


def request_limit(store: Any, *, factor: str, debtor: Party, request_type: str, amount: Money,
                  on: dt.date | None = None) -> int:
    """Record a request (idempotent per factor, debtor, type, amount and day); returns its id."""
    if request_type not in REQUEST_CODES:
        raise Quarantine(f"unknown limit request type {request_type!r} (one of {sorted(REQUEST_CODES)})",
                         field="request_type")
    if amount.is_negative():
        raise Quarantine("a limit amount cannot be negative", field="amount")
    if not debtor.identified:
        raise Quarantine(f"debtor {debtor.name!r} has no legal id or VAT id: a factor cannot assess it",
                         field="debtor")
    day = (on or today()).isoformat()
    key = "limit-" + hashlib.sha256(
        f"{factor}|{debtor.key}|{request_type}|{amount.amount}|{amount.currency}|{day}".encode()).hexdigest()[:32]
    with store.transaction():
        return store.limit_add_request(
            factor=factor, debtor_key=debtor.key, debtor_name=debtor.name, request_type=request_type,
            receco_code=REQUEST_CODES[request_type], amount_minor=amount.minor_units, currency=amount.currency,
            idempotency_key=key)


def record_decision(store: Any, request_id: int, *, response: str, granted: Money | None = None,
                    valid_from: dt.date | None = None, valid_to: dt.date | None = None,
                    reason_code: str | None = None, decided_at: str | None = None) -> bool:
    """Apply the factor's answer (RECECO code or its name); the debtor's limit follows unless the factor
    is still investigating. Returns False when the same decision was already recorded."""
    code = NAMED_RESPONSES.get(response, response)
    if code not in RESPONSE_STATUS:
        raise StopAndAsk(f"limit request {request_id}: unknown RECECO response {response!r}")
    status = RESPONSE_STATUS[code]
    if status in ("declined", "cancelled", "investigating", "preliminary") and granted is None:
        granted_minor = 0
    elif granted is None:
        raise Quarantine(f"a {status} limit needs the granted amount", field="granted")
    else:
        granted_minor = granted.minor_units
    with store.transaction():
        return store.limit_record_decision(
            request_id, response_code=code, status=status, granted_minor=granted_minor,
            valid_from=valid_from.isoformat() if valid_from else None,
            valid_to=valid_to.isoformat() if valid_to else None, reason_code=reason_code,
            decided_at=decided_at or utc_iso())


@dataclass(frozen=True)
class ExpiringLimit:
    factor: str
    debtor_key: str
    status: str
    amount: Money
    valid_to: dt.date
    days_left: int


def expiring_limits(store: Any, *, within_days: int = 30, on: dt.date | None = None) -> list[ExpiringLimit]:
    """Financing limits whose validity ends within ``within_days`` (or has ended): ask for a prolongation."""
    day = on or today()
    found = []
    for row in store.limit_all():
        if not row["valid_to"] or row["status"] not in ("approved", "partly_approved", "conditionally_approved"):
            continue
        end = dt.date.fromisoformat(row["valid_to"])
        left = (end - day).days
        if left <= within_days:
            found.append(ExpiringLimit(row["factor"], row["debtor_key"], row["status"],
                                       Money.from_minor(row["amount_minor"], row["currency"]), end, left))
    return sorted(found, key=lambda x: (x.valid_to, x.factor, x.debtor_key))


def limits_for_eligibility(store: Any, factor: str) -> dict[str, Any]:
    """The factor's current limits as the eligibility engine's ``DebtorLimit`` objects, by debtor key."""
    from connector.factors.eligibility import DebtorLimit

    return {row["debtor_key"]: DebtorLimit(
        status=row["status"], amount=Money.from_minor(row["amount_minor"], row["currency"]),
        valid_from=dt.date.fromisoformat(row["valid_from"]) if row["valid_from"] else None,
        valid_to=dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None)
        for row in store.limit_all(factor)}


# -- the API channel -----------------------------------------------------------------------------------

class LimitApi(Protocol):
    def submit(self, request: Mapping[str, Any], idempotency_key: str) -> str: ...
    def find(self, idempotency_key: str) -> str | None: ...
    def decision(self, remote_id: str) -> Mapping[str, Any] | None: ...


class HttpLimitApi(BearerApi):
    """``POST {base}/limits`` (Idempotency-Key header), ``GET {base}/limits?idempotency_key=``,
    ``GET {base}/limits/{id}``; explicit (connect, read) timeouts; network failures → RetryLater."""

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise RetryLater(f"factor limit API {method} {path}: {exc.__class__.__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryLater(f"factor limit API {method} {path}: HTTP {response.status_code}")
        return response

    def submit(self, request: Mapping[str, Any], idempotency_key: str) -> str:
        response = self._call("POST", "/limits", json=dict(request), headers={"Idempotency-Key": idempotency_key})
        if response.status_code >= 400:
            raise StopAndAsk(f"factor refused the limit request: HTTP {response.status_code} {response.text[:200]}")
        return str(response.json()["id"])

    def find(self, idempotency_key: str) -> str | None:
        response = self._call("GET", "/limits", params={"idempotency_key": idempotency_key})
        items = response.json().get("items", []) if response.status_code == 200 else []
        return str(items[0]["id"]) if items else None

    def decision(self, remote_id: str) -> Mapping[str, Any] | None:
        response = self._call("GET", f"/limits/{remote_id}")
        if response.status_code == 404:
            raise StopAndAsk(f"factor does not know limit request {remote_id}")
        body = response.json()
        return body if body.get("status") not in (None, "pending") else None


def send_pending(store: Any, factor: str, api: LimitApi) -> int:
    """Send every pending request once: look it up by its key first (a crash may have sent it already)."""
    sent = 0
    for row in store.limit_requests(factor=factor, state="pending"):
        remote = api.find(row["idempotency_key"])
        if remote is None:
            remote = api.submit({
                "debtor_key": row["debtor_key"], "debtor_name": row["debtor_name"],
                "request_type": row["request_type"], "receco_request_code": row["receco_code"],
                "amount": str(Money.from_minor(row["amount_minor"], row["currency"]).amount),
                "currency": row["currency"]}, row["idempotency_key"])
        with store.transaction():
            store.limit_mark_sent(row["id"], remote)
        sent += 1
    return sent


def poll_decisions(store: Any, factor: str, api: LimitApi) -> int:
    """Ask the factor about every sent request; record the decisions that arrived."""
    decided = 0
    for row in store.limit_requests(factor=factor, state="sent"):
        answer = api.decision(row["remote_id"])
        if not answer:
            continue
        granted = answer.get("granted_amount")
        decided += record_decision(
            store, row["id"], response=str(answer["response_code"]),
            granted=Money.parse(granted, row["currency"]) if granted is not None else None,
            valid_from=dt.date.fromisoformat(answer["valid_from"]) if answer.get("valid_from") else None,
            valid_to=dt.date.fromisoformat(answer["valid_to"]) if answer.get("valid_to") else None,
            reason_code=answer.get("reason_code"))
    return decided


# -- the file channel --------------------------------------------------------------------------------

FILE_COLUMNS = ("reference", "debtor_key", "debtor_name", "request_code", "amount", "currency")
DECISION_COLUMNS = ("reference", "response_code", "granted_amount", "valid_from", "valid_to", "reason_code")


def request_file(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The pending requests as a ``;`` CSV (our reference = the idempotency key, echoed in the answer)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(FILE_COLUMNS)
    for row in rows:
        writer.writerow([row["idempotency_key"], row["debtor_key"], row["debtor_name"] or "", row["receco_code"],
                         str(Money.from_minor(row["amount_minor"], row["currency"]).amount), row["currency"]])
    return out.getvalue().encode("utf-8")


def import_decision_file(store: Any, data: bytes, *, factor: str, source: str) -> int:
    """Apply a factor's CSV answer file (columns ``DECISION_COLUMNS``); an unknown reference is refused."""
    by_key = {r["idempotency_key"]: r for r in store.limit_requests(factor=factor)}
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";")
    missing = [c for c in DECISION_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise Quarantine(f"columns {missing} are missing", source=source)
    rows = list(reader)
    for line, row in enumerate(rows, start=2):
        if row["reference"] not in by_key:
            raise Quarantine(f"unknown request reference {row['reference']!r}", source=f"{source}:{line}",
                             field="reference")
    decided = 0
    for row in rows:
        request = by_key[row["reference"]]
        if request["state"] == "pending":
            with store.transaction():
                store.limit_mark_sent(request["id"], None)
        decided += record_decision(
            store, request["id"], response=row["response_code"],
            granted=Money.parse(row["granted_amount"], request["currency"]) if row["granted_amount"] else None,
            valid_from=dt.date.fromisoformat(row["valid_from"]) if row["valid_from"] else None,
            valid_to=dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
            reason_code=row["reason_code"] or None)
    return decided
