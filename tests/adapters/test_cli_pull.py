"""`cessio pull` and `cessio check` as a user runs them (real subprocesses, a CSV source)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "erp"
CESSIO = [sys.executable, "-m", "connector"]


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


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CESSIO, *args], capture_output=True, text=True, timeout=60)


def test_pull_prints_a_summary_and_is_idempotent(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = run("--config", str(config), "pull")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "sage: 3 new, 0 changed, 0 unchanged, 2 quarantined, 1 status changes"
    assert "\r" not in first.stderr  # no progress bar when stderr is not a terminal
    second = run("--config", str(config), "pull", "--source", "sage")
    assert second.stdout.strip() == "sage: 0 new, 0 changed, 0 unchanged, 0 quarantined, 0 status changes"


def test_unknown_source_is_a_config_error(tmp_path: Path) -> None:
    done = run("--config", str(write_config(tmp_path)), "pull", "--source", "nope")
    assert done.returncode == 2 and "no source named 'nope'" in done.stderr


def test_check_probes_the_source(tmp_path: Path) -> None:
    good = run("--config", str(write_config(tmp_path)), "check")
    assert "ok   source sage: 1 file(s) readable" in good.stdout
    bad = run("--config", str(write_config(tmp_path, path="missing")), "check")
    assert bad.returncode == 1 and "FAIL source sage" in bad.stdout
