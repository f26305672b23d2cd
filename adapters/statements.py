"""One entry point for every bank or factor statement file: the format is detected from the content.

Reads: the bytes of a camt.052/053/054 (any 001.xx version), MT940/MT942 or CFONB 120 file.
Writes: :class:`~connector.model.Statement` objects carrying the SHA-256 of the file, through the
format's own reader (:mod:`adapters.camt`, :mod:`adapters.mt940`, :mod:`adapters.cfonb`).
Anything else is an :class:`~connector.errors.UnsupportedDocument` naming what it looks like.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

from adapters import camt, cfonb, mt940
from connector.errors import UnsupportedDocument
from connector.model import Statement

MAX_TEXT_STATEMENT_BYTES = 50 * 1024 * 1024


@dataclass
class ReadInfo:
    """What was read besides the statements: the format, entries that are not movements yet."""

    format: str = ""
    message_id: str | None = None
    not_booked: int = 0  # camt pending/information entries, MT940 zero-amount information lines
    notes: list[str] = field(default_factory=list)


def detect_format(data: bytes) -> str | None:
    """``"camt"``, ``"mt940"``, ``"cfonb120"`` or None, from the first bytes."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n\x00\x01")
    if head.startswith(b"<"):
        return "camt" if b"camt.05" in data[:8192] else None
    text = head.decode("latin-1")
    if mt940.looks_like_mt940(data[:200_000].decode("latin-1")):
        return "mt940"
    if cfonb.looks_like_cfonb(text.rsplit("\n", 1)[0] if len(data) > 4096 else text):
        return "cfonb120"
    return None


def read_statement(data: bytes, source: str) -> list[Statement]:
    """Every statement in ``data`` (the file named ``source`` in errors)."""
    return read_statement_with_info(data, source)[0]


def read_statement_with_info(data: bytes, source: str) -> tuple[list[Statement], ReadInfo]:
    kind = detect_format(data)
    info = ReadInfo(format=kind or "")
    if kind is None:
        raise UnsupportedDocument(_what(data), source=source)
    if kind != "camt" and len(data) > MAX_TEXT_STATEMENT_BYTES:
        raise UnsupportedDocument(f"{kind} file of {len(data)} bytes is over the "
                                  f"{MAX_TEXT_STATEMENT_BYTES}-byte cap", source=source)
    if kind == "camt":
        report = camt.CamtReport()
        statements = camt.read_camt(data, source, report)
        info.format, info.message_id, info.not_booked = report.version, report.message_id, report.pending_skipped
    elif kind == "mt940":
        mt_report = mt940.MtReport()
        statements = mt940.read_mt940(data, source, mt_report)
        info.format, info.not_booked = mt_report.kind, mt_report.zero_skipped
    else:
        statements = cfonb.read_cfonb(data, source)
    digest = hashlib.sha256(data).hexdigest()
    return [dataclasses.replace(s, content_hash=digest) for s in statements], info


def _what(data: bytes) -> str:
    head = data[:512].lstrip()
    if not head:
        return "empty file"
    if head.startswith(b"<"):
        return "XML that is not a camt.052/053/054 statement"
    if head.startswith(b"%PDF"):
        return "a PDF (statements are read as camt, MT940 or CFONB 120)"
    if b":61:" in data[:100_000] or b":60F:" in data[:100_000]:
        return "MT940 fragment without a :20: statement header"
    cfonb_like = _cfonb_shape(data)
    if cfonb_like:
        return cfonb_like
    return "not a camt.052/053/054, MT940/MT942 or CFONB 120 statement"


def _cfonb_shape(data: bytes) -> str | None:
    """Why a file whose records look like CFONB 120 (codes 01/04/05/07) was not read as one: the usual causes
    are a re-encoding (UTF-8 makes an accented record longer than 120) or a download cut mid-record."""
    records = [r.rstrip(b"\r") for r in data[:200_000].split(b"\n") if r.strip()]
    if not records or sum(r[:2] in (b"01", b"04", b"05", b"07") for r in records) < 0.9 * len(records):
        return None
    for number, record in enumerate(records, start=1):
        if len(record) != 120 and not (number == len(records) and len(record) < 120):
            hint = " (re-encoded as UTF-8? CFONB files are Latin-1, one byte per character)" \
                if len(record) > 120 and any(b >= 0x80 for b in record) else ""
            return f"CFONB 120 records must be 120 characters; line {number} has {len(record)}{hint}"
    if len(records[-1]) < 120:
        return f"CFONB 120 file cut mid-record: its last line has {len(records[-1])} of 120 characters"
    return None
