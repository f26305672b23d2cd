"""Small named normalisation functions: texts as a document states them -> typed values.

Pure functions of data (no I/O, no clock). Each raises :class:`~connector.errors.Quarantine` naming the
field when the text cannot be read, or returns ``None`` when there is nothing to read.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal

from connector.errors import Quarantine
from connector.model import CORRECTION_CODES, CREDIT_NOTE_CODES, FACTORED_CODES, PREPAYMENT_CODES, SELF_BILLED_CODES
from connector.money import MoneyError, to_decimal

# UNTDID 1001 codes EN 16931 admits (BR-CL-01, UBL InvoiceTypeCode and CreditNoteTypeCode lists together).
INVOICE_TYPE_CODES = frozenset({
    "71", "80", "81", "82", "84", "102", "130", "202", "203", "204", "211", "218", "219", "295", "325", "326", "331",
    "380", "382", "383", "384", "385", "386", "387", "388", "389", "390", "393", "394", "395", "456", "457", "471",
    "472", "473", "500", "501", "527", "553", "575", "623", "633", "751", "780", "817", "870", "875", "876", "877",
    "935",
})
KNOWN_TYPE_CODES = INVOICE_TYPE_CODES | CREDIT_NOTE_CODES | {"261", "262", "296", "308", "396", "420", "458",
                                                            "502", "503", "532"}
NOT_A_TAX_INVOICE_CODES = frozenset({"751"})  # "invoice information for accounting purposes": never financed
CONSTRUCTION_CODES = frozenset({"875", "876", "877"})
DEBIT_NOTE_CODES = frozenset({"383"})
# each flag a type code can set, with the codes that set it, in the order the flags are listed
_CODE_FLAGS = (("prepayment", PREPAYMENT_CODES), ("self_billed", SELF_BILLED_CODES), ("factored", FACTORED_CODES),
               ("correction", CORRECTION_CODES), ("not_a_tax_invoice", NOT_A_TAX_INVOICE_CODES),
               ("construction", CONSTRUCTION_CODES), ("debit_note", DEBIT_NOTE_CODES))

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*|Z|[+-]\d{2}:\d{2})?$")
_DATE_102 = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def parse_date(text: str | None, *, field: str) -> dt.date | None:
    """``2024-03-15`` (UBL xs:date, a time zone tolerated) or ``20240315`` (CII format 102)."""
    if text is None:
        return None
    match = _ISO_DATE.match(text) or _DATE_102.match(text)
    if not match:
        raise Quarantine(f"{text!r} is not a date (expected YYYY-MM-DD or CII format 102 YYYYMMDD)", field=field)
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError as exc:
        raise Quarantine(f"{text!r} is not a valid date: {exc}", field=field) from None


def parse_decimal(text: str | None, *, field: str) -> Decimal | None:
    """An amount exactly as stated (never a float); ``None`` when absent."""
    if text is None:
        return None
    try:
        return to_decimal(text, what=field)
    except MoneyError as exc:
        raise Quarantine(str(exc), field=field) from None


def type_code_flags(type_code: str) -> tuple[str, ...]:
    """What a UNTDID 1001 code means for factoring, as flags on the canonical invoice."""
    return tuple(flag for flag, codes in _CODE_FLAGS if type_code in codes)


def is_credit_code(type_code: str) -> bool:
    return type_code in CREDIT_NOTE_CODES or type_code in {"396"}


# -- due date from payment terms text (BT-20), a flagged heuristic ------------------------------------
_SKONTO = re.compile(r"#SKONTO#[^\n]*?#(?=\s|$)", re.IGNORECASE)
_DAY_WORDS = (r"days?|jours?|j\b|tage[n]?|tg\b|dagar|dager|dage|dagen|dni|giorni|d[ií]as|dias|päivää|napon belül")
_DAYS = re.compile(rf"(\d{{1,3}})\s*(?:{_DAY_WORDS})", re.IGNORECASE)
_NET_DAYS = re.compile(r"\b(?:net|netto|n)\s*(\d{1,3})\b", re.IGNORECASE)
_END_OF_MONTH = re.compile(r"fin de mois|end of (?:the )?month|eom\b|monatsende|fdm\b", re.IGNORECASE)
_TEXT_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TEXT_EU = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")


def due_date_from_terms(texts: list[str], issue_date: dt.date) -> tuple[dt.date, str] | None:
    """A due date read from payment terms text, with the words it came from; ``None`` when unreadable.

    An explicit date wins; otherwise the longest "N days" (the net term, not a discount period) counted
    from the issue date, moved to the end of month when the text says so. XRechnung ``#SKONTO#`` lines
    are discount terms and are ignored.
    """
    text = _SKONTO.sub(" ", " ".join(texts))
    for pattern, order in ((_TEXT_ISO, (0, 1, 2)), (_TEXT_EU, (2, 1, 0))):
        for match in pattern.finditer(text):
            groups = match.groups()
            try:
                found = dt.date(int(groups[order[0]]), int(groups[order[1]]), int(groups[order[2]]))
            except ValueError:
                continue
            if found >= issue_date:
                return found, match.group(0)
    days = [(int(m.group(1)), m.group(0)) for m in (*_DAYS.finditer(text), *_NET_DAYS.finditer(text))]
    days = [(n, words) for n, words in days if 0 < n <= 366]
    if not days:
        return None
    number, words = max(days)
    due = issue_date + dt.timedelta(days=number)
    if _END_OF_MONTH.search(text):
        due = due.replace(day=calendar.monthrange(due.year, due.month)[1])
        words += " (end of month)"
    return due, words
