"""The one hardened XML parser every reader uses (UBL, CII, camt, ISO 20022 replies).

No DTD, no entity expansion, no network, no processing instructions, libxml2's depth and size limits
kept (``huge_tree=False``), a byte cap checked before parsing, a time cap checked while parsing (large
documents are fed to the parser in chunks and parsing stops once the deadline has passed), and any DOCTYPE
refused: none of the formats Cessio reads ever needs one. Failures raise :class:`~connector.errors.UnsafeDocument` or
:class:`~connector.errors.Quarantine` with the reason.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

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


def _refuse_before_parsing(data: bytes, source: str | None, max_bytes: int) -> None:
    if not isinstance(data, bytes):
        raise TypeError("the XML readers take bytes (the encoding is read from the document)")
    if len(data) > max_bytes:
        raise UnsafeDocument(f"XML of {len(data)} bytes is over the {max_bytes}-byte cap", source=source)
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
        raise UnsafeDocument("XML with a DOCTYPE or entity declaration is refused (no DTD is ever needed)",
                             source=source)


def _syntax_error(exc: etree.XMLSyntaxError, source: str | None) -> Quarantine:
    message = str(exc)
    if "amplification" in message or "Excessive depth" in message or "huge" in message.lower():
        return UnsafeDocument(f"XML refused by the parser's limits: {message}", source=source)
    return Quarantine(f"not well-formed XML: {message}", source=source)


def iter_xml(data: bytes, tags: tuple[str, ...], *, source: str | None = None,
             max_bytes: int = MAX_STATEMENT_BYTES, max_seconds: float = MAX_PARSE_SECONDS
             ) -> Iterator[etree._Element]:
    """The elements named ``tags`` (Clark names, ``{*}Ntry`` for any namespace) as each one ends, for readers
    that stream large documents: the caller may clear an element once it has read it, so memory follows one
    element rather than the whole tree. The same hardening and caps as :func:`parse_xml`.

    >>> [e.text for e in iter_xml(b"<a><b>1</b><b>2</b></a>", ("b",))]
    ['1', '2']
    """
    _refuse_before_parsing(data, source, max_bytes)
    parsing = 0.0  # the time cap counts the parser's own time, not the caller's work between elements
    events = etree.iterparse(io.BytesIO(data), events=("end",), tag=tags, resolve_entities=False, no_network=True,
                             load_dtd=False, dtd_validation=False, huge_tree=False, remove_pis=True,
                             collect_ids=False, remove_comments=True)
    checked = False
    try:
        started = time.monotonic()
        for _, element in events:
            parsing += time.monotonic() - started
            if not checked:  # a DOCTYPE comes before the root: known at the first element
                if element.getroottree().docinfo.doctype:
                    raise UnsafeDocument("XML with a DOCTYPE is refused", source=source)
                checked = True
            if parsing > max_seconds:
                raise UnsafeDocument(f"XML refused by the time cap: parsing took longer than {max_seconds:g} s",
                                     source=source)
            yield element
            started = time.monotonic()
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, source) from None
    if not checked and events.root is not None and events.root.getroottree().docinfo.doctype:
        raise UnsafeDocument("XML with a DOCTYPE is refused", source=source)


def parse_xml(data: bytes, *, source: str | None = None, max_bytes: int = MAX_INVOICE_BYTES,
              max_seconds: float = MAX_PARSE_SECONDS) -> etree._Element:
    """Parse ``data`` safely and return the root element.

    >>> parse_xml(b"<a><b>1</b></a>").tag
    'a'
    """
    _refuse_before_parsing(data, source, max_bytes)
    try:
        root = _parse(data, max_seconds)
    except TimeoutError as exc:
        raise UnsafeDocument(f"XML refused by the time cap: {exc}", source=source) from None
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, source) from None
    if root is None:
        raise Quarantine("empty XML document", source=source)
    if root.getroottree().docinfo.doctype:
        raise UnsafeDocument("XML with a DOCTYPE is refused", source=source)
    return root
