"""Connection, pragmas and visible transactions of the SQLite store.

Recipe (docs reliability §3.3): ``isolation_level=None`` so Python never opens hidden transactions,
WAL, ``synchronous=FULL`` (an acknowledged commit survives power loss), foreign keys on, a busy
timeout, and every write inside an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``. An I/O, full-disk or
corruption error is raised as :class:`~connector.errors.StoreError`: the caller must stop, never keep
writing on that connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.errors import InvariantViolation, RetryLater, StoreError

BUSY_TIMEOUT_MS = 30_000
MIN_SQLITE = (3, 35, 0)  # RETURNING, ON CONFLICT DO UPDATE


def translate_sqlite_error(exc: sqlite3.Error, what: str) -> Exception:
    """Map a sqlite3 error to Cessio's tree: busy → retry, constraint → invariant, I/O → stop."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, sqlite3.IntegrityError):
        return InvariantViolation(f"{what}: {exc}")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "database is locked" in str(exc):
        return RetryLater(f"{what}: store is busy ({name or exc})")
    return StoreError(f"{what}: {name + ' ' if name else ''}{exc}")


class StoreBase:
    """One connection to one store file. Not shared between threads: each job opens its own."""

    def __init__(self, path: str | Path, *, actor: str = "system", migrate: bool = True) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; Cessio needs "
                             f"{'.'.join(map(str, MIN_SQLITE))} or later")
        self.path = Path(path)
        self.actor = actor
        self._depth = 0
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), isolation_level=None,
                                        timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=True)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: could not switch to WAL (journal_mode={mode}); "
                                 "is it on a network file system?")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a corrupt file can yield undecodable errors
            raise translate_sqlite_error(exc, f"opening store {self.path}") from exc
        self.db = sqlite_utils.Database(self.conn)
        if migrate:
            self.migrate()

    # -- lifecycle --------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (idempotent); returns the names applied."""
        from connector.store.migrations import migrations

        pending = [m.name for m in migrations.pending(self.db)]
        if not pending:
            return []
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                # re-read under the write lock: another process may have migrated meanwhile
                pending = [m.name for m in migrations.pending(self.db)]
                migrations.apply(self.db)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, "migrating the store") from exc
        return pending

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[StoreBase]:
        """A write transaction (``BEGIN IMMEDIATE``). Nested calls join the outer transaction.

        Every state change and its audit row are written inside one of these.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, "starting a write transaction") from exc
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise translate_sqlite_error(exc, "committing") from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[StoreBase]:
        """A read transaction: every query inside sees the same consistent state."""
        if self._depth or self.conn.in_transaction:
            yield self
            return
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def require_transaction(self, what: str) -> None:
        if not self._depth:
            raise InvariantViolation(f"{what} must run inside store.transaction()")

    # -- SQL helpers (only the store package calls these) ------------------------------------------
    def _execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, sql.split("(")[0].strip()[:60]) from exc

    def _all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self._execute(sql, params).fetchall()

    def _one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self._execute(sql, params).fetchone()

    def _scalar(self, sql: str, params: Any = ()) -> Any:
        row = self._one(sql, params)
        return None if row is None else row[0]

    # -- health -----------------------------------------------------------------------------------
    def integrity_check(self, *, quick: bool = False) -> list[str]:
        """``PRAGMA quick_check``/``integrity_check`` and ``foreign_key_check``; [] when healthy."""
        rows = [r[0] for r in self._all("PRAGMA quick_check" if quick else "PRAGMA integrity_check")]
        problems = [r for r in rows if r != "ok"]
        problems += [f"foreign key: {tuple(r)}" for r in self._all("PRAGMA foreign_key_check")]
        return problems

    def backup_to(self, target: str | Path) -> None:
        """Online backup through SQLite's backup API (never a copy of the live file)."""
        dest = sqlite3.connect(str(target))
        try:
            self.conn.backup(dest)
        finally:
            dest.close()
