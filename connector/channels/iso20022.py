"""ISO 20022 invoice assignment: write ``tsin.006`` InvoiceAssignmentRequest, read ``tsin.007`` status,
``tsin.008`` notification and ``tsin.013`` acknowledgement replies into factor events.

Reads: a batch's invoices (canonical :class:`~connector.model.Invoice`) to write; reply XML bytes to read
(always through :mod:`connector.xmlsafe`). Writes: tsin.006 XML bytes (UTF-8) built with the xsdata
bindings that ``python-iso20022`` generates from the official ISO 20022 XSDs, and
:class:`~connector.model.FactorEvent` objects.

Schema validation: no PyPI package ships the tsin XSD files themselves, so :func:`validate_message`
checks a document against the schema as those generated bindings carry it: every element known and
in sequence order, required elements present, min/max occurrences, choice groups (one branch), text
facets (length, pattern, total/fraction digits, minimum), code lists (enumerations) and the
IDREF-style party references pointing at a declared party.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import importlib
import re
import typing
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDate

from connector.errors import Quarantine
from connector.model import FactorEvent, Invoice
from connector.money import Money
from connector.xmlsafe import MAX_STATEMENT_BYTES, parse_xml

MESSAGES = {  # message → (binding module, root class, root element)
    "tsin.006.001.01": ("tsin_006_001_01", "Tsin00600101", "InvcAssgnmtReq"),
    "tsin.007.001.01": ("tsin_007_001_01", "Tsin00700101", "InvcAssgnmtSts"),
    "tsin.008.001.01": ("tsin_008_001_01", "Tsin00800101", "InvcAssgnmtNtfctn"),
    "tsin.013.001.01": ("tsin_013_001_01", "Tsin01300101", "InvcAssgnmtAck"),
}
NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
# fields whose value names a party declared in the letter header (xs:IDREF in the XSD), by the type that
# holds them (elsewhere, e.g. in GenericOrganisationIdentification1, "Issr" is plain text)
PARTY_REFERENCES = {
    "FinancingItemList1": frozenset({"Assgne", "Assgnr"}),
    "FinancialItemParameters1": frozenset({"Issr", "Rcpt", "Buyr", "Sellr", "SellrFinAgt", "BuyrFinAgt"}),
    "FinancingNotificationParties1": frozenset({"NtifngPty", "NtfctnRcvr", "AckRcvr"}),
}


def _bindings(message: str):
    module, _, _ = MESSAGES[message]
    return importlib.import_module(f"python_iso20022.tsin.{module}.models")


@functools.cache
def _document_class(message: str) -> type:
    """The generated root class names its element after itself; the XSD's root element is ``Document``."""
    _, root_name, _ = MESSAGES[message]
    base = getattr(_bindings(message), root_name)
    meta = type("Meta", (), {"name": "Document", "namespace": NS_PREFIX + message})
    return dataclasses.dataclass(type("Document", (base,), {"Meta": meta, "__module__": base.__module__}))


# -- writing tsin.006 ------------------------------------------------------------------------------------

def _party(m, suffix: str, ref: str, name: str | None, country: str | None, legal_id: str | None,
           scheme: str | None, vat_id: str | None):
    """A ``QualifiedPartyIdentification1`` with an id other elements refer to."""
    cls = lambda n: getattr(m, n + suffix)  # noqa: E731 - the bindings repeat the message in each class name
    others = []
    if legal_id:
        code = {"0002": "SREN", "0009": "SRET"}.get(scheme or "")
        others.append(cls("GenericOrganisationIdentification1")(
            id=legal_id, schme_nm=cls("OrganisationIdentificationSchemeName1Choice")(
                cd=code) if code else cls("OrganisationIdentificationSchemeName1Choice")(prtry=scheme or "LEGAL")))
    trade = cls("TradeParty1")(
        pty_id=cls("PartyIdentification45")(
            id=cls("Party8Choice")(org_id=cls("OrganisationIdentification6")(othr=others)) if others else None,
            nm=(name or "")[:35] or None, ctry_of_res=country),
        tax_pty=[cls("TaxParty3")(tax_id=vat_id)] if vat_id else [])
    return cls("QualifiedPartyIdentification1")(
        id=ref, pty=[cls("SingleQualifiedPartyIdentification1")(base_pty=trade)])


