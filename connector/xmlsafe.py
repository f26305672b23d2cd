"""The one hardened XML parser every reader uses (UBL, CII, camt, ISO 20022 replies).

No DTD, no entity expansion, no network, no processing instructions, libxml2's depth and size limits
kept (``huge_tree=False``), a byte cap checked before parsing, a time cap checked while parsing (large
documents are fed to the parser in chunks and parsing stops once the deadline has passed), and any DOCTYPE
refused: none of the formats Cessio reads ever needs one. Failures raise :class:`~connector.errors.UnsafeDocument` or
:class:`~connector.errors.Quarantine` with the reason.
"""

from __future__ import annotations

import time

from lxml import etree

from connector.errors import Quarantine, UnsafeDocument

MAX_INVOICE_BYTES = 20 * 1024 * 1024
MAX_STATEMENT_BYTES = 200 * 1024 * 1024
MAX_PARSE_SECONDS = 10.0
_CHUNK = 1024 * 1024  # documents up to this size are parsed in one call (a few ms at most)


def hardened_parser() -> etree.XMLParser:
    """A fresh parser with every dangerous feature off (parsers are not thread-safe: one per use)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=True, collect_ids=False, remove_comments=True)


def _parse(data: bytes, max_seconds: float) -> etree._Element:
    if len(data) <= _CHUNK:
        return etree.fromstring(data, parser=hardened_parser())
    parser = hardened_parser()
    deadline = time.monotonic() + max_seconds
    for start in range(0, len(data), _CHUNK):
        parser.feed(data[start:start + _CHUNK])
        if time.monotonic() > deadline:
            raise TimeoutError(f"parsing took longer than {max_seconds:g} s")
    return parser.close()


def parse_xml(data: bytes, *, source: str | None = None, max_bytes: int = MAX_INVOICE_BYTES,
              max_seconds: float = MAX_PARSE_SECONDS) -> etree._Element:
    """Parse ``data`` safely and return the root element.

    >>> parse_xml(b"<a><b>1</b></a>").tag
    'a'
    """
    if not isinstance(data, bytes):
        raise TypeError("parse_xml takes bytes (the encoding is read from the document)")
    if len(data) > max_bytes:
        raise UnsafeDocument(f"XML of {len(data)} bytes is over the {max_bytes}-byte cap", source=source)
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
        raise UnsafeDocument("XML with a DOCTYPE or entity declaration is refused (no DTD is ever needed)",
                             source=source)
    try:
        root = _parse(data, max_seconds)
    except TimeoutError as exc:
        raise UnsafeDocument(f"XML refused by the time cap: {exc}", source=source) from None
    except etree.XMLSyntaxError as exc:
        message = str(exc)
        if "amplification" in message or "Excessive depth" in message or "huge" in message.lower():
            raise UnsafeDocument(f"XML refused by the parser's limits: {message}", source=source) from None
        raise Quarantine(f"not well-formed XML: {message}", source=source) from None
    if root is None:
        raise Quarantine("empty XML document", source=source)
    if root.getroottree().docinfo.doctype:
        raise UnsafeDocument("XML with a DOCTYPE is refused", source=source)
    return root
