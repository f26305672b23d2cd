"""The one exception tree of Cessio, subclassed by what the caller should do.

- :class:`RetryLater`: a transient failure (network, busy factor, locked store). The work item stays
  where it is and is tried again at the next run; nothing is lost.
- :class:`Quarantine`: the *input* is at fault (a malformed invoice, a bad CSV row). The document is
  set aside with the file, the field and the reason, and the run goes on with the next one.
- :class:`StopAndAsk`: continuing could do harm (bad configuration, a corrupt store, a factor saying
  something Cessio cannot interpret). The agent stops that work and a human must look.

Third-party exceptions are wrapped at the boundary (:func:`wrap_errors`), so that the rest of the code
only ever catches these.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator


class CessioError(Exception):
    """Root of every error Cessio raises on purpose."""

    exit_code = 1


class RetryLater(CessioError):
    """Transient: try the same thing again later (the outbox, cursor and claims stay as they are).

    ``retry_after`` is a hint in seconds (for instance a factor's ``Retry-After`` header).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP-date) as seconds for :class:`RetryLater`, clamped to
    ``[0, cap]``: it is an untrusted server value ("inf", a date in 2099 or garbage must not stall a job)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), cap)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, min(moment.timestamp() - time.time(), cap))


class Quarantine(CessioError):
    """The input is bad: quarantine it with this reason and go on with the next document.

    ``source`` names the file or record (path, ``source:id``), ``field`` the offending field or XPath
    (when known), ``reason`` says what is wrong in words a finance person can act on.
    """

    def __init__(self, reason: str, *, source: str | None = None, field: str | None = None,
                 rule: str | None = None) -> None:
        self.reason = reason
        self.source = source
        self.field = field
        self.rule = rule
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.source:
            parts.append(str(self.source))
        if self.field:
            parts.append(f"field {self.field}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def located(self, source: str) -> Quarantine:
        """Return the same error with ``source`` filled in (parsers rarely know the file name)."""
        if self.source:
            return self
        return type(self)(self.reason, source=source, field=self.field, rule=self.rule)


class UnsupportedDocument(Quarantine):
    """A document of a kind Cessio does not read (an order, FatturaPA, a PDF without XML...)."""

    def __init__(self, what: str, *, source: str | None = None) -> None:
        super().__init__(f"unsupported document: {what}", source=source)
        self.what = what

    def located(self, source: str) -> UnsupportedDocument:
        return self if self.source else UnsupportedDocument(self.what, source=source)


class UnsafeDocument(Quarantine):
    """A document refused by the safety checks (DTD, entities, size or time caps, PDF bombs)."""


class StopAndAsk(CessioError):
    """Continuing could cause harm: stop this work and ask a human."""

    exit_code = 3


class ConfigError(StopAndAsk):
    """The configuration is invalid. ``key`` is the dotted path of the offending key."""

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        self.key = key
        self.file = file
        where = ""
        if file:
            where += f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class StoreError(StopAndAsk):
    """The store refused a write in a way that must not be retried blindly (I/O error, disk full,
    corruption, an invariant violated). The process should exit and be restarted by its supervisor."""


class InvariantViolation(StoreError):
    """A business invariant would be broken (double assignment, over-allocation, currency mix)."""


class NotBuiltYet(CessioError):
    """A command of the product's interface whose capability is not implemented in this version."""

    exit_code = 4


class CurrencyMismatch(InvariantViolation, ValueError):
    """Arithmetic between amounts of two different currencies."""


class MoneyError(ValueError, CessioError):
    """An amount that cannot be represented exactly in its currency (float, excess decimals, NaN)."""


@contextlib.contextmanager
def wrap_errors(what: str) -> Iterator[None]:
    """Translate third-party exceptions raised inside the block into Cessio's tree.

    Network errors become :class:`RetryLater`; a SQLite I/O, full-disk or corruption error becomes
    :class:`StoreError`; a locked database becomes :class:`RetryLater`.
    """
    import sqlite3

    import requests

    try:
        yield
    except CessioError:
        raise
    except requests.exceptions.ConnectTimeout as exc:
        raise RetryLater(f"{what}: connection timed out ({exc.__class__.__name__})") from exc
    except requests.exceptions.ConnectionError as exc:
        raise RetryLater(f"{what}: connection failed ({exc.__class__.__name__})") from exc
    except requests.exceptions.Timeout as exc:
        raise RetryLater(f"{what}: timed out ({exc.__class__.__name__})") from exc
    except sqlite3.OperationalError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith("SQLITE_BUSY") or "locked" in str(exc):
            raise RetryLater(f"{what}: store is busy ({name or exc})") from exc
        raise StoreError(f"{what}: store error {name or ''} {exc}".strip()) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{what}: store error {getattr(exc, 'sqlite_errorname', '')} {exc}") from exc
