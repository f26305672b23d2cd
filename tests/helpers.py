"""Plain helpers shared by tests in several folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CESSIO = [sys.executable, "-m", "connector"]


def run_cessio(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``cessio ARGS`` as a user runs it: a real subprocess of this interpreter, stdout and stderr captured as
    text. The caller asserts on the exit code."""
    return subprocess.run([*CESSIO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
