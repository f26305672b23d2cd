"""The single-agent lock: ``fcntl.flock`` on ``<store>.agent.lock`` beside the store, never on the DB.

The kernel drops a flock when its process dies, however it dies, so a crashed agent never leaves the
lock stuck; the PID written inside is only a hint for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from connector.errors import StopAndAsk


class AgentAlreadyRunning(StopAndAsk):
    """Another agent holds the lock of this store (APScheduler 3 cannot coordinate two schedulers)."""


def lock_path_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".agent.lock")


class AgentLock:
    """Hold it for the life of the agent: ``with AgentLock(store_path): ...``."""

    def __init__(self, store_path: Path) -> None:
        self.path = lock_path_for(Path(store_path))
        self._fd: int | None = None

    def acquire(self) -> AgentLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AgentAlreadyRunning(f"another agent (pid {holder}) is running on this store "
                                      f"(lock {self.path}); refusing to start a second one") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AgentLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
