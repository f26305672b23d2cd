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
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_string
from typing import Any

from connector.codes import normalise_country, normalise_currency
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


# Party and Invoice have no __slots__ so that derived values (keys, the canonical JSON of a party) can be
# cached on the instance: they are immutable, and a pull asks for the same keys a dozen times per invoice.
@dataclass(frozen=True)
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

    @functools.cached_property
    def key(self) -> str:
        """A stable identity for the party: legal id, else VAT id, else ERP id, else normalised name."""
        if self.legal_id:
            return f"{self.legal_id_scheme or 'id'}:{self.legal_id.replace(' ', '')}"
        if self.vat_id:
            return f"vat:{self.vat_id}"
        if self.erp_id:
            return f"erp:{self.erp_id}"
        return "name:" + " ".join((self.name or "").lower().split())

    @functools.cached_property
    def _canonical_text(self) -> str:
        """:func:`canonical_json` of the party, computed once (the party is immutable)."""
        return _PARTY_TEXT(self)

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


@dataclass(frozen=True)
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
        currency = normalise_currency(self.currency)
        object.__setattr__(self, "currency", currency)
        if self.kind.__class__ is not InvoiceKind:
            object.__setattr__(self, "kind", InvoiceKind(self.kind))
        for value in (self.total_gross, self.amount_due, self.total_net, self.total_tax, self.prepaid, self.rounding):
            if value is not None and value.currency != currency:  # rare: name the field (getattr is slower)
                for name in ("total_gross", "amount_due", "total_net", "total_tax", "prepaid", "rounding"):
                    value = getattr(self, name)
                    if value is not None and value.currency != currency:
                        raise ValueError(f"{name} is in {value.currency}, the invoice in {currency}")
        if not self.number or not self.number.strip():
            raise ValueError("invoice number is empty")

    @property
    def is_credit_note(self) -> bool:
        return self.kind is InvoiceKind.CREDIT_NOTE

    @functools.cached_property
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

    @functools.cached_property
    def _texts(self) -> tuple[str, str]:
        """:func:`invoice_texts`, computed once: a pull checks the texts and the store saves them."""
        return _INVOICE_TEXTS(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invoice:
        return _invoice_from_dict(data)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical business content (source bookkeeping fields excluded).

        Two reads of the same invoice give the same fingerprint; any change in amounts, dates,
        parties or references gives another one and therefore a new version in the store.
        """
        return hashlib.sha256(invoice_texts(self)[1].encode()).hexdigest()


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


# One encoder built once (json.dumps builds a new one per call): sorted keys, no spaces, UTF-8 kept.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no spaces, UTF-8 kept."""
    return canonical_text(data)


def plain_json(data: Any) -> str:
    """:func:`canonical_json` of data that is already plain JSON (dicts, lists, str, int, bool, None)."""
    return _ENCODER.encode(data)


def canonical_text(value: Any) -> str:
    """``json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, written
    directly: each dataclass gets a compiled function that emits its fields in sorted order, so no
    intermediate dicts are built and sorted. The text is the same character for character (tests/foundation
    compares the two on every kind of model object); anything unusual goes through the general path."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if value is None:
        return "null"
    if kind is Money:
        return '{"amount":"' + str(value.amount) + '","currency":' + _json_string(value.currency) + "}"
    encode = _TEXT_ENCODERS.get(kind)
    if encode is not None:
        return encode(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, enum.Enum) and type(value.value) is str:
        _TEXT_ENCODERS[kind] = _enum_text
        return _enum_text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _TEXT_ENCODERS[kind] = _compile_text(kind)
        return _TEXT_ENCODERS[kind](value)
    return _ENCODER.encode(to_jsonable(value))


def _enum_text(value: enum.Enum) -> str:
    return _json_string(value.value)


def _sequence_text(value: tuple[Any, ...] | list[Any]) -> str:
    return "[" + ",".join([canonical_text(item) for item in value]) + "]" if value else "[]"


def _date_text(value: dt.date) -> str:
    return '"' + value.isoformat() + '"'


def _party_text(party: Party) -> str:
    return party._canonical_text


_TEXT_ENCODERS: dict[type, Callable[[Any], str]] = {
    tuple: _sequence_text, list: _sequence_text, dt.date: _date_text}


def _value_expression(annotation: str, name: str) -> str:
    """A Python expression giving the JSON of field ``name`` of ``v``: the type the field is declared with
    is written inline (text, None, Money, a date, an enum, an empty tuple, a party), and any other value,
    whatever it is, goes through :func:`canonical_text`, so the guess only decides what is fast."""
    get = f"(x := v.{name})"
    if "Money" in annotation:
        return (f"('{{\"amount\":\"' + x.amount.__str__() + '\",\"currency\":' + j(x.currency) + '}}' "
                f"if {get}.__class__ is Money else 'null' if x is None else t(x))")
    if annotation.startswith("dt.date"):
        return f"('\"' + x.isoformat() + '\"' if {get}.__class__ is date else 'null' if x is None else t(x))"
    if annotation == "bool":
        return f"('true' if {get} is True else 'false' if x is False else t(x))"
    if annotation.startswith("tuple["):
        return f"('[]' if {get}.__class__ is tuple and not x else t(x))"
    if annotation in ("InvoiceKind", "Party", "Party | None"):
        fast = "j(x._value_)" if annotation == "InvoiceKind" else "x._canonical_text"
        return f"({fast} if {get}.__class__ is {annotation.split(' ')[0]} else 'null' if x is None else t(x))"
    return f"(j(x) if {get}.__class__ is str else 'null' if x is None else t(x))"


def _compile(kind: type, excluded: tuple[str, ...] = ()) -> Callable[[Any], Any]:
    """The source of ``encode(v)`` returning the JSON object of dataclass ``v`` (fields in sorted order),
    or, with ``excluded`` names, the pair (all fields, all fields but those). One f-string per text: it is
    built in one step, not by a chain of concatenations."""
    fields = sorted(dataclasses.fields(kind), key=lambda f: f.name)
    lines = [f"    p{i} = {_value_expression(str(f.type), f.name)}" for i, f in enumerate(fields)]

    def template(names: list[tuple[int, str]]) -> str:
        inner = ",".join(f"{_json_string(name)}:{{p{i}}}" for i, name in names)
        return "f" + repr("{{" + inner + "}}")

    numbered = [(i, f.name) for i, f in enumerate(fields)]
    result = template(numbered)
    if excluded:
        result += ", " + template([(i, name) for i, name in numbered if name not in excluded])
    source = "def encode(v):\n" + "".join(line + "\n" for line in lines) + f"    return {result}\n"
    namespace: dict[str, Any] = {"j": _json_string, "t": canonical_text, "Money": Money, "date": dt.date,
                                 "InvoiceKind": InvoiceKind, "Party": Party}
    exec(source, namespace)  # built from the field names and declared types of a model dataclass
    return namespace["encode"]


def _compile_text(kind: type) -> Callable[[Any], str]:
    return _compile(kind)


# Fields of an invoice that are bookkeeping of its source, not business content: left out of the fingerprint.
VOLATILE_FIELDS = ("source", "source_id", "content_hash", "erp_status")


def invoice_texts(invoice: Invoice) -> tuple[str, str]:
    """``(canonical_json(invoice), canonical JSON of its business content)``: the stored data and what its
    fingerprint hashes (the same fields minus :data:`VOLATILE_FIELDS`), from one walk of the invoice."""
    return invoice._texts


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


_INVOICE_TEXTS = _compile(Invoice, VOLATILE_FIELDS)
_PARTY_TEXT = _compile_text(Party)
_TEXT_ENCODERS[Party] = _party_text  # cached on each party: a pull repeats the same seller and debtors
