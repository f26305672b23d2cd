"""SWIFT MT940 (customer statement) and MT942 (interim transaction report).

Reads: the bytes of a file holding one or more messages, with or without the SWIFT envelope
(``{1:..}{2:..}{4: ... -}``), in any of the bank dialects of the corpus: German SEPA ``:86:`` with
``?20``..``?63`` sub-fields and ``EREF+``/``SVWZ+`` keys (and ``>`` as separator), Dutch
``/EREF/../REMI/..`` key-value details, Polish and Hungarian free text, US BAI information lines.
Writes: one :class:`~connector.model.Statement` per ``:20:`` block, one
:class:`~connector.model.StatementLine` per ``:61:`` with a non-zero amount (zero-amount lines are
information, not movements). The bank reference is the ``:61:`` sub-field after ``//``.

Why not the ``mt-940`` package: on the corpus it merges the balances of a multi-statement file into
one (the chaining of statements needs each), fails on ASN Bank's ``:61:`` layout and prints its
regular expressions on stderr; this reader is small, pure and covers every corpus file.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

from connector.errors import MoneyError, Quarantine
from connector.model import Statement, StatementLine
from connector.money import Money

TAG = re.compile(r"^:(\d{2}[A-Z]?):", re.MULTILINE | re.ASCII)  # ASCII: "\d" is 0-9 only
BALANCE = re.compile(r"^\s*(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,.]*)\s*$", re.ASCII)
STATEMENT_LINE = re.compile(
    r"^(?P<value>\d{6})(?P<entry>\d{4})?\s*(?P<mark>RC|RD|EC|ED|C|D)(?P<funds>[A-Z])?\s*"
    r"(?P<amount>\d[\d,]*)(?P<type>[A-Z][A-Z0-9]{3})?(?P<refs>[^\n]*)(?:\n(?P<extra>.*))?$", re.DOTALL | re.ASCII)
SUMMARY_CURRENCY = re.compile(r"^\d*([A-Z]{3})", re.ASCII)
SEPA_KEYS = ("EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC", "COAM", "OAMT",
             "PURP", "RTRN")
SEPA_SPLIT = re.compile(r"(" + "|".join(SEPA_KEYS) + r")\+")
NL_KEYS = ("EREF", "ORDP", "BENM", "NAME", "ID", "ADDR", "IBAN", "BIC", "REMI", "USTD", "STRD", "CDTRREF",
           "CDTRREFTP", "CD", "SCOR", "ISSR", "PREF", "MARF", "CSID", "RTRN", "ISDT", "ULTC", "ULTD", "PURP",
           "SVCL", "TRCD", "TYPE", "NRTX", "COAM", "OAMT", "FX")
NOT_PROVIDED = {"NONREF", "NOTPROVIDED", "NONE", ""}
# SWIFT allows 6 x 65 characters in :86:; the longest field of the corpus is 779. Ten times that is room for
# any bank dialect, while a field of megabytes is a broken or hostile file, refused before it is parsed.
MAX_FIELD_CHARS = 8_000


@dataclass
class MtReport:
    """What the file held besides its statements (for the import summary)."""

    kind: str = "mt940"
    zero_skipped: int = 0
    notes: list[str] = field(default_factory=list)


def looks_like_mt940(text: str) -> bool:
    return bool(re.search(r"^:20:", text, re.MULTILINE)) and bool(re.search(r"^:(25|28C?|60F|61|62F):", text,
                                                                            re.MULTILINE))


def read_mt940(data: bytes, source: str = "mt940", report: MtReport | None = None) -> list[Statement]:
    """Every statement of the file; a malformed one raises :class:`Quarantine` naming the tag."""
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or ch >= " ")  # stray control bytes (SOH/ETX, binary)
    report = report if report is not None else MtReport()
    if ":20:" not in text or not TAG.search(text):
        raise Quarantine("not an MT940/MT942 statement (no :20: transaction reference)", source=source)
    report.kind = "mt942" if re.search(r"^:(34F|13D?):", text, re.MULTILINE) and ":62F:" not in text else "mt940"
    statements = []
    for index, block in enumerate(_blocks(text), start=1):
        for tag, value in block:
            if len(value) > MAX_FIELD_CHARS:
                raise Quarantine(f"field :{tag}: of statement {index} holds {len(value):,} characters, more than the "
                                 f"{MAX_FIELD_CHARS:,} any bank writes", source=source, field=f":{tag}:")
        statement = _statement(block, f"{source}: statement {index}", report)
        if statement is not None:
            statements.append(statement)
    if not statements:
        raise Quarantine("no statement with an account (:25:) in the file", source=source, field=":25:")
    return statements


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # SWIFT files are ASCII; national banks use ISO 8859 variants


def _blocks(text: str) -> list[list[tuple[str, str]]]:
    """The file as statements, each a list of (tag, value); a ``:20:`` opens a new statement."""
    text = re.sub(r"\{[1235]:(?:[^{}]|\{[^{}]*\})*\}", "", text)  # SWIFT header and trailer blocks
    text = text.replace("{4:", "\n")
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] | None = None
    matches = list(TAG.finditer(text))
    for n, found in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        value = text[found.end():end]
        value = re.sub(r"\n-\}?[ \t]*(\n[\s\S]*)?$", "", value.rstrip()).rstrip()  # end of message "-}"
        tag = found.group(1)
        if tag == "20" or current is None:
            current = []
            blocks.append(current)
        current.append((tag, value))
    return blocks


def _statement(block: list[tuple[str, str]], where: str, report: MtReport) -> Statement | None:
    fields: dict[str, str] = {}
    lines_raw: list[tuple[str, str | None]] = []
    info: list[str] = []
    for tag, value in block:
        if tag == "61":
            lines_raw.append((value, None))
        elif tag == "86":
            if lines_raw and lines_raw[-1][1] is None:
                lines_raw[-1] = (lines_raw[-1][0], value)
            else:
                info.append(value)
        elif tag not in fields:
            fields[tag] = value
    account_text = fields.get("25")
    if account_text is None:
        if lines_raw:
            raise Quarantine("statement lines without an account (:25:)", source=where, field=":25:")
        return None
    account, account_currency = _account(account_text, where)
    opening = _balance(fields.get("60F") or fields.get("60M"), f"{where} :60F:")
    closing = _balance(fields.get("62F") or fields.get("62M"), f"{where} :62F:")
    currency = (opening or closing or (None, None))[1].currency if (opening or closing) else None
    if currency is None:
        currency = account_currency or _summary_currency(fields)
    if currency is None:
        raise Quarantine("no currency: no :60F:/:62F: balance, :34F: or :90C:/:90D: names one", source=where,
                         field=":60F:")
    lines = []
    for number, (raw, details) in enumerate(lines_raw, start=1):
        line = _line(raw, details, account, currency, f"{where} :61:[{number}]", report)
        if line is not None:
            lines.append(line)
    number = fields.get("28C") or fields.get("28") or ""
    dates = [line.booking_date for line in lines]
    return Statement(
        account=account, currency=currency, lines=tuple(lines),
        statement_id=f"{fields.get('20', '').strip()}/{number.strip()}", format=report.kind,
        opening_balance=opening[1] if opening else None, closing_balance=closing[1] if closing else None,
        from_date=opening[0] if opening else (min(dates) if dates else None),
        to_date=closing[0] if closing else (max(dates) if dates else None))


def _account(text: str, where: str) -> tuple[str, str | None]:
    value = text.strip().split("\n", 1)[0].strip().replace(" ", "")
    if not value:
        raise Quarantine("the account (:25:) is blank", source=where, field=":25:")
    found = re.match(r"^(.*?\d)([A-Z]{3})$", value)
    if found:  # "51210600/9223382012EUR": the currency suffix some banks add
        return found.group(1), found.group(2)
    return value, None


def _summary_currency(fields: dict[str, str]) -> str | None:
    for tag in ("34F", "90C", "90D", "64"):
        value = fields.get(tag)
        if value:
            found = SUMMARY_CURRENCY.match(value.strip().lstrip("CD"))
            if found:
                return found.group(1)
    return None


def _amount(text: str, currency: str, where: str, tag: str) -> Money:
    cleaned = text.strip().replace(",", ".")
    if cleaned.endswith("."):
        cleaned += "0"
    try:
        return Money.parse(cleaned, currency)
    except (MoneyError, ValueError, LookupError) as exc:
        raise Quarantine(f"amount {text!r}: {exc}", source=where, field=tag) from None


def _date(text: str, where: str, tag: str) -> dt.date:
    year, month, day = 2000 + int(text[:2]), int(text[2:4]), int(text[4:6])
    if year > dt.date.today().year + 20:
        year -= 100
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise Quarantine(f"date {text!r} is not YYMMDD", source=where, field=tag)
    # German banks book interest on "30 February": the last day of that month is meant
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _balance(text: str | None, where: str) -> tuple[dt.date, Money] | None:
    if text is None:
        return None
    found = BALANCE.match(text.strip().split("\n", 1)[0])
    if not found:
        raise Quarantine(f"balance {text.strip()!r} is not [C|D]YYMMDDCCYamount", source=where, field=where[-5:])
    amount = _amount(found.group("amount"), found.group("currency"), where, where[-5:])
    return _date(found.group("date"), where, where[-5:]), amount if found.group("mark") == "C" else -amount


def _line(raw: str, details: str | None, account: str, currency: str, where: str,
          report: MtReport) -> StatementLine | None:
    found = STATEMENT_LINE.match(raw.strip("\n"))
    if not found:
        first = raw.strip().split("\n", 1)[0]
        raise Quarantine(f"statement line {first!r} is not date, mark, amount, type, references", source=where,
                         field=":61:")
    value_date = _date(found.group("value"), where, ":61: value date")
    booking_date = value_date
    if found.group("entry"):
        month, day = int(found.group("entry")[:2]), int(found.group("entry")[2:])
        year = value_date.year
        if month == 12 and value_date.month == 1:
            year -= 1
        elif month == 1 and value_date.month == 12:
            year += 1
        if not 1 <= month <= 12 or not 1 <= day <= 31:
            raise Quarantine(f"entry date {found.group('entry')!r} is not MMDD", source=where, field=":61: entry")
        booking_date = dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))
    mark = found.group("mark")
    amount = _amount(found.group("amount"), currency, where, ":61: amount")
    if amount.is_zero():
        report.zero_skipped += 1
        return None
    negative = mark in ("D", "RC", "ED")
    signed = -amount if negative else amount
    refs = found.group("refs") or ""
    customer_ref, _, bank_ref = refs.partition("//")
    customer_ref, bank_ref = customer_ref.strip(), bank_ref.strip()
    extra = (found.group("extra") or "").strip()
    parsed = parse_details(details or "")
    remittance = " ".join(x for x in (parsed.get("text"), extra if not parsed.get("text") else None) if x) or None
    references = tuple(x for x in (customer_ref, parsed.get("kref"), parsed.get("mref"))
                       if x and x.upper() not in NOT_PROVIDED)
    return StatementLine(
        account=account, booking_date=booking_date, value_date=value_date, amount=signed,
        bank_reference=bank_ref if bank_ref.upper() not in NOT_PROVIDED else None,
        counterparty_name=parsed.get("name"), counterparty_iban=parsed.get("iban"),
        counterparty_bic=parsed.get("bic"), remittance=remittance,
        structured_reference=parsed.get("creditor_ref"), end_to_end_id=parsed.get("eref"),
        bank_transaction_code=(found.group("type") or "") + (f"/{parsed['code']}" if parsed.get("code") else ""),
        references=references, reversal=mark.startswith("R"))


def parse_details(text: str) -> dict[str, str]:
    """The ``:86:`` information of one line as name, iban, bic, eref, text (what a person would read)."""
    if not text.strip():
        return {}
    flat = text.replace("\n", "")
    structured = re.match(r"^(\d{3})([?>])(\d\d)", flat)
    if structured:
        return _german(flat, structured.group(2), structured.group(1))
    if flat.startswith("/") and re.search(r"/(" + "|".join(NL_KEYS) + r")/", flat):
        return _dutch(flat)
    return {"text": " ".join(text.split())}


def _german(flat: str, separator: str, code: str) -> dict[str, str]:
    parts: dict[str, list[str]] = {}
    for key, value in re.findall(re.escape(separator) + r"(\d\d)([^" + re.escape(separator) + r"]*)", flat):
        parts.setdefault(key, []).append(value)
    purpose = "".join("".join(parts.get(f"{n:02d}", [])) for n in [*range(20, 30), *range(60, 64)])
    out: dict[str, str] = {"code": code}
    name = " ".join(" ".join(parts.get(k, [])).strip() for k in ("32", "33")).strip()
    if name:
        out["name"] = " ".join(name.split())
    account = "".join(parts.get("31", [])).strip()
    if account:
        out["iban"] = account
    bank = "".join(parts.get("30", [])).strip()
    if bank:
        out["bic"] = bank
    pieces = SEPA_SPLIT.split(purpose)
    if len(pieces) > 1:
        keyed = dict(zip(pieces[1::2], pieces[2::2], strict=False))
        for key, target in (("EREF", "eref"), ("KREF", "kref"), ("MREF", "mref")):
            if keyed.get(key, "").strip():
                out[target] = keyed[key].strip()
        out["text"] = " ".join(" ".join(x for x in (pieces[0], keyed.get("SVWZ", ""), keyed.get("ABWA", ""))
                                        if x).split())
    else:
        out["text"] = " ".join(purpose.split())
    posting = " ".join(parts.get("00", [])).strip()
    if posting:
        out["text"] = f"{posting} {out.get('text', '')}".strip()
    if out.get("eref", "").upper() in NOT_PROVIDED:
        out.pop("eref", None)
    return out


def _dutch(flat: str) -> dict[str, str]:
    pattern = re.compile(r"/(" + "|".join(sorted(NL_KEYS, key=len, reverse=True)) + r")/")
    pieces = pattern.split(flat)
    values: dict[str, str] = {}
    for key, value in zip(pieces[1::2], pieces[2::2], strict=False):
        values.setdefault(key, value.strip().strip("/").strip())
    out: dict[str, str] = {}
    if values.get("NAME"):
        out["name"] = values["NAME"]
    if values.get("IBAN"):
        out["iban"] = values["IBAN"]
    if values.get("BIC"):
        out["bic"] = values["BIC"]
    if values.get("EREF") and values["EREF"].upper() not in NOT_PROVIDED:
        out["eref"] = values["EREF"]
    creditor = values.get("CDTRREF") or values.get("SCOR")
    if creditor:
        out["creditor_ref"] = creditor
    text = values.get("USTD") or values.get("REMI") or ""
    out["text"] = " ".join(text.split()) or " ".join(flat.split())
    return out
