"""Replies of file-based factors: acknowledgement/rejection files, CSV account statements, ISO 20022
tsin.007/008/013 messages and the factor account's camt.053, turned into the same factor events as the
API channel.

Reads: a reply file's bytes and, for CSV, a layout from ``mappings/factors/replies/<name>.toml``
(column titles, charset, decimal mark, date format, the factor's movement codes → our event kinds).
Writes: :class:`~connector.model.FactorEvent` objects and, through :func:`import_reply_file`, the
``factor_events`` rows (once per factor event id) and the file's bytes as a kept document. A file with
one bad line is quarantined whole (file, line, field, reason) and nothing of it is imported.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connector.channels import iso20022
from connector.errors import ConfigError, Quarantine
from connector.model import FactorEvent
from connector.money import Money

REPLY_DIR = Path(__file__).resolve().parent.parent.parent / "mappings" / "factors" / "replies"
MAX_REPLY_BYTES = 50 * 1024 * 1024
EVENT_KINDS = frozenset({
    "acknowledged", "rejected", "accepted", "declined", "funding", "fee", "interest", "reserve",
    "reserve_release", "collection", "chargeback", "not_financed", "indirect_payment", "unclassified",
})
REQUIRED_COLUMNS = ("date", "movement", "amount", "currency")


@dataclass(frozen=True)
class ReplyLayout:
    name: str
    delimiter: str
    charset: str
    decimal_mark: str
    date_format: str
    columns: Mapping[str, str]
    movements: Mapping[str, str]


@functools.cache
def load_reply_layout(name: str) -> ReplyLayout:
    path = REPLY_DIR / f"{name}.toml"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in REPLY_DIR.glob("*.toml")))
        raise ConfigError(f"no reply layout {name!r} (have: {have})", key="reply_layout")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    columns = data.get("columns") or {}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(f"columns {missing} must be declared", file=str(path), key="columns")
    movements = {str(k): str(v) for k, v in (data.get("movements") or {}).items()}
    unknown = sorted(set(movements.values()) - EVENT_KINDS)
    if unknown:
        raise ConfigError(f"unknown event kinds {unknown} (known: {sorted(EVENT_KINDS)})", file=str(path),
                          key="movements")
    return ReplyLayout(name=data.get("name", name), delimiter=data.get("delimiter", ";"),
                       charset=data.get("charset", "utf-8"), decimal_mark=data.get("decimal_mark", "."),
                       date_format=data.get("date_format", "%Y-%m-%d"), columns=columns, movements=movements)


def _amount(text: str, layout: ReplyLayout, currency: str, *, where: str, field: str) -> Money:
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "")
    if layout.decimal_mark == ",":
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        return Money.parse(Decimal(cleaned), currency)
    except (InvalidOperation, ValueError, ArithmeticError) as exc:
        raise Quarantine(f"{text!r} is not an amount in {currency} ({exc})", source=where, field=field) from None


def read_csv_reply(data: bytes, layout: ReplyLayout, *, factor: str, source: str) -> list[FactorEvent]:
    """Every line of a CSV reply as a factor event; any bad line raises :class:`Quarantine`."""
    if len(data) > MAX_REPLY_BYTES:
        raise Quarantine(f"{len(data)} bytes is over the {MAX_REPLY_BYTES}-byte cap", source=source)
    try:
        text = data.decode(layout.charset).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise Quarantine(f"not {layout.charset} at byte {exc.start}", source=source) from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
    titles = reader.fieldnames or []
    for ours in REQUIRED_COLUMNS:
        if layout.columns[ours] not in titles:
            raise Quarantine(f"column {layout.columns[ours]!r} is missing (layout {layout.name})", source=source,
                             field=layout.columns[ours])
    digest = hashlib.sha256(data).hexdigest()[:16]
    events = []
    for line_no, row in enumerate(reader, start=2):
        where = f"{source}:{line_no}"

        def cell(ours: str, row: dict[str, str] = row) -> str:
            title = layout.columns.get(ours)
            return (row.get(title) or "").strip() if title else ""

        code = cell("movement")
        if code not in layout.movements:
            raise Quarantine(f"unknown movement code {code!r}", source=where, field=layout.columns["movement"])
        currency = cell("currency")
        try:
            date = dt.datetime.strptime(cell("date"), layout.date_format).date()
        except ValueError:
            raise Quarantine(f"{cell('date')!r} is not a date as {layout.date_format}", source=where,
                             field=layout.columns["date"]) from None
        try:
            amount = _amount(cell("amount"), layout, currency, where=where, field=layout.columns["amount"])
            vat = _amount(cell("vat"), layout, currency, where=where, field=layout.columns["vat"]) \
                if cell("vat") else None
        except ValueError as exc:  # an unknown currency code
            raise Quarantine(str(exc), source=where, field=layout.columns["currency"]) from None
        event_id = cell("event_id") or f"{digest}:{line_no}"
        events.append(FactorEvent(
            factor=factor, event_id=f"{layout.name}:{event_id}", kind=layout.movements[code], occurred_on=date,
            amount=amount, vat=vat, reason_code=cell("reason") or None,
            detail={"number": cell("document") or None, "debtor": cell("debtor") or None, "movement": code,
                    "file": source, "line": line_no}))
    return events


def read_reply_file(data: bytes, *, factor: str, source: str, csv_layout: str | None = None) -> list[FactorEvent]:
    """ISO 20022 replies are recognised by their namespace; anything else needs a CSV layout."""
    head = data[:512].lstrip()
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        if b"camt.053." in data[:2048]:  # the factor account's statement
            from connector.channels.factor_camt import read_factor_camt

            return read_factor_camt(data, factor=factor, source=source)
        return iso20022.read_reply(data, factor=factor, source=source)
    if csv_layout is None:
        raise Quarantine("not XML and no CSV reply layout configured for this factor", source=source)
    return read_csv_reply(data, load_reply_layout(csv_layout), factor=factor, source=source)


# our reply kinds → the assignment engine's event kinds (connector/factors/events.py EFFECTS), so that a
# file reply moves the invoice's financing state and the factor's running accounts exactly as the API does
API_KINDS = {
    "accepted": "assignment.accepted", "financed": "assignment.accepted", "declined": "assignment.declined",
    "not_financed": "assignment.declined", "rejected": "assignment.declined", "funding": "funding.paid",
    "fee": "fee.charged", "reserve": "reserve.held", "reserve_release": "reserve.released",
    "collection": "collection.received", "chargeback": "chargeback",
}


def record_events(store: Any, events: list[FactorEvent]) -> int:
    """Record events once each (inside a transaction) through the engine's factor-event bookkeeping:
    amounts are stored unsigned, the direction being the kind's; returns how many were new."""
    from connector.factors.events import EFFECTS, ledger_movements

    store.require_transaction("record_events()")
    new = 0
    for event in events:
        kind = API_KINDS.get(event.kind, event.kind)
        amount = None if event.amount is None else abs(event.amount)
        vat = None if event.vat is None else abs(event.vat)
        amount_minor = None if amount is None else amount.minor_units
        vat_minor = None if vat is None else vat.minor_units
        row = {"event_id": event.event_id, "kind": kind, "invoice_key": event.invoice_key,
               "amount_minor": amount_minor, "vat_minor": vat_minor,
               "currency": amount.currency if amount is not None else None, "reason_code": event.reason_code,
               "occurred_on": event.occurred_on.isoformat(), "detail": {**event.detail, "reply_kind": event.kind}}
        state = EFFECTS.get(kind, (None, []))[0]
        new += bool(store.record_factor_event(event.factor, row, ledger_movements(kind, amount_minor, vat_minor),
                                              state))
    return new