def build_tsin006(invoices: Sequence[Invoice], *, message_id: str, batch_id: str, issue_date: dt.date,
                  assignor_name: str, assignor_legal_id: str | None, factor_name: str,
                  factor_id: str | None = None) -> bytes:
    """The InvoiceAssignmentRequest for one batch: one assignment list, one financial item per document.

    Invoices are ``DBIT``, credit notes ``CRDT``; ``ItmCnt``/``CtrlSum`` count and add the documents'
    total amounts (unsigned, as ISO 20022 control sums are), at list and message level.
    """
    if not invoices:
        raise Quarantine("a tsin.006 needs at least one invoice", source=batch_id)
    m = _bindings("tsin.006.001.01")
    suffix = "Tsin00600101"
    cls = lambda n: getattr(m, n + suffix)  # noqa: E731
    amount = lambda money: cls("ActiveCurrencyAndAmount")(value=money.amount, ccy=money.currency)  # noqa: E731
    currencies = {inv.currency for inv in invoices}
    if len(currencies) != 1:
        raise Quarantine(f"one tsin.006 batch holds one currency, not {sorted(currencies)}", source=batch_id)
    seller = invoices[0].seller
    buyers: dict[str, str] = {}
    items = []
    for invoice in invoices:
        where = f"{batch_id} {invoice.number}"
        if invoice.due_date is None:
            raise Quarantine("a due date is required (TtlAmt/PmtDueDt)", source=where, field="due_date")
        ref = buyers.setdefault(invoice.buyer.key, f"BUYER-{len(buyers) + 1}")
        tax = invoice.total_tax if invoice.total_tax is not None else Money.zero(invoice.currency)
        taxable = invoice.total_net if invoice.total_net is not None else invoice.total_gross - tax
        items.append(cls("FinancialItem1")(
            itm_cntxt=cls("FinancialItemParameters1")(
                idr=invoice.number[:35], isse_dt=XmlDate.from_date(invoice.issue_date),
                rltd_itm=list(invoice.preceding_invoices[:1]), buyr=ref, sellr="ASSIGNOR",
                ccy=invoice.currency),
            cdt_dbt_ind=m.CreditDebitCode.CRDT if invoice.is_credit_note else m.CreditDebitCode.DBIT,
            ttl_amt=cls("InvoiceTotals1")(
                ttl_taxbl_amt=amount(taxable), ttl_tax_amt=amount(tax), ttl_invc_amt=amount(invoice.total_gross),
                pmt_due_dt=XmlDate.from_date(invoice.due_date)),
            due_amt=amount(invoice.amount_due)))
    control = sum((inv.total_gross.amount for inv in invoices), Decimal(0))
    parties_by_key = {inv.buyer.key: inv.buyer for inv in invoices}
    others = [_party(m, suffix, ref, parties_by_key[key].name, parties_by_key[key].country,
                     parties_by_key[key].legal_id, parties_by_key[key].legal_id_scheme, parties_by_key[key].vat_id)
              for key, ref in buyers.items()]
    document = _document_class("tsin.006.001.01")(invc_assgnmt_req=cls("InvoiceAssignmentRequestV01")(
        hdr=cls("BusinessLetter1")(
            lttr_idr=cls("QualifiedDocumentInformation1")(id=message_id[:35], elctrnc_orgnl=True),
            dt=XmlDate.from_date(issue_date),
            orgtr=_party(m, suffix, "ASSIGNOR", assignor_name, seller.country, assignor_legal_id or seller.legal_id,
                         seller.legal_id_scheme, seller.vat_id),
            pmry_rcpt=[_party(m, suffix, "ASSIGNEE", factor_name, None, factor_id, None, None)],
            # the user authorising the letter: the assignor itself (the schema requires one)
            authstn_usr=[_party(m, suffix, "AUTHORISER", assignor_name, seller.country, None, None, None)],
            othr_pty=others),
        assgnmt_list=[cls("FinancingItemList1")(
            idr=batch_id[:35], isse_dt=XmlDate.from_date(issue_date), assgne="ASSIGNEE", assgnr="ASSIGNOR",
            fin_itm=items, itm_cnt=str(len(items)), ctrl_sum=control)],
        assgnmt_cnt="1", itm_cnt=str(len(items)), ctrl_sum=control))
    serializer = XmlSerializer(config=SerializerConfig(indent="  ", xml_declaration=True, encoding="UTF-8"))
    text = serializer.render(document, ns_map={None: NS_PREFIX + "tsin.006.001.01"})
    data = text.encode("utf-8")
    validate_message(data, "tsin.006.001.01", source=batch_id)
    return data


