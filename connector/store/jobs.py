"""Job runs of the agent (status, outcome, duration) for ``cessio status`` and alerts.

A run is a row written when the job starts and completed when it ends; a row left without an outcome
by a crash is marked ``interrupted`` by the next agent (which holds the single-agent lock).
"""

from __future__ import annotations

import json
from typing import Any

from connector.clock import utc_iso


class JobsMixin:
    def job_started(self, job_id: str, run_id: str) -> None:
        with self.transaction():
            self._execute("INSERT INTO job_runs (job_id, run_id, started_at) VALUES (?, ?, ?)",
                          (job_id, run_id, utc_iso()))

    def job_finished(self, run_id: str, outcome: str, *, error: str | None = None,
                     summary: dict[str, Any] | None = None, duration_ms: int | None = None) -> None:
        with self.transaction():
            self._execute("UPDATE job_runs SET finished_at = ?, outcome = ?, error = ?, summary = ?, duration_ms = ? "
                          "WHERE run_id = ?", (utc_iso(), outcome, error,
                                               json.dumps(summary, default=str) if summary else None,
                                               duration_ms, run_id))

    def interrupt_orphan_runs(self) -> int:
        """Mark runs left open by a crashed agent; only the lock holder may call this."""
        with self.transaction():
            cur = self._execute("UPDATE job_runs SET outcome = 'interrupted', finished_at = ?, "
                                "error = 'the agent stopped during this run' WHERE outcome IS NULL",
                                (utc_iso(),))
            count = cur.rowcount
            if count:
                self.audit("agent.runs_interrupted", None, {"runs": count})
        return count

    def failures_in_a_row(self, job_id: str) -> int:
        streak = 0
        for (outcome,) in self._all("SELECT outcome FROM job_runs WHERE job_id = ? AND outcome IS NOT NULL "
                                    "ORDER BY id DESC LIMIT 50", (job_id,)):
            if outcome != "failed":
                break
            streak += 1
        return streak

    def job_runs_of(self, job_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM job_runs WHERE job_id = ? ORDER BY id DESC LIMIT ?",
                                           (job_id, limit))]

    def last_job_runs(self) -> list[dict[str, Any]]:
        """The newest run of every job, plus how many failures in a row it has."""
        rows = self._all(
            "SELECT j.* FROM job_runs j JOIN (SELECT job_id, max(id) AS id FROM job_runs GROUP BY job_id) l "
            "ON j.id = l.id ORDER BY j.job_id")
        out = []
        for row in rows:
            item = dict(row)
            item["failures_in_a_row"] = self.failures_in_a_row(row["job_id"])
            out.append(item)
        return out
