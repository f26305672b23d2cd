"""Hostile bank and ERP files against every line-oriented reader (scenarios D1, D5): binary garbage,
truncated records, wrong encodings, enormous lines, NUL bytes, unterminated quotes.

Each file is read the way the agent reads it (the adapter into a real store) in a child process with
``RLIMIT_AS``: the outcome is either a CessioError naming the file, or a completed read whose bad
records are quarantined with a location naming the file — never a traceback, never a half-imported
record, with peak RSS measured. Readers that are not built yet are skipped by name.
"""

from __future__ import annotations

import importlib

import pytest

from tests.reliability.harness import run_bounded

CSV_HEADER = ("invoice_number,issue_date,due_date,currency,total,open_amount,net,vat,type,status,customer_id,"
              "customer,customer_vat,customer_siren,customer_country,customer_street,customer_postcode,"
              "customer_city,order,credits_invoice,payment_ref")
CSV_ROW = ("F-1,2026-11-01,2026-12-31,EUR,120.00,120.00,100.00,20.00,invoice,open,C1,ACME SA,FR96552100554,"
           "552100554,FR,1 rue A,75001,Paris,PO1,,RF18")

# name -> Python expression for the file's bytes (HEADER and ROW are substituted per reader)
HOSTILE_FILES: dict[str, str] = {
    "binary_garbage": "bytes(random.Random(1).randrange(256) for _ in range(200_000))",
    "truncated_record": "(HEADER + '\\n' + ROW + '\\n' + ROW[: len(ROW) // 2]).encode()",
    "truncated_mid_quote": "(HEADER + '\\n' + ROW + '\\n\"F-2,2026').encode()",
    "latin1_declared_utf8": "(HEADER + '\\n' + ROW.replace('ACME SA', 'Société Générale')).encode('latin-1')",
    "utf16_file": "(HEADER + '\\n' + ROW).encode('utf-16')",
    "enormous_line_64mb": "(HEADER + '\\n').encode() + b'A' * (64 * 2**20)",
    "enormous_quoted_field": "(HEADER + '\\n\"').encode() + b'x,\\n' * (8 * 2**20)",
    "nul_bytes": "(HEADER + '\\n' + ROW.replace('ACME', 'AC\\x00ME')).encode()",
    "many_columns": "(HEADER + '\\n' + ','.join(['1'] * 200_000)).encode()",
    "empty": "b''",
    "header_only": "(HEADER + '\\n').encode()",
    "many_bad_rows": "(HEADER + '\\n' + '\\n'.join(ROW.replace('120.00', 'x%d' % i) for i in range(20000))).encode()",
    "formula_injection": "(HEADER + '\\n' + ROW.replace('ACME SA', '=HYPERLINK(\"http://127.0.0.1/\")')).encode()",
}

# reader -> (module that must import, setup, call with ``path`` and ``store`` bound, returns a summary)
FILE_READERS: dict[str, tuple[str, str]] = {
    "csv_export": ("adapters.csv_export", """
from adapters.csv_export import CsvExportAdapter
from connector.pull import pull_source
def read(path, store):
    adapter = CsvExportAdapter("hostile", {"path": str(path), "mapping": "generic",
                                           "_company": {"name": "Hostile Test SAS", "country": "FR"}})
    return pull_source(store, adapter).to_dict()
"""),
}

CHILD = r"""
import json, random, sys, tempfile
from pathlib import Path
from connector.errors import CessioError
from connector.store import Store
HEADER, ROW = sys.argv[5], sys.argv[6]
folder = Path(tempfile.mkdtemp(prefix="hostile-"))
path = folder / sys.argv[3]
path.write_bytes(eval(sys.argv[4]))
payload_mb = path.stat().st_size / 2**20
exec(sys.argv[7])
store = Store(folder / "cessio.db", actor="hostile")
try:
    summary = read(path, store)
    quarantined = [q["location"] for q in store.quarantined(limit=100000)]
    _report("read", payload_mb=payload_mb, summary=summary, quarantined=len(quarantined),
            unnamed=[q for q in quarantined if sys.argv[3] not in q][:5], invoices=store.count_invoices(),
            control_chars=sum(1 for row in store.invoice_rows() for value in row.values()
                              if isinstance(value, str) and any(ord(ch) < 32 for ch in value)),
            integrity=store.integrity_check(), audit_ok=store.verify_audit().ok)
except CessioError as exc:
    _report("rejected", payload_mb=payload_mb, error=type(exc).__name__, message=str(exc)[:400],
            invoices=store.count_invoices(), audit_ok=store.verify_audit().ok)
except MemoryError:
    _report("memory_error", payload_mb=payload_mb)
except Exception as exc:
    import traceback
    _report("unhandled", payload_mb=payload_mb, error=type(exc).__name__, message=str(exc)[:400],
            where=traceback.format_exc()[-1200:])
"""


def reader_available(reader: str) -> bool:
    try:
        importlib.import_module(FILE_READERS[reader][0])
    except ImportError:
        return False
    return True


KNOWN_BUGS: dict[tuple[str, str], str] = {}


def cases():
    for reader in sorted(FILE_READERS):
        for payload in sorted(HOSTILE_FILES):
            bug = KNOWN_BUGS.get((reader, payload))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            yield pytest.param(reader, payload, marks=marks, id=f"{payload}-{reader}")


@pytest.mark.parametrize(("reader", "payload"), list(cases()))
def test_hostile_file_is_refused_or_quarantined_within_bounds(reader, payload):
    if not reader_available(reader):
        pytest.skip(f"{reader} is not built in this version")
    file_name = f"hostile-{payload}.csv"
    result = run_bounded(CHILD, memory_mb=1536, cpu_seconds=90, wall_seconds=180,
                         args=(file_name, HOSTILE_FILES[payload], CSV_HEADER, CSV_ROW, FILE_READERS[reader][1]))
    report = result.report
    assert report, f"child died without a report (rc={result.returncode}): {result.stderr[-1500:]}"
    assert report["outcome"] in ("read", "rejected"), report
    if report["outcome"] == "rejected":
        assert file_name in report["message"], f"the error does not name the file: {report}"
    else:
        assert report["unnamed"] == [], f"quarantine entries that do not name the file: {report}"
        assert report["integrity"] == [] and report["audit_ok"], report
        # a NUL or control character stored in a name would break every XML file written later
        assert report["control_chars"] == 0, f"control characters stored: {report}"
        if payload not in ("header_only", "empty", "formula_injection", "latin1_declared_utf8"):
            assert report["quarantined"] >= 1 or report["invoices"] == 0, report
    assert report["peak_rss_mb"] < 3 * report["payload_mb"] + 200, report
    assert report["seconds"] < 60, report