# -- validation against the generated bindings ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Slot:
    name: str
    xml_name: str
    kind: str  # Element | Attribute | Text
    target: Any
    is_list: bool
    meta: dict


@functools.cache
def _slots(cls: type) -> tuple[_Slot, ...]:
    hints = typing.get_type_hints(cls)
    slots = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        origin = typing.get_origin(hint)
        is_list = origin is list
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        target = args[0]
        kind = f.metadata.get("type", "Text" if "name" not in f.metadata else "Element")
        slots.append(_Slot(f.name, f.metadata.get("name", f.name), kind, target, is_list, dict(f.metadata)))
    return tuple(slots)


def _check_text(slot: _Slot, text: str, path: str, problems: list[str]) -> None:
    meta, target = slot.meta, slot.target
    if isinstance(target, type) and issubclass(target, enum.Enum):
        if text not in {e.value for e in target}:
            problems.append(f"{path}: {text!r} is not in the code list {target.__name__}")
        return
    if target is XmlDate:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            problems.append(f"{path}: {text!r} is not an ISO date")
        return
    if target is bool:
        if text not in ("true", "false", "1", "0"):
            problems.append(f"{path}: {text!r} is not a boolean")
        return
    if target is Decimal:
        try:
            number = Decimal(text)
        except InvalidOperation:
            problems.append(f"{path}: {text!r} is not a decimal")
            return
        _, digits, exponent = number.as_tuple()
        fraction = max(0, -exponent)
        if "fraction_digits" in meta and fraction > meta["fraction_digits"]:
            problems.append(f"{path}: {text} has more than {meta['fraction_digits']} decimals")
        if "total_digits" in meta and len(digits) > meta["total_digits"]:
            problems.append(f"{path}: {text} has more than {meta['total_digits']} digits")
        if "min_inclusive" in meta and number < meta["min_inclusive"]:
            problems.append(f"{path}: {text} is below {meta['min_inclusive']}")
        return
    if "min_length" in meta and len(text) < meta["min_length"]:
        problems.append(f"{path}: shorter than {meta['min_length']} characters")
    if "max_length" in meta and len(text) > meta["max_length"]:
        problems.append(f"{path}: {text!r} is longer than {meta['max_length']} characters")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], text):
        problems.append(f"{path}: {text!r} does not match {meta['pattern']}")


