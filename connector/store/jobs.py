"""Job runs of the agent (status, outcome, duration) for ``cessio status`` and alerts."""

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
                     summary: dict[str, Any] | None = None) -> None:
        with self.transaction():
            self._execute("UPDATE job_runs SET finished_at = ?, outcome = ?, error = ?, summary = ? "
                          "WHERE run_id = ?", (utc_iso(), outcome, error,
                                               json.dumps(summary) if summary else None, run_id))

    def last_job_runs(self) -> list[dict[str, Any]]:
        """The newest run of every job, plus how many failures in a row it has."""
        rows = self._all(
            "SELECT j.* FROM job_runs j JOIN (SELECT job_id, max(id) AS id FROM job_runs GROUP BY job_id) l "
            "ON j.id = l.id ORDER BY j.job_id")
        out = []
        for row in rows:
            item = dict(row)
            streak = 0
            for (outcome,) in self._all("SELECT outcome FROM job_runs WHERE job_id = ? ORDER BY id DESC LIMIT 20",
                                        (row["job_id"],)):
                if outcome != "failed":
                    break
                streak += 1
            item["failures_in_a_row"] = streak
            out.append(item)
        return out
