"""Factur-X / ZUGFeRD / XRechnung-in-PDF container reader: the embedded invoice XML out of a PDF/A-3.

Reads: PDF bytes (under :data:`MAX_PDF_BYTES`). Writes: the bytes of the one embedded invoice XML and its
attachment name, to be re-parsed by the hardened XML parser like any other XML. pypdf runs with lowered
decompression caps so that a PDF bomb stops at a few tens of MB. The attachment is chosen by its standard
name, in the precedence factur-x.xml > xrechnung.xml > zugferd-invoice.xml > ZUGFeRD-invoice.xml (a PDF
carrying a ZUGFeRD 1 and a Factur-X XML is read from the Factur-X one, and the other is reported),
otherwise by content (the name is then reported); a PDF without an invoice XML, or with two different
ones under non-standard names, is refused.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from connector.errors import Quarantine, UnsafeDocument, UnsupportedDocument
from connector.xmlsafe import MAX_INVOICE_BYTES

log = logging.getLogger(__name__)
logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every repaired xref; we report errors only

MAX_PDF_BYTES = 40 * 1024 * 1024
MAX_DECODED_STREAM_BYTES = 32 * 1024 * 1024
STANDARD_NAMES = ("factur-x.xml", "xrechnung.xml", "zugferd-invoice.xml", "ZUGFeRD-invoice.xml")  # by precedence
NOT_INVOICE_NAMES = {"order-x.xml": "an Order-X purchase order", "cida.xml": "a CIDA (cross industry despatch advice)"}


@dataclass(frozen=True)
class Embedded:
    name: str
    xml: bytes
    standard_name: bool
    other_attachments: tuple[str, ...] = ()
    ignored_invoices: tuple[str, ...] = ()  # other standard-named invoice XMLs, lower in precedence


def is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def _caps() -> dict[str, int]:
    cap = MAX_DECODED_STREAM_BYTES
    return {"zlib_maximum_output_length": cap, "lzw_maximum_output_length": cap,
            "run_length_maximum_output_length": cap, "array_based_stream_maximum_output_length": cap,
            "maximum_declared_stream_length": cap, "brotli_maximum_output_length": cap,
            "jbig2_maximum_output_length": cap, "image_maximum_buffer_size": cap,
            "stream_decoding_work_maximum_length": 4 * cap}


def list_attachments(data: bytes, *, source: str | None = None) -> dict[str, list[bytes]]:
    """Every embedded file of the PDF by name (pypdf, capped); pypdf errors become Cessio errors."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PyPdfError

    if len(data) > MAX_PDF_BYTES:
        raise UnsafeDocument(f"PDF of {len(data)} bytes is over the {MAX_PDF_BYTES}-byte cap", source=source)
    try:
        with apply_configuration(**_caps()):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise Quarantine("encrypted PDF: a Factur-X / ZUGFeRD PDF/A-3 cannot be encrypted", source=source)
            return {str(name): list(contents) for name, contents in reader.attachments.items()}
    except LimitReachedError as exc:
        raise UnsafeDocument(f"PDF refused by the decompression caps (a PDF bomb?): {exc}", source=source) from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            OSError, AssertionError) as exc:
        raise Quarantine(f"unreadable PDF: {type(exc).__name__}: {exc}", source=source) from None


def _looks_like_invoice(xml: bytes) -> bool:
    head = xml[:4096]
    return any(marker in head for marker in (b"CrossIndustryInvoice:100", b"CrossIndustryDocument:invoice:1p0",
                                             b"ubl:schema:xsd:Invoice-2", b"ubl:schema:xsd:CreditNote-2"))


def extract_invoice_xml(data: bytes, *, source: str | None = None) -> Embedded:
    """The embedded invoice XML of a Factur-X / ZUGFeRD / XRechnung PDF."""
    attachments = list_attachments(data, source=source)
    names = tuple(attachments)
    candidates: list[tuple[str, bytes, bool]] = []
    for name, contents in attachments.items():
        for content in contents:
            if len(content) > MAX_INVOICE_BYTES:
                raise UnsafeDocument(f"embedded {name} of {len(content)} bytes is over the {MAX_INVOICE_BYTES}-byte "
                                     "cap", source=source)
            if name in STANDARD_NAMES:
                candidates.append((name, content, True))
            elif name.lower().endswith(".xml") and _looks_like_invoice(content):
                candidates.append((name, content, False))
    standard = sorted((c for c in candidates if c[2]), key=lambda c: STANDARD_NAMES.index(c[0]))
    if not candidates:
        for name in names:
            if name.lower() in NOT_INVOICE_NAMES:
                raise UnsupportedDocument(f"a PDF carrying {NOT_INVOICE_NAMES[name.lower()]} ({name})", source=source)
        if names:
            raise UnsupportedDocument(f"a PDF without an invoice XML (attachments: {', '.join(names)})", source=source)
        raise UnsupportedDocument("a PDF without an embedded invoice XML (no attachments)", source=source)
    if standard:
        name, content, _ = standard[0]
        if len({c for n, c, _ in standard if n == name}) > 1:
            raise Quarantine(f"ambiguous PDF: two different {name} attachments", source=source,
                             field="PDF attachments")
        ignored = tuple(n for n, c, _ in standard if c != content)
        return Embedded(name, content, True, tuple(n for n in names if n != name), ignored)
    if len({content for _, content, _ in candidates}) > 1:
        raise Quarantine("ambiguous PDF: it embeds several different invoice XMLs under non-standard names "
                         f"({', '.join(name for name, _, _ in candidates)})", source=source, field="PDF attachments")
    name, content, _ = candidates[0]
    log.debug("%s: invoice XML found by content in attachment %r", source, name)
    return Embedded(name, content, False, tuple(n for n in names if n != name))
