"""Agent bookkeeping (sessions, the schedule it built) and the read-only queries behind the KPI report.

The KPI queries return plain rows (integer minor units + currency); the arithmetic on amounts happens in
:mod:`connector.report` with :class:`~connector.money.Money`, so no float ever touches an amount.
"""

from __future__ import annotations

from typing import Any

from connector.clock import utc_iso


class AgentMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    # -- agent sessions ---------------------------------------------------------------------------
    def agent_session_started(self, *, pid: int, host: str, config_path: str | None) -> int:
        now = utc_iso()
        with self.transaction():
            cur = self._execute("INSERT INTO agent_sessions (pid, host, config_path, started_at, heartbeat_at) "
                                "VALUES (?, ?, ?, ?, ?)", (pid, host, config_path, now, now))
            session_id = cur.lastrowid
            # sessions a crashed agent never closed
            self._execute("UPDATE agent_sessions SET stopped_at = heartbeat_at, outcome = 'crashed' "
                          "WHERE stopped_at IS NULL AND id <> ?", (session_id,))
            self.audit("agent.started", f"agent:{session_id}", {"pid": pid, "host": host, "config": config_path})
        return session_id

    def agent_heartbeat(self, session_id: int) -> None:
        with self.transaction():
            self._execute("UPDATE agent_sessions SET heartbeat_at = ? WHERE id = ?", (utc_iso(), session_id))

    def agent_session_stopped(self, session_id: int, outcome: str) -> None:
        with self.transaction():
            self._execute("UPDATE agent_sessions SET stopped_at = ?, outcome = ? WHERE id = ?",
                          (utc_iso(), outcome, session_id))
            self.audit("agent.stopped", f"agent:{session_id}", {"outcome": outcome})

    def agent_config_event(self, session_id: int, event: str, detail: dict[str, Any]) -> None:
        """``agent.config_reloaded`` or ``agent.config_refused``, audited."""
        with self.transaction():
            self.audit(event, f"agent:{session_id}", detail)

    def agent_sessions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM agent_sessions ORDER BY id")]

    def count_audit_events(self, event: str) -> int:
        return self._scalar("SELECT count(*) FROM audit WHERE event = ?", (event,))

    def last_agent_session(self) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM agent_sessions ORDER BY id DESC LIMIT 1")
        return dict(row) if row else None

    # -- the schedule, published for `cessio status` in another process ------------------------
    def publish_schedule(self, jobs: list[tuple[str, str, str | None]]) -> None:
        """Replace the published schedule with ``(job_id, trigger, next_run_at)`` rows."""
        now = utc_iso()
        with self.transaction():
            self._execute("DELETE FROM agent_jobs")
            for job_id, trigger, next_run in jobs:
                self._execute("INSERT INTO agent_jobs (job_id, trigger, next_run_at, updated_at) VALUES (?, ?, ?, ?)",
                              (job_id, trigger, next_run, now))

    def published_schedule(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM agent_jobs ORDER BY job_id")]

    # -- KPI inputs (read only) ---------------------------------------------------------------------
    def kpi_invoices(self) -> list[dict[str, Any]]:
        """Every invoice with what the report needs, plus cash allocated to it and its last booking date."""
        return [dict(r) for r in self._all("""
            SELECT i.id, i.invoice_key, i.number, i.kind, i.buyer_key, i.buyer_name, i.buyer_country, i.currency,
                   i.issue_date, i.due_date, i.amount_due_minor, i.total_gross_minor, i.financing_state,
                   i.erp_status, i.updated_at,
                   coalesce(a.allocated, 0) AS allocated_minor, a.last_booking AS last_booking_date,
                   (SELECT min(e.occurred_on) FROM factor_events e WHERE e.invoice_key = i.invoice_key
                      AND (e.kind IN ('collected', 'debtor_payment', 'payment')
                           OR e.kind LIKE 'collection%')) AS collected_on
            FROM invoices i
            LEFT JOIN (SELECT al.invoice_id, sum(al.amount_minor + al.writeoff_minor) AS allocated,
                              max(l.booking_date) AS last_booking
                       FROM allocations al JOIN statement_lines l ON l.id = al.line_id
                       WHERE al.active = 1 AND al.status IN ('auto', 'manual') AND al.invoice_id IS NOT NULL
                       GROUP BY al.invoice_id) a ON a.invoice_id = i.id
            ORDER BY i.id""")]

    def kpi_factor_events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT factor, kind, invoice_key, amount_minor, vat_minor, currency, reason_code, occurred_on "
            "FROM factor_events ORDER BY occurred_on, id")]

    def kpi_assignments(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT a.factor, a.kind, a.invoice_key, a.amount_minor, a.currency, a.state, a.last_error, "
            "a.created_at, i.buyer_key, i.financing_state, i.erp_status FROM assignments a "
            "JOIN invoices i ON i.id = a.invoice_id ORDER BY a.id")]

    def kpi_debtor_limits(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM debtor_limits ORDER BY factor, debtor_key")]

    def kpi_refusals(self) -> list[dict[str, Any]]:
        """The latest eligibility decision per invoice and factor, when it said no."""
        return [dict(r) for r in self._all("""
            SELECT d.factor, d.reasons, d.decided_at FROM decisions d
            JOIN (SELECT invoice_id, factor, max(id) AS id FROM decisions GROUP BY invoice_id, factor) l
              ON l.id = d.id
            WHERE d.eligible = 0""")]

    def kpi_statement_lines(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("""
            SELECT l.id, l.booking_date, l.amount_minor, l.currency, l.match_status,
                   (SELECT group_concat(DISTINCT al.status) FROM allocations al
                     WHERE al.line_id = l.id AND al.active = 1) AS statuses
            FROM statement_lines l ORDER BY l.booking_date, l.id""")]
