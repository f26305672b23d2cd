"""`cessio pull` and `cessio check` as a user runs them (real subprocesses, a CSV source)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import run_cessio

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"


def write_config(tmp_path: Path, path: str = "exports") -> Path:
    (tmp_path / "exports").mkdir(exist_ok=True)
    shutil.copyfile(FIXTURES / "fr_sage.csv", tmp_path / "exports" / "ventes.csv")
    config = tmp_path / "cessio.toml"
    config.write_text(f'''
[store]
path = "cessio.db"

[company]
name = "Cessio Demo SAS"
legal_id = "732829320"

[sources.sage]
type = "csv"
path = "{path}"
mapping = "fr_sage"
''', encoding="utf-8")
    return config


def test_pull_prints_a_summary_and_is_idempotent(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = run_cessio("--config", str(config), "pull")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "sage: 3 new, 0 changed, 0 unchanged, 2 quarantined, 1 status changes"
    assert "\r" not in first.stderr  # no progress bar when stderr is not a terminal
    second = run_cessio("--config", str(config), "pull", "--source", "sage")
    assert second.stdout.strip() == "sage: 0 new, 0 changed, 0 unchanged, 0 quarantined, 0 status changes"


def test_unknown_source_is_a_config_error(tmp_path: Path) -> None:
    done = run_cessio("--config", str(write_config(tmp_path)), "pull", "--source", "nope")
    assert done.returncode == 2 and "no source named 'nope'" in done.stderr


def test_check_probes_the_source(tmp_path: Path) -> None:
    good = run_cessio("--config", str(write_config(tmp_path)), "check")
    assert "ok   source sage: 1 file(s) readable" in good.stdout
    bad = run_cessio("--config", str(write_config(tmp_path, path="missing")), "check")
    assert bad.returncode == 1 and "FAIL source sage" in bad.stdout
