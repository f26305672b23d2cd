"""Factur-X / ZUGFeRD / XRechnung-in-PDF container reader: the embedded invoice XML out of a PDF/A-3.

Reads: PDF bytes (under :data:`MAX_PDF_BYTES`). Writes: the bytes of the one embedded invoice XML and its
attachment name, to be re-parsed by the hardened XML parser like any other XML.

Decompression is bounded twice: pypdf runs with lowered per-stream caps (:data:`MAX_DECODED_STREAM_BYTES`),
and all attachments decoded for one PDF share a total budget (:data:`MAX_TOTAL_DECODED_BYTES`). Attachments
are listed by name first (no decoding) and only the candidates are decoded, one at a time: the standard
names, in the precedence factur-x.xml > xrechnung.xml > zugferd-invoice.xml > ZUGFeRD-invoice.xml (a PDF
carrying a ZUGFeRD 1 and a Factur-X XML is read from the Factur-X one, and the other is reported), and
only when none is present, the attachments that may be XML (``*.xml`` or an XML media type), chosen by
content (the name is then reported). Annexes (images, spreadsheets, other PDFs) are never decoded. A PDF
without an invoice XML, or with two different ones under non-standard names, is refused; a PDF whose
candidates decode past the budget is refused naming the attachment where decoding stopped.
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
MAX_DECODED_STREAM_BYTES = 32 * 1024 * 1024  # one stream; an invoice XML over MAX_INVOICE_BYTES is refused anyway
MAX_TOTAL_DECODED_BYTES = 64 * 1024 * 1024  # every attachment decoded for one PDF, together
MAX_CANDIDATES = 64  # attachments decoded for one PDF (by name or possible XML), at most
XML_MEDIA_TYPES = ("/text/xml", "/application/xml", "/text#2Fxml", "/application#2Fxml")
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


def _caps(cap: int = MAX_DECODED_STREAM_BYTES) -> dict[str, int]:
    return {"zlib_maximum_output_length": cap, "lzw_maximum_output_length": cap,
            "run_length_maximum_output_length": cap, "array_based_stream_maximum_output_length": cap,
            "maximum_declared_stream_length": MAX_DECODED_STREAM_BYTES, "brotli_maximum_output_length": cap,
            "jbig2_maximum_output_length": cap, "image_maximum_buffer_size": cap,
            "stream_decoding_work_maximum_length": 4 * cap}


_PYPDF_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError, AttributeError, IndexError,
                                                   RecursionError, OSError, AssertionError)


@dataclass
class _Attachment:
    """One embedded file, listed by its names; its content is decoded only when asked (and then charged)."""

    names: tuple[str, ...]
    entry: object  # pypdf EmbeddedFile

    @property
    def name(self) -> str:
        return self.names[0]

    def may_be_xml(self) -> bool:
        if any(n.lower().endswith(".xml") for n in self.names):
            return True
        try:
            subtype = str(self.entry.subtype or "")  # type: ignore[attr-defined]
        except _PYPDF_ERRORS:
            return False
        return subtype.lower() in XML_MEDIA_TYPES


class _Budget:
    """The decompression budget shared by every attachment of one PDF."""

    def __init__(self, total: int, source: str | None) -> None:
        self.left, self.total, self.source, self.decoded = total, total, source, 0

    def decode(self, attachment: _Attachment) -> bytes:
        from pypdf import apply_configuration
        from pypdf.errors import LimitReachedError, PyPdfError

        if self.decoded >= MAX_CANDIDATES:
            raise UnsafeDocument(f"PDF refused: more than {MAX_CANDIDATES} candidate attachments to decode "
                                 f"(stopped at {attachment.name!r})", source=self.source, field="PDF attachments")
        cap = min(MAX_DECODED_STREAM_BYTES, self.left)
        try:
            with apply_configuration(**_caps(max(cap, 1))):
                content = attachment.entry.content  # type: ignore[attr-defined]
                attachment.entry._embedded_file.decoded_self = None  # type: ignore[attr-defined]  # no cache
        except LimitReachedError as exc:
            if cap < MAX_DECODED_STREAM_BYTES:
                raise UnsafeDocument(f"PDF refused by the total decompression budget: its attachments decode to "
                                     f"more than {self.total // 2**20} MB together (stopped at "
                                     f"{attachment.name!r}; a PDF bomb?)", source=self.source,
                                     field="PDF attachments") from None
            raise UnsafeDocument(f"PDF refused by the decompression caps (a PDF bomb?): attachment "
                                 f"{attachment.name!r}: {exc}", source=self.source, field="PDF attachments") from None
        except (PyPdfError, *_PYPDF_ERRORS) as exc:
            raise Quarantine(f"unreadable PDF attachment {attachment.name!r}: {type(exc).__name__}: {exc}",
                             source=self.source, field="PDF attachments") from None
        self.decoded += 1
        self.left -= len(content)
        if len(content) > MAX_INVOICE_BYTES:
            raise UnsafeDocument(f"embedded {attachment.name} of {len(content)} bytes is over the "
                                 f"{MAX_INVOICE_BYTES}-byte cap", source=self.source, field="PDF attachments")
        return content


def list_attachments(data: bytes, *, source: str | None = None) -> list[_Attachment]:
    """Every embedded file of the PDF with its names, nothing decoded yet; pypdf errors become Cessio errors."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PyPdfError

    if len(data) > MAX_PDF_BYTES:
        raise UnsafeDocument(f"PDF of {len(data)} bytes is over the {MAX_PDF_BYTES}-byte cap", source=source)
    try:
        with apply_configuration(**_caps()):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise Quarantine("encrypted PDF: a Factur-X / ZUGFeRD PDF/A-3 cannot be encrypted", source=source)
            out = []
            for entry in reader.attachment_list:
                names = tuple(dict.fromkeys(str(n) for n in (entry.name, entry.alternative_name) if n))
                out.append(_Attachment(names or ("(unnamed)",), entry))
            return out
    except LimitReachedError as exc:
        raise UnsafeDocument(f"PDF refused by the decompression caps (a PDF bomb?): {exc}", source=source) from None
    except (PyPdfError, *_PYPDF_ERRORS) as exc:
        raise Quarantine(f"unreadable PDF: {type(exc).__name__}: {exc}", source=source) from None


