"""How assignments reach a factor: the :class:`Channel` protocol, and its ``api`` implementation.

A channel turns one leased outbox batch into the factor's acknowledgement. The outbox engine
(:mod:`connector.factors.outbox`) owns claims, leases, attempts, classification outcomes and the circuit
breaker; a channel only moves bytes and says what happened, by returning a :class:`Delivery` or raising
:class:`~connector.factors.api.NotSent` (certainly not received), :class:`~connector.factors.api.Ambiguous`
(maybe received) or :class:`~connector.factors.api.Definitive` (refused for good).

To plug in another channel (files, ISO 20022 — issue 6): write a class with ``name``, ``deliver(batch)``,
``lookup(batch)`` and ``probe()``; ``batch`` is the dict returned by ``Store.claim_batch`` (``items`` hold
each assignment's ``idempotency_key`` and JSON ``payload``; the batch has ``number``, ``currency``,
``item_count``, ``control_sum_minor`` and its own ``idempotency_key``). ``lookup`` must tell whether the
factor already holds the batch (an ack file, a status message) without side effects; return ``None``
when it does not, or when the channel cannot know (then the engine keeps the batch ``unknown`` rather
than resend blindly if ``can_lookup`` is False). Register it in :func:`make_channel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.factors.api import Definitive, FactorApi
from connector.factors.profile import FactorProfile
from connector.money import Money


@dataclass(frozen=True)
class Delivery:
    """The factor holds the batch: its id for every item (by idempotency key) and for the batch."""

    remote_ids: dict[str, str]
    remote_batch_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str
    can_lookup: bool

    def deliver(self, batch: dict[str, Any]) -> Delivery: ...

    def lookup(self, batch: dict[str, Any]) -> Delivery | None: ...

    def probe(self) -> str: ...


def batch_body(batch: dict[str, Any]) -> dict[str, Any]:
    """The bordereau as the API carries it: items plus control totals (count and signed sum)."""
    currency = batch["currency"]
    return {"batch_number": batch["number"], "currency": currency, "item_count": len(batch["items"]),
            "control_sum": str(Money.from_minor(sum(
                i["amount_minor"] * (-1 if i["kind"] == "credit_note" else 1) for i in batch["items"]),
                currency).amount),
            "items": [item["payload"] for item in batch["items"]]}


class ApiChannel:
    """The Cessio Factor API over HTTPS: one POST per batch under the batch's Idempotency-Key."""

    name = "api"
    can_lookup = True

    def __init__(self, profile: FactorProfile, api: FactorApi | None = None) -> None:
        self.profile = profile
        self.api = api or FactorApi(profile)

    @property
    def breaker(self):
        return self.api.breaker

    def deliver(self, batch: dict[str, Any]) -> Delivery:
        body = batch_body(batch)
        if len(batch["items"]) != batch["item_count"]:
            # a partly resolved batch cannot be resent under the same key with another body
            raise Definitive("batch items changed since it was formed", status=0, code="BATCH_CHANGED")
        _, answer = self.api.call("POST", "/assignment-batches", json_body=body, key=batch["idempotency_key"])
        return self._delivery(answer)

    def lookup(self, batch: dict[str, Any]) -> Delivery | None:
        try:
            _, answer = self.api.call("GET", f"/assignment-batches/{batch['idempotency_key']}",
                                      retry_ambiguous=True)
        except Definitive as exc:
            if exc.status == 404:
                return None
            raise
        return self._delivery(answer)

    @staticmethod
    def _delivery(answer: Any) -> Delivery:
        try:
            ids = {item["idempotency_key"]: item["assignment_id"] for item in answer["items"]}
        except (KeyError, TypeError) as exc:
            raise Definitive(f"factor reply without item ids: {exc}", status=0, code="BAD_REPLY") from None
        return Delivery(ids, answer.get("batch_key"), {"items": answer["items"]})

    def probe(self) -> str:
        answer = self.api.health()
        return f"reachable at {self.profile.base_url} (business date {answer.get('business_date')})"

    # -- beyond the Channel protocol: limits and events (api only) -----------------------------------
    def request_limit(self, debtor: dict[str, Any], amount: Money) -> dict[str, Any]:
        from urllib.parse import quote

        _, answer = self.api.call("POST", f"/debtors/{quote(debtor['key'], safe='')}/limit-requests",
                                  json_body={"debtor": debtor, "amount": str(amount.amount),
                                             "currency": amount.currency})
        return answer

    def events(self, after: str, limit: int = 500) -> dict[str, Any]:
        _, answer = self.api.call("GET", f"/events?after={int(after)}&limit={limit}", retry_ambiguous=True)
        return answer


def make_channel(profile: FactorProfile) -> Channel:
    if profile.channel == "api":
        return ApiChannel(profile)
    try:  # issue 6 provides file and ISO 20022 channels here
        from connector.channels import make_channel as make_file_channel  # type: ignore[attr-defined]
    except ImportError:
        from connector.errors import NotBuiltYet

        raise NotBuiltYet(f"factor {profile.name}: the {profile.channel} channel is not built in this version") \
            from None
    return make_file_channel(profile)
