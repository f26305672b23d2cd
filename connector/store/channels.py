"""Factor files, ISO 20022 messages, credit-limit requests, reverse factoring (issue 6).

Tables: ``channel_files``, ``limit_requests``, ``reverse_payables`` (migration 0040) and the core
``batches``, ``assignments``, ``factor_events`` and ``debtor_limits``. Every method that changes state
must run inside ``store.transaction()`` and writes its audit row there. Method names carry the
``channel_`` / ``limit_`` / ``reverse_`` prefix so they never shadow the assignment engine's methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from connector.clock import utc_iso
from connector.errors import InvariantViolation
from connector.model import FactorEvent, FinancingState, canonical_json

# assignment kinds (core table) → kinds of bordereau records
FILE_KIND = {"assignment": "invoice", "credit_note": "credit_note", "collection_report": "payment"}


def file_kind(kind: str, payload: dict[str, Any] | None) -> str:
    """The record kind of a batch item. An adjustment (FactoFrance 104 AJC, BPCE ODD) is reported like a
    collection — a ``collection_report`` row, since the core table's kinds are fixed — whose payload says
    ``"adjustment": true``."""
    if kind == "collection_report" and (payload or {}).get("adjustment"):
        return "adjustment"
    return FILE_KIND.get(kind, kind)


def signed_minor(kind: str, amount_minor: int, payload: dict[str, Any] | None) -> int:
    """Credit notes and payments reduce what the debtor owes; an adjustment by its ``direction``
    (``debit`` adds to it, ``credit`` reduces it)."""
    record = file_kind(kind, payload)
    if record == "adjustment":
        return -amount_minor if (payload or {}).get("direction") == "credit" else amount_minor
    return -amount_minor if record in ("credit_note", "payment") else amount_minor


class ChannelsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    # -- batches of the file channels ---------------------------------------------------------------
    def channel_claim_batch(self, factor: str, channel: str, items: Sequence[dict[str, Any]]) -> int:
        """Claim ``items`` for ``factor`` and close them into one new batch; returns the batch id.

        Each item: ``invoice_id, invoice_key, invoice_version, kind, amount_minor, currency, payload``.
        The assignments' UNIQUE keys (one live assignment per invoice, one idempotency key) refuse a
        second claim of the same invoice, whatever the factor or channel.
        """
        self.require_transaction("channel_claim_batch()")
        if not items:
            raise InvariantViolation("a batch needs at least one item")
        currencies = {item["currency"] for item in items}
        if len(currencies) != 1:
            raise InvariantViolation(f"one batch holds one currency, not {sorted(currencies)}")
        now = utc_iso()
        number = (self._scalar("SELECT max(number) FROM batches WHERE factor = ?", (factor,)) or 0) + 1
        signed = sum(signed_minor(i["kind"], i["amount_minor"], i.get("payload")) for i in items)
        batch_id = self._execute(
            "INSERT INTO batches (factor, channel, number, state, item_count, control_sum_minor, currency, "
            "created_at) VALUES (?, ?, ?, 'closed', ?, ?, ?, ?)",
            (factor, channel, number, len(items), signed, currencies.pop(), now)).lastrowid
        for item in items:
            key = f"{factor}|{item['invoice_key']}|v{item['invoice_version']}|{item['kind']}"
            if item["kind"] == "collection_report":  # several payments may be reported for one invoice
                key += f"|{(item.get('payload') or {}).get('reference', '')}"
                if (item.get("payload") or {}).get("adjustment"):
                    key += "|adjustment"
            self._execute(
                "INSERT INTO assignments (invoice_id, invoice_key, invoice_version, factor, kind, idempotency_key, "
                "amount_minor, currency, state, batch_id, next_attempt_at, payload, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'batched', ?, ?, ?, ?, ?)",
                (item["invoice_id"], item["invoice_key"], item["invoice_version"], factor, item["kind"], key,
                 item["amount_minor"], item["currency"], batch_id, now, canonical_json(item.get("payload") or {}),
                 now, now))
            if item["kind"] == "assignment":
                self.set_financing_state(item["invoice_id"], FinancingState.CLAIMED,
                                         reason={"factor": factor, "batch": batch_id, "channel": channel})
        self.audit("batch.closed", f"batch:{batch_id}",
                   {"factor": factor, "channel": channel, "number": number, "items": len(items),
                    "control_sum_minor": signed})
        return batch_id

    def channel_batch(self, batch_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))
        return None if row is None else dict(row)

    def channel_batch_items(self, batch_id: int) -> list[dict[str, Any]]:
        """The batch's assignment rows with the invoice version they were claimed at."""
        return [dict(r) for r in self._all(
            "SELECT a.*, v.data AS invoice_data FROM assignments a JOIN invoice_versions v "
            "ON v.invoice_id = a.invoice_id AND v.version = a.invoice_version "
            "WHERE a.batch_id = ? ORDER BY a.id", (batch_id,))]

    def channel_ledger_totals(self, batch_id: int) -> dict[str, int]:
        """Counts and sums by record kind as the store records them (the control the file must match)."""
        totals: dict[str, int] = {"count_all": 0, "total_signed_minor": 0}
        for row in self._all("SELECT kind, amount_minor, payload FROM assignments WHERE batch_id = ?", (batch_id,)):
            payload = json.loads(row["payload"] or "{}")
            kind = file_kind(row["kind"], payload)
            totals[f"count_{kind}"] = totals.get(f"count_{kind}", 0) + 1
            totals[f"sum_{kind}"] = totals.get(f"sum_{kind}", 0) + row["amount_minor"]
            totals["count_all"] += 1
            totals["total_signed_minor"] += signed_minor(row["kind"], row["amount_minor"], payload)
        batch = self._one("SELECT control_sum_minor, item_count FROM batches WHERE id = ?", (batch_id,))
        if batch is not None and (batch["control_sum_minor"] != totals["total_signed_minor"]
                                  or batch["item_count"] != totals["count_all"]):
            # the batch row and its items disagree: the ledger itself is inconsistent
            totals["batch_control_sum_minor"] = batch["control_sum_minor"]
            totals["batch_item_count"] = batch["item_count"]
        return totals

    def channel_batches_without_released_file(self, factor: str) -> list[int]:
        return [r[0] for r in self._all(
            "SELECT b.id FROM batches b WHERE b.factor = ? AND b.state IN ('closed', 'file_prepared') "
            "ORDER BY b.id", (factor,))]

    # -- files -----------------------------------------------------------------------------------------
    def channel_files(self, *, batch_id: int | None = None, state: str | None = None,
                      factor: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        for column, value in (("batch_id", batch_id), ("state", state), ("factor", factor)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses) or "1"
        return [dict(r) for r in self._all(f"SELECT * FROM channel_files WHERE {where} ORDER BY id", params)]

    def channel_next_file_number(self, factor: str, layout: str) -> int:
        return (self._scalar("SELECT max(file_number) FROM channel_files WHERE factor = ? AND layout = ?",
                             (factor, layout)) or 0) + 1

    def channel_record_file(self, *, batch_id: int, part: str, factor: str, layout: str, file_number: int,
                            file_name: str, sha256: str, content: bytes, html: str | None, item_count: int,
                            total_signed_minor: int, currency: str) -> int:
        """Record a prepared file (bytes kept) before it is written anywhere; audited."""
        self.require_transaction("channel_record_file()")
        file_id = self._execute(
            "INSERT INTO channel_files (batch_id, part, factor, layout, file_number, file_name, sha256, content, "
            "html, item_count, total_signed_minor, currency, state, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'prepared', ?)",
            (batch_id, part, factor, layout, file_number, file_name, sha256, content, html, item_count,
             total_signed_minor, currency, utc_iso())).lastrowid
        self.audit("channel.file_prepared", f"batch:{batch_id}",
                   {"file": file_name, "number": file_number, "layout": layout, "part": part, "sha256": sha256,
                    "items": item_count, "total_signed_minor": total_signed_minor})
        return file_id

    def channel_set_batch_state(self, batch_id: int, state: str, *, file_name: str | None = None) -> None:
        self.require_transaction("channel_set_batch_state()")
        old = self._scalar("SELECT state FROM batches WHERE id = ?", (batch_id,))
        if old == state:
            return
        released = utc_iso() if state == "released" else None
        self._execute("UPDATE batches SET state = ?, file_name = coalesce(?, file_name), "
                      "released_at = coalesce(?, released_at) WHERE id = ?", (state, file_name, released, batch_id))
        self.audit("batch.state", f"batch:{batch_id}", {"from": old, "to": state, "file": file_name})

    def channel_mark_released(self, file_id: int) -> None:
        """The file is in the outbox under its final name: mark it, its batch and its items sent."""
        self.require_transaction("channel_mark_released()")
        row = self._one("SELECT * FROM channel_files WHERE id = ?", (file_id,))
        if row is None or row["state"] == "released":
            return
        now = utc_iso()
        self._execute("UPDATE channel_files SET state = 'released', released_at = ? WHERE id = ?", (now, file_id))
        self.audit("channel.file_released", f"batch:{row['batch_id']}",
                   {"file": row["file_name"], "sha256": row["sha256"], "layout": row["layout"]})
        pending = self._scalar("SELECT count(*) FROM channel_files WHERE batch_id = ? AND state != 'released'",
                               (row["batch_id"],))
        if pending == 0:
            names = [r[0] for r in self._all("SELECT file_name FROM channel_files WHERE batch_id = ? ORDER BY id",
                                             (row["batch_id"],))]
            self.channel_set_batch_state(row["batch_id"], "released", file_name=",".join(names))
            for item in self._all("SELECT id, invoice_id, kind FROM assignments WHERE batch_id = ? "
                                  "AND state = 'batched'", (row["batch_id"],)):
                self._execute("UPDATE assignments SET state = 'sent', updated_at = ? WHERE id = ?", (now, item[0]))
                if item["kind"] == "assignment":
                    self.set_financing_state(item["invoice_id"], FinancingState.SENT,
                                             reason={"batch": row["batch_id"], "file": row["file_name"]})

    # -- factor events -----------------------------------------------------------------------------------
    def channel_record_factor_event(self, event: FactorEvent) -> bool:
        """Insert a factor event once (factor, event_id); returns False when it was already there."""
        self.require_transaction("channel_record_factor_event()")
        cursor = self._execute(
            "INSERT OR IGNORE INTO factor_events (factor, event_id, kind, invoice_key, amount_minor, vat_minor, "
            "currency, reason_code, occurred_on, detail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.factor, event.event_id, event.kind, event.invoice_key,
             event.amount.minor_units if event.amount is not None else None,
             event.vat.minor_units if event.vat is not None else None,
             event.amount.currency if event.amount is not None else None, event.reason_code,
             event.occurred_on.isoformat(), canonical_json(event.detail), utc_iso()))
        if cursor.rowcount == 0:
            return False
        self.audit("factor_event.received", f"factor:{event.factor}",
                   {"event_id": event.event_id, "kind": event.kind, "invoice_key": event.invoice_key})
        return True

    def channel_factor_events(self, factor: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM factor_events WHERE factor = ? ORDER BY id", (factor,))]

    def channel_invoice_key_by_number(self, number: str) -> str | None:
        """Factor replies name documents by number: resolve it (unique numbers only)."""
        rows = self._all("SELECT invoice_key FROM invoices WHERE number = ? LIMIT 2", (number,))
        return rows[0][0] if len(rows) == 1 else None

    # -- credit-limit requests -------------------------------------------------------------------------
    def limit_add_request(self, *, factor: str, debtor_key: str, debtor_name: str | None, request_type: str,
                          receco_code: str, amount_minor: int, currency: str, idempotency_key: str) -> int:
        self.require_transaction("limit_add_request()")
        existing = self._scalar("SELECT id FROM limit_requests WHERE idempotency_key = ?", (idempotency_key,))
        if existing is not None:
            return existing
        request_id = self._execute(
            "INSERT INTO limit_requests (factor, debtor_key, debtor_name, request_type, receco_code, amount_minor, "
            "currency, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (factor, debtor_key, debtor_name, request_type, receco_code, amount_minor, currency, idempotency_key,
             utc_iso())).lastrowid
        self.audit("limit.requested", f"limit_request:{request_id}",
                   {"factor": factor, "debtor": debtor_key, "type": request_type, "receco": receco_code,
                    "amount_minor": amount_minor, "currency": currency})
        return request_id

    def limit_requests(self, *, factor: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        for column, value in (("factor", factor), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses) or "1"
        return [dict(r) for r in self._all(f"SELECT * FROM limit_requests WHERE {where} ORDER BY id", params)]

    def limit_mark_sent(self, request_id: int, remote_id: str | None) -> None:
        self.require_transaction("limit_mark_sent()")
        self._execute("UPDATE limit_requests SET state = 'sent', remote_id = coalesce(?, remote_id) "
                      "WHERE id = ? AND state = 'pending'", (remote_id, request_id))
        self.audit("limit.sent", f"limit_request:{request_id}", {"remote_id": remote_id})

    def limit_record_decision(self, request_id: int, *, response_code: str, status: str, granted_minor: int,
                              valid_from: str | None, valid_to: str | None, reason_code: str | None,
                              decided_at: str) -> bool:
        """Record the factor's decision (once) and make it the debtor's current limit; audited."""
        self.require_transaction("limit_record_decision()")
        row = self._one("SELECT * FROM limit_requests WHERE id = ?", (request_id,))
        if row is None:
            raise InvariantViolation(f"no limit request {request_id}")
        if row["state"] == "decided" and (row["response_code"], row["granted_minor"]) == (response_code, granted_minor):
            return False
        self._execute(
            "UPDATE limit_requests SET state = 'decided', response_code = ?, status = ?, granted_minor = ?, "
            "valid_from = ?, valid_to = ?, reason_code = ?, decided_at = ? WHERE id = ?",
            (response_code, status, granted_minor, valid_from, valid_to, reason_code, decided_at, request_id))
        current = self._one("SELECT 1 FROM debtor_limits WHERE factor = ? AND debtor_key = ?",
                            (row["factor"], row["debtor_key"]))
        if status not in ("investigating", "preliminary") or current is None:
            # a "still investigating" or preliminary answer leaves a current limit alone (eligibility reads
            # no limit / a pending one as "not approved")
            self.save_debtor_limit(row["factor"], row["debtor_key"],
                                   "pending" if status in ("investigating", "preliminary") else status,
                                   granted_minor, row["currency"], valid_from, valid_to,
                                   source=f"limit_request:{request_id}")
        self.audit("limit.decided", f"limit_request:{request_id}",
                   {"factor": row["factor"], "debtor": row["debtor_key"], "status": status,
                    "response_code": response_code, "granted_minor": granted_minor, "valid_to": valid_to,
                    "reason_code": reason_code})
        return True

    def limit_current(self, factor: str, debtor_key: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM debtor_limits WHERE factor = ? AND debtor_key = ?", (factor, debtor_key))
        return None if row is None else dict(row)

    def limit_all(self, factor: str | None = None) -> list[dict[str, Any]]:
        if factor is None:
            return [dict(r) for r in self._all("SELECT * FROM debtor_limits ORDER BY factor, debtor_key")]
        return [dict(r) for r in self._all("SELECT * FROM debtor_limits WHERE factor = ? ORDER BY debtor_key",
                                           (factor,))]

    # -- reverse factoring ----------------------------------------------------------------------------
    def reverse_add_payable(self, *, platform: str, invoice_id: int, invoice_key: str, supplier_key: str,
                            number: str, amount_minor: int, currency: str, due_date: str,
                            idempotency_key: str) -> tuple[int, bool]:
        """Claim a supplier invoice for the platform (once); returns (id, created)."""
        self.require_transaction("reverse_add_payable()")
        existing = self._scalar("SELECT id FROM reverse_payables WHERE platform = ? AND invoice_key = ?",
                                (platform, invoice_key))
        if existing is not None:
            return existing, False
        now = utc_iso()
        payable_id = self._execute(
            "INSERT INTO reverse_payables (platform, invoice_id, invoice_key, supplier_key, number, amount_minor, "
            "currency, due_date, idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (platform, invoice_id, invoice_key, supplier_key, number, amount_minor, currency, due_date,
             idempotency_key, now, now)).lastrowid
        self.audit("reverse.payable_claimed", f"payable:{payable_id}",
                   {"platform": platform, "invoice_key": invoice_key, "amount_minor": amount_minor,
                    "currency": currency, "due_date": due_date})
        return payable_id, True

    def reverse_payables(self, platform: str, *, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if states is None:
            rows = self._all("SELECT * FROM reverse_payables WHERE platform = ? ORDER BY id", (platform,))
        else:
            wanted = list(states)
            marks = ", ".join("?" for _ in wanted)
            rows = self._all(f"SELECT * FROM reverse_payables WHERE platform = ? AND state IN ({marks}) ORDER BY id",
                             (platform, *wanted))
        return [dict(r) for r in rows]

    def reverse_set_state(self, payable_id: int, state: str, *, remote_id: str | None = None,
                          error: str | None = None, early_paid_minor: int | None = None,
                          early_paid_on: str | None = None, settled_line_id: int | None = None) -> None:
        self.require_transaction("reverse_set_state()")
        old = self._one("SELECT state FROM reverse_payables WHERE id = ?", (payable_id,))
        self._execute(
            "UPDATE reverse_payables SET state = ?, remote_id = coalesce(?, remote_id), last_error = ?, "
            "attempts = attempts + (CASE WHEN ? IN ('unknown', 'pending') THEN 1 ELSE 0 END), "
            "early_paid_minor = coalesce(?, early_paid_minor), early_paid_on = coalesce(?, early_paid_on), "
            "settled_line_id = coalesce(?, settled_line_id), updated_at = ? WHERE id = ?",
            (state, remote_id, error, state, early_paid_minor, early_paid_on, settled_line_id, utc_iso(), payable_id))
        self.audit("reverse.payable_state", f"payable:{payable_id}",
                   {"from": old["state"] if old else None, "to": state, "remote_id": remote_id, "error": error,
                    "early_paid_minor": early_paid_minor, "settled_line_id": settled_line_id})

    def reverse_open_statement_lines(self, currency: str) -> list[dict[str, Any]]:
        """Outgoing statement lines not yet matched (the buyer's payments to the platform)."""
        rows = self._all(
            "SELECT * FROM statement_lines WHERE currency = ? AND amount_minor < 0 "
            "AND match_status IN ('open', 'not_receivable') "
            "AND id NOT IN (SELECT settled_line_id FROM reverse_payables WHERE settled_line_id IS NOT NULL) "
            "ORDER BY booking_date, id", (currency,))
        return [dict(r) | {"data": json.loads(r["data"])} for r in rows]
