"""Invoices with versions, original documents, and source cursors.

An invoice is identified by its ``invoice_key`` (seller, kind, number). Re-reading it with the same
business content changes nothing; with different content it becomes a new version and the difference
is recorded in ``invoice_versions.diff`` and the audit log: never silently overwritten.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from typing import Any

from connector.clock import utc_iso
from connector.model import FinancingState, Invoice, canonical_json, canonical_text, invoice_texts
from connector.store.base import translate_sqlite_error


@dataclass(frozen=True)
class SaveResult:
    status: str  # "new" | "changed" | "unchanged"
    invoice_id: int
    version: int
    diff: dict[str, Any] | None = None


def _flatten(data: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"a.b": leaf}`` for every leaf of nested dicts (one shared dict: no merging of partial results)."""
    if out is None:
        out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                _flatten(value, name, out)
            else:
                out[name] = value
    else:
        out[prefix] = data
    return out


def invoice_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{"amount_due.amount": ["100.00", "90.00"], ...}`` for every leaf that differs."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return {key: [flat_old.get(key), flat_new.get(key)]
            for key in sorted(set(flat_old) | set(flat_new))
            if flat_old.get(key) != flat_new.get(key)}


_BATCH_SQL_VARIABLES = 500


def invoice_data_and_fingerprint(invoice: Invoice) -> tuple[dict[str, Any], str, str]:
    """``(invoice.to_dict(), invoice.fingerprint(), canonical_json(data))`` from one walk of the invoice."""
    text, fingerprint = _text_and_fingerprint(invoice)
    return json.loads(text), fingerprint, text


def _text_and_fingerprint(invoice: Invoice) -> tuple[str, str]:
    """The stored canonical JSON of ``invoice`` and its fingerprint (:meth:`Invoice.fingerprint`)."""
    text, business = invoice_texts(invoice)
    return text, hashlib.sha256(business.encode()).hexdigest()


def _created_payload(invoice: Invoice, fingerprint: str) -> str:
    """The canonical JSON of an ``invoice.created`` audit payload (keys in sorted order): ``{"amount_due",
    "fingerprint", "invoice_key", "source", "version": 1}``, written directly, one per new invoice."""
    return (f'{{"amount_due":{canonical_text(invoice.amount_due)},"fingerprint":{_json_string(fingerprint)},'
            f'"invoice_key":{_json_string(invoice.invoice_key)},"source":{canonical_text(invoice.source)},'
            f'"version":1}}')


