"""The scheduler under a suspended clock (time-machine): a job missed during a pause runs once on resume.

The wall clock jumps ten minutes ahead while the process is paused (a laptop lid, a VM snapshot, SIGSTOP):
ten runs of a one-minute job are missed. With Cessio's defaults the job runs exactly once on resume. The
same pause under APScheduler's own defaults (``misfire_grace_time=1``) never runs it, and without
``coalesce`` it runs ten times: both are shown, so this test can tell the difference.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connector.agent.jobs import JobSpec
from connector.agent.scheduler import JOB_DEFAULTS, install_jobs, make_scheduler

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def _pause_and_resume(scheduler: BackgroundScheduler) -> tuple[int, int, dt.datetime]:
    """Run a one-minute job, pause the clock ten minutes, resume; (runs before, runs after, next run)."""
    count = 0
    changed = threading.Condition()

    def job(_store, _config) -> None:
        nonlocal count
        with changed:
            count += 1
            changed.notify_all()

    spec = JobSpec("tick", IntervalTrigger(minutes=1, timezone=dt.UTC), "every 1 minutes", job)
    with time_machine.travel(T0, tick=True) as traveller:
        install_jobs(scheduler, [spec], lambda s: s.func(None, None))
        scheduler.start()
        try:
            with changed:
                assert changed.wait_for(lambda: count == 1, timeout=5), "no first run at start-up"
            before = count
            traveller.shift(dt.timedelta(minutes=10, seconds=5))  # ten runs fall inside the pause
            scheduler.wakeup()  # what the scheduler's own timer does when the process resumes
            with changed:
                changed.wait_for(lambda: count > before, timeout=3)
            time.sleep(1.0)  # let any further (wrong) catch-up runs happen
            after = count
            next_run = scheduler.get_job("tick").next_run_time
        finally:
            scheduler.shutdown(wait=True)
    return before, after, next_run


def test_a_missed_run_runs_once_on_resume():
    before, after, next_run = _pause_and_resume(make_scheduler(dt.UTC, workers=1))
    assert (before, after) == (1, 2)
    # and the schedule carries on from now, not from the past
    assert T0 + dt.timedelta(minutes=10) < next_run <= T0 + dt.timedelta(minutes=11, seconds=10)


@pytest.mark.parametrize(("defaults", "expected_after"), [
    ({"coalesce": True, "max_instances": 1, "misfire_grace_time": 1}, 1),       # never: silently skipped
    ({"coalesce": False, "max_instances": 1, "misfire_grace_time": None}, 11),  # many times: once per missed run
], ids=["apscheduler-default-grace-skips", "no-coalesce-runs-many"])
def test_the_alternatives_are_wrong_and_detected(defaults, expected_after):
    scheduler = BackgroundScheduler(job_defaults=defaults, timezone=dt.UTC)
    before, after, _ = _pause_and_resume(scheduler)
    assert before == 1
    assert after == expected_after


def test_cessio_defaults_are_the_safe_ones():
    assert JOB_DEFAULTS == {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler = make_scheduler(dt.UTC)
    assert scheduler._job_defaults == JOB_DEFAULTS


def test_reinstalling_keeps_unchanged_jobs_and_reschedules_changed_ones():
    def spec(job_id: str, minutes: int) -> JobSpec:
        return JobSpec(job_id, IntervalTrigger(minutes=minutes, timezone=dt.UTC), f"every {minutes} minutes",
                       lambda _s, _c: None)

    scheduler = make_scheduler(dt.UTC)
    scheduler.start(paused=True)
    try:
        first = install_jobs(scheduler, [spec("a", 1), spec("b", 5), spec("c", 5)], lambda s: None)
        assert first == {"added": ["a", "b", "c"], "changed": [], "kept": [], "removed": []}
        kept_next = scheduler.get_job("a").next_run_time
        second = install_jobs(scheduler, [spec("a", 1), spec("b", 10), spec("d", 2)], lambda s: None)
        assert second == {"added": ["d"], "changed": ["b"], "kept": ["a"], "removed": ["c"]}
        assert scheduler.get_job("a").next_run_time == kept_next  # a reload does not re-run what did not change
        assert str(scheduler.get_job("b").trigger) == "interval[0:10:00]"
        assert sorted(job.id for job in scheduler.get_jobs()) == ["a", "b", "d"]
    finally:
        scheduler.shutdown(wait=False)
