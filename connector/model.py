"""The canonical model every adapter fills and every later stage reads.

All classes are frozen dataclasses of plain data: amounts are :class:`~connector.money.Money`,
dates are :class:`datetime.date`, countries ISO 3166-1 alpha-2, currencies ISO 4217 alpha-3. They
serialise to canonical JSON (sorted keys, amounts as exact decimal strings, dates ISO 8601) with
``to_dict``/``from_dict``; the store keeps that JSON and a content hash of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from connector.codes import normalise_country
from connector.money import Money

# UNTDID 1001 document type codes that matter to a factor (EN 16931 code list subset).
CREDIT_NOTE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
PREPAYMENT_CODES = frozenset({"386"})
SELF_BILLED_CODES = frozenset({"389", "527", "261"})
FACTORED_CODES = frozenset({"393", "396"})  # French e-invoicing "cas 8": invoice already assigned
CORRECTION_CODES = frozenset({"384", "471", "472", "473"})


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class LegalIdScheme(enum.StrEnum):
    """ISO 6523 ICD schemes seen on invoices, with a readable name (value = ICD code)."""

    SIREN = "0002"
    SIRET = "0009"
    DUNS = "0060"
    GLN = "0088"
    LEI = "0199"
    # any other ICD code is kept as its 4-digit text


def scheme_name(icd: str | None) -> str | None:
    """``"0002"`` → ``"SIREN"``; unknown ICD codes are returned unchanged."""
    if icd is None:
        return None
    try:
        return LegalIdScheme(icd).name
    except ValueError:
        return icd


class FinancingState(enum.StrEnum):
    """Where an invoice stands in its financing life (see docs/architecture.md for the graph)."""

    NEW = "new"                  # stored, not yet decided
    INELIGIBLE = "ineligible"    # the last decision said no (reasons kept); re-decided on change
    ELIGIBLE = "eligible"        # the last decision said yes, not yet claimed
    CLAIMED = "claimed"          # an assignment row exists (outbox): the only way to reach the factor
    SENT = "sent"                # the factor acknowledged receipt
    UNKNOWN = "unknown"          # an ambiguous failure: look up at the factor before any resend
    ACCEPTED = "accepted"
    DECLINED = "declined"
    FUNDED = "funded"            # advance paid
    COLLECTED = "collected"      # debtor paid (the factor in notified mode, the company in confidential)
    CHARGED_BACK = "charged_back"  # définancement: the factor handed the risk back
    RELEASED = "released"        # reserve released, file closed
    CANCELLED = "cancelled"      # cancelled or fully credited before or after assignment


@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...] = ()
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if self.country is not None:
            object.__setattr__(self, "country", normalise_country(self.country))


@dataclass(frozen=True, slots=True)
class Party:
    """A seller, buyer (debtor) or payee."""

    name: str | None = None
    country: str | None = None
    vat_id: str | None = None
    legal_id: str | None = None
    legal_id_scheme: str | None = None  # ISO 6523 ICD code, e.g. "0002" (SIREN)
    address: Address | None = None
    ibans: tuple[str, ...] = ()
    erp_id: str | None = None  # the party's id in the source system, when there is one

    def __post_init__(self) -> None:
        if self.country is not None:
            object.__setattr__(self, "country", normalise_country(self.country))
        if self.vat_id:
            object.__setattr__(self, "vat_id", self.vat_id.replace(" ", "").upper())

    @property
    def key(self) -> str:
        """A stable identity for the party: legal id, else VAT id, else ERP id, else normalised name."""
        if self.legal_id:
            return f"{self.legal_id_scheme or 'id'}:{self.legal_id.replace(' ', '')}"
        if self.vat_id:
            return f"vat:{self.vat_id}"
        if self.erp_id:
            return f"erp:{self.erp_id}"
        return "name:" + " ".join((self.name or "").lower().split())

    @property
    def identified(self) -> bool:
        """A debtor a factor can finance must carry a legal id or a VAT id."""
        return bool(self.legal_id or self.vat_id)


@dataclass(frozen=True, slots=True)
class PaymentInstructions:
    iban: str | None = None
    reference: str | None = None  # BT-83 remittance information (RF creditor reference when structured)
    bic: str | None = None
    means_code: str | None = None  # UNTDID 4461


@dataclass(frozen=True, slots=True)
class Invoice:
    """A sales invoice or credit note, from an ERP or an e-invoice.

    Amounts are positive for a normal invoice; a credit note carries positive amounts and
    ``kind == credit_note`` (readers turn "a 380 with negative amounts" into this form and record it
    in ``flags``). ``amount_due`` is BT-115: what the debtor still has to pay.
    """

    number: str
    kind: InvoiceKind
    type_code: str
    issue_date: dt.date
    currency: str
    total_gross: Money
    amount_due: Money
    seller: Party
    buyer: Party
    source: str = "file"
    source_id: str | None = None
    due_date: dt.date | None = None
    due_date_derived: bool = False
    total_net: Money | None = None
    total_tax: Money | None = None
    prepaid: Money | None = None
    rounding: Money | None = None
    payee: Party | None = None
    payment: PaymentInstructions = field(default_factory=PaymentInstructions)
    preceding_invoices: tuple[str, ...] = ()
    order_reference: str | None = None
    contract_reference: str | None = None
    buyer_reference: str | None = None
    notes: tuple[str, ...] = ()
    profile: str | None = None
    syntax: str | None = None
    content_hash: str | None = None  # SHA-256 of the source document's bytes, when there is one
    erp_status: str | None = None  # open / paid / partially_paid / cancelled, as the source says
    flags: tuple[str, ...] = ()  # prepayment, self_billed, factored, negative_invoice, ...

    def __post_init__(self) -> None:
        from connector.codes import normalise_currency

        object.__setattr__(self, "currency", normalise_currency(self.currency))
        object.__setattr__(self, "kind", InvoiceKind(self.kind))
        for name in ("total_gross", "amount_due", "total_net", "total_tax", "prepaid", "rounding"):
            value = getattr(self, name)
            if value is not None and value.currency != self.currency:
                raise ValueError(f"{name} is in {value.currency}, the invoice in {self.currency}")
        if not self.number or not self.number.strip():
            raise ValueError("invoice number is empty")

    @property
    def is_credit_note(self) -> bool:
        return self.kind is InvoiceKind.CREDIT_NOTE

    @property
    def invoice_key(self) -> str:
        """Stable identity across sources and versions: seller, kind and number."""
        return f"{self.seller.key}|{self.kind.value}|{self.number.strip()}"

    @property
    def signed_amount_due(self) -> Money:
        """The effect on the debtor's balance: positive for an invoice, negative for a credit note."""
        return -self.amount_due if self.is_credit_note else self.amount_due

    @property
    def already_factored(self) -> bool:
        """The payee is another party than the seller, or the type code says so (cas 8)."""
        if self.type_code in FACTORED_CODES:
            return True
        if self.payee is None:
            return False
        return self.payee.key != self.seller.key and (self.payee.name or "") != (self.seller.name or "")

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invoice:
        return _invoice_from_dict(data)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical business content (source bookkeeping fields excluded).

        Two reads of the same invoice give the same fingerprint; any change in amounts, dates,
        parties or references gives another one and therefore a new version in the store.
        """
        data = self.to_dict()
        for volatile in ("source", "source_id", "content_hash", "erp_status"):
            data.pop(volatile, None)
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked entry of a bank or factor statement (camt Ntry/TxDtls, MT940 :61:, CFONB 04).

    ``amount`` is signed from the account holder's view: positive is money in. ``bank_reference`` is
    the bank's own id for the line (camt AcctSvcrRef, MT940 reference after ``//``) when it has one.
    """

    account: str
    booking_date: dt.date
    amount: Money
    bank_reference: str | None = None
    value_date: dt.date | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    remittance: str | None = None
    structured_reference: str | None = None
    end_to_end_id: str | None = None
    uetr: str | None = None
    bank_transaction_code: str | None = None
    charges: Money | None = None
    instructed_amount: Money | None = None  # original amount before FX conversion
    occurrence: int = 1  # disambiguates identical lines without a bank reference (1, 2, ...)
    references: tuple[str, ...] = ()  # every other id the bank gave (InstrId, PmtInfId, mandate, extra refs)
    reversal: bool = False  # a storno / RvslInd entry: it cancels an earlier booking

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @property
    def identity(self) -> str:
        """account + bank reference, or a deterministic hash plus occurrence counter."""
        if self.bank_reference:
            return f"{self.account}|ref|{self.bank_reference}"
        basis = canonical_json({
            "date": self.booking_date.isoformat(), "amount": str(self.amount.amount),
            "currency": self.amount.currency, "name": self.counterparty_name,
            "iban": self.counterparty_iban, "text": self.remittance, "e2e": self.end_to_end_id,
        })
        digest = hashlib.sha256(basis.encode()).hexdigest()[:32]
        return f"{self.account}|hash|{digest}|{self.occurrence}"


