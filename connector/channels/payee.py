"""Notified factoring: write the factor as payee (BG-10) into a UBL or CII invoice for the ERP to send.

Reads: the invoice XML bytes (UBL 2.1 Invoice/CreditNote or UN/CEFACT CII, through the hardened parser
of :mod:`connector.xmlsafe`) and the factor's identity and account. Writes: the same document with

- the payee party (UBL ``cac:PayeeParty`` / CII ``ram:PayeeTradeParty``): BT-59 name, BT-60 identifier,
  BT-61 legal registration id (SIREN ``0002`` / SIRET ``0009``), and the factor's VAT id;
- for France, the "cas d'usage n°8" type code: 393 for an invoice, 396 for a credit note (BT-3);
- the payment account (BT-84 IBAN, BT-85 account name) replaced by the factor's account, so that the
  debtor pays the factor.

Elements are inserted at their place in the schema's sequence; an existing payee is replaced, never
duplicated, so applying the function twice gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from connector.errors import Quarantine
from connector.xmlsafe import parse_xml

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"

FACTORED_TYPE = {"invoice": "393", "credit_note": "396"}
CREDIT_NOTE_CODES = {"381", "396", "261", "262", "296", "308", "420", "458", "532", "81", "83"}

# UBL Invoice/CreditNote children that follow PayeeParty in the schema's sequence
UBL_AFTER_PAYEE = ("BuyerCustomerParty", "SellerSupplierParty", "TaxRepresentativeParty", "Delivery",
                   "DeliveryTerms", "PaymentMeans", "PaymentTerms", "PrepaidPayment", "AllowanceCharge",
                   "TaxExchangeRate", "PricingExchangeRate", "PaymentExchangeRate", "PaymentAlternativeExchangeRate",
                   "TaxTotal", "WithholdingTaxTotal", "LegalMonetaryTotal", "InvoiceLine", "CreditNoteLine")
# CII ApplicableHeaderTradeSettlement children that follow PayeeTradeParty
CII_AFTER_PAYEE = ("PayerTradeParty", "TaxApplicableTradeCurrencyExchange", "SpecifiedTradeSettlementPaymentMeans",
                   "ApplicableTradeTax", "BillingSpecifiedPeriod", "SpecifiedTradeAllowanceCharge",
                   "SpecifiedLogisticsServiceCharge", "SpecifiedTradePaymentTerms",
                   "SpecifiedTradeSettlementHeaderMonetarySummation", "InvoiceReferencedDocument",
                   "ReceivableSpecifiedTradeAccountingAccount", "SpecifiedAdvancePayment")


@dataclass(frozen=True)
class FactorPayee:
    name: str
    iban: str
    legal_id: str | None = None       # SIREN (9 digits) or SIRET (14 digits) for a French factor
    legal_id_scheme: str | None = None  # "0002" SIREN, "0009" SIRET (ISO 6523 ICD)
    vat_id: str | None = None
    identifier: str | None = None     # BT-60, e.g. the factor's creditor id; defaults to the legal id
    account_name: str | None = None   # BT-85; defaults to the factor's name
    bic: str | None = None

    def __post_init__(self) -> None:
        from schwifty import IBAN
        from schwifty.exceptions import SchwiftyException

        try:
            object.__setattr__(self, "iban", IBAN(self.iban).compact)
        except SchwiftyException as exc:
            raise Quarantine(f"factor IBAN {self.iban!r} is not valid: {exc}", field="iban") from None
        if self.legal_id and self.legal_id_scheme is None:
            object.__setattr__(self, "legal_id_scheme", "0009" if len(self.legal_id) == 14 else "0002")


def _el(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
    if text is not None:
        element.text = text
    return element


def _insert_before(parent: etree._Element, new: etree._Element, following: tuple[str, ...], ns: str) -> None:
    for index, child in enumerate(parent):
        if isinstance(child.tag, str) and etree.QName(child).namespace == ns and \
                etree.QName(child).localname in following:
            parent.insert(index, new)
            return
    parent.append(new)


def _replace(parent: etree._Element, new: etree._Element, following: tuple[str, ...]) -> None:
    """Put ``new`` at its place in ``parent`` instead of any element of its tag: never a duplicate, so that
    applying :func:`write_payee` twice gives the same bytes."""
    for old in parent.findall(new.tag):
        parent.remove(old)
    _insert_before(parent, new, following, etree.QName(new).namespace)


def _payment_means(parent: etree._Element, means_tag: str, code_tag: str, iban: str,
                   following: tuple[str, ...]) -> list[etree._Element]:
    """The ``means_tag`` children of ``parent`` (Clark names); without any, one is added, a credit transfer
    (``code_tag`` 58 for a SEPA IBAN, else 30), to carry the factor's account."""
    means = parent.findall(means_tag)
    if not means:
        means_el = etree.Element(means_tag)
        etree.SubElement(means_el, code_tag).text = "58" if iban[:2] in SEPA_PREFIXES else "30"
        _insert_before(parent, means_el, following, etree.QName(means_tag).namespace)
        means = [means_el]
    return means


