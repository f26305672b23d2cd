"""The agent's jobs, planned from the configuration with stable ids.

Each job is a function ``(store, config) -> summary dict`` calling one pipeline capability. Capabilities are
imported lazily: one that is not in this version raises :class:`~connector.errors.NotBuiltYet`, recorded as
``not built`` in ``cessio status`` (never as a success). Planning validates every trigger, so a config whose
cron cannot be read is refused before anything is replaced.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.clock import utcnow
from connector.errors import ConfigError, NotBuiltYet, RetryLater

JobFunc = Callable[[Any, Any], "dict[str, Any] | None"]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: ``id`` is stable across restarts and reloads (``pull:erp``, ``assign:bpce``)."""

    id: str
    trigger: BaseTrigger
    describe: str
    func: JobFunc


# -- capabilities, resolved at run time -------------------------------------------------------------

def capability(*candidates: str) -> Callable[..., Any]:
    """The first importable ``module:function`` of ``candidates``; NotBuiltYet when none exists.

    Only a missing module or attribute means "not built"; an error *inside* a module that exists is raised.
    """
    for target in candidates:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue
            raise
        func = getattr(module, attr, None)
        if callable(func):
            return func
    raise NotBuiltYet(f"not built in this version ({', '.join(candidates)})")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def job_pull(source: str) -> JobFunc:
    def run(store: Any, config: Any) -> dict[str, Any]:
        pull = capability("connector.pull:pull")
        summaries = pull(config, store, source=source)
        failed = [s for s in summaries if getattr(s, "error", None)]
        if failed:
            raise RetryLater("; ".join(f"{s.source}: {s.error}" for s in failed))
        return {"sources": _jsonable(summaries)}
    return run


def call_with_accepted(func: Callable[..., Any], *args: Any, **optional: Any) -> Any:
    """Call ``func`` with the optional keyword arguments it declares (capabilities evolve independently)."""
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return func(*args)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return func(*args, **optional)
    return func(*args, **{k: v for k, v in optional.items() if k in params})


def job_inbox(store: Any, config: Any) -> dict[str, Any]:
    """One watched folder, routed by content: statements first (imported as statements), then e-invoices.

    See :mod:`connector.agent.inbox`. Without the statement importer in this version, statement files are
    left to e-invoice ingestion, which rejects them with its reason.
    """
    process_inbox = capability("connector.ingest:process_inbox")
    inbox = config.section("inbox")
    summary: dict[str, Any] = {}
    # one instant for both passes: a statement too young for the statement pass must be too young for the
    # e-invoice pass too, or ingestion would reject it as "not an invoice" a moment later
    moment = utcnow().timestamp()
    try:
        capability("connector.reconcile.importing:import_bytes")
    except NotBuiltYet:
        pass
    else:
        from connector.agent.inbox import import_inbox_statements

        min_age = 5.0 if inbox["min_age_seconds"] is None else float(inbox["min_age_seconds"])
        summary["statements"] = import_inbox_statements(store, Path(inbox["path"]), min_age_seconds=min_age,
                                                        now=moment).to_dict()
    result = call_with_accepted(process_inbox, store, Path(inbox["path"]), min_age_seconds=inbox["min_age_seconds"],
                                config=config, now=moment)
    summary["inbox"] = _jsonable(result)
    return summary


def parse_cutoffs(values: list[str] | None, *, key: str) -> list[dt.time]:
    out = []
    for value in values or []:
        try:
            out.append(dt.time.fromisoformat(value))
        except ValueError:
            raise ConfigError(f"cut-off time {value!r} is not HH:MM", key=key) from None
    return sorted(out)


def past_last_cutoff(now: dt.time, cutoffs: list[dt.time]) -> dt.time | None:
    """The factor's last cut-off of the day when ``now`` is after it (nothing sent then reaches today's batch)."""
    return cutoffs[-1] if cutoffs and now >= cutoffs[-1] else None


def job_assign(factor: str) -> JobFunc:
    def run(store: Any, config: Any) -> dict[str, Any]:
        options = (config.factors or {}).get(factor, {})
        cutoffs = parse_cutoffs(options.get("cutoff_times"), key=f"factors.{factor}.cutoff_times")
        now = dt.datetime.now(timezone_of(config))
        late = past_last_cutoff(now.time(), cutoffs)
        if late is not None:
            return {"skipped": f"after {factor}'s last cut-off {late:%H:%M} ({now.tzinfo}); the next business-day "
                               "run sends what is waiting"}
        assign = capability("connector.factors.engine:run_assign")
        return {"assign": _jsonable(assign(store, config, factor=factor))}
    return run