def import_reply_file(store: Any, path: Path, *, factor: str, csv_layout: str | None = None) -> dict[str, Any]:
    """Import one reply file: all its events in one transaction, or the whole file quarantined."""
    data = Path(path).read_bytes()
    source = str(path)
    try:
        events = iso20022.resolve_invoice_keys(
            store, read_reply_file(data, factor=factor, source=source, csv_layout=csv_layout))
    except Quarantine as exc:
        with store.transaction():
            store.quarantine(exc.located(source), source=f"factor:{factor}", location=source, content=data)
        return {"file": source, "quarantined": str(exc), "new": 0, "seen": 0}
    with store.transaction():
        store.keep_document(data, file_name=Path(path).name)
        new = record_events(store, events)
        store.resolve_quarantine(source=f"factor:{factor}", location=source)
    return {"file": source, "events": len(events), "new": new, "seen": len(events) - new}


# -- `cessio statements import`: factor replies are recognised by content and routed here ----------------

def _file_factors(config: Any) -> dict[str, dict[str, Any]]:
    factors = getattr(config, "factors", None) or {}
    return {name: f for name, f in factors.items() if f.get("channel") in ("file", "iso20022")}


def reply_owner(data: bytes, config: Any, *, source: str) -> tuple[str, str | None] | None:
    """``(factor, csv layout)`` when ``data`` is a factor reply (a tsin.007/008/013 message, or a CSV whose
    header has every column its factor's ``reply_layout`` requires); ``None`` when it is not one (a bank
    statement, for instance). A tsin reply with several file factors configured cannot be attributed:
    :class:`Quarantine` says so."""
    head = data[:4096]
    factors = _file_factors(config)
    if head.lstrip().startswith(b"<"):
        if not any(f"tsin.{n}".encode() in head for n in ("007", "008", "013")):
            return None
        if len(factors) != 1:
            names = ", ".join(sorted(factors)) or "none"
            raise Quarantine(f"an ISO 20022 factor reply, but {len(factors)} file/iso20022 factors are configured "
                             f"({names}): drop it in that factor's replies_dir instead", source=source)
        return next(iter(factors)), None
    for name, factor in sorted(factors.items()):
        if not factor.get("reply_layout"):
            continue
        layout = load_reply_layout(factor["reply_layout"])
        try:
            first = head.decode(layout.charset, errors="replace").lstrip("\ufeff").splitlines()[0]
        except IndexError:
            return None
        titles = {t.strip().strip('"') for t in first.split(layout.delimiter)}
        if all(layout.columns[c] in titles for c in REQUIRED_COLUMNS):
            return name, layout.name
    return None


def import_factor_replies(store: Any, config: Any, paths: list[Path]) -> tuple[list[str], list[Path], bool]:
    """Import the factor replies among ``paths``; returns one line per reply, the other paths (left to the
    bank statement importer) and whether any reply failed."""
    lines, rest, failed = [], [], False
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError:
            rest.append(path)  # the statement importer reports unreadable files
            continue
        try:
            owner = reply_owner(data, config, source=str(path))
        except Quarantine as exc:
            lines.append(f"{path}: not imported: {exc}")
            failed = True
            continue
        if owner is None:
            rest.append(path)
            continue
        result = import_reply_file(store, Path(path), factor=owner[0], csv_layout=owner[1])
        if "quarantined" in result:
            lines.append(f"{path}: factor {owner[0]} reply quarantined: {result['quarantined']}")
            failed = True
        else:
            lines.append(f"{path}: factor {owner[0]} reply: {result['events']} events, {result['new']} new, "
                         f"{result['seen']} already known")
    return lines, rest, failed
