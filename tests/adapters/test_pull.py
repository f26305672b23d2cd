"""connector.pull: several sources, one failing; adapter discovery; write-back bookkeeping."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from connector.config import parse_config
from connector.errors import InvariantViolation, StopAndAsk
from connector.pull import pull, record_payment_in_erp
from connector.registry import load_adapters
from tests.adapters.tryton_server import free_port

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"


def test_builtins_are_discovered() -> None:
    adapters = load_adapters()
    assert {"csv", "odoo", "tryton"} <= set(adapters)
    assert adapters["tryton"].supports_write_back and not adapters["csv"].supports_write_back


def test_a_failing_source_is_reported_and_the_others_still_run(store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CESSIO_TEST_PW", "x")
    shutil.copyfile(FIXTURES / "fr_sage.csv", tmp_path / "ventes.csv")
    config = parse_config(f'''
[company]
name = "Cessio Demo SAS"
legal_id = "732829320"

[sources.down]
type = "tryton"
url = "http://127.0.0.1:{free_port()}"
database = "erp"
login = "admin"
password = "env:CESSIO_TEST_PW"

[sources.sage]
type = "csv"
path = "{tmp_path / 'ventes.csv'}"
mapping = "fr_sage"

[sources.off]
type = "csv"
enabled = false
path = "{tmp_path / 'missing.csv'}"
''', path=tmp_path / "cessio.toml")
    down, sage = pull(config, store)
    assert down.error and "cannot connect" in down.error
    assert (sage.source, sage.new, sage.error) == ("sage", 3, None)
    assert store.get_cursor("down") is None  # nothing read, nothing moved


def test_write_back_refuses_sources_without_it_and_reused_references(store, tmp_path: Path) -> None:
    from adapters.csv_export import CsvExportAdapter
    from connector.money import Money
    from connector.pull import pull_source

    shutil.copyfile(FIXTURES / "fr_sage.csv", tmp_path / "ventes.csv")
    adapter = CsvExportAdapter("sage", {"path": str(tmp_path / "ventes.csv"), "mapping": "fr_sage",
                                        "_company": {"name": "Cessio Demo SAS"}})
    pull_source(store, adapter)
    with pytest.raises(StopAndAsk, match="no write-back"):
        record_payment_in_erp(store, adapter, invoice_id=1, amount=Money.parse("1", "EUR"),
                              date=dt.date(2026, 11, 1), reference="r1")
    with store.transaction():
        assert store.writeback_intent("sage", "r2", invoice_id=1, source_id="FA-0001",
                                      amount=Money.parse("10.00", "EUR"), date=dt.date.today()) is None
    with pytest.raises(InvariantViolation), store.transaction():
        store.writeback_intent("sage", "r2", invoice_id=1, source_id="FA-0001",
                               amount=Money.parse("11.00", "EUR"), date=dt.date.today())
