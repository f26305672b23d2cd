"""Assemble the canonical :class:`~connector.model.Invoice`, the ``inspect`` view and the findings from
the raw texts a syntax reader extracted.

Pure logic: the caller passes the issue-independent context (default payment days). Structure errors
the invoice cannot be stored without raise :class:`~connector.errors.Quarantine` (field + reason); the
rest become findings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from connector.codes import UnknownCode, normalise_country
from connector.einvoice import normalise as norm
from connector.einvoice.findings import Finding
from connector.einvoice.mapping import RawFields
from connector.einvoice.profiles import Profile
from connector.einvoice.rules import run_native_rules
from connector.errors import Quarantine
from connector.model import Address, Invoice, InvoiceKind, Party, PaymentInstructions
from connector.money import Money, MoneyError, minor_unit_exponent

AMOUNT_FIELDS = ("total_net", "total_tax", "total_gross", "prepaid", "rounding", "amount_due")
PARTY_FIELDS = ("name", "vat_id", "legal_id", "legal_id_scheme", "country")
CREDIT_TRANSFER_CODES = frozenset({"1", "30", "31", "42", "58", None})


@dataclass
class Built:
    view: dict[str, Any]
    invoice: Invoice | None
    findings: list[Finding] = field(default_factory=list)


def _party_view(raw: RawFields, role: str) -> dict[str, str | None]:
    view = {name: raw.get(f"{role}.{name}") for name in PARTY_FIELDS}
    if view["country"]:
        with contextlib.suppress(UnknownCode):  # an invalid code is kept as stated and reported by BR-CL-14
            view["country"] = normalise_country(view["country"])
    return view


def _country(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return normalise_country(text)
    except UnknownCode:
        return None  # reported by BR-CL-14


def _address(raw: RawFields, role: str, country: str | None) -> Address | None:
    """BG-5 / BG-8 postal address (street lines, city, post code, country); ``None`` when nothing is stated."""
    lines = tuple(t for t in (raw.get(f"{role}.street"), raw.get(f"{role}.street2")) if t)
    city, postal_code = raw.get(f"{role}.city"), raw.get(f"{role}.postal_code")
    if not (lines or city or postal_code or country):
        return None
    return Address(lines=lines, city=city, postal_code=postal_code, country=country)


def _party(view: dict[str, str | None], address: Address | None = None) -> Party:
    legal_id, scheme = view["legal_id"], view["legal_id_scheme"]
    vat_id = (view["vat_id"] or "").replace(" ", "").upper()
    if not legal_id and vat_id.startswith("FR") and len(vat_id) == 13 and vat_id[4:].isdigit():
        # a French VAT number is FR + 2 check characters + the SIREN: the same company keeps one identity
        # (party key 0002:SIREN) whether a document states its SIREN or only its VAT number
        from stdnum.fr import tva

        if tva.is_valid(vat_id):
            legal_id, scheme = vat_id[4:], "0002"
    return Party(name=view["name"], vat_id=view["vat_id"], legal_id=legal_id,
                 legal_id_scheme=scheme, country=_country(view["country"]), address=address)


def _require(raw: RawFields, name: str, rule: str, what: str) -> str:
    value = raw.get(name)
    if value is None:
        raise Quarantine(f"{what} is missing", field=raw.label(name), rule=rule)
    return value


def _money(raw: RawFields, name: str, currency: str, *, negate: bool, findings: list[Finding],
           required: bool = False) -> Money | None:
    text = raw.get(name)
    if text is None:
        return None
    try:
        amount = Money.parse(text, currency)
    except MoneyError as exc:
        if required:
            raise Quarantine(str(exc), field=raw.label(name)) from None
        findings.append(Finding("error", "CESSIO-AMOUNT", str(exc), raw.label(name)))
        return None
    return -amount if negate else amount


def _identity_findings(raw: RawFields, role: str, view: dict[str, str | None]) -> list[Finding]:
    from stdnum.eu import vat as eu_vat
    from stdnum.fr import siren, siret

    out: list[Finding] = []
    scheme, legal_id = view["legal_id_scheme"], view["legal_id"]
    checker = {"0002": siren, "0009": siret}.get(scheme or "")
    if legal_id and checker is not None and not checker.is_valid(legal_id):
        out.append(Finding("warning", "CESSIO-LEGAL-ID", f"{legal_id!r} is not a valid "
                           f"{'SIREN' if scheme == '0002' else 'SIRET'} (ISO 6523 {scheme})",
                           raw.label(f"{role}.legal_id")))
    vat_id = view["vat_id"]
    if vat_id and vat_id[:2].upper() in eu_vat.MEMBER_STATES | {"EL", "XI"} and not eu_vat.is_valid(vat_id):
        out.append(Finding("warning", "CESSIO-VAT-ID", f"{vat_id!r} fails the VAT number check for its country",
                           raw.label(f"{role}.vat_id")))
    return out


@functools.lru_cache(maxsize=4096)
def _iban_problem(iban: str) -> str | None:
    """Why ``iban`` is not a valid IBAN (schwifty: country format and check digits), or ``None``."""
    from schwifty import IBAN

    try:
        IBAN(iban)
    except ValueError as exc:
        return str(exc)
    return None


def _payment_findings(raw: RawFields, iban: str | None, reference: str | None, means: str | None) -> list[Finding]:
    from stdnum import iso11649

    out: list[Finding] = []
    if iban and means in CREDIT_TRANSFER_CODES and iban[:2].isalpha():
        problem = _iban_problem(iban)
        if problem:
            out.append(Finding("warning", "CESSIO-IBAN", f"{iban!r} is not a valid IBAN: {problem}",
                               raw.label("payment.iban")))
    if reference and reference.replace(" ", "").upper().startswith("RF") and not iso11649.is_valid(reference):
        out.append(Finding("warning", "CESSIO-RF", f"{reference!r} looks like an RF creditor reference "
                           "(ISO 11649) but its check digits are wrong", raw.label("payment.reference")))
    return out


def build(raw: RawFields, *, syntax: str, profile: Profile, root_credit_note: bool = False,
          source: str | None = None, content_hash: str | None = None,
          default_payment_days: int | None = None) -> Built:
    """Raw texts -> view + canonical invoice + findings; raises :class:`Quarantine` for fatal problems."""
    findings: list[Finding] = []
    view: dict[str, Any] = {
        "number": raw.get("number"), "kind": None, "type_code": raw.get("type_code"),
        "issue_date": raw.get("issue_date"), "due_date": None, "due_date_derived": False,
        "currency": raw.get("currency"),
        **{name: raw.get(name) for name in ("total_net", "total_tax", "total_gross", "prepaid", "amount_due")},
        "seller": _party_view(raw, "seller"), "buyer": _party_view(raw, "buyer"), "payee": None,
        "payment": {"iban": raw.get("payment.iban"), "reference": raw.get("payment.reference")},
        "preceding_invoices": raw.all("preceding_invoices"),
    }
    if any(raw.get(f"payee.{n}") for n in ("name", "legal_id", "identifier", "vat_id")):
        view["payee"] = _party_view(raw, "payee")
        if view["payee"]["legal_id"] is None and raw.get("payee.identifier"):
            view["payee"]["legal_id"] = raw.get("payee.identifier")
    built = Built(view, None, findings)

    # -- structure: what an invoice cannot be stored without (fatal) ------------------------------
    number = _require(raw, "number", "BR-02", "the invoice number (BT-1)")
    issue_date = norm.parse_date(_require(raw, "issue_date", "BR-03", "the issue date (BT-2)"),
                                 field=raw.label("issue_date"))
    view["issue_date"] = issue_date.isoformat()
    type_code = raw.get("type_code")
    if type_code is None:
        type_code = "381" if root_credit_note else "380"
        findings.append(Finding("warning", "BR-04", f"no type code (BT-3); {type_code} assumed from the "
                                f"{'CreditNote' if root_credit_note else 'Invoice'} root", raw.label("type_code")))
        view["type_code"] = type_code
    if type_code not in norm.KNOWN_TYPE_CODES:
        raise Quarantine(f"type code {type_code!r} is not an EN 16931 invoice or credit note code (UNTDID 1001)",
                         field=raw.label("type_code"), rule="BR-CL-01")
    currency_text = _require(raw, "currency", "BR-05", "the invoice currency (BT-5)")
    try:
        exponent = minor_unit_exponent(currency_text)
        currency = Money.zero(currency_text).currency
    except (MoneyError, UnknownCode) as exc:
        raise Quarantine(f"currency {currency_text!r} is not usable: {exc}", field=raw.label("currency"),
                         rule="BR-CL-04") from None
    view["currency"] = currency
    gross_text = _require(raw, "total_gross", "BR-14", "the total with VAT (BT-112)")
    gross_value = norm.parse_decimal(gross_text, field=raw.label("total_gross"))
    if raw.get("amount_due") is None and syntax == "zugferd1":
        # ZUGFeRD 1 BASIC has no DuePayableAmount: the amount due is the grand total less what was prepaid
        prepaid = norm.parse_decimal(raw.get("prepaid"), field=raw.label("prepaid")) or 0
        raw.values["amount_due"] = view["amount_due"] = str(gross_value - prepaid)
        findings.append(Finding("info", "CESSIO-ZF1-DUE", f"no DuePayableAmount: amount due computed as BT-112 - "
                                f"BT-113 = {raw.values['amount_due']}", raw.label("amount_due")))
    due_text = _require(raw, "amount_due", "BR-15", "the amount due for payment (BT-115)")
    due_value = norm.parse_decimal(due_text, field=raw.label("amount_due"))
    for name in ("total_net", "total_tax", "prepaid", "rounding"):
        norm.parse_decimal(raw.get(name), field=raw.label(name))
    if not (view["seller"]["name"] or view["seller"]["vat_id"] or view["seller"]["legal_id"]):
        raise Quarantine("the seller has no name, VAT id or legal id", field=raw.label("seller.name"), rule="BR-06")

    # -- kind and sign: a credit note may be a 381 or a 380 with negative amounts ------------------
    sign_basis = gross_value if gross_value else due_value
    negative = sign_basis < 0
    credit = norm.is_credit_code(type_code) != negative
    kind = InvoiceKind.CREDIT_NOTE if credit else InvoiceKind.INVOICE
    view["kind"] = kind.value
    flags = list(norm.type_code_flags(type_code))
    if negative:
        flags.append("negative_credit_note" if norm.is_credit_code(type_code) else "negative_invoice")
        findings.append(Finding("info", "CESSIO-SIGN", f"type code {type_code} with a negative total: read as "
                                f"{'an invoice' if kind is InvoiceKind.INVOICE else 'a credit note'}",
                                raw.label("total_gross")))
    if "not_a_tax_invoice" in flags:
        findings.append(Finding("warning", "CESSIO-751", "type 751 is invoice information for accounting "
                                "purposes, not a tax invoice: never financed", raw.label("type_code")))

    # -- due date: stated, else from the terms text, else the configured default (flagged) -------
    # BT-9 is the first stated due date (EXTENDED documents add discount and instalment terms after it)
    due_dates = list(dict.fromkeys(norm.parse_date(t, field=raw.label("due_dates")) for t in raw.all("due_dates")))
    due_date = norm.parse_date(raw.get("due_date"), field=raw.label("due_date"))
    derived = False
    if len(due_dates) > 1:
        findings.append(Finding("info", "CESSIO-DUE-MULTI", "several due dates stated "
                                f"({', '.join(d.isoformat() for d in due_dates)}); the first is BT-9",
                                raw.label("due_dates")))
    terms = raw.all("payment_terms")
    if due_date is None and terms:
        found = norm.due_date_from_terms(terms, issue_date)
        if found:
            due_date, words = found
            derived = True
            findings.append(Finding("info", "CESSIO-DUE-TERMS", f"due date {due_date} derived from the payment "
                                    f"terms text ({words!r})", raw.label("payment_terms")))
    if due_date is None and default_payment_days is not None:
        due_date = issue_date + dt.timedelta(days=default_payment_days)
        derived = True
        findings.append(Finding("warning", "CESSIO-DUE-DEFAULT", f"no due date and no readable terms: "
                                f"{default_payment_days} configured days applied ({due_date})", raw.label("due_date")))
    # the CEN UBL binding applies BR-CO-25 to invoices only: a credit note's "amount due" is owed to the buyer
    if not due_dates and not terms and due_value > 0 and kind is InvoiceKind.INVOICE:
        findings.append(Finding("error" if profile.en16931_complete else "warning", "BR-CO-25",
                                "an amount is due but neither a due date (BT-9) nor payment terms (BT-20) are "
                                "stated", raw.label("due_date")))
    if due_date is not None and due_date < issue_date:
        findings.append(Finding("warning", "CESSIO-DUE-BEFORE-ISSUE", f"due date {due_date} is before the issue "
                                f"date {issue_date}", raw.label("due_date")))
    view["due_date"] = due_date.isoformat() if due_date else None
    view["due_date_derived"] = derived

    # -- business rules -------------------------------------------------------------------------
    findings += run_native_rules(raw, profile, exponent)
    if not (view["buyer"]["name"]):
        findings.append(Finding("error", "BR-07", "the buyer name (BT-44) is missing", raw.label("buyer.name")))
    if not (view["buyer"]["legal_id"] or view["buyer"]["vat_id"]):
        findings.append(Finding("warning", "CESSIO-BUYER-ID", "the buyer has neither a legal id (BT-47) nor a "
                                "VAT id (BT-48): a factor cannot identify the debtor", raw.label("buyer.legal_id")))
    for role in ("seller", "buyer"):
        findings += _identity_findings(raw, role, view[role])
    iban, reference = raw.get("payment.iban"), raw.get("payment.reference")
    findings += _payment_findings(raw, iban, reference, raw.get("payment.means_code"))

    seller = _party(view["seller"], _address(raw, "seller", _country(view["seller"]["country"])))
    buyer = _party(view["buyer"], _address(raw, "buyer", _country(view["buyer"]["country"])))
    payee = None
    if view["payee"] is not None:
        payee = _party(view["payee"])
        if payee.key != seller.key and (payee.name or "").casefold() != (seller.name or "").casefold():
            flags.append("payee_not_seller")
            findings.append(Finding("warning", "CESSIO-PAYEE", f"the payee ({payee.name or payee.key}) is not the "
                                    "seller: the invoice is already assigned (BG-10)", raw.label("payee.name")))
    if profile.name in ("UNKNOWN", "UBL-GENERIC"):
        findings.append(Finding("warning", "CESSIO-PROFILE", f"specification identifier (BT-24) "
                                f"{profile.declared!r} is not a known EN 16931 profile", raw.label("profile")))
    elif profile.legacy:
        findings.append(Finding("info", "CESSIO-PROFILE-LEGACY", f"legacy BT-24 form {profile.declared!r}",
                                raw.label("profile")))
    if profile.is_zugferd1 and syntax == "cii":
        findings.append(Finding("warning", "CESSIO-PROFILE-ZF1", "a CII D16B document declaring a ZUGFeRD 1 "
                                "guideline id: read as EN 16931", raw.label("profile")))

    if any(f.level == "error" for f in findings):
        flags.append("validation_errors")
    amounts = {name: _money(raw, name, currency, negate=negative, findings=findings,
                            required=name in ("total_gross", "amount_due")) for name in AMOUNT_FIELDS}
    built.invoice = Invoice(
        number=number.strip(), kind=kind, type_code=type_code, issue_date=issue_date, currency=currency,
        total_gross=amounts["total_gross"], amount_due=amounts["amount_due"], seller=seller, buyer=buyer,
        source="file", source_id=source, due_date=due_date, due_date_derived=derived,
        total_net=amounts["total_net"], total_tax=amounts["total_tax"], prepaid=amounts["prepaid"],
        rounding=amounts["rounding"], payee=payee,
        payment=PaymentInstructions(iban=(iban or "").replace(" ", "").upper() or None, reference=reference,
                                    bic=raw.get("payment.bic"), means_code=raw.get("payment.means_code")),
        preceding_invoices=tuple(raw.all("preceding_invoices")), order_reference=raw.get("order_reference"),
        contract_reference=raw.get("contract_reference"), buyer_reference=raw.get("buyer_reference"),
        notes=tuple(raw.all("notes")), profile=profile.name, syntax=syntax, content_hash=content_hash,
        flags=tuple(dict.fromkeys(flags)),
    )
    return built
