"""Assignments (the outbox), batches with control totals, factor events, debtor limits, factor ledger.

The outbox rules (docs reliability §0-1): an assignment row is created in the same transaction as its
decision and audit row; its idempotency key never changes; a sender claims a whole batch under
``BEGIN IMMEDIATE`` with a lease and counts the attempt *before* any network I/O, so after a crash the
next sender knows the factor may already hold the batch and looks it up before resending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from connector.clock import utc_iso, utcnow
from connector.model import FinancingState, canonical_json

LIVE_ROW_STATES = ("pending", "unknown")          # still to deliver
DONE_INVOICE_STATES = ("collected", "charged_back", "released", "cancelled", "declined")
# ERP statuses that stop a claim and that a factor holding the invoice must hear of. "credited" is not here:
# the credit note itself is notified to the factor as an item of its own (connector.factors.engine).
ERP_SETTLED_STATUSES = ("paid", "partially_paid", "cancelled")


def _later(seconds: float) -> str:
    return utc_iso(utcnow() + dt.timedelta(seconds=seconds))


class AssignmentsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    # -- debtor limits --------------------------------------------------------------------------
    def save_debtor_limit(self, factor: str, debtor_key: str, status: str, amount_minor: int, currency: str,
                          valid_from: str | None, valid_to: str | None, *, source: str = "factor") -> bool:
        """Record the factor's limit decision for a debtor; audited when it changed."""
        self.require_transaction("save_debtor_limit()")
        old = self._one("SELECT status, amount_minor, currency, valid_from, valid_to FROM debtor_limits "
                        "WHERE factor = ? AND debtor_key = ?", (factor, debtor_key))
        new = (status, amount_minor, currency, valid_from, valid_to)
        if old is not None and tuple(old) == new:
            return False
        self._execute(
            "INSERT INTO debtor_limits (factor, debtor_key, status, amount_minor, currency, valid_from, valid_to, "
            "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (factor, debtor_key) DO UPDATE SET "
            "status = excluded.status, amount_minor = excluded.amount_minor, currency = excluded.currency, "
            "valid_from = excluded.valid_from, valid_to = excluded.valid_to, decided_at = excluded.decided_at",
            (factor, debtor_key, *new, utc_iso()))
        self.audit("debtor_limit.decided", f"debtor:{debtor_key}",
                   {"factor": factor, "status": status, "amount_minor": amount_minor, "currency": currency,
                    "valid_from": valid_from, "valid_to": valid_to, "source": source})
        return True

    def debtor_limit_rows(self, factor: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM debtor_limits WHERE factor = ?", (factor,))]

    # -- facts for eligibility -------------------------------------------------------------------
    def assignment_candidates(self) -> list[dict[str, Any]]:
        """Invoices not yet claimed (new, ineligible or eligible), with a flag if any live assignment exists."""
        return [dict(r) for r in self._all(
            "SELECT i.*, EXISTS (SELECT 1 FROM assignments a WHERE a.invoice_key = i.invoice_key "
            "AND a.kind = 'assignment' AND a.state NOT IN ('declined', 'cancelled', 'rejected')) AS assigned "
            "FROM invoices i WHERE i.kind = 'invoice' AND i.financing_state IN ('new', 'ineligible', 'eligible') "
            "ORDER BY i.due_date, i.id")]

    def open_credit_note_rows(self) -> list[dict[str, Any]]:
        """Credit notes not cancelled nor settled: they net against their debtor."""
        return [dict(r) for r in self._all(
            "SELECT * FROM invoices WHERE kind = 'credit_note' AND financing_state NOT IN "
            "('cancelled', 'released', 'collected') ORDER BY id")]

    def factor_exposure_rows(self, factor: str | None = None) -> list[dict[str, Any]]:
        """Outstanding assigned amounts per (factor, debtor, currency): live assignments of invoices not closed."""
        marks = ", ".join("?" for _ in DONE_INVOICE_STATES)
        sql = ("SELECT a.factor, i.buyer_key, a.currency, sum(a.amount_minor) AS amount_minor, count(*) AS n "
               "FROM assignments a JOIN invoices i ON i.id = a.invoice_id WHERE a.kind = 'assignment' "
               "AND a.state NOT IN ('declined', 'cancelled', 'rejected', 'hold') "
               f"AND i.financing_state NOT IN ({marks})")
        params: list[Any] = list(DONE_INVOICE_STATES)
        if factor is not None:
            sql += " AND a.factor = ?"
            params.append(factor)
        return [dict(r) for r in self._all(sql + " GROUP BY a.factor, i.buyer_key, a.currency", params)]

    def last_decision(self, invoice_id: int, factor: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM decisions WHERE invoice_id = ? AND factor = ? ORDER BY id DESC LIMIT 1",
                        (invoice_id, factor))
        return None if row is None else dict(row)

    def record_decision(self, invoice_id: int, version: int, factor: str, eligible: bool,
                        reasons: list[dict[str, str]]) -> bool:
        """Keep the decision (when it differs from the last one) and move the invoice to eligible/ineligible."""
        self.require_transaction("record_decision()")
        last = self.last_decision(invoice_id, factor)
        text = canonical_json(reasons)
        changed = last is None or (last["version"], last["eligible"], last["reasons"]) != (version, int(eligible), text)
        if changed:
            self._execute("INSERT INTO decisions (invoice_id, version, factor, eligible, reasons, decided_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (invoice_id, version, factor, int(eligible), text, utc_iso()))
            self.audit("eligibility.decided", f"invoice:{invoice_id}",
                       {"factor": factor, "version": version, "eligible": eligible,
                        "reasons": [r["code"] for r in reasons]})
        state = self._scalar("SELECT financing_state FROM invoices WHERE id = ?", (invoice_id,))
        if state in ("new", "ineligible", "eligible"):
            self.set_financing_state(invoice_id, FinancingState.ELIGIBLE if eligible else FinancingState.INELIGIBLE,
                                     reason={"factor": factor})
        return changed

    # -- the outbox -------------------------------------------------------------------------------
    def create_assignment(self, *, invoice_id: int, invoice_key: str, version: int, factor: str, kind: str,
                          idempotency_key: str, amount_minor: int, currency: str, payload: dict[str, Any]) -> int:
        """The claim: one outbox row whose UNIQUE keys stop double financing; audited with the state change."""
        self.require_transaction("create_assignment()")
        now = utc_iso()
        cursor = self._execute(
            "INSERT INTO assignments (invoice_id, invoice_key, invoice_version, factor, kind, idempotency_key, "
            "amount_minor, currency, state, next_attempt_at, payload, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (invoice_id, invoice_key, version, factor, kind, idempotency_key, amount_minor, currency, now,
             canonical_json(payload), now, now))
        self.audit("assignment.claimed", f"assignment:{cursor.lastrowid}",
                   {"factor": factor, "kind": kind, "invoice_key": invoice_key, "version": version,
                    "idempotency_key": idempotency_key, "amount_minor": amount_minor, "currency": currency})
        self.set_financing_state(invoice_id, FinancingState.CLAIMED, reason={"factor": factor, "kind": kind})
        return cursor.lastrowid

    def hold_changed_claims(self, factor: str) -> list[str]:
        """Claims not yet batched whose invoice changed since: never send a new body under the old key
        (docs reliability §1.3) — hold them for a person (cancel or credit, then re-assign)."""
        self.require_transaction("hold_changed_claims()")
        rows = self._all("SELECT a.id, a.invoice_key, a.invoice_version, i.current_version FROM assignments a "
                         "JOIN invoices i ON i.id = a.invoice_id WHERE a.factor = ? AND a.state = 'pending' "
                         "AND a.batch_id IS NULL AND a.attempts = 0 AND i.current_version > a.invoice_version",
                         (factor,))
        for row in rows:
            self._execute("UPDATE assignments SET state = 'hold', last_error = ?, updated_at = ? WHERE id = ?",
                          (f"invoice changed to version {row['current_version']} after the claim", utc_iso(),
                           row["id"]))
            self.audit("assignment.hold", f"assignment:{row['id']}",
                       {"invoice_key": row["invoice_key"], "claimed_version": row["invoice_version"],
                        "current_version": row["current_version"], "reason": "invoice changed after claim"})
        return [r["invoice_key"] for r in rows]

    def hold_erp_settled_claims(self, factor: str) -> list[str]:
        """Claims not yet batched whose invoice the ERP now reports paid, partly paid or cancelled: a status
        alone makes no new invoice version, so :meth:`hold_changed_claims` does not see it; sending would
        sell the factor a receivable that no longer exists. Held for a person, audited."""
        self.require_transaction("hold_erp_settled_claims()")
        marks = ", ".join("?" for _ in ERP_SETTLED_STATUSES)
        rows = self._all("SELECT a.id, a.invoice_key, i.erp_status FROM assignments a JOIN invoices i "
                         "ON i.id = a.invoice_id WHERE a.factor = ? AND a.kind = 'assignment' AND a.state = 'pending' "
                         f"AND a.batch_id IS NULL AND a.attempts = 0 AND i.erp_status IN ({marks})",
                         (factor, *ERP_SETTLED_STATUSES))
        for row in rows:
            self._execute("UPDATE assignments SET state = 'hold', last_error = ?, updated_at = ? WHERE id = ?",
                          (f"the ERP reports the invoice {row['erp_status']} after the claim", utc_iso(), row["id"]))
            self.audit("assignment.hold", f"assignment:{row['id']}",
                       {"invoice_key": row["invoice_key"], "erp_status": row["erp_status"],
                        "reason": "ERP status after claim"})
        return [r["invoice_key"] for r in rows]

    def erp_settled_assignments(self, factor: str | None = None) -> list[dict[str, Any]]:
        """Invoices this factor (every factor when ``None``) holds or may hold that the ERP now reports paid,
        partly paid or cancelled, and not yet closed by the factor's own events (a collection, a release...).
        ``flagged`` tells whether :meth:`flag_erp_settled_assignment` already recorded this status."""
        done = ", ".join("?" for _ in DONE_INVOICE_STATES)
        settled = ", ".join("?" for _ in ERP_SETTLED_STATUSES)
        return [dict(r) for r in self._all(
            "SELECT a.id AS assignment_id, a.factor, a.invoice_key, a.state, a.remote_id, a.amount_minor, "
            "a.currency, "
            "i.id AS invoice_id, i.number, i.erp_status, i.amount_due_minor, i.financing_state, "
            "EXISTS (SELECT 1 FROM audit WHERE entity = 'assignment:' || a.id AND event = 'assignment.erp_settled' "
            "AND json_extract(payload, '$.erp_status') = i.erp_status) AS flagged "
            "FROM assignments a JOIN invoices i ON i.id = a.invoice_id WHERE (a.factor = ? OR ? IS NULL) "
            "AND a.kind = 'assignment' AND a.state NOT IN ('declined', 'cancelled', 'rejected', 'hold') "
            f"AND i.financing_state NOT IN ({done}) AND i.erp_status IN ({settled}) ORDER BY a.id",
            (factor, factor, *DONE_INVOICE_STATES, *ERP_SETTLED_STATUSES))]

    def flag_erp_settled_assignment(self, factor: str, row: dict[str, Any], action: str) -> None:
        """Audit, once per assignment and ERP status, that the factor must be told (``action`` says how)."""
        self.require_transaction("flag_erp_settled_assignment()")
        self.audit("assignment.erp_settled", f"assignment:{row['assignment_id']}",
                   {"factor": factor, "invoice_key": row["invoice_key"], "erp_status": row["erp_status"],
                    "assignment_state": row["state"], "amount_due_minor": row["amount_due_minor"],
                    "currency": row["currency"], "action": action})

    def claim_batch(self, factor: str, channel: str, *, batch_size: int, lease_seconds: float,
                    worker: str = "sender") -> dict[str, Any] | None:
        """Lease one batch whose items are due: an unfinished batch first (same items, same key, so a resend
        is byte-identical), else a new batch of pending rows of one currency with its control totals.

        The attempt is counted here, before the network call; ``previous_attempts > 0`` tells the sender
        the factor may already hold the batch, so it must look it up before any resend."""
        with self.transaction():
            now = utc_iso()
            batch = self._one(
                "SELECT * FROM batches b WHERE factor = ? AND state IN ('open', 'sending', 'unknown') "
                "AND (lease_until IS NULL OR lease_until < ?) AND EXISTS (SELECT 1 FROM assignments a "
                "WHERE a.batch_id = b.id AND a.state IN ('pending', 'unknown') AND a.next_attempt_at <= ?) "
                "ORDER BY id LIMIT 1", (factor, now, now))
            if batch is None:
                first = self._one("SELECT currency FROM assignments WHERE factor = ? AND state = 'pending' "
                                  "AND batch_id IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT 1", (factor, now))
                if first is None:
                    return None
                rows = self._all("SELECT id, idempotency_key, amount_minor, kind FROM assignments WHERE factor = ? "
                                 "AND state = 'pending' AND batch_id IS NULL AND next_attempt_at <= ? "
                                 "AND currency = ? ORDER BY id LIMIT ?", (factor, now, first["currency"], batch_size))
                number = (self._scalar("SELECT max(number) FROM batches WHERE factor = ?", (factor,)) or 0) + 1
                control = sum(r["amount_minor"] * (-1 if r["kind"] == "credit_note" else 1) for r in rows)
                key = "cessio-batch-" + hashlib.sha256(
                    f"{factor}|{number}|{','.join(r['idempotency_key'] for r in rows)}".encode()).hexdigest()[:32]
                cursor = self._execute(
                    "INSERT INTO batches (factor, channel, number, state, item_count, control_sum_minor, currency, "
                    "idempotency_key, created_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                    (factor, channel, number, len(rows), control, first["currency"], key, now))
                batch_id = cursor.lastrowid
                self._execute(f"UPDATE assignments SET batch_id = ?, updated_at = ? WHERE id IN "
                              f"({','.join(str(r['id']) for r in rows)})", (batch_id, now))
                self.audit("batch.created", f"batch:{batch_id}",
                           {"factor": factor, "number": number, "item_count": len(rows), "control_sum_minor": control,
                            "currency": first["currency"], "idempotency_key": key})
                batch = self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))
            lease = _later(lease_seconds)
            self._execute("UPDATE batches SET state = 'sending', attempts = attempts + 1, lease_until = ? "
                          "WHERE id = ?", (lease, batch["id"]))
            self._execute("UPDATE assignments SET attempts = attempts + 1, lease_until = ?, updated_at = ? "
                          "WHERE batch_id = ? AND state IN ('pending', 'unknown')", (lease, now, batch["id"]))
            self.audit("batch.attempt", f"batch:{batch['id']}",
                       {"attempt": batch["attempts"] + 1, "lease_until": lease, "worker": worker})
            items = [dict(r) for r in self._all(
                "SELECT * FROM assignments WHERE batch_id = ? AND state IN ('pending', 'unknown') ORDER BY id",
                (batch["id"],))]
            result = dict(batch)
            result["previous_attempts"] = batch["attempts"]
            result["items"] = items
            for item in items:
                item["payload"] = json.loads(item["payload"])
            return result

    def finish_batch(self, batch_id: int, outcome: str, *, remote_ids: dict[str, str] | None = None,
                     remote_batch_id: str | None = None, error: str | None = None,
                     retry_in: float | None = None) -> None:
        """Record a delivery outcome for a leased batch, its rows and their invoices, in one transaction.

        ``sent``: the factor holds every item (``remote_ids`` by idempotency key); ``unknown``: ambiguous,
        look up before any resend; ``retry``: certainly not received, try again in ``retry_in`` s;
        ``rejected`` / ``hold``: definitive, needs a person."""
        with self.transaction():
            now = utc_iso()
            rows = self._all("SELECT id, invoice_id, idempotency_key, kind FROM assignments WHERE batch_id = ? "
                             "AND state IN ('pending', 'unknown')", (batch_id,))
            if outcome == "sent":
                remote_ids = remote_ids or {}
                missing = [r["idempotency_key"] for r in rows if r["idempotency_key"] not in remote_ids]
                if missing:
                    raise ValueError(f"factor reply lacks items {missing[:3]}")
                for row in rows:
                    self._execute("UPDATE assignments SET state = 'sent', remote_id = ?, lease_until = NULL, "
                                  "last_error = NULL, updated_at = ? WHERE id = ?",
                                  (remote_ids[row["idempotency_key"]], now, row["id"]))
                    if row["kind"] == "assignment":
                        self.set_financing_state(row["invoice_id"], FinancingState.SENT)
                self._execute("UPDATE batches SET state = 'sent', remote_id = ?, lease_until = NULL, released_at = ? "
                              "WHERE id = ?", (remote_batch_id, now, batch_id))
            elif outcome in ("unknown", "retry"):
                row_state = "unknown" if outcome == "unknown" else None
                self._execute("UPDATE assignments SET state = coalesce(?, state), lease_until = NULL, "
                              "last_error = ?, next_attempt_at = ?, updated_at = ? WHERE batch_id = ? "
                              "AND state IN ('pending', 'unknown')",
                              (row_state, error, _later(retry_in or 0), now, batch_id))
                if outcome == "unknown":
                    for row in rows:
                        if row["kind"] == "assignment":
                            self.set_financing_state(row["invoice_id"], FinancingState.UNKNOWN)
                self._execute("UPDATE batches SET state = ?, lease_until = NULL WHERE id = ?",
                              ("unknown" if outcome == "unknown" else "sending", batch_id))
            elif outcome in ("rejected", "hold"):
                self._execute("UPDATE assignments SET state = ?, lease_until = NULL, last_error = ?, updated_at = ? "
                              "WHERE batch_id = ? AND state IN ('pending', 'unknown')", (outcome, error, now, batch_id))
                self._execute("UPDATE batches SET state = ?, lease_until = NULL WHERE id = ?", (outcome, batch_id))
            else:
                raise ValueError(f"unknown outcome {outcome!r}")
            self.audit(f"batch.{outcome}", f"batch:{batch_id}",
                       {"items": len(rows), "remote_batch_id": remote_batch_id, "error": error,
                        "retry_in_ms": None if retry_in is None else int(retry_in * 1000)})

    def outbox_counts(self, factor: str | None = None) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM assignments"
        params: tuple[Any, ...] = ()
        if factor is not None:
            sql += " WHERE factor = ?"
            params = (factor,)
        return {r[0]: r[1] for r in self._all(sql + " GROUP BY state", params)}

    def changed_after_sent(self, factor: str) -> list[dict[str, Any]]:
        """Invoices whose ERP version moved on after the factor received them (the factor holds the old
        one): a person must credit, cancel or re-assign; nothing is resent under the old key."""
        return [dict(r) for r in self._all(
            "SELECT a.invoice_key, i.number, a.invoice_version, i.current_version, a.state, i.financing_state "
            "FROM assignments a JOIN invoices i ON i.id = a.invoice_id WHERE a.factor = ? AND a.kind = 'assignment' "
            "AND a.state = 'sent' AND i.current_version > a.invoice_version ORDER BY a.id", (factor,))]

    def next_outbox_due(self, factor: str) -> str | None:
        """When the earliest live row may be tried again (None: nothing left to deliver)."""
        return self._scalar("SELECT min(max(next_attempt_at, coalesce(lease_until, ''))) FROM assignments "
                            "WHERE factor = ? AND state IN ('pending', 'unknown')", (factor,))

    def assignment_rows(self, factor: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM assignments"
        params: tuple[Any, ...] = ()
        if factor is not None:
            sql += " WHERE factor = ?"
            params = (factor,)
        return [dict(r) for r in self._all(sql + " ORDER BY id", params)]

    def assignment_by_remote(self, factor: str, remote_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM assignments WHERE factor = ? AND remote_id = ?", (factor, remote_id))
        return None if row is None else dict(row)

    def factor_names(self) -> list[str]:
        return [r[0] for r in self._all("SELECT factor FROM assignments UNION SELECT factor FROM debtor_limits "
                                        "UNION SELECT factor FROM factor_events ORDER BY 1")]

    # -- factor events and ledgers ----------------------------------------------------------------
    def record_factor_event(self, factor: str, event: dict[str, Any], ledger: list[tuple[str, int]],
                            financing_state: str | None) -> bool:
        """Store one factor event once (by its id), its ledger movements and the invoice's new state."""
        self.require_transaction("record_factor_event()")
        now = utc_iso()
        cursor = self._execute(
            "INSERT OR IGNORE INTO factor_events (factor, event_id, kind, invoice_key, amount_minor, vat_minor, "
            "currency, reason_code, occurred_on, detail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (factor, event["event_id"], event["kind"], event.get("invoice_key"), event.get("amount_minor"),
             event.get("vat_minor"), event.get("currency"), event.get("reason_code"), event["occurred_on"],
             canonical_json(event.get("detail") or {}), now))
        if cursor.rowcount == 0:
            return False
        for account, minor in ledger:
            self._execute("INSERT INTO factor_ledger (factor, event_id, account, amount_minor, currency, invoice_key, "
                          "occurred_on, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (factor, event["event_id"], account, minor, event["currency"], event.get("invoice_key"),
                           event["occurred_on"], now))
        self.audit("factor_event.received", f"factor_event:{factor}:{event['event_id']}",
                   {"kind": event["kind"], "invoice_key": event.get("invoice_key"),
                    "amount_minor": event.get("amount_minor"), "reason_code": event.get("reason_code")})
        if financing_state and event.get("invoice_key"):
            invoice_id = self.find_invoice_id(event["invoice_key"])
            if invoice_id is not None:
                self.set_financing_state(invoice_id, financing_state,
                                         reason={"factor": factor, "event_id": event["event_id"]})
                if financing_state == "declined":
                    self._execute("UPDATE assignments SET state = 'declined', updated_at = ? WHERE factor = ? "
                                  "AND invoice_key = ? AND kind = 'assignment' AND state = 'sent'",
                                  (now, factor, event["invoice_key"]))
        return True

    def factor_ledger_totals(self, factor: str) -> dict[tuple[str, str], int]:
        """Balance per (account, currency) in minor units."""
        return {(r[0], r[1]): r[2] for r in self._all(
            "SELECT account, currency, sum(amount_minor) FROM factor_ledger WHERE factor = ? "
            "GROUP BY account, currency", (factor,))}
