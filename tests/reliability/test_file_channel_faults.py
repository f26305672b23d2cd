"""The file channel under a full disk and I/O errors (scenario A10, second half; the SIGKILL half is in
tests/channels/test_fault_file_channel.py): ENOSPC on ``write`` and EIO on ``fsync`` while a bordereau
is released. The release fails (non-zero exit), never leaves a final file that is not the recorded one,
never marks a batch released without its file, and a rerun without the fault converges: one file per
batch. SQLite syncs with ``fdatasync`` and writes with ``pwrite64``, so these faults hit the channel's own
file writes and fsyncs, not the store.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.reliability.harness import PROJECT, child_env, strace_prefix, strace_usable

pytestmark = pytest.mark.skipif(not strace_usable(), reason="strace with ptrace is not available here")


def release(db, outbox, prefix=()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "tests.channels.release_driver", str(db), str(outbox),
                           "bpce", "bpce"], cwd=PROJECT, env=child_env(), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("inject", "trace"), [
    ("write:error=ENOSPC:when=1", "write"),
    ("write:error=ENOSPC:when=2", "write"),
    ("fsync:error=EIO:when=1", "fsync"),
    ("fsync:error=EIO:when=2", "fsync"),
    ("fsync:error=EIO:when=3", "fsync"),
])
def test_release_under_disk_full_or_eio_fails_cleanly_then_converges(tmp_path, inject, trace):
    faults = pytest.importorskip("tests.channels.test_fault_file_channel")
    db, outbox = tmp_path / "c.db", tmp_path / "outbox"
    faults._seed(db, batches=2)
    failed = release(db, outbox, strace_prefix(inject, trace))
    assert failed.returncode != 0, f"the release did not notice {inject}"
    faults._check_invariants(db, outbox, finished=False)
    done = release(db, outbox)
    assert done.returncode == 0, done.stderr[-2000:]
    faults._check_invariants(db, outbox, finished=True)


CLASSIFY = r"""
import sys
from connector.errors import CessioError
from tests.channels import release_driver
try:
    release_driver.main(*sys.argv[1:])
except CessioError as exc:
    print("CESSIO", type(exc).__name__, exc)
    sys.exit(3)
except BaseException as exc:
    print("OTHER", type(exc).__name__, exc)
    sys.exit(1)
"""


def test_disk_full_during_release_is_reported_as_a_cessio_error(tmp_path):
    faults = pytest.importorskip("tests.channels.test_fault_file_channel")
    db, outbox = tmp_path / "c.db", tmp_path / "outbox"
    faults._seed(db, batches=1)
    proc = subprocess.run([*strace_prefix("write:error=ENOSPC:when=1", "write"), sys.executable, "-c", CLASSIFY,
                           str(db), str(outbox), "bpce", "bpce"], cwd=PROJECT, env=child_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.startswith("CESSIO"), proc.stdout
