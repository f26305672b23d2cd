"""Bank statement files for the reliability suites: valid MT940, CFONB 120 and camt.053 builders, and the
hostile variants of each (binary garbage, truncated records, wrong encodings, enormous lines, XML bombs).

Builders take plain data (``Entry``) so that one set of payments can be written in all three formats; the
hostile payloads are functions returning bytes, generated in the process that reads them (some are tens of
megabytes and never stored). Used by ``test_hostile_statements.py``, ``test_reconcile_crash.py`` and
``bench/soak.py``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

ACCOUNT_IBAN = "FR7630006000011234567890189"
MT_ACCOUNT = "30006000011234567890189"


@dataclass(frozen=True)
class Entry:
    ref: str                 # the bank's own reference
    amount: Decimal          # signed, cash in is positive
    text: str = ""
    name: str = ""
    day: dt.date = dt.date(2026, 11, 27)


# -- MT940 ---------------------------------------------------------------------------------------------------

def _mt_amount(value: Decimal) -> str:
    return f"{abs(value):.2f}".replace(".", ",")


def mt940_bytes(entries: list[Entry], *, opening: Decimal = Decimal("1000.00"), number: int = 1,
                currency: str = "EUR", encoding: str = "latin-1") -> bytes:
    day = max((e.day for e in entries), default=dt.date(2026, 11, 27))
    closing = opening + sum((e.amount for e in entries), Decimal(0))
    out = [f":20:STMT{number:05d}", f":25:{MT_ACCOUNT}", f":28C:{number}/1",
           f":60F:{'C' if opening >= 0 else 'D'}{day:%y%m%d}{currency}{_mt_amount(opening)}"]
    for e in entries:
        mark = "C" if e.amount >= 0 else "D"
        out.append(f":61:{e.day:%y%m%d}{e.day:%m%d}{mark}{_mt_amount(e.amount)}NTRFNONREF//{e.ref}")
        out.append(f":86:166?00SEPA-GUTSCHRIFT?20SVWZ+{e.text[:27]}?32{e.name[:27]}")
    out.append(f":62F:{'C' if closing >= 0 else 'D'}{day:%y%m%d}{currency}{_mt_amount(closing)}")
    out.append("-")
    return ("\r\n".join(out) + "\r\n").encode(encoding)


# -- CFONB 120 -----------------------------------------------------------------------------------------------

def _cfonb_amount(value: Decimal, decimals: int = 2) -> str:
    digits = f"{abs(int(value.scaleb(decimals))):014d}"
    last = int(digits[-1])
    return digits[:13] + ("{ABCDEFGHI"[last] if value >= 0 else "}JKLMNOPQR"[last])


def _cfonb_record(code: str, *, day: dt.date, amount: Decimal, label: str = "", reference: str = "",
                  qualifier: str = "", complement: str = "") -> str:
    record = [" "] * 120
    def put(at: int, text: str) -> None:
        record[at:at + len(text)] = list(text)
    put(0, code)
    put(2, "30006")
    put(7, "0000" if code in ("01", "07") else "0501")
    put(11, "00001")
    put(16, "EUR")
    put(19, "2")
    put(21, "12345678901")
    put(34, f"{day:%d%m%y}")
    if code == "05":
        put(45, qualifier)
        put(48, complement[:70])
    else:
        if code == "04":
            put(32, "05")
            put(42, f"{day:%d%m%y}")
            put(48, label[:31])
            put(81, "0000001")
            put(104, reference[:16])
        put(90, _cfonb_amount(amount))
    return "".join(record[:120])


def cfonb_bytes(entries: list[Entry], *, opening: Decimal = Decimal("1000.00")) -> bytes:
    days = [e.day for e in entries] or [dt.date(2026, 11, 27)]
    closing = opening + sum((e.amount for e in entries), Decimal(0))
    out = [_cfonb_record("01", day=min(days), amount=opening)]
    for e in entries:
        out.append(_cfonb_record("04", day=e.day, amount=e.amount, label=e.text or "VIREMENT", reference=e.ref))
        if e.name:
            out.append(_cfonb_record("05", day=e.day, amount=Decimal(0), qualifier="NPY", complement=e.name))
        if e.text:
            out.append(_cfonb_record("05", day=e.day, amount=Decimal(0), qualifier="LIB", complement=e.text))
    out.append(_cfonb_record("07", day=max(days), amount=closing))
    return ("\r\n".join(out) + "\r\n").encode("latin-1")


# -- camt.053 ------------------------------------------------------------------------------------------------

def camt_bytes(entries: list[Entry], *, opening: Decimal = Decimal("1000.00"), statement_id: str = "S1") -> bytes:
    from connector.reconcile.generator import camt053_bytes

    lines = [{"ref": e.ref, "amount": e.amount, "currency": "EUR", "name": e.name or None, "iban": None,
              "text": e.text or None, "sref": None, "e2e": None, "charges": None, "instructed": None,
              "code": "PMNT/RCDT/ESCT", "date": e.day} for e in entries]
    created = max((e.day for e in entries), default=dt.date(2026, 11, 27))
    return camt053_bytes(lines, account=ACCOUNT_IBAN, currency="EUR", opening=opening, message_id=f"M-{statement_id}",
                         statement_id=statement_id, created=created)


def sample_entries(count: int = 3, seed: int = 1) -> list[Entry]:
    rng = random.Random(seed)
    return [Entry(f"BR{seed:03d}{n:06d}", Decimal(rng.randint(100, 900_000)).scaleb(-2), f"FA-2026-{n:05d}",
                  "Société Générale SA" if n % 2 else "ACME GMBH") for n in range(count)]


# -- hostile variants ----------------------------------------------------------------------------------------

def _garbage(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _mt(count: int = 3) -> bytes:
    return mt940_bytes(sample_entries(count))


def _cf(count: int = 3) -> bytes:
    return cfonb_bytes(sample_entries(count))


def _camt(count: int = 3) -> bytes:
    return camt_bytes(sample_entries(count))


def _set_column(data: bytes, line: int, column: int, value: bytes) -> bytes:
    lines = data.split(b"\r\n")
    record = bytearray(lines[line])
    record[column:column + len(value)] = value
    lines[line] = bytes(record)
    return b"\r\n".join(lines)


CAMT_NS = b'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"'
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">' + b"".join(
    b'<!ENTITY %s "%s">' % (c.encode(), (b"&" + p.encode() + b";") * 10) for p, c in zip("abcdefgh", "bcdefghi",
                                                                                          strict=True))
    + b"]><Document " + CAMT_NS + b"><BkToCstmrStmt><GrpHdr><MsgId>&i;</MsgId></GrpHdr></BkToCstmrStmt></Document>")


def _camt_with(text: bytes) -> bytes:
    """A valid camt.053 whose first entry's remittance text is ``text`` (raw bytes, not escaped)."""
    return _camt(1).replace(b"<Ustrd>FA-2026-00000</Ustrd>", b"<Ustrd>" + text + b"</Ustrd>")


