"""Shared fixtures: a fresh store per test, and the shared corpus (skipped cleanly when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.store import Store

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture
def store(tmp_path: Path):
    """A migrated store in a temporary folder, closed after the test."""
    db = Store(tmp_path / "cessio.db", actor="test")
    yield db
    db.close()


@pytest.fixture
def corpus() -> Path:
    """``../shared/corpus``; tests that use it are skipped when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present beside the project")
    return CORPUS
