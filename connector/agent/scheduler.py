"""The thin wrapper over APScheduler 3.11: the only module that knows the scheduler's API.

In-memory job store rebuilt from the configuration (the schedule is configuration; progress lives in our
own tables), stable job ids, and the defaults that never silently skip a run: ``coalesce=True`` (missed runs
roll into one), ``max_instances=1`` (never two runs of one job), ``misfire_grace_time=None`` (late is
still run). Every job runs once at start-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from connector.agent.jobs import JobSpec, first_run_at

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


def make_scheduler(tz: ZoneInfo, *, workers: int = 2) -> BackgroundScheduler:
    return BackgroundScheduler(jobstores={"default": MemoryJobStore()},
                               executors={"default": ThreadPoolExecutor(max(1, workers))},
                               job_defaults=dict(JOB_DEFAULTS), timezone=tz)


def install_jobs(scheduler: BackgroundScheduler, specs: Iterable[JobSpec], runner: Callable[[JobSpec], Any], *,
                 first_run: bool = True) -> dict[str, list[str]]:
    """Make the scheduler's jobs match ``specs``; returns what was added, changed, kept and removed.

    A job whose trigger is unchanged keeps its next run (a reload does not re-run everything); a new job
    runs at once when ``first_run``; a changed trigger takes effect from now.
    """
    specs = list(specs)
    wanted = {spec.id: spec for spec in specs}
    report: dict[str, list[str]] = {"added": [], "changed": [], "kept": [], "removed": []}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            job.remove()
            report["removed"].append(job.id)
    now = dt.datetime.now(scheduler.timezone)
    for order, spec in enumerate(specs):
        existing = scheduler.get_job(spec.id)
        if existing is None:
            kwargs: dict[str, Any] = {"next_run_time": first_run_at(now, order)} if first_run else {}
            scheduler.add_job(runner, trigger=spec.trigger, args=[spec], id=spec.id, name=spec.id,
                              replace_existing=True, **kwargs)
            report["added"].append(spec.id)
        elif existing.args[0].describe == spec.describe:
            existing.modify(args=[spec])
            report["kept"].append(spec.id)
        else:
            existing.modify(args=[spec])
            existing.reschedule(trigger=spec.trigger)
            report["changed"].append(spec.id)
    return report


def schedule_rows(scheduler: BackgroundScheduler) -> list[tuple[str, str, str | None]]:
    """``(job_id, trigger, next_run_at ISO UTC)`` of every job, for ``cessio status``."""
    rows = []
    for job in scheduler.get_jobs():
        spec: JobSpec = job.args[0]
        when = getattr(job, "next_run_time", None)
        rows.append((job.id, spec.describe, when.astimezone(dt.UTC).isoformat() if when else None))
    return rows