def _looks_like_invoice(xml: bytes) -> bool:
    head = xml[:4096]
    return any(marker in head for marker in (b"CrossIndustryInvoice:100", b"CrossIndustryDocument:invoice:1p0",
                                             b"ubl:schema:xsd:Invoice-2", b"ubl:schema:xsd:CreditNote-2"))


def extract_invoice_xml(data: bytes, *, source: str | None = None,
                        budget: int = MAX_TOTAL_DECODED_BYTES) -> Embedded:
    """The embedded invoice XML of a Factur-X / ZUGFeRD / XRechnung PDF (only candidates are decoded)."""
    attachments = list_attachments(data, source=source)
    names = tuple(dict.fromkeys(a.name for a in attachments))
    meter = _Budget(budget, source)

    def rank(attachment: _Attachment) -> int:
        return min((STANDARD_NAMES.index(n) for n in attachment.names if n in STANDARD_NAMES), default=-1)

    standard = sorted((a for a in attachments if rank(a) >= 0), key=rank)
    if standard:
        decoded = [(STANDARD_NAMES[rank(a)], meter.decode(a)) for a in standard]
        name, content = decoded[0]
        if len({c for n, c in decoded if n == name}) > 1:
            raise Quarantine(f"ambiguous PDF: two different {name} attachments", source=source,
                             field="PDF attachments")
        ignored = tuple(dict.fromkeys(n for n, c in decoded if c != content))
        return Embedded(name, content, True, tuple(n for n in names if n != name), ignored)
    candidates: list[tuple[str, bytes]] = []
    for attachment in attachments:
        if attachment.may_be_xml():
            content = meter.decode(attachment)
            if _looks_like_invoice(content):
                candidates.append((attachment.name, content))
    if not candidates:
        for name in names:
            if name.lower() in NOT_INVOICE_NAMES:
                raise UnsupportedDocument(f"a PDF carrying {NOT_INVOICE_NAMES[name.lower()]} ({name})", source=source)
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise UnsupportedDocument(f"a PDF without an invoice XML (attachments: {shown})", source=source)
        raise UnsupportedDocument("a PDF without an embedded invoice XML (no attachments)", source=source)
    if len({content for _, content in candidates}) > 1:
        raise Quarantine("ambiguous PDF: it embeds several different invoice XMLs under non-standard names "
                         f"({', '.join(name for name, _ in candidates)})", source=source, field="PDF attachments")
    name, content = candidates[0]
    log.debug("%s: invoice XML found by content in attachment %r", source, name)
    return Embedded(name, content, False, tuple(n for n in names if n != name))