def _ubl(root: etree._Element, payee: FactorPayee, *, french_codes: bool) -> None:
    credit = etree.QName(root).localname == "CreditNote"
    type_tag = "CreditNoteTypeCode" if credit else "InvoiceTypeCode"
    type_code = root.find(f"{{{CBC}}}{type_tag}")
    if type_code is None:
        raise Quarantine(f"UBL document without {type_tag}", field=type_tag)
    if french_codes:
        is_credit = credit or (type_code.text or "").strip() in CREDIT_NOTE_CODES
        type_code.text = FACTORED_TYPE["credit_note" if is_credit else "invoice"]
    party = etree.Element(f"{{{CAC}}}PayeeParty")
    identifier = payee.identifier or payee.legal_id
    if identifier:
        attrs = {"schemeID": payee.legal_id_scheme} if identifier == payee.legal_id and payee.legal_id_scheme else {}
        _el(_el(party, CAC, "PartyIdentification"), CBC, "ID", identifier, **attrs)
    _el(_el(party, CAC, "PartyName"), CBC, "Name", payee.name)
    if payee.vat_id:
        tax = _el(party, CAC, "PartyTaxScheme")
        _el(tax, CBC, "CompanyID", payee.vat_id)
        _el(_el(tax, CAC, "TaxScheme"), CBC, "ID", "VAT")
    if payee.legal_id:
        _el(_el(party, CAC, "PartyLegalEntity"), CBC, "CompanyID", payee.legal_id, schemeID=payee.legal_id_scheme)
    _replace(root, party, UBL_AFTER_PAYEE)
    for means_el in _payment_means(root, f"{{{CAC}}}PaymentMeans", f"{{{CBC}}}PaymentMeansCode", payee.iban,
                                   UBL_AFTER_PAYEE[UBL_AFTER_PAYEE.index("PaymentTerms"):]):
        account = etree.Element(f"{{{CAC}}}PayeeFinancialAccount")
        _el(account, CBC, "ID", payee.iban)
        _el(account, CBC, "Name", payee.account_name or payee.name)
        if payee.bic:
            _el(_el(account, CAC, "FinancialInstitutionBranch"), CBC, "ID", payee.bic)
        # PayeeFinancialAccount follows the means code, instruction and payment ids, precedes the mandate
        _replace(means_el, account, ("PaymentMandate", "TradeFinancing"))


SEPA_PREFIXES = frozenset({"AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR",
                           "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MT", "NL", "NO", "PL", "PT", "RO",
                           "SE", "SI", "SK", "SM"})


def _cii(root: etree._Element, payee: FactorPayee, *, french_codes: bool) -> None:
    type_code = root.find(f"{{{RSM}}}ExchangedDocument/{{{RAM}}}TypeCode")
    if type_code is None:
        raise Quarantine("CII document without ExchangedDocument/TypeCode", field="TypeCode")
    if french_codes:
        is_credit = (type_code.text or "").strip() in CREDIT_NOTE_CODES
        type_code.text = FACTORED_TYPE["credit_note" if is_credit else "invoice"]
    settlement = root.find(f"{{{RSM}}}SupplyChainTradeTransaction/{{{RAM}}}ApplicableHeaderTradeSettlement")
    if settlement is None:
        raise Quarantine("CII document without ApplicableHeaderTradeSettlement",
                         field="ApplicableHeaderTradeSettlement")
    party = etree.Element(f"{{{RAM}}}PayeeTradeParty")
    if payee.identifier and payee.identifier != payee.legal_id:
        _el(party, RAM, "ID", payee.identifier)
    _el(party, RAM, "Name", payee.name)
    if payee.legal_id:
        _el(_el(party, RAM, "SpecifiedLegalOrganization"), RAM, "ID", payee.legal_id, schemeID=payee.legal_id_scheme)
    if payee.vat_id:
        _el(_el(party, RAM, "SpecifiedTaxRegistration"), RAM, "ID", payee.vat_id, schemeID="VA")
    _replace(settlement, party, CII_AFTER_PAYEE)
    for means_el in _payment_means(settlement, f"{{{RAM}}}SpecifiedTradeSettlementPaymentMeans",
                                   f"{{{RAM}}}TypeCode", payee.iban,
                                   CII_AFTER_PAYEE[CII_AFTER_PAYEE.index("ApplicableTradeTax"):]):
        account = etree.Element(f"{{{RAM}}}PayeePartyCreditorFinancialAccount")
        _el(account, RAM, "IBANID", payee.iban)
        _el(account, RAM, "AccountName", payee.account_name or payee.name)
        _replace(means_el, account, ("PayeeSpecifiedCreditorFinancialInstitution",))


def write_payee(data: bytes, payee: FactorPayee, *, french_codes: bool = True, with_vat: bool = False,
                source: str | None = None) -> bytes:
    """Return ``data`` with the factor as payee (and, with ``french_codes``, type code 393/396).

    EN 16931 has no payee VAT id (the official CII schematron rejects ``SpecifiedTaxRegistration`` there):
    ``with_vat`` adds it for the French extended profile only."""
    if not with_vat and payee.vat_id:
        from dataclasses import replace

        payee = replace(payee, vat_id=None)
    root = parse_xml(data, source=source)
    namespace = etree.QName(root).namespace
    try:
        if namespace in (UBL_INVOICE, UBL_CREDIT_NOTE):
            _ubl(root, payee, french_codes=french_codes)
        elif namespace == RSM:
            _cii(root, payee, french_codes=french_codes)
        else:
            raise Quarantine(f"not a UBL or CII invoice (root {root.tag})", source=source)
    except Quarantine as exc:
        raise exc.located(source) if source else exc from None
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
