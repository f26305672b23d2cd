"""Operations behind ``cessio check`` and ``cessio status`` (no side effects in check)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from connector.errors import CessioError


def run_checks(config: Any, store_path: Path) -> list[dict[str, Any]]:
    """Each check as ``{"what", "ok", "detail"}``; nothing is written except opening the store."""
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
        results.append({"what": "store", "ok": not problems,
                        "detail": f"{store_path}: " + ("; ".join(problems) if problems else "quick_check ok")})
        results.append({"what": "audit", "ok": verdict.ok,
                        "detail": f"{verdict.rows} rows" if verdict.ok
                        else f"broken at seq {verdict.first_broken_seq}: {verdict.problem}"})
    except CessioError as exc:
        results.append({"what": "store", "ok": False, "detail": str(exc)})
    for name, source in (config.sources or {}).items():
        results.append(_probe_source(name, source))
    for name, factor in (config.factors or {}).items():
        results.append(_probe_factor(name, factor))
    return results


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
    data: dict[str, Any] = {
        "store": str(store.path),
        "backlog": store.backlog(),
        "jobs": store.last_job_runs(),
        "invoices": store.count_invoices(),
        "audit_head": store.audit_head(),
    }
    try:
        from connector.factors import factor_positions  # provided by the assignment engine
    except ImportError:
        data["factors"] = []
    else:
        data["factors"] = factor_positions(store, config)
    return data


def render_status(data: dict[str, Any]) -> str:
    lines = [f"store: {data['store']}", f"invoices: {data['invoices']}", "backlog:"]
    lines += [f"  {key.replace('_', ' ')}: {value}" for key, value in data["backlog"].items()]
    lines.append("jobs:" if data["jobs"] else "jobs: none run yet")
    for job in data["jobs"]:
        alert = f"  ALERT: {job['failures_in_a_row']} failures in a row" if job["failures_in_a_row"] >= 3 else ""
        lines.append(f"  {job['job_id']}: {job['outcome'] or 'running'} at {job['started_at']}{alert}")
    for factor in data.get("factors", []):
        lines.append(f"factor {factor.get('name')}:")
        lines += [f"  {k}: {v}" for k, v in factor.items() if k != "name"]
    if data["audit_head"]:
        lines.append(f"audit head: seq {data['audit_head'][0]} {data['audit_head'][1][:16]}…")
    return "\n".join(lines)