# (format, name) -> (bytes factory, expectation): "refuse" = quarantined with the file named, nothing stored;
# "either" = a reader may import it (it is a valid statement with odd content) or refuse it, never crash.
HOSTILE_STATEMENTS: dict[tuple[str, str], tuple[Callable[[], bytes], str]] = {
    # MT940
    ("mt940", "binary_garbage"): (lambda: _garbage(200_000), "refuse"),
    ("mt940", "header_then_garbage"): (lambda: b":20:X\r\n:25:ACC\r\n:61:" + _garbage(100_000, 2), "refuse"),
    ("mt940", "truncated_mid_record"): (lambda: _mt()[: _mt().index(b":61:", 200) + 9], "refuse"),
    ("mt940", "truncated_before_closing"): (lambda: _mt()[: _mt().index(b":62F:")], "either"),
    ("mt940", "utf16"): (lambda: _mt().decode("latin-1").encode("utf-16"), "refuse"),
    ("mt940", "latin1_text"): (lambda: _mt(), "either"),
    ("mt940", "utf8_text"): (lambda: mt940_bytes(sample_entries(3), encoding="utf-8"), "either"),
    ("mt940", "enormous_86_line_8mb"): (lambda: _mt().replace(b"?00SEPA", b"?00" + b"A" * (8 * 2**20), 1),
                                         "refuse"),
    ("mt940", "over_the_50mb_cap"): (lambda: _mt() + b":86:" + b"B" * (51 * 2**20), "refuse"),
    ("mt940", "nul_and_control_bytes"): (lambda: _mt().replace(b"ACME", b"AC\x00\x01\x1bME"), "either"),
    ("mt940", "amount_of_40_digits"): (lambda: _mt().replace(b":60F:C261127EUR1000,00",
                                                             b":60F:C261127EUR" + b"9" * 40 + b",00"), "refuse"),
    ("mt940", "excess_decimals"): (lambda: _mt().replace(b"EUR1000,00", b"EUR1000,001"), "refuse"),
    ("mt940", "impossible_date"): (lambda: _mt().replace(b":60F:C261127", b":60F:C269940"), "refuse"),
    ("mt940", "entry_date_day_zero"): (lambda: _mt().replace(b":61:2611271127", b":61:2611271100", 1), "refuse"),
    ("mt940", "blank_account"): (lambda: _mt().replace(b":25:" + MT_ACCOUNT.encode(), b":25: ", 1), "refuse"),
    ("mt940", "blank_statement_line"): (lambda: _mt().replace(b":61:2611271127", b":61: \r\n:99:", 1), "refuse"),
    ("mt940", "no_account"): (lambda: _mt().replace(b":25:", b":99:"), "refuse"),
    ("mt940", "many_lines_3k"): (lambda: mt940_bytes(sample_entries(3_000)), "either"),
    ("mt940", "swift_block_unterminated"): (lambda: b"{1:F01BANK" + b"{" * 200_000 + _mt(), "either"),
    ("mt940", "empty"): (lambda: b"", "refuse"),
    # CFONB 120
    ("cfonb", "binary_garbage"): (lambda: _garbage(200_000, 3), "refuse"),
    ("cfonb", "truncated_record"): (lambda: _cf()[:-150], "refuse"),
    ("cfonb", "missing_new_balance"): (lambda: b"\r\n".join(_cf().split(b"\r\n")[:-2]), "refuse"),
    ("cfonb", "utf16"): (lambda: _cf().decode("latin-1").encode("utf-16"), "refuse"),
    ("cfonb", "utf8_multibyte_names"): (lambda: _cf().decode("latin-1").encode("utf-8"), "either"),
    ("cfonb", "enormous_line_8mb"): (lambda: _cf().replace(b"\r\n", b"\r\n05" + b"Z" * (8 * 2**20) + b"\r\n", 1),
                                     "refuse"),
    ("cfonb", "over_the_50mb_cap"): (lambda: _cf() * (51 * 2**20 // len(_cf()) + 1), "refuse"),
    ("cfonb", "record_code_03"): (lambda: _set_column(_cf(), 1, 0, b"03"), "refuse"),
    ("cfonb", "non_numeric_amount"): (lambda: _set_column(_cf(), 1, 92, b"XY"), "refuse"),
    ("cfonb", "bad_sign_character"): (lambda: _set_column(_cf(), 1, 103, b"Z"), "refuse"),
    ("cfonb", "impossible_date"): (lambda: _set_column(_cf(), 1, 34, b"319926"), "refuse"),
    ("cfonb", "unicode_digit_in_decimals"): (lambda: _set_column(_cf(), 0, 19, b"\xb2"), "refuse"),
    ("cfonb", "unicode_digit_in_amount"): (lambda: _set_column(_cf(), 1, 95, b"\xb3"), "refuse"),
    ("cfonb", "nul_bytes"): (lambda: _set_column(_cf(), 1, 50, b"\x00\x00\x00"), "either"),
    ("cfonb", "many_lines_3k"): (lambda: cfonb_bytes(sample_entries(3_000)), "either"),
    ("cfonb", "empty"): (lambda: b"", "refuse"),
    # camt
    ("camt", "binary_garbage_after_tag"): (lambda: b"<Document " + CAMT_NS + b">" + _garbage(200_000, 4), "refuse"),
    ("camt", "billion_laughs"): (lambda: LAUGHS, "refuse"),
    ("camt", "billion_laughs_after_8k_comment"): (lambda: b"<!--" + b"x" * 8000 + b"-->" + LAUGHS, "refuse"),
    ("camt", "billion_laughs_behind_a_camt_marker"): (
        lambda: b"<!-- camt.053 -->" + b"<!--" + b"x" * 8000 + b"-->" + LAUGHS.split(b"?>", 1)[1], "refuse"),
    ("camt", "quadratic_blowup"): (lambda: (b'<!DOCTYPE Document [<!ENTITY a "' + b"x" * 100_000 + b'">]><Document '
                                            + CAMT_NS + b"><x>" + b"&a;" * 20_000 + b"</x></Document>"), "refuse"),
    ("camt", "xxe_local_file"): (lambda: (b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document '
                                          + CAMT_NS + b"><x>&x;</x></Document>"), "refuse"),
    ("camt", "external_dtd"): (lambda: (b'<?xml version="1.0"?><!DOCTYPE Document SYSTEM "http://127.0.0.1:9/x.dtd">'
                                        b"<Document " + CAMT_NS + b"/>"), "refuse"),
    ("camt", "deep_nesting_100k"): (lambda: _camt_with(b"<a>" * 100_000 + b"</a>" * 100_000), "refuse"),
    ("camt", "huge_text_node_15mb"): (lambda: _camt_with(b"A" * (15 * 2**20)), "refuse"),
    ("camt", "many_entries_3k"): (lambda: camt_bytes(sample_entries(3_000)), "either"),
    ("camt", "over_the_200mb_cap"): (lambda: _camt() + b"<!--" + b"c" * (201 * 2**20) + b"-->", "refuse"),
    ("camt", "truncated"): (lambda: _camt()[:len(_camt()) * 2 // 3], "refuse"),
    ("camt", "utf16_declared_utf8"): (lambda: _camt().decode("utf-8").encode("utf-16"), "either"),
    ("camt", "latin1_bytes_declared_utf8"): (lambda: _camt().replace(b"Soci\xc3\xa9t\xc3\xa9", b"Soci\xe9t\xe9"),
                                             "refuse"),
    ("camt", "amount_nan"): (lambda: _camt().replace(b">1000.00</Amt>", b">NaN</Amt>", 1), "refuse"),
    ("camt", "amount_excess_decimals"): (lambda: _camt().replace(b">1000.00</Amt>", b">1000.001</Amt>", 1),
                                         "refuse"),
    ("camt", "amount_1e400"): (lambda: _camt().replace(b">1000.00</Amt>", b">1E+400</Amt>", 1), "refuse"),
    ("camt", "nul_byte"): (lambda: _camt().replace(b"ACME", b"AC\x00ME"), "refuse"),
    ("camt", "empty"): (lambda: b"", "refuse"),
}

# open product bugs these payloads hit: (format, name) -> reason (kept as strict xfails)
KNOWN_STATEMENT_BUGS: dict[tuple[str, str], str] = {}
