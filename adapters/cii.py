"""UN/CEFACT CII D16B reader: EN 16931 CII, Factur-X / ZUGFeRD 2.x (MINIMUM, BASIC WL, BASIC, EN16931,
EXTENDED) and XRechnung CII.

Reads: a parsed ``rsm:CrossIndustryInvoice`` in the ``...:CrossIndustryInvoice:100`` namespace.
Writes: :class:`~connector.einvoice.mapping.RawFields` through ``mappings/cii.toml``.
"""

from __future__ import annotations

from lxml import etree

from connector.einvoice.mapping import RawFields, load_mapping

SYNTAX = "cii"
ROOT = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"


def matches(root: etree._Element) -> bool:
    return root.tag == ROOT


def is_credit_note_root(root: etree._Element) -> bool:
    return False  # CII has one root; the type code says it


def extract(root: etree._Element) -> RawFields:
    return load_mapping("cii").extract(root)
