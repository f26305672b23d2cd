"""UBL 2.1 Invoice and CreditNote reader (Peppol BIS Billing 3.0, XRechnung UBL, any CustomizationID).

Reads: a parsed UBL document (root ``Invoice`` or ``CreditNote`` in the OASIS UBL 2.1 namespaces).
Writes: :class:`~connector.einvoice.mapping.RawFields` through ``mappings/ubl.toml``.
"""

from __future__ import annotations

from lxml import etree

from connector.einvoice.mapping import RawFields, load_mapping

SYNTAX = "ubl"
INVOICE_ROOT = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"
CREDIT_NOTE_ROOT = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"


def matches(root: etree._Element) -> bool:
    return root.tag in (INVOICE_ROOT, CREDIT_NOTE_ROOT)


def is_credit_note_root(root: etree._Element) -> bool:
    return root.tag == CREDIT_NOTE_ROOT


def extract(root: etree._Element) -> RawFields:
    return load_mapping("ubl").extract(root)
