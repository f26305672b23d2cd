"""Every parser Cessio exposes to outside bytes, as a fuzz target ``f(data: bytes) -> None``.

The contract of each target: for any bytes, it returns or raises a :class:`~connector.errors.CessioError`
(a refusal that names the document). Anything else — ``KeyError``, ``IndexError``, ``UnicodeDecodeError``,
a ``RecursionError``, ``decimal.InvalidOperation`` — is a crash. Readers are found by importing their
public functions; a reader that is not built yet is simply absent from :func:`available_targets`.
``bench/fuzz.py`` fuzzes them with atheris; ``tests/reliability/test_fuzz.py`` replays every crash
fixture under ``tests/fixtures/reliability/crashes/<target>/`` and runs a short hypothesis pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from tests.reliability.harness import PROJECT

CRASH_FIXTURES = PROJECT / "tests" / "fixtures" / "reliability" / "crashes"
SEED_FIXTURES = PROJECT / "tests" / "fixtures" / "reliability" / "seeds"
SHARED_CORPUS = PROJECT.parent / "shared" / "corpus"


def _xmlsafe(data: bytes) -> None:
    from connector.xmlsafe import parse_xml

    parse_xml(data, source="fuzz.xml")


def _from(module: str, func: str, call: Callable[[Callable, bytes], object]) -> Callable[[], Callable[[bytes], None]]:
    """A lazy target: imported on first use so a reader that is not built yet is reported absent."""

    def load() -> Callable[[bytes], None]:
        target = getattr(importlib.import_module(module), func)

        def run(data: bytes) -> None:
            call(target, data)

        return run

    return load


def _csv_export() -> Callable[[bytes], None]:
    """The CSV export adapter reading one file (it reads paths, so each input goes through a temp file)."""
    import tempfile

    from adapters.csv_export import CsvExportAdapter

    folder = Path(tempfile.mkdtemp(prefix="cessio-fuzz-csv-"))
    path = folder / "fuzz.csv"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        adapter = CsvExportAdapter("fuzz", {"path": str(path), "mapping": "generic",
                                            "_company": {"name": "Fuzz SAS", "country": "FR"}})
        for _item in adapter.read(None):
            pass

    return run


# name -> (loader, seed globs inside ../shared/corpus)
TARGETS: dict[str, tuple[Callable[[], Callable[[bytes], None]], tuple[str, ...]]] = {
    "xmlsafe": (lambda: _xmlsafe, ("einvoice/en16931/ubl/examples/*.xml", "payments/genkgo-camt/*.xml")),
    "csv_export": (_csv_export, ()),
}



def register(name: str, module: str, func: str, call: Callable[[Callable, bytes], object],
             seeds: tuple[str, ...]) -> None:
    TARGETS[name] = (_from(module, func, call), seeds)


register("einvoice", "connector.einvoice.reader", "read_document",
         lambda read, data: read(data, source="fuzz-document"),
         ("einvoice/en16931/ubl/examples/*.xml", "einvoice/en16931/cii/examples/*.xml",
          "einvoice/zugferd-corpus/XML-Rechnung/CII/*.xml", "einvoice/zugferd-corpus/XML-Rechnung/FX/*.pdf",
          "einvoice/zugferd-corpus/ZUGFeRDv2/correct/Mustangproject/*.pdf"))


def _statement_reader(kind: str) -> Callable[[], Callable[[bytes], None]]:
    """One statement reader on raw bytes (``read_camt``, ``read_mt940``, ``read_cfonb``), and ``statements``:
    the content-detecting entry point :func:`adapters.statements.read_statement` every import goes through."""

    def load() -> Callable[[bytes], None]:
        if kind == "statements":
            from adapters.statements import read_statement

            def run(data: bytes) -> None:
                read_statement(data, "fuzz-statement")
        else:
            module = importlib.import_module(f"adapters.{kind}")
            read = getattr(module, f"read_{kind}")

            def run(data: bytes) -> None:
                read(data, f"fuzz.{kind}")

        return run

    return load


TARGETS["camt"] = (_statement_reader("camt"), ("payments/genkgo-camt/*.xml",))
TARGETS["mt940"] = (_statement_reader("mt940"), ("payments/wolph-mt940/*/*", "payments/wolph-mt940/*/*/*"))
TARGETS["cfonb"] = (_statement_reader("cfonb"), ("payments/pennylane-cfonb/*.txt",))
TARGETS["statements"] = (_statement_reader("statements"),
                         ("payments/genkgo-camt/*.xml", "payments/wolph-mt940/*/*", "payments/pennylane-cfonb/*.txt"))


# Open product bugs the fuzzers found, by target: (reason, predicate on the escaped exception). Inputs that hit
# one are replayed by ``test_fuzz.py`` as strict xfails (a fix turns them into failures until the entry goes);
# ``bench/fuzz.py`` counts them instead of stopping on them, so a long campaign explores past a known bug.
# None open now. Fixed: cfonb Unicode digits in an amount, mt940 entry day 00, blank :25:/:61: (their crashing
# inputs stay under tests/fixtures/reliability/crashes/ and are replayed as ordinary regression tests).
KNOWN_BUGS: dict[str, tuple[str, Callable[[BaseException], bool]]] = {}


def is_known_bug(name: str, exc: BaseException) -> bool:
    known = KNOWN_BUGS.get(name)
    return known is not None and known[1](exc)


def available_targets() -> dict[str, Callable[[bytes], None]]:
    found = {}
    for name, (load, _) in TARGETS.items():
        try:
            found[name] = load()
        except (ImportError, AttributeError):
            continue
    return found


def seed_files(name: str, limit: int = 40) -> list[Path]:
    """Seeds: our own small fixtures under ``tests/fixtures/reliability/seeds/<name>/``, then corpus files."""
    own = SEED_FIXTURES / name
    files: list[Path] = sorted(own.iterdir()) if own.is_dir() else []
    if SHARED_CORPUS.is_dir():
        for pattern in TARGETS[name][1]:
            files += sorted(SHARED_CORPUS.glob(pattern))
    return [f for f in files if f.is_file() and f.stat().st_size < 2_000_000][:limit]


def crash_fixtures(name: str) -> list[Path]:
    folder = CRASH_FIXTURES / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
