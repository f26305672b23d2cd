"""Operations behind ``cessio check`` and ``cessio status`` (no side effects in check)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from connector.errors import CessioError


def run_checks(config: Any, store_path: Path, *, rows: bool = True,
               max_listed: int = 20) -> list[dict[str, Any]]:
    """Each check as ``{"what", "ok", "detail"}``; nothing is written except opening the store.

    With ``rows`` the business rows are verified too (:meth:`Store.verify_business_rows`): each mismatch is
    one failed item naming the table and row, at most ``max_listed`` of them, then one item with the count.
    """
    results: list[dict[str, Any]] = [
        {"what": "config", "ok": True, "detail": str(config.path or "defaults")},
        {"what": "sqlite", "ok": sqlite3.sqlite_version_info >= (3, 35),
         "detail": f"SQLite {sqlite3.sqlite_version}"},
    ]
    try:
        from connector.store import Store

        with Store(store_path, actor="check") as store:
            problems = store.integrity_check(quick=True)
            verdict = store.verify_audit()
            # checked even when quick_check failed: the business pass names the damaged rows, and a read
            # that fails on a broken page is reported as such rather than stopping the check
            business = store.verify_business_rows(max_listed=max_listed) if rows else None
        results.append({"what": "store", "ok": not problems,
                        "detail": f"{store_path}: " + ("; ".join(problems) if problems else "quick_check ok")})
        results.append({"what": "audit", "ok": verdict.ok,
                        "detail": f"{verdict.rows} rows" if verdict.ok
                        else f"broken at seq {verdict.first_broken_seq}: {verdict.problem}"})
        if business is not None:
            results += business_results(business)
    except (CessioError, sqlite3.Error, UnicodeDecodeError) as exc:
        # a corrupt file fails inside SQLite, not only at open; SQLite's own message about a scribbled file
        # may itself be undecodable text
        results.append({"what": "store", "ok": False, "detail": f"{type(exc).__name__}: {exc}"})
    for name, source in (config.sources or {}).items():
        results.append(_probe_source(name, source))
    for name, factor in (config.factors or {}).items():
        results.append(_probe_factor(name, factor))
    return results


def business_results(verdict: Any) -> list[dict[str, Any]]:
    """The items of a :class:`~connector.store.BusinessVerdict`: one per listed mismatch, then a summary."""
    counts = ", ".join(f"{count} {label}" for label, count in verdict.counts.items())
    seconds = f"{verdict.seconds:.1f} s"
    if verdict.ok:
        return [{"what": "business rows", "ok": True, "detail": f"{counts} checked in {seconds}"}]
    items = [{"what": f"{m.table} {m.row}", "ok": False, "detail": m.problem} for m in verdict.mismatches]
    more = verdict.total - len(verdict.mismatches)
    items.append({"what": "business rows", "ok": False,
                  "detail": f"{verdict.total} mismatches" + (f" ({more} not listed)" if more else "")
                  + f"; {counts} checked in {seconds}"})
    return items


def _probe_source(name: str, source: dict[str, Any]) -> dict[str, Any]:
    from connector.registry import adapter_class

    try:
        adapter = adapter_class(source["type"])(name=name, options=source)
        detail = adapter.check()
        return {"what": f"source {name}", "ok": True, "detail": detail or "reachable"}
    except CessioError as exc:
        return {"what": f"source {name}", "ok": False, "detail": str(exc)}
    except TypeError:
        return {"what": f"source {name}", "ok": False, "detail": "adapter cannot be checked"}


def _probe_factor(name: str, factor: dict[str, Any]) -> dict[str, Any]:
    try:
        from connector.factors import probe_factor  # provided by the assignment engine
    except ImportError:
        return {"what": f"factor {name}", "ok": True, "detail": "configured (no channel to probe in this version)"}
    try:
        return {"what": f"factor {name}", "ok": True, "detail": probe_factor(name, factor)}
    except CessioError as exc:
        return {"what": f"factor {name}", "ok": False, "detail": str(exc)}


def collect_status(store: Any, config: Any | None) -> dict[str, Any]:
    """Backlog, each job's last run (outcome, duration) and next run, the agent's liveness, factor positions."""
    alert_after = 3
    if config is not None:
        alert_after = config.section("agent").get("alert_after_failures") or alert_after
    with store.snapshot():
        runs = {run["job_id"]: run for run in store.last_job_runs()}
        schedule = {row["job_id"]: row for row in store.published_schedule()}
        session = store.last_agent_session()
        data: dict[str, Any] = {
            "store": str(store.path),
            "backlog": store.backlog(),
            "invoices": store.count_invoices(),
            "audit_head": store.audit_head(),
        }
    jobs = []
    for job_id in sorted(set(runs) | set(schedule)):
        run, planned = runs.get(job_id, {}), schedule.get(job_id, {})
        streak = run.get("failures_in_a_row", 0)
        jobs.append({"job_id": job_id, "trigger": planned.get("trigger"), "last_run": run.get("started_at"),
                     "outcome": run.get("outcome") or ("running" if run else None),
                     "duration_ms": run.get("duration_ms"), "error": run.get("error"),
                     "next_run": planned.get("next_run_at"), "failures_in_a_row": streak,
                     "alert": streak >= alert_after})
    data["agent"] = _agent_liveness(session)
    if data["agent"]["state"] != "running":
        for job in jobs:
            job["next_run"] = None  # no agent, no next run: say so rather than show a stale time
    data["jobs"] = jobs
    try:
        from connector.factors import factor_positions  # provided by the assignment engine
    except ImportError:
        data["factors"] = []
    else:
        data["factors"] = factor_positions(store, config)
    return data


def _agent_liveness(session: dict[str, Any] | None) -> dict[str, Any]:
    """Whether an agent seems to be running: its session is open and its heartbeat is recent."""
    import datetime as dt

    if session is None:
        return {"state": "never started"}
    state = session.get("outcome") or "running"
    if state == "running":
        beat = dt.datetime.fromisoformat(session["heartbeat_at"])
        age = (dt.datetime.now(dt.UTC) - beat).total_seconds()
        if age > 60:
            state = f"not responding (last heartbeat {int(age)}s ago; crashed?)"
    return {"state": state, "pid": session["pid"], "host": session["host"], "started_at": session["started_at"],
            "heartbeat_at": session["heartbeat_at"], "stopped_at": session.get("stopped_at")}


def _short_time(text: str | None) -> str:
    return text.replace("T", " ")[:19] if text else "-"


def render_status(data: dict[str, Any]) -> str:
    lines = [f"store: {data['store']}", f"invoices: {data['invoices']}"]
    agent = data.get("agent") or {}
    if agent:
        where = f" (pid {agent['pid']} on {agent['host']}, since {_short_time(agent['started_at'])})" \
            if "pid" in agent else ""
        lines.append(f"agent: {agent['state']}{where}")
    lines.append("backlog:")
    lines += [f"  {key.replace('_', ' ')}: {value}" for key, value in data["backlog"].items()]
    lines.append("jobs (times in UTC):" if data["jobs"] else "jobs: none run yet")
    for job in data["jobs"]:
        duration = f" in {job['duration_ms']} ms" if job.get("duration_ms") is not None else ""
        alert = f"  ALERT: {job['failures_in_a_row']} failures in a row" if job.get("alert") else ""
        lines.append(f"  {job['job_id']}: {job['outcome'] or 'not run yet'} at {_short_time(job['last_run'])}"
                     f"{duration}, next {_short_time(job.get('next_run'))}{alert}")
        if job.get("outcome") in ("failed", "not_built") and job.get("error"):
            lines.append(f"    {job['error'][:160]}")
    for factor in data.get("factors", []):
        lines.append(f"factor {factor.get('name')}:")
        for key, value in factor.items():
            if key == "name":
                continue
            if isinstance(value, list):  # one line each: debtor limits, invoices to tell the factor about
                lines.append(f"  {key}: {len(value)}")
                lines += [f"    {item}" for item in value]
            else:
                lines.append(f"  {key}: {value}")
    if data["audit_head"]:
        lines.append(f"audit head: seq {data['audit_head'][0]} {data['audit_head'][1][:16]}…")
    return "\n".join(lines)
