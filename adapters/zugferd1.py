"""ZUGFeRD 1.0 reader (``rsm:CrossIndustryDocument``, profiles BASIC, COMFORT, EXTENDED).

Reads: a parsed document in the ``urn:ferd:CrossIndustryDocument:invoice:1p0`` namespace.
Writes: :class:`~connector.einvoice.mapping.RawFields` through ``mappings/zugferd1.toml``. ZUGFeRD 1 predates
EN 16931; the official EN 16931 rules do not apply to it (reported as not run), the native ones do.
"""

from __future__ import annotations

from lxml import etree

from connector.einvoice.mapping import RawFields, load_mapping

SYNTAX = "zugferd1"
ROOT = "{urn:ferd:CrossIndustryDocument:invoice:1p0}CrossIndustryDocument"


def matches(root: etree._Element) -> bool:
    return root.tag == ROOT


def is_credit_note_root(root: etree._Element) -> bool:
    return False


def extract(root: etree._Element) -> RawFields:
    return load_mapping("zugferd1").extract(root)