def _walk(element: etree._Element, cls: type, namespace: str, path: str, problems: list[str],
          ids: list[str], refs: list[tuple[str, str]]) -> None:
    slots = _slots(cls)
    type_name = re.sub(r"Tsin\d+$", "", cls.__name__)
    references = PARTY_REFERENCES.get(type_name, frozenset())
    by_tag = {f"{{{namespace}}}{s.xml_name}": (i, s) for i, s in enumerate(slots) if s.kind == "Element"}
    for slot in slots:
        if slot.kind == "Attribute":
            value = element.get(slot.xml_name)
            if value is None:
                if slot.meta.get("required"):
                    problems.append(f"{path}/@{slot.xml_name}: required attribute missing")
            else:
                _check_text(slot, value, f"{path}/@{slot.xml_name}", problems)
        elif slot.kind == "Text":
            _check_text(slot, (element.text or "").strip(), path, problems)
    counts: dict[str, int] = {}
    last = -1
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in by_tag:
            problems.append(f"{path}: unexpected element {etree.QName(child).localname}")
            continue
        index, slot = by_tag[child.tag]
        if index < last:
            problems.append(f"{path}/{slot.xml_name}: out of sequence order")
        last = index
        counts[slot.name] = counts.get(slot.name, 0) + 1
        child_path = f"{path}/{slot.xml_name}"
        if dataclasses.is_dataclass(slot.target):
            _walk(child, slot.target, namespace, child_path, problems, ids, refs)
        else:
            text = (child.text or "").strip()
            _check_text(slot, text, child_path, problems)
            if slot.xml_name in references:
                refs.append((child_path, text))
        if slot.xml_name == "Id" and type_name == "QualifiedPartyIdentification1":
            ids.append((child.text or "").strip())
    for slot in slots:
        if slot.kind != "Element":
            continue
        n = counts.get(slot.name, 0)
        low = slot.meta.get("min_occurs", 1 if slot.meta.get("required") else 0)
        high = slot.meta.get("max_occurs", None if slot.is_list else 1)
        if n < low:
            problems.append(f"{path}/{slot.xml_name}: required element missing" if low == 1
                            else f"{path}/{slot.xml_name}: {n} found, at least {low} required")
        if high is not None and n > high:
            problems.append(f"{path}/{slot.xml_name}: {n} found, at most {high} allowed")
    if "Choice" in cls.__name__:
        present = [s.xml_name for s in slots if counts.get(s.name)]
        if len(present) != 1:
            problems.append(f"{path}: a choice needs exactly one of {[s.xml_name for s in slots]}, got {present}")


def validation_problems(data: bytes, message: str, *, source: str | None = None) -> list[str]:
    """Every schema problem of ``data`` as a ``message`` document (empty when it is valid)."""
    _, root_name, _ = MESSAGES[message]
    namespace = NS_PREFIX + message
    root = parse_xml(data, source=source, max_bytes=MAX_STATEMENT_BYTES)
    if root.tag != f"{{{namespace}}}Document":
        return [f"root element is {root.tag}, expected {{{namespace}}}Document"]
    problems: list[str] = []
    ids: list[str] = []
    refs: list[tuple[str, str]] = []
    _walk(root, getattr(_bindings(message), root_name), namespace, "/Document", problems, ids, refs)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"party ids declared more than once (xs:ID must be unique): {duplicates}")
    for path, ref in refs:
        if ref not in ids:
            problems.append(f"{path}: refers to party {ref!r} that the letter does not declare")
    return problems


def validate_message(data: bytes, message: str, *, source: str | None = None) -> None:
    problems = validation_problems(data, message, source=source)
    if problems:
        raise Quarantine(f"not a valid {message}: " + "; ".join(problems[:10]), source=source, rule=message)


# -- reading replies ------------------------------------------------------------------------------------

def detect_message(data: bytes, *, source: str | None = None) -> str:
    root = parse_xml(data, source=source, max_bytes=MAX_STATEMENT_BYTES)
    namespace = etree.QName(root).namespace or ""
    message = namespace.removeprefix(NS_PREFIX)
    if message not in MESSAGES:
        raise Quarantine(f"not a tsin message Cessio reads (namespace {namespace!r})", source=source)
    return message


def _text(element: etree._Element | None, path: str, ns: dict[str, str]) -> str | None:
    if element is None:
        return None
    found = element.find(path, ns)
    return None if found is None or found.text is None else found.text.strip()


def _money(element: etree._Element | None) -> Money | None:
    if element is None or element.text is None:
        return None
    return Money.of(Decimal(element.text.strip()), element.get("Ccy"))


