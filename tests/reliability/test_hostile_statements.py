"""Hostile bank statements against the MT940, CFONB 120 and camt readers (scenarios D1, D5 for statements).

Each payload of ``statement_files.HOSTILE_STATEMENTS`` is imported the way ``cessio statements import`` and
the agent's inbox job import a file (:func:`connector.reconcile.importing.import_bytes` into a real store) in a
child process with ``RLIMIT_AS``. It must be either refused — quarantined with an error that names the file,
nothing stored but the quarantine row — or, for the payloads marked ``either`` (valid statements with odd
content), imported whole; never a traceback, never half a statement; store integrity and audit chain intact;
peak RSS (VmHWM) bounded by the payload.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.harness import run_bounded
from tests.reliability.statement_files import HOSTILE_STATEMENTS, KNOWN_STATEMENT_BUGS

CHILD = r"""
import json, shutil, sys, tempfile
from pathlib import Path
from connector.errors import CessioError
from connector.store import Store
from connector.reconcile.importing import import_bytes
from tests.reliability.statement_files import HOSTILE_STATEMENTS
fmt, payloads, suffix = sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
folder = Path(tempfile.mkdtemp(prefix="hostile-statement-"))
Store(folder / "template.db").close()  # migrated once; each payload gets a fresh copy
results, largest = {}, 0.0
for payload in payloads:
    data = HOSTILE_STATEMENTS[(fmt, payload)][0]()
    file_name = f"hostile-{fmt}-{payload}.{suffix}"
    largest = max(largest, len(data) / 2**20)
    db = folder / f"{payload}.db"
    shutil.copy(folder / "template.db", db)
    store = Store(db, actor="hostile", migrate=False)
    try:
        result = import_bytes(store, data, file_name=file_name)
        results[payload] = {"outcome": "refused" if result.error else "imported", "file": file_name,
                            "error": (result.error or "")[:400], "lines": store.count_statement_lines(),
                            "statements": len(store.statement_rows()), "new": result.new,
                            "quarantined": [q["location"] for q in store.quarantined(limit=1000)],
                            "integrity": store.integrity_check(), "audit_ok": store.verify_audit().ok}
    except CessioError as exc:
        results[payload] = {"outcome": "raised", "error": f"{type(exc).__name__}: {exc}"[:400]}
    except MemoryError:
        results[payload] = {"outcome": "memory_error"}
    except Exception as exc:
        import traceback
        results[payload] = {"outcome": "unhandled", "error": f"{type(exc).__name__}: {exc}"[:300],
                            "where": traceback.format_exc()[-900:]}
    finally:
        store.close()
    del data
shutil.rmtree(folder, ignore_errors=True)
_report("done", payload_mb=largest, results=results)
"""

SUFFIX = {"mt940": "sta", "cfonb": "txt", "camt": "xml"}


def known_bug(fmt: str, payload: str) -> str | None:
    """The open bug a payload hits (a strict xfail while it is open); the fuzzers' bugs are in ``KNOWN_BUGS``."""
    return KNOWN_STATEMENT_BUGS.get((fmt, payload))


def large(payload: str) -> bool:
    """Payloads of a megabyte or more run alone, so that each one's peak memory is its own."""
    return any(mark in payload for mark in ("mb", "cap", "3k"))


def cases():
    """One child per large payload and per known bug (strict xfail); the small ones of a format share one."""
    for fmt in sorted(SUFFIX):
        names = sorted(name for f, name in HOSTILE_STATEMENTS if f == fmt)
        small = [n for n in names if not large(n) and not known_bug(fmt, n)]
        yield pytest.param(fmt, tuple(small), id=f"{fmt}-{len(small)}-small-payloads")
        for name in names:
            if large(name) or known_bug(fmt, name):
                bug = known_bug(fmt, name)
                marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
                yield pytest.param(fmt, (name,), marks=marks, id=f"{fmt}-{name}")


@pytest.mark.parametrize(("fmt", "payloads"), list(cases()))
def test_hostile_statements_are_refused_naming_the_file_within_bounds(fmt, payloads):
    result = run_bounded(CHILD, memory_mb=1536, cpu_seconds=120, wall_seconds=300,
                         args=(fmt, json.dumps(list(payloads)), SUFFIX[fmt]))
    report = result.report
    assert report, f"child died without a report (rc={result.returncode}): {result.stderr[-1500:]}"
    for payload in payloads:
        outcome, expect = report["results"][payload], HOSTILE_STATEMENTS[(fmt, payload)][1]
        assert outcome["outcome"] in ("refused", "imported"), (payload, outcome)
        assert outcome["integrity"] == [] and outcome["audit_ok"], (payload, outcome)
        if outcome["outcome"] == "refused":
            assert outcome["file"] in outcome["error"], f"the error does not name the file: {payload}: {outcome}"
            assert outcome["quarantined"] == [outcome["file"]], (payload, outcome)
            assert outcome["lines"] == 0 and outcome["statements"] == 0, f"half a file imported: {payload}: {outcome}"
        else:
            assert expect == "either", f"a hostile {fmt} file was imported instead of refused: {payload}: {outcome}"
            assert outcome["quarantined"] == [] and outcome["lines"] == outcome["new"], (payload, outcome)
    # bounded memory: the payload, a few decoded copies of it, and the interpreter with lxml and the store
    assert report["peak_rss_mb"] < 6 * report["payload_mb"] + 200, report