class InvoicesMixin:
    # -- original documents -----------------------------------------------------------------------
    def keep_document(self, content: bytes, *, file_name: str | None = None,
                      media_type: str | None = None) -> str:
        """Store the original bytes once (by SHA-256) and return the hash."""
        self.require_transaction("keep_document()")
        digest = hashlib.sha256(content).hexdigest()
        self._execute(
            "INSERT OR IGNORE INTO documents (sha256, size, media_type, file_name, received_at, content) "
            "VALUES (?, ?, ?, ?, ?, ?)", (digest, len(content), media_type, file_name, utc_iso(), content))
        return digest

    def document(self, sha256: str) -> bytes | None:
        return self._scalar("SELECT content FROM documents WHERE sha256 = ?", (sha256,))

    # -- invoices ---------------------------------------------------------------------------------
    def save_invoice(self, invoice: Invoice) -> SaveResult:
        """Insert a new invoice, or a new version when its content changed; audited."""
        self.require_transaction("save_invoice()")
        text, fingerprint = _text_and_fingerprint(invoice)
        now = utc_iso()
        row = self._one("SELECT id, current_version FROM invoices WHERE invoice_key = ?",
                        (invoice.invoice_key,))
        columns = {
            "source": invoice.source, "source_id": invoice.source_id, "number": invoice.number,
            "kind": invoice.kind.value, "type_code": invoice.type_code,
            "seller_key": invoice.seller.key, "buyer_key": invoice.buyer.key,
            "buyer_name": invoice.buyer.name, "buyer_country": invoice.buyer.country,
            "currency": invoice.currency, "issue_date": invoice.issue_date.isoformat(),
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
            "total_gross_minor": invoice.total_gross.minor_units,
            "amount_due_minor": invoice.amount_due.minor_units,
            "erp_status": invoice.erp_status,
        }
        if row is None:
            names = ", ".join(columns)
            marks = ", ".join("?" for _ in columns)
            cursor = self._execute(
                f"INSERT INTO invoices (invoice_key, {names}, current_version, financing_state, "
                f"created_at, updated_at) VALUES (?, {marks}, 1, ?, ?, ?)",
                (invoice.invoice_key, *columns.values(), FinancingState.NEW.value, now, now))
            invoice_id = cursor.lastrowid
            self._insert_version(invoice_id, 1, fingerprint, invoice, text, None, now)
            self.audit_text("invoice.created", f"invoice:{invoice_id}", _created_payload(invoice, fingerprint))
            return SaveResult("new", invoice_id, 1)

        invoice_id, version = row["id"], row["current_version"]
        current = self._one("SELECT fingerprint, data FROM invoice_versions WHERE invoice_id = ? "
                            "AND version = ?", (invoice_id, version))
        if current["fingerprint"] == fingerprint:
            if invoice.erp_status is not None:
                self._update_erp_status(invoice_id, invoice.erp_status)
            return SaveResult("unchanged", invoice_id, version)
        diff = invoice_diff(json.loads(current["data"]), json.loads(text))
        version += 1
        sets = ", ".join(f"{name} = ?" for name in columns)
        self._execute(f"UPDATE invoices SET {sets}, current_version = ?, updated_at = ? WHERE id = ?",
                      (*columns.values(), version, now, invoice_id))
        self._insert_version(invoice_id, version, fingerprint, invoice, text, diff, now)
        self.audit("invoice.changed", f"invoice:{invoice_id}",
                   {"invoice_key": invoice.invoice_key, "version": version, "fingerprint": fingerprint,
                    "diff": diff})
        return SaveResult("changed", invoice_id, version, diff)

    def save_invoices(self, invoices: Sequence[Invoice]) -> list[SaveResult]:
        """:meth:`save_invoice` for many invoices in the caller's transaction, in order, with the same
        results, rows and audit rows (one ``invoice.created`` per new invoice, chained in order), but a
        few statements per batch instead of several per invoice: new and unchanged invoices are looked
        up, inserted and audited together; a changed invoice, or a key seen twice in the batch, goes
        through :meth:`save_invoice` after the batch, in order."""
        self.require_transaction("save_invoices()")
        if not invoices:
            return []
        keys = list(dict.fromkeys(invoice.invoice_key for invoice in invoices))
        known: dict[str, Any] = {}
        for start in range(0, len(keys), _BATCH_SQL_VARIABLES):
            chunk = keys[start:start + _BATCH_SQL_VARIABLES]
            marks = ", ".join("?" for _ in chunk)
            for row in self._all(
                    f"SELECT i.invoice_key, i.id, i.current_version, i.erp_status, v.fingerprint FROM invoices i "
                    f"JOIN invoice_versions v ON v.invoice_id = i.id AND v.version = i.current_version "
                    f"WHERE i.invoice_key IN ({marks})", chunk):
                known[row["invoice_key"]] = row
        results: list[SaveResult | None] = [None] * len(invoices)
        later: list[int] = []  # positions saved one by one after the batch (changed, repeated keys)
        fresh: list[tuple[int, Invoice, str, str]] = []
        seen: set[str] = set()
        for position, invoice in enumerate(invoices):
            key = invoice.invoice_key
            if key in seen:
                later.append(position)
                continue
            seen.add(key)
            text, fingerprint = _text_and_fingerprint(invoice)
            row = known.get(key)
            if row is None:
                fresh.append((position, invoice, fingerprint, text))
            elif row["fingerprint"] == fingerprint:
                if invoice.erp_status is not None and invoice.erp_status != row["erp_status"]:
                    self._update_erp_status(row["id"], invoice.erp_status)
                results[position] = SaveResult("unchanged", row["id"], row["current_version"])
            else:
                later.append(position)
        if fresh:
            self._insert_new_invoices(fresh, results)
        for position in later:
            results[position] = self.save_invoice(invoices[position])
        return results  # type: ignore[return-value]

    def _insert_new_invoices(self, fresh: list[tuple[int, Invoice, str, str]],
                             results: list[SaveResult | None]) -> None:
        now = utc_iso()
        hashes = {invoice.content_hash for _, invoice, *_ in fresh if invoice.content_hash}
        stored = {h for h in hashes if self._scalar("SELECT 1 FROM documents WHERE sha256 = ?", (h,))}
        # The ids are given, not read back: they are exactly what SQLite would choose (``id INTEGER PRIMARY
        # KEY`` without AUTOINCREMENT takes max(id) + 1), and this transaction holds the write lock.
        first = (self._scalar("SELECT max(id) FROM invoices") or 0) + 1
        ids = range(first, first + len(fresh))
        new_state = FinancingState.NEW.value
        self._conn_executemany(
            "INSERT INTO invoices (id, invoice_key, source, source_id, number, kind, type_code, seller_key, "
            "buyer_key, buyer_name, buyer_country, currency, issue_date, due_date, total_gross_minor, "
            "amount_due_minor, erp_status, current_version, financing_state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            [(invoice_id, invoice.invoice_key, invoice.source, invoice.source_id, invoice.number,
              invoice.kind.value, invoice.type_code, invoice.seller.key, invoice.buyer.key, invoice.buyer.name,
              invoice.buyer.country, invoice.currency, invoice.issue_date.isoformat(),
              invoice.due_date.isoformat() if invoice.due_date else None, invoice.total_gross.minor_units,
              invoice.amount_due.minor_units, invoice.erp_status, new_state, now, now)
             for invoice_id, (_, invoice, *_) in zip(ids, fresh, strict=True)])
        self._conn_executemany(
            "INSERT INTO invoice_versions (invoice_id, version, fingerprint, content_hash, data, diff, created_at) "
            "VALUES (?, 1, ?, ?, ?, NULL, ?)",
            [(invoice_id, fingerprint, invoice.content_hash if invoice.content_hash in stored else None, text, now)
             for invoice_id, (_, invoice, fingerprint, text) in zip(ids, fresh, strict=True)])
        self.audit_texts([("invoice.created", f"invoice:{invoice_id}", _created_payload(invoice, fingerprint))
                          for invoice_id, (_, invoice, fingerprint, _) in zip(ids, fresh, strict=True)])
        for invoice_id, (position, *_) in zip(ids, fresh, strict=True):
            results[position] = SaveResult("new", invoice_id, 1)

    def _conn_executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, sql.split("(")[0].strip()[:60]) from exc

    def erp_statuses_of(self, invoice_keys: Sequence[str]) -> dict[str, str | None]:
        """``invoice_key -> erp_status`` for the keys already stored (one query per 500 keys)."""
        out: dict[str, str | None] = {}
        keys = list(dict.fromkeys(invoice_keys))
        for start in range(0, len(keys), _BATCH_SQL_VARIABLES):
            chunk = keys[start:start + _BATCH_SQL_VARIABLES]
            marks = ", ".join("?" for _ in chunk)
            out.update((r[0], r[1]) for r in self._all(
                f"SELECT invoice_key, erp_status FROM invoices WHERE invoice_key IN ({marks})", chunk))
        return out

    def _insert_version(self, invoice_id: int, version: int, fingerprint: str, invoice: Invoice,
                        text: str, diff: dict[str, Any] | None, now: str) -> None:
        content_hash = invoice.content_hash
        if content_hash and not self._scalar("SELECT 1 FROM documents WHERE sha256 = ?", (content_hash,)):
            content_hash = None  # the hash is kept in data; the FK only points at stored bytes
        self._execute(
            "INSERT INTO invoice_versions (invoice_id, version, fingerprint, content_hash, data, diff, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (invoice_id, version, fingerprint, content_hash, text,
             canonical_json(diff) if diff else None, now))

    def _update_erp_status(self, invoice_id: int, status: str) -> None:
        old = self._scalar("SELECT erp_status FROM invoices WHERE id = ?", (invoice_id,))
        if old != status:
            self._execute("UPDATE invoices SET erp_status = ?, updated_at = ? WHERE id = ?",
                          (status, utc_iso(), invoice_id))
            self.audit("invoice.erp_status", f"invoice:{invoice_id}", {"from": old, "to": status})

    def set_erp_status(self, invoice_key: str, status: str) -> bool:
        """Record a status change reported by the ERP (paid, cancelled, credited...); audited."""
        self.require_transaction("set_erp_status()")
        invoice_id = self._scalar("SELECT id FROM invoices WHERE invoice_key = ?", (invoice_key,))
        if invoice_id is None:
            return False
        self._update_erp_status(invoice_id, status)
        return True

    def set_financing_state(self, invoice_id: int, state: FinancingState | str, *,
                            reason: dict[str, Any] | None = None) -> None:
        """Move an invoice in its financing life; audited."""
        self.require_transaction("set_financing_state()")
        state = FinancingState(state)
        old = self._scalar("SELECT financing_state FROM invoices WHERE id = ?", (invoice_id,))
        if old == state.value:
            return
        self._execute("UPDATE invoices SET financing_state = ?, updated_at = ? WHERE id = ?",
                      (state.value, utc_iso(), invoice_id))
        self.audit("invoice.financing_state", f"invoice:{invoice_id}",
                   {"from": old, "to": state.value, **(reason or {})})

    def set_disputed(self, invoice_id: int, disputed: bool, *, note: str | None = None) -> None:
        self.require_transaction("set_disputed()")
        self._execute("UPDATE invoices SET disputed = ?, updated_at = ? WHERE id = ?",
                      (int(disputed), utc_iso(), invoice_id))
        self.audit("invoice.disputed", f"invoice:{invoice_id}", {"disputed": disputed, "note": note})

    def get_invoice(self, invoice_id: int, version: int | None = None) -> Invoice:
        """The canonical invoice (current version unless ``version`` is given)."""
        if version is None:
            version = self._scalar("SELECT current_version FROM invoices WHERE id = ?", (invoice_id,))
            if version is None:
                raise KeyError(f"no invoice {invoice_id}")
        data = self._scalar("SELECT data FROM invoice_versions WHERE invoice_id = ? AND version = ?",
                            (invoice_id, version))
        if data is None:
            raise KeyError(f"no version {version} of invoice {invoice_id}")
        return Invoice.from_dict(json.loads(data))

    def find_invoice_id(self, invoice_key: str) -> int | None:
        return self._scalar("SELECT id FROM invoices WHERE invoice_key = ?", (invoice_key,))

    def invoice_row(self, invoice_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
        return None if row is None else dict(row)

    def invoice_rows(self, *, where: str = "1", params: tuple[Any, ...] = (),
                     order_by: str = "id", limit: int | None = None) -> list[dict[str, Any]]:
        """Invoice index rows (no JSON decoding). ``where`` is SQL over the ``invoices`` columns and is
        only ever built by Cessio's own code, with values passed as ``params``."""
        sql = f"SELECT * FROM invoices WHERE {where} ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self._all(sql, params)]

    def invoice_versions(self, invoice_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT version, fingerprint, content_hash, diff, created_at FROM invoice_versions "
            "WHERE invoice_id = ? ORDER BY version", (invoice_id,))]

    def count_invoices(self) -> int:
        return self._scalar("SELECT count(*) FROM invoices")

    # -- sources and cursors ----------------------------------------------------------------------
    def register_source(self, name: str, type_: str) -> None:
        self.require_transaction("register_source()")
        self._execute("INSERT OR IGNORE INTO sources (name, type, created_at) VALUES (?, ?, ?)",
                      (name, type_, utc_iso()))

    def get_cursor(self, source: str, stream: str = "invoices") -> Any:
        """The saved cursor (decoded JSON) or ``None`` before the first read."""
        text = self._scalar("SELECT cursor FROM sync_cursors WHERE source = ? AND stream = ?",
                            (source, stream))
        return None if text is None else json.loads(text)

    def save_cursor(self, source: str, cursor: Any, stream: str = "invoices") -> None:
        """Save a cursor; call it in the same transaction as the data it covers."""
        self.require_transaction("save_cursor()")
        self._execute(
            "INSERT INTO sync_cursors (source, stream, cursor, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source, stream) DO UPDATE SET cursor = excluded.cursor, "
            "updated_at = excluded.updated_at", (source, stream, canonical_json(cursor), utc_iso()))