def read_reply(data: bytes, *, factor: str, source: str = "reply") -> list[FactorEvent]:
    """Read a tsin.007 / tsin.008 / tsin.013 into factor events (validated first, quarantined if not).

    tsin.007: the list's or item's ``VldtnStsInf/Sts`` gives ``acknowledged`` (RCCF) or ``rejected``
    (RCER, reason ``StsRsn``); ``FincgSts/InvcFincgDtls/InvcFincgRslt/FincgReqSts`` gives ``financed``
    (FNCD, with the accepted invoice amount and the advance in ``detail["financed_amount"]``), ``pending``
    (PDNG) or ``declined`` (NTFD, reason). tsin.008 gives
    ``notified`` per item, tsin.013 ``assignment_acknowledged`` per item. Events carry the document
    number in ``detail["number"]``; :func:`resolve_invoice_keys` links them to invoices.
    """
    message = detect_message(data, source=source)
    validate_message(data, message, source=source)
    ns = {"t": NS_PREFIX + message}
    root = parse_xml(data, source=source, max_bytes=MAX_STATEMENT_BYTES)
    body = root[0]
    letter = _text(body, "t:Hdr/t:LttrIdr/t:Id", ns) or "?"
    letter_date = dt.date.fromisoformat(_text(body, "t:Hdr/t:Dt", ns))
    list_tag = {"tsin.007.001.01": "AssgnmtList", "tsin.008.001.01": "NtfctnList",
                "tsin.013.001.01": "PmtStsList"}[message]
    events: list[FactorEvent] = []

    def add(kind: str, number: str | None, list_id: str, *, amount: Money | None = None,
            reason: str | None = None, extra: dict[str, Any] | None = None) -> None:
        events.append(FactorEvent(
            factor=factor, event_id=f"{message[:8]}:{letter}:{list_id}:{number or '-'}:{kind}", kind=kind,
            occurred_on=letter_date, amount=amount, reason_code=reason,
            detail={"number": number, "batch": list_id, "message": message, "letter": letter, **(extra or {})}))

    for item_list in body.findall(f"t:{list_tag}", ns):
        list_id = _text(item_list, "t:Idr", ns) or "?"
        list_status = _text(item_list, "t:VldtnStsInf/t:Sts", ns)
        list_reason = _text(item_list, "t:VldtnStsInf/t:StsRsn/t:Cd", ns) or _text(
            item_list, "t:VldtnStsInf/t:StsRsn/t:Prtry", ns)
        for item in item_list.findall("t:FinItm", ns):
            number = _text(item, "t:ItmCntxt/t:Idr", ns)
            if message == "tsin.008.001.01":
                add("notified", number, list_id)
                continue
            if message == "tsin.013.001.01":
                add("assignment_acknowledged", number, list_id)
                continue
            status = _text(item, "t:VldtnStsInf/t:Sts", ns) or list_status
            reason = (_text(item, "t:VldtnStsInf/t:StsRsn/t:Cd", ns)
                      or _text(item, "t:VldtnStsInf/t:StsRsn/t:Prtry", ns) or list_reason)
            if status == "RCCF":
                add("acknowledged", number, list_id)
            elif status == "RCER":
                add("rejected", number, list_id, reason=reason)
        if message != "tsin.007.001.01":
            continue
        for details in item_list.findall("t:FincgSts/t:InvcFincgDtls", ns):
            number = _text(details, "t:OrgnlInvcInf/t:DocNb", ns)
            result = details.find("t:InvcFincgRslt", ns)
            status = _text(result, "t:FincgReqSts", ns)
            reason = _text(result, "t:StsRsn/t:Cd", ns) or _text(result, "t:StsRsn/t:Prtry", ns)
            financed = _money(result.find("t:FincdAmt/t:Amt", ns)) if result is not None else None
            accepted = _money(details.find("t:OrgnlInvcInf/t:TtlInvcAmt", ns))
            kind = {"FNCD": "financed", "PDNG": "pending", "NTFD": "declined"}.get(status or "")
            if kind == "financed":  # the accepted document's amount; the advance paid on it in detail
                add(kind, number, list_id, amount=accepted, reason=reason,
                    extra={"financed_amount": str(financed.amount) if financed is not None else None})
            elif kind:
                add(kind, number, list_id, reason=reason)
    return events


def resolve_invoice_keys(store: Any, events: Iterable[FactorEvent]) -> list[FactorEvent]:
    """Link each event to its invoice by document number (left unlinked when the number is ambiguous)."""
    return [dataclasses.replace(e, invoice_key=e.invoice_key or store.channel_invoice_key_by_number(
        e.detail.get("number") or "")) for e in events]
