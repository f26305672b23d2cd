"""The adapter contract every ERP source implements (Tryton, Odoo, CSV exports, third-party plugins).

An adapter is a class registered under the ``cessio.adapters`` entry points (built-ins in
``adapters.BUILTINS``). It is built as ``AdapterClass(name=..., options=...)`` from a ``[sources.NAME]``
table whose extra keys it declares in ``config_keys``, and offers:

- :meth:`Adapter.check` — connectivity and permissions, no side effects; returns a one-line detail or
  raises a :class:`~connector.errors.CessioError` (``ConfigError`` for a bad config, ``RetryLater`` for
  an unreachable server).
- :meth:`Adapter.discover` — what the source offers (companies, journals, currencies, streams).
- :meth:`Adapter.read` — a generator over :class:`~connector.model.Invoice` (invoices and credit
  notes, with ``erp_status``), :class:`StatusChange`, :class:`Rejected` (a record that failed mapping)
  and :class:`Checkpoint` (everything yielded before it is covered by its cursor). The generator's
  *return value* is the final cursor. :mod:`connector.pull` commits the data and the cursor of each
  checkpoint in one transaction, so a crash re-reads from the last checkpoint: nothing is skipped and
  re-reading is harmless (the store deduplicates by content).
- optional write-back, when ``supports_write_back`` is true::

      record_payment(*, source_id: str, amount: Money, date: datetime.date, reference: str) -> str

  Record in the ERP that the invoice ``source_id`` (the id the adapter put in ``Invoice.source_id``)
  received ``amount`` on ``date``, so that the ERP shows it paid (or partially paid). ``reference``
  is the caller's idempotency key: the adapter first looks for a payment it already created with that
  reference and returns its id instead of creating a second one, so calling it again after a timeout
  or a crash is safe. Returns the ERP's id of the payment (a move, a payment record...). Raises
  ``RetryLater`` on transient failures and ``StopAndAsk`` when the ERP refuses.

Cursors are plain JSON data owned by the adapter (``None`` before the first read).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connector.config import Key
from connector.errors import ConfigError, Quarantine, StopAndAsk
from connector.model import Invoice, Party
from connector.money import Money

# Statuses an ERP can report for an invoice, as Cessio names them.
ERP_STATUSES = ("open", "partially_paid", "paid", "cancelled", "credited", "partially_credited")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The ERP says invoice ``source_id`` is now ``status`` (one of :data:`ERP_STATUSES`)."""

    source_id: str
    status: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ERP_STATUSES:
            raise ValueError(f"unknown ERP status {self.status!r}")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source record that could not be mapped: it is quarantined and the read goes on.

    ``location`` names it for a person (``export.csv:line 12``, ``tryton:account.invoice,42``).
    """

    location: str
    error: Quarantine
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything yielded so far is covered by ``cursor``: commit it together with that data."""

    cursor: Any


ReadItem = Invoice | StatusChange | Rejected | Checkpoint
ReadStream = Generator[ReadItem, None, Any]


