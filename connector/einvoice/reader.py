"""Read one e-invoice document of any supported syntax and container, detected by content.

Reads: bytes (XML or PDF). Writes: a :class:`Reading` (syntax, container, profile, inspect view,
canonical invoice, findings) or raises a :class:`~connector.errors.Quarantine` subclass
(:class:`~connector.errors.UnsupportedDocument`, :class:`~connector.errors.UnsafeDocument`) naming the
field and the reason. Never looks at the file name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from adapters import cii, facturx_pdf, ubl, zugferd1
from connector.einvoice.build import build
from connector.einvoice.findings import Finding
from connector.einvoice.profiles import normalise_profile
from connector.errors import Quarantine, UnsupportedDocument
from connector.model import Invoice
from connector.xmlsafe import parse_xml

READERS = (ubl, cii, zugferd1)

# Roots we recognise only to refuse them with a name a person understands.
_KNOWN_OTHER_ROOTS = {
    "FatturaElettronica": "FatturaPA (the Italian national e-invoice format, not an EN 16931 syntax)",
    "SCRDMCCBDACIOMessageStructure": "an Order-X purchase order",
    "CrossIndustryOrder": "a CII purchase order",
    "Order": "a UBL purchase order",
    "OrderResponse": "a UBL order response",
    "DespatchAdvice": "a UBL despatch advice",
    "ApplicationResponse": "a UBL application response",
    "Document": "an ISO 20022 message (bank statement or payment file): use `cessio statements import`",
    "CBFBUY": "a pre-release ZUGFeRD document (CBFBUY)",
    "testSet": "a VEFA validator rule test set (test fragments, not an invoice)",
    "html": "an HTML page",
}


@dataclass
class Reading:
    syntax: str
    container: str
    profile: str
    view: dict[str, Any]
    invoice: Invoice | None
    findings: list[Finding] = field(default_factory=list)
    attachment: str | None = None
    root: etree._Element | None = None
    raw_profile: str | None = None  # BT-24 as the document states it


def _describe(root: etree._Element) -> str:
    qname = etree.QName(root)
    namespace = qname.namespace or "no namespace"
    known = _KNOWN_OTHER_ROOTS.get(qname.localname)
    if known:
        return f"{known} (root {qname.localname})"
    if qname.localname == "CrossIndustryInvoice" or qname.localname == "CrossIndustryDocument":
        return f"a {qname.localname} in namespace {namespace}, which is neither CII D16B nor ZUGFeRD 1"
    if "CrossIndustry" in namespace:
        return f"an XML document with root {qname.localname} in the CII namespace (not an invoice root)"
    return f"an XML document with root {qname.localname} ({namespace})"


def detect(root: etree._Element):
    """The reader module for this root, or :class:`UnsupportedDocument` naming what it is."""
    for reader in READERS:
        if reader.matches(root):
            return reader
    raise UnsupportedDocument(_describe(root))


def read_document(data: bytes, *, source: str | None = None, default_payment_days: int | None = None,
                  official: bool = False, content_hash: str | None = None) -> Reading:
    """Detect, parse, map and validate one document (``content_hash``: its SHA-256 when the caller has it)."""
    try:
        container, attachment, findings = "xml", None, []
        xml = data
        if facturx_pdf.is_pdf(data):
            container = "pdf"
            embedded = facturx_pdf.extract_invoice_xml(data, source=source)
            xml, attachment = embedded.xml, embedded.name
            if not embedded.standard_name:
                findings.append(Finding("warning", "CESSIO-PDF-NAME", f"invoice XML found by content in attachment "
                                        f"{embedded.name!r}, not under a standard Factur-X/ZUGFeRD name",
                                        "PDF attachments"))
            if embedded.ignored_invoices:
                findings.append(Finding("warning", "CESSIO-PDF-MULTI", f"the PDF also embeds "
                                        f"{', '.join(embedded.ignored_invoices)} with other content; "
                                        f"{embedded.name} was read (precedence of the standard names)",
                                        "PDF attachments"))
        elif not data.strip():
            raise Quarantine("empty file")
        root = parse_xml(xml, source=source)
        reader = detect(root)
        raw = reader.extract(root)
        profile = normalise_profile(raw.get("profile"), syntax=reader.SYNTAX)
        built = build(raw, syntax=reader.SYNTAX, profile=profile, root_credit_note=reader.is_credit_note_root(root),
                      source=source, content_hash=content_hash or hashlib.sha256(data).hexdigest(),
                      default_payment_days=default_payment_days)
    except Quarantine as exc:
        raise exc.located(source) if source else exc from None
    except (ValueError, ArithmeticError) as exc:  # a value the canonical model refuses
        raise Quarantine(f"cannot map the document: {exc}", source=source) from None
    reading = Reading(reader.SYNTAX, container, profile.name, built.view, built.invoice,
                      findings + built.findings, attachment, root, raw.get("profile"))
    if official:
        from connector.einvoice.official import run_official, run_schema

        reading.findings += run_schema(root, syntax=reader.SYNTAX, profile=profile)
        reading.findings += run_official(root, syntax=reader.SYNTAX, profile=profile).findings
    return reading
