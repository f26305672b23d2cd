"""The adapter contract suite on the CSV export adapter (a real file in a temporary folder)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters.csv_export import CsvExportAdapter
from connector.testing import AdapterContract

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"
COMPANY = {"name": "Cessio Demo SAS", "country": "FR", "legal_id": "732829320"}


class TestCsvContract(AdapterContract):
    batch_option: ClassVar[dict[str, Any]] = {"batch_rows": 2}

    @pytest.fixture
    def export(self, tmp_path: Path) -> Path:
        target = tmp_path / "exports" / "sales.csv"
        target.parent.mkdir()
        shutil.copyfile(FIXTURES / "generic.csv", target)
        return target

    @pytest.fixture
    def make_adapter(self, export: Path):
        def make(**overrides) -> CsvExportAdapter:
            return CsvExportAdapter("csv-erp", {"path": str(export.parent), "mapping": "generic",
                                                "_company": COMPANY, **overrides})
        return make

    @pytest.fixture
    def bad_adapter(self, tmp_path: Path) -> CsvExportAdapter:
        return CsvExportAdapter("csv-erp", {"path": str(tmp_path / "missing"), "mapping": "generic",
                                            "_company": COMPANY})

    @pytest.fixture
    def change_one_record(self, export: Path):
        def change() -> str:
            text = export.read_text(encoding="utf-8")
            export.write_text(text.replace("INV-001,2026-10-01,2026-11-30,EUR,1200.00,1200.00",
                                           "INV-001,2026-10-01,2026-11-30,EUR,1200.00,200.00"), encoding="utf-8")
            return "INV-001"
        return change