class Adapter:
    """Base class of source adapters. Subclasses set ``type_name``, ``config_keys`` and implement
    :meth:`check`, :meth:`discover` and :meth:`read`."""

    type_name: ClassVar[str] = ""
    config_keys: ClassVar[dict[str, Key]] = {}
    supports_write_back: ClassVar[bool] = False

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = dict(options or {})

    # -- helpers for subclasses --------------------------------------------------------------------
    def option(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        """An option of ``[sources.NAME]``; ``required`` ones raise a ConfigError naming the key."""
        value = self.options.get(key)
        if value is None or value == "":
            if required:
                raise ConfigError("required key is missing", key=f"sources.{self.name}.{key}")
            return default
        return value

    def company(self) -> dict[str, Any]:
        """The ``[company]`` section, handed over by :mod:`connector.pull` as ``options["_company"]``."""
        return self.options.get("_company") or {}

    # -- the contract --------------------------------------------------------------------------------
    def check(self) -> str:
        """Probe connectivity and permissions without side effects; a one-line detail."""
        raise NotImplementedError

    def discover(self) -> dict[str, Any]:
        """What the source offers: ``{"streams": [...], "companies": [...], "currencies": [...]}``."""
        raise NotImplementedError

    def read(self, cursor: Any) -> ReadStream:
        """Yield invoices, status changes, rejects and checkpoints after ``cursor``; return the new cursor."""
        raise NotImplementedError

    def record_payment(self, *, source_id: str, amount: Money, date: dt.date, reference: str) -> str:
        """Write a reconciled payment back to the ERP (see the module docstring); idempotent by ``reference``."""
        raise StopAndAsk(f"source {self.name} ({self.type_name}) cannot record payments")

    def close(self) -> None:
        """Release connections (sessions, files); called by :mod:`connector.pull` after each run."""


# Characters no invoice field may hold: what XML 1.0 refuses (C0 controls, U+FFFE/U+FFFF, lone surrogates),
# DEL and the C1 controls (in an export they almost always mean a windows-1252 file read as latin-1), and
# tab / line breaks outside the address lines. One of them stored in a debtor name would break every
# bordereau and ISO 20022 file written later, so the record is quarantined, never silently cleaned:
# a name or a number changed by Cessio would no longer match the ERP's.
_UNSAFE_ANY = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_UNSAFE_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def unsafe_character(text: str | None, *, multiline: bool = False) -> str | None:
    r"""Why ``text`` cannot be stored in an invoice field (the first bad character, named), or ``None``.

    >>> unsafe_character("AC\x00ME")
    'control character U+0000 (NULL) at position 3'
    >>> unsafe_character("12 rue A\nBâtiment B", multiline=True) is None
    True
    """
    if not text:
        return None
    found = (_UNSAFE_MULTILINE if multiline else _UNSAFE_ANY).search(text)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "") or {"\x00": "NULL", "\t": "TAB", "\n": "LINE FEED",
                                          "\r": "CARRIAGE RETURN"}.get(
        char, "control" if ord(char) < 0xD800 else "not a character")
    if 0x80 <= ord(char) <= 0x9F:
        name += "; a windows-1252 file declared as latin-1?"
    kind = "character" if ord(char) >= 0xD800 else "control character"
    return f"{kind} U+{ord(char):04X} ({name}) at position {found.start() + 1}"


def _party_texts(prefix: str, party: Party | None) -> list[tuple[str, str | None, bool]]:
    if party is None:
        return []
    out = [(f"{prefix}.name", party.name, False), (f"{prefix}.vat_id", party.vat_id, False),
           (f"{prefix}.legal_id", party.legal_id, False), (f"{prefix}.erp_id", party.erp_id, False)]
    if party.address is not None:
        out += [(f"{prefix}.address.lines", "\n".join(party.address.lines), True),
                (f"{prefix}.address.city", party.address.city, False),
                (f"{prefix}.address.postal_code", party.address.postal_code, False)]
    return out


def invoice_text_problem(invoice: Invoice) -> tuple[str, str] | None:
    """``(field, reason)`` when a text of ``invoice`` holds a character no invoice may store (see
    :func:`unsafe_character`); ``None`` when every text is clean. The safety net :mod:`connector.pull`
    applies to every adapter's output, third-party ones included."""
    texts = [("number", invoice.number, False), ("order_reference", invoice.order_reference, False),
             ("contract_reference", invoice.contract_reference, False),
             ("buyer_reference", invoice.buyer_reference, False),
             ("payment.reference", invoice.payment.reference, False), ("payment.iban", invoice.payment.iban, False),
             ("preceding_invoices", "".join(invoice.preceding_invoices), False),
             ("notes", "\n".join(invoice.notes), True),
             *_party_texts("buyer", invoice.buyer), *_party_texts("seller", invoice.seller),
             *_party_texts("payee", invoice.payee)]
    single = "".join(text for _, text, multiline in texts if text and not multiline)
    multi = "".join(text for _, text, multiline in texts if text and multiline)
    if _UNSAFE_ANY.search(single) is None and _UNSAFE_MULTILINE.search(multi) is None:
        return None
    for field_name, text, multiline in texts:
        reason = unsafe_character(text, multiline=multiline)
        if reason is not None:
            return field_name, reason
    return None


def status_from_amounts(total: Money, open_amount: Money, *, state: str = "posted") -> str:
    """The Cessio status of a posted invoice from its total and what remains to pay.

    >>> from connector.money import Money
    >>> status_from_amounts(Money.parse("100", "EUR"), Money.parse("0", "EUR"))
    'paid'
    >>> status_from_amounts(Money.parse("100", "EUR"), Money.parse("40", "EUR"))
    'partially_paid'
    """
    if state == "cancelled":
        return "cancelled"
    if open_amount.is_zero() or state == "paid":
        return "paid"
    if abs(open_amount) < abs(total):
        return "partially_paid"
    return "open"


__all__ = ["ERP_STATUSES", "Adapter", "Checkpoint", "Invoice", "ReadItem", "ReadStream", "Rejected",
           "StatusChange", "invoice_text_problem", "status_from_amounts", "unsafe_character"]