def job_factor_events(factor: str) -> JobFunc:
    def run(store: Any, config: Any) -> dict[str, Any]:
        ingest_events = capability("connector.factors.events:ingest_events")
        from connector.factors.channel import make_channel
        from connector.factors.profile import profiles

        profile = profiles(config, only=factor)[0]
        return {"events": _jsonable(ingest_events(store, profile, make_channel(profile)))}
    return run


def job_reconcile(store: Any, config: Any) -> dict[str, Any]:
    run_reconciliation = capability("connector.reconcile.engine:run_reconciliation")
    return {"reconcile": _jsonable(run_reconciliation(store, config))}


def job_ledger(store: Any, config: Any) -> dict[str, Any]:
    post = capability("connector.reconcile.ledger:post_ledger", "connector.reconcile.ledger:post_entries")
    return {"ledger": _jsonable(post(store, config))}


def job_report(store: Any, config: Any) -> dict[str, Any]:
    from connector.clock import today
    from connector.report import write_report

    folder = Path(config.section("agent")["report_dir"])
    path = write_report(store, config, today(), folder / f"report-{today().isoformat()}.html", fmt="html")
    return {"report": str(path)}


# -- planning ---------------------------------------------------------------------------------------

def timezone_of(config: Any) -> ZoneInfo:
    name = config.section("agent")["timezone"]
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}", key="agent.timezone") from None


def cron_trigger(expression: str, tz: ZoneInfo, *, key: str) -> CronTrigger:
    """Five crontab fields, or six with seconds first (for tests and demos)."""
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=tz)
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=weekday, timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"cannot read cron {expression!r}: {exc}", key=key) from None
    raise ConfigError(f"cron {expression!r} needs 5 fields (minute hour day month weekday) or 6 (seconds first)",
                      key=key)


def interval_trigger(amount: int, unit: str, tz: ZoneInfo, *, key: str) -> IntervalTrigger:
    if amount is None or amount <= 0:
        raise ConfigError(f"an interval must be a positive number of {unit}", key=key)
    return IntervalTrigger(timezone=tz, **{unit: amount})


def plan_jobs(config: Any) -> list[JobSpec]:
    """Every job the configuration asks for, in a stable order."""
    agent = config.section("agent")
    tz = timezone_of(config)
    unit = agent["interval_unit"]
    every = agent["pull_every_minutes"]

    def interval(amount: int, key: str) -> tuple[IntervalTrigger, str]:
        return interval_trigger(amount, unit, tz, key=key), f"every {amount} {unit}"

    specs: list[JobSpec] = []
    for name, source in (config.sources or {}).items():
        if not source.get("enabled", True):
            continue
        if source.get("every_minutes") is not None:
            trig, text = interval(source["every_minutes"], f"sources.{name}.every_minutes")
        else:
            trig, text = interval(every, "agent.pull_every_minutes")
        specs.append(JobSpec(f"pull:{name}", trig, text, job_pull(name)))
    if config.section("inbox").get("path"):
        trig, text = interval(agent["inbox_every_minutes"], "agent.inbox_every_minutes")
        specs.append(JobSpec("inbox", trig, text, job_inbox))
    for name, factor in (config.factors or {}).items():
        parse_cutoffs(factor.get("cutoff_times"), key=f"factors.{name}.cutoff_times")
        specs.append(JobSpec(f"assign:{name}", cron_trigger(agent["assign_cron"], tz, key="agent.assign_cron"),
                             f"cron {agent['assign_cron']} ({tz.key})", job_assign(name)))
        trig, text = interval(agent["factor_events_every_minutes"], "agent.factor_events_every_minutes")
        specs.append(JobSpec(f"factor-events:{name}", trig, text, job_factor_events(name)))
    trig, text = interval(agent["reconcile_every_minutes"], "agent.reconcile_every_minutes")
    specs.append(JobSpec("reconcile", trig, text, job_reconcile))
    trig, text = interval(agent["reconcile_every_minutes"], "agent.reconcile_every_minutes")
    specs.append(JobSpec("ledger", trig, text, job_ledger))
    specs.append(JobSpec("report", cron_trigger(agent["report_cron"], tz, key="agent.report_cron"),
                         f"cron {agent['report_cron']} ({tz.key})", job_report))
    return specs


def first_run_at(now: dt.datetime, order: int) -> dt.datetime:
    """Start-up catch-up: every job runs once at start, a little apart so they do not all contend at once."""
    return now + dt.timedelta(milliseconds=200 * order)