@dataclass(frozen=True, slots=True)
class Statement:
    """A bank or factor account statement: its balances chain it to the previous and next one."""

    account: str
    currency: str
    lines: tuple[StatementLine, ...]
    statement_id: str | None = None
    format: str | None = None
    opening_balance: Money | None = None
    closing_balance: Money | None = None
    from_date: dt.date | None = None
    to_date: dt.date | None = None
    content_hash: str | None = None


@dataclass(frozen=True, slots=True)
class FactorEvent:
    """Something the factor reports: a decision, a funding, a fee, a reserve movement, a collection,
    a chargeback or a limit decision. ``event_id`` is the factor's own id (unique per factor)."""

    factor: str
    event_id: str
    kind: str
    occurred_on: dt.date
    invoice_key: str | None = None
    amount: Money | None = None
    vat: Money | None = None
    reason_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# -- canonical JSON ---------------------------------------------------------------------------------

def to_jsonable(value: Any) -> Any:
    """Plain JSON data for any model object: Money as ``{"amount": "1.00", "currency": "EUR"}``."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value  # leaves first: most of an invoice's values (same result, far fewer checks)
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError("float in model data; amounts must be Decimal")
    return value


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _money(data: dict[str, str] | None) -> Money | None:
    return None if data is None else Money.parse(data["amount"], data["currency"])


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _party(data: dict[str, Any] | None) -> Party | None:
    if data is None:
        return None
    address = data.get("address")
    return Party(
        name=data.get("name"), country=data.get("country"), vat_id=data.get("vat_id"),
        legal_id=data.get("legal_id"), legal_id_scheme=data.get("legal_id_scheme"),
        address=None if address is None else Address(
            lines=tuple(address.get("lines") or ()), city=address.get("city"),
            postal_code=address.get("postal_code"), country=address.get("country")),
        ibans=tuple(data.get("ibans") or ()), erp_id=data.get("erp_id"),
    )


def _invoice_from_dict(data: dict[str, Any]) -> Invoice:
    payment = data.get("payment") or {}
    return Invoice(
        number=data["number"], kind=InvoiceKind(data["kind"]), type_code=data["type_code"],
        issue_date=dt.date.fromisoformat(data["issue_date"]), currency=data["currency"],
        total_gross=_money(data["total_gross"]), amount_due=_money(data["amount_due"]),
        seller=_party(data["seller"]), buyer=_party(data["buyer"]),
        source=data.get("source", "file"), source_id=data.get("source_id"),
        due_date=_date(data.get("due_date")), due_date_derived=bool(data.get("due_date_derived")),
        total_net=_money(data.get("total_net")), total_tax=_money(data.get("total_tax")),
        prepaid=_money(data.get("prepaid")), rounding=_money(data.get("rounding")),
        payee=_party(data.get("payee")),
        payment=PaymentInstructions(**{k: payment.get(k) for k in ("iban", "reference", "bic", "means_code")}),
        preceding_invoices=tuple(data.get("preceding_invoices") or ()),
        order_reference=data.get("order_reference"), contract_reference=data.get("contract_reference"),
        buyer_reference=data.get("buyer_reference"), notes=tuple(data.get("notes") or ()),
        profile=data.get("profile"), syntax=data.get("syntax"), content_hash=data.get("content_hash"),
        erp_status=data.get("erp_status"), flags=tuple(data.get("flags") or ()),
    )
