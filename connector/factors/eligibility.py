"""Eligibility: a pure function from an invoice, its debtor, the portfolio and the factor's rules to a decision.

Reads nothing and writes nothing: the caller gathers the facts (store, config, clock) and records the
decision. Every rule is checked, so a declined invoice lists *every* reason, each with a stable code that
finance staff, reports and tests rely on (see :data:`REASONS`).

Credit notes are netted against their debtor: a credit note that names the invoice it corrects
(``preceding_invoices``) reduces that invoice's financeable amount; any other open credit note of the
debtor reduces the debtor's exposure headroom and the concentration computation. Credit notes are never
financed themselves; the engine notifies them to the factor.

The ERP's own status is a fact like any other: an invoice the ERP reports paid, cancelled or credited has no
receivable left to sell (``ERP_PAID``, ``ERP_CANCELLED``, ``ERP_CREDITED``); one it reports partly paid is
declined too (``PARTLY_PAID``, see :func:`_erp_reasons` for why). The caller passes the status the store
holds now (``Candidate.erp_status``): the invoice document's own copy is the one of its last *version*, and
a status-only change (a CSV export flipping ``open`` to ``paid``) makes no new version.

Concentration applies once the portfolio (after this invoice) reaches ``concentration_floor``: with a
handful of invoices any one debtor is "100 %" of the book, which no factor means by the rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from connector.factors.profile import FactorProfile
from connector.model import Invoice
from connector.money import Money

REASONS: dict[str, str] = {
    "DEBTOR_UNIDENTIFIED": "the debtor has neither a legal id nor a VAT id",
    "NO_LIMIT": "no credit limit for this debtor at the factor",
    "LIMIT_NOT_APPROVED": "the debtor's limit is not approved",
    "LIMIT_EXPIRED": "the debtor's limit is not valid on this date",
    "LIMIT_CURRENCY": "the debtor's limit is in another currency",
    "LIMIT_EXCEEDED": "not enough limit left once assigned invoices and credit notes are counted",
    "COUNTRY_NOT_ALLOWED": "the debtor's country is not accepted by the factor",
    "COUNTRY_RISK": "the debtor's country-risk class is above the policy",
    "CURRENCY_NOT_ACCEPTED": "the factor does not accept this currency",
    "NO_DUE_DATE": "the invoice has no due date",
    "OVERDUE": "the invoice is already overdue",
    "TOO_OLD": "the invoice is older than the maximum age",
    "TENOR_TOO_LONG": "the payment term is longer than the maximum tenor",
    "DISPUTED": "the invoice is disputed",
    "ALREADY_FINANCED": "the e-invoice names another payee (already factored or pledged)",
    "ALREADY_ASSIGNED": "the invoice is already assigned",
    "FULLY_CREDITED": "credit notes cancel the invoice",
    "CONCENTRATION": "the debtor would exceed its allowed share of the portfolio",
    "BELOW_MINIMUM": "the amount is below the factor's minimum",
    "INTRA_GROUP": "the debtor belongs to the seller's own group",
    "NOT_AN_INVOICE": "credit notes are netted and notified, never financed",
    "ERP_PAID": "the ERP reports the invoice paid: there is no receivable left to assign",
    "ERP_CANCELLED": "the ERP reports the invoice cancelled",
    "ERP_CREDITED": "the ERP reports the invoice credited in full",
    "PARTLY_PAID": "the ERP reports a partial payment: a factor buys the whole receivable, not what is left of it",
}
# ERP statuses that close the receivable (a later pull that says "open" again re-opens the question)
ERP_CLOSED: dict[str, str] = {"paid": "ERP_PAID", "cancelled": "ERP_CANCELLED", "credited": "ERP_CREDITED"}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class DebtorLimit:
    status: str                 # approved | partly_approved | declined | pending | cancelled
    amount: Money
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


@dataclass(frozen=True)
class Candidate:
    """One invoice with the facts the store knows about it beyond the document."""

    invoice: Invoice
    disputed: bool = False
    assigned: bool = False          # a live assignment exists (to any factor)
    credited: Money | None = None   # credit notes that name this invoice
    erp_status: str | None = None   # the status the store holds now; None: the document's own

    @property
    def current_erp_status(self) -> str | None:
        return self.erp_status if self.erp_status is not None else self.invoice.erp_status


@dataclass
class Portfolio:
    """Outstanding assigned amounts and open credit notes, per (debtor, currency)."""

    exposure: dict[tuple[str, str], Money] = field(default_factory=dict)
    credit_notes: dict[tuple[str, str], Money] = field(default_factory=dict)

    def net(self, debtor: str, currency: str) -> Money:
        zero = Money.zero(currency)
        net = self.exposure.get((debtor, currency), zero) - self.credit_notes.get((debtor, currency), zero)
        return net if net > zero else zero

    def total(self, currency: str) -> Money:
        debtors = {d for d, c in (*self.exposure, *self.credit_notes) if c == currency}
        result = Money.zero(currency)
        for debtor in debtors:
            result = result + self.net(debtor, currency)
        return result

    def add(self, debtor: str, amount: Money) -> None:
        key = (debtor, amount.currency)
        self.exposure[key] = self.exposure.get(key, Money.zero(amount.currency)) + amount


@dataclass(frozen=True)
class Decision:
    invoice_key: str
    eligible: bool
    reasons: tuple[Reason, ...]
    amount: Money                  # the financeable amount (net of credit notes naming the invoice)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def reasons_json(self) -> list[dict[str, str]]:
        return [r.to_dict() for r in self.reasons]


def _reason(code: str, detail: str = "") -> Reason:
    return Reason(code, REASONS[code] + (f" ({detail})" if detail else ""))


def _intra_group(invoice: Invoice, group: Iterable[str]) -> bool:
    ids = {i for i in (invoice.buyer.key, invoice.buyer.vat_id, invoice.buyer.legal_id) if i}
    return bool(ids & set(group))


def _erp_reasons(status: str | None) -> list[Reason]:
    """Reasons the ERP's status gives by itself.

    ``partially_paid`` is declined rather than financed for its open balance: an assignment (cession de
    créance, subrogation) transfers the receivable *as invoiced* and the debtor is notified of that amount;
    part of it already settled to the seller means the factor would buy a claim whose face value is wrong,
    and a debtor paying only part is the first sign of a dispute or a set-off. Factoring contracts commonly
    exclude such invoices, so Cessio does not offer them. (For Tryton and Odoo ``amount_due`` is the open balance,
    so financing the remainder would be possible; it is a policy choice, kept out until a factor asks.)
    ``partially_credited`` is not declined here: the credit note naming the invoice is netted (``credited``).
    """
    if status in ERP_CLOSED:
        return [_reason(ERP_CLOSED[status])]
    if status == "partially_paid":
        return [_reason("PARTLY_PAID")]
    return []


def decide(candidate: Candidate, limit: DebtorLimit | None, portfolio: Portfolio, profile: FactorProfile,
           today: dt.date) -> Decision:
    """Check every rule; the invoice is eligible only when no reason is found."""
    invoice = candidate.invoice
    reasons: list[Reason] = []
    currency = invoice.currency
    amount = invoice.amount_due
    if candidate.credited is not None:
        amount = amount - candidate.credited
    if invoice.is_credit_note:
        return Decision(invoice.invoice_key, False, (_reason("NOT_AN_INVOICE"),), amount)
    erp_reasons = _erp_reasons(candidate.current_erp_status)
    reasons += erp_reasons
    debtor = invoice.buyer
    if not debtor.identified:
        reasons.append(_reason("DEBTOR_UNIDENTIFIED"))
    if _intra_group(invoice, profile.intra_group):
        reasons.append(_reason("INTRA_GROUP", debtor.name or debtor.key))
    if profile.countries and debtor.country not in profile.countries:
        reasons.append(_reason("COUNTRY_NOT_ALLOWED", str(debtor.country)))
    elif profile.risk_class(debtor.country) > profile.max_country_risk:
        reasons.append(_reason("COUNTRY_RISK", f"{debtor.country} is class {profile.risk_class(debtor.country)}, "
                                               f"policy allows up to {profile.max_country_risk}"))
    if currency not in profile.currencies:
        reasons.append(_reason("CURRENCY_NOT_ACCEPTED", currency))
    if invoice.due_date is None:
        reasons.append(_reason("NO_DUE_DATE"))
    else:
        if invoice.due_date < today:
            reasons.append(_reason("OVERDUE", f"due {invoice.due_date.isoformat()}"))
        tenor = (invoice.due_date - invoice.issue_date).days
        if tenor > profile.max_tenor_days:
            reasons.append(_reason("TENOR_TOO_LONG", f"{tenor} days > {profile.max_tenor_days}"))
    age = (today - invoice.issue_date).days
    if age > profile.max_age_days:
        reasons.append(_reason("TOO_OLD", f"{age} days > {profile.max_age_days}"))
    if candidate.disputed:
        reasons.append(_reason("DISPUTED"))
    if invoice.already_factored:
        reasons.append(_reason("ALREADY_FINANCED", (invoice.payee.name or invoice.payee.key)
                               if invoice.payee else f"type code {invoice.type_code}"))
    if candidate.assigned:
        reasons.append(_reason("ALREADY_ASSIGNED"))
    if not amount > Money.zero(currency):
        if not erp_reasons:  # a paid or cancelled invoice owes nothing: that is its reason, not a credit note
            reasons.append(_reason("FULLY_CREDITED"))
    elif amount < Money.of(profile.min_amount, currency, rounding="ROUND_HALF_EVEN"):
        reasons.append(_reason("BELOW_MINIMUM", f"{amount} < {profile.min_amount}"))

    net_after = portfolio.net(debtor.key, currency) + amount
    if profile.require_limit:
        if limit is None:
            reasons.append(_reason("NO_LIMIT"))
        elif limit.status not in ("approved", "partly_approved"):
            reasons.append(_reason("LIMIT_NOT_APPROVED", limit.status))
        elif (limit.valid_from and today < limit.valid_from) or (limit.valid_to and today > limit.valid_to):
            reasons.append(_reason("LIMIT_EXPIRED", f"valid {limit.valid_from} to {limit.valid_to}"))
        elif limit.amount.currency != currency:
            reasons.append(_reason("LIMIT_CURRENCY", f"limit in {limit.amount.currency}"))
        elif net_after > limit.amount:
            reasons.append(_reason("LIMIT_EXCEEDED", f"{net_after} needed of {limit.amount}"))

    total_after = portfolio.total(currency) + amount
    floor = Money.of(profile.concentration_floor, currency, rounding="ROUND_HALF_EVEN")
    if total_after >= floor and total_after > Money.zero(currency):
        share = net_after.amount / total_after.amount
        if share > profile.concentration_limit:
            reasons.append(_reason("CONCENTRATION", f"{(share * 100).quantize(Decimal('0.1'))} % > "
                                                    f"{(profile.concentration_limit * 100).normalize()} %"))
    return Decision(invoice.invoice_key, not reasons, tuple(reasons), amount)


def decide_all(candidates: Iterable[Candidate], limits: Mapping[str, DebtorLimit], portfolio: Portfolio,
               profile: FactorProfile, today: dt.date) -> list[Decision]:
    """Decide in order; each eligible invoice is added to a copy of the portfolio before the next one, so
    limits and concentration hold for the run as a whole."""
    book = replace(portfolio, exposure=dict(portfolio.exposure), credit_notes=dict(portfolio.credit_notes))
    decisions = []
    for candidate in candidates:
        decision = decide(candidate, limits.get(candidate.invoice.buyer.key), book, profile, today)
        if decision.eligible:
            book.add(candidate.invoice.buyer.key, decision.amount)
        decisions.append(decision)
    return decisions
