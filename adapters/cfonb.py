"""French CFONB 120 bank statements ("relevé de compte 120 caractères").

Reads: fixed 120-character records, one per line (blank lines ignored): ``01`` old balance, ``04``
operation, ``05`` complement of the operation before it, ``07`` new balance. A file may hold several
statements and several accounts, one after the other. Amounts are 14 digits whose last character
carries the sign and the last digit (``{``/``A``..``I`` positive 0..9, ``}``/``J``..``R`` negative 0..9),
with the number of decimals in column 20. Dates are ``DDMMYY``.

Writes: one :class:`~connector.model.Statement` per ``01``..``07`` pair with one
:class:`~connector.model.StatementLine` per ``04``. Complement qualifiers: ``NPY``/``NBE`` payer or
beneficiary name, ``IPY``/``IBE`` their ids, ``REF`` the end-to-end reference, ``RCN`` the client
reference and purpose, ``LIB``/``LCC``/``LC2``/``LCS``/``LCZ`` more label text, ``MMO`` the original
amount and currency. CFONB gives no bank id per operation: the line's identity is the content hash
with an occurrence counter (two genuine identical transfers on one day stay two).

A structure that is not a statement (an operation outside ``01``..``07``, a complement without its
operation, a statement that starts before the previous one ended) is refused whole, with the line
number: half a statement is never imported.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from connector.errors import MoneyError, Quarantine
from connector.model import Statement, StatementLine
from connector.money import Money

POSITIVE = {"{": 0, **{chr(ord("A") + n): n + 1 for n in range(9)}}
NEGATIVE = {"}": 0, **{chr(ord("J") + n): n + 1 for n in range(9)}}
TEXT_QUALIFIERS = ("LIB", "LCC", "LC2", "LCS", "LCZ", "RCN")


CONTROL_TO_SPACE = {code: " " for code in [*range(0, 32), 127] if chr(code) not in "\r\n"}


def looks_like_cfonb(text: str) -> bool:
    records = [line for line in text.splitlines() if line.strip()]
    return bool(records) and all(len(r.rstrip("\r")) in range(110, 121) and r[:2] in ("01", "04", "05", "07")
                                 for r in records[:20])


def read_cfonb(data: bytes, source: str = "cfonb120") -> list[Statement]:
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise Quarantine("not text", source=source) from None
    # NUL and other control bytes in a label become spaces (the columns stay where they are): nothing a
    # person could read is lost, and no text that may later go into XML carries them
    text = text.translate(CONTROL_TO_SPACE)
    statements: list[Statement] = []
    current: dict | None = None
    operation: dict | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        record = raw.rstrip("\r\n")
        if not record.strip():
            continue
        where = f"{source}: line {number}"
        if len(record) < 104:
            raise Quarantine(f"record of {len(record)} characters; CFONB 120 records have 120", source=where)
        record = record.ljust(120)
        code = record[:2]
        if code == "01":
            if current is not None:
                raise Quarantine("a new statement (01) starts before the previous one ended (07)", source=where,
                                 field="01")
            current = {"account": _account(record), "currency": record[16:19], "opening": _amount(record, where),
                       "from": _date(record[34:40], where, "old balance date"), "lines": [], "where": where}
        elif code == "04":
            if current is None:
                raise Quarantine("operation (04) outside a statement (no 01 before it)", source=where, field="04")
            _check_account(current, record, where)
            operation = _operation(record, where)
            current["lines"].append(operation)
        elif code == "05":
            if current is None or operation is None:
                raise Quarantine("complement (05) without its operation (04)", source=where, field="05")
            _check_account(current, record, where)
            qualifier, value = record[45:48], record[48:118].rstrip()
            operation["complements"].append((qualifier, value))
        elif code == "07":
            if current is None:
                raise Quarantine("new balance (07) without an old balance (01)", source=where, field="07")
            _check_account(current, record, where)
            statements.append(_statement(current, _amount(record, where),
                                         _date(record[34:40], where, "new balance date")))
            current, operation = None, None
        else:
            raise Quarantine(f"record code {code!r} is not 01, 04, 05 or 07 (a CFONB 240 file?)", source=where,
                             field="record code")
    if current is not None:
        raise Quarantine("statement without its new balance (07) at the end of the file", source=current["where"],
                         field="07")
    if not statements:
        raise Quarantine("no statement (01..07) in the file", source=source)
    return statements


def _account(record: str) -> str:
    """Bank, branch and account number as the RIB writes them (without the key)."""
    return f"{record[2:7]}{record[11:16]}{record[21:32]}".replace(" ", "0")


def _check_account(current: dict, record: str, where: str) -> None:
    if record[21:32] != current["account"][10:]:
        raise Quarantine(f"account {record[21:32]!r} differs from the statement's {current['account'][10:]!r}",
                         source=where, field="account number")


def _amount(record: str, where: str) -> Money:
    currency = record[16:19]
    field = record[90:104]
    digits, last = field[:-1].replace(" ", "0"), field[-1]
    if last in POSITIVE:
        sign, tail = 1, POSITIVE[last]
    elif last in NEGATIVE:
        sign, tail = -1, NEGATIVE[last]
    else:
        raise Quarantine(f"amount {field!r} does not end with a sign character", source=where, field="amount")
    # isdigit() alone accepts Unicode digits such as "²" (Latin-1 0xB2) that int() refuses
    if not (digits.isascii() and digits.isdigit() and record[19] in "0123456789"):
        raise Quarantine(f"amount {field!r} is not numeric", source=where, field="amount")
    value = Decimal(sign * int(digits + str(tail))).scaleb(-int(record[19]))
    try:
        return Money.parse(value, currency)
    except (MoneyError, ValueError, LookupError) as exc:
        raise Quarantine(f"amount {field!r} {currency}: {exc}", source=where, field="amount") from None


def _date(text: str, where: str, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%d%m%y").date()
    except ValueError:
        raise Quarantine(f"{what} {text!r} is not DDMMYY", source=where, field=what) from None


def _operation(record: str, where: str) -> dict:
    return {"amount": _amount(record, where), "booked": _date(record[34:40], where, "booking date"),
            "valued": _date(record[42:48], where, "value date"), "label": record[48:79].strip(),
            "code": record[32:34].strip(), "entry": record[81:88].strip(), "reference": record[104:120].strip(),
            "complements": []}


def _statement(current: dict, closing: Money, to_date: dt.date) -> Statement:
    lines = []
    for op in current["lines"]:
        values: dict[str, list[str]] = {}
        for qualifier, value in op["complements"]:
            values.setdefault(qualifier, []).append(value.strip())
        incoming = not op["amount"].is_negative()
        name = (values.get("NPY") if incoming else values.get("NBE")) or values.get("NPY") or values.get("NBE")
        ids = (values.get("IPY") if incoming else values.get("IBE")) or []
        texts = [op["label"], *[v for q in TEXT_QUALIFIERS for v in values.get(q, [])]]
        refs = [r for r in (op["reference"], *values.get("RCN", [])) if r]
        lines.append(StatementLine(
            account=current["account"], booking_date=op["booked"], value_date=op["valued"], amount=op["amount"],
            bank_reference=None, counterparty_name=" ".join(name) if name else None,
            counterparty_iban=ids[0].split()[0] if ids and ids[0].split() else None,
            remittance=" ".join(" ".join(t.split()) for t in texts if t.strip()) or None,
            end_to_end_id=(values.get("REF") or [None])[0] or None, bank_transaction_code=op["code"] or None,
            references=tuple(refs)))
    return Statement(account=current["account"], currency=current["currency"], lines=tuple(lines),
                     statement_id=f"{current['account']}:{current['from'].isoformat()}", format="cfonb120",
                     opening_balance=current["opening"], closing_balance=closing,
                     from_date=current["from"], to_date=to_date)
