"""Dashboard data: the KPIs of ``cessio report`` (``connector.report.compute_kpis``) and its own SVG charts.

Reads the store through the report's code, so the desk and the report never disagree; writes nothing.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from connector.clock import today, utc_iso

CACHE_SECONDS = 300  # KPIs move with daily data; recomputing them on every page view costs seconds on a big store
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def cached_dashboard_parts(store: Any, config: Any, *, refresh: bool = False) -> dict[str, Any]:
    """``dashboard_parts`` at most ``CACHE_SECONDS`` old (per store file); ``refresh`` recomputes now."""
    key = str(store.path)
    with _lock:
        hit = _cache.get(key)
        if hit and not refresh and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    parts = dashboard_parts(store, config)
    parts["computed_at"] = utc_iso()
    with _lock:
        _cache[key] = (time.monotonic(), parts)
    return parts


def warm(store_path: Any, config: Any) -> threading.Thread:
    """Compute the dashboard once in the background so the first visitor does not wait (own connection)."""
    from connector.store import Store

    def run() -> None:
        with Store(store_path, actor="desk", migrate=False) as store:
            cached_dashboard_parts(store, config, refresh=True)

    thread = threading.Thread(target=run, name="desk-dashboard-warm", daemon=True)
    thread.start()
    return thread


def _d(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def dashboard_parts(store: Any, config: Any) -> dict[str, Any]:
    """Tiles, charts (inline SVG from the report module) and the per-country table; or what is missing."""
    try:
        from connector import report
        compute_kpis = report.compute_kpis
    except (ImportError, AttributeError):
        return {"missing": "connector.report.compute_kpis"}
    k = compute_kpis(store, config, today())
    cur = k["currency"]
    months = [report._month_label(p["month"]) for p in k["dso"]["trend"]]
    countries = sorted(k["dso"]["by_country"].items(), key=lambda kv: -kv[1]["invoices"])[:5]
    dso_series = [("all", [_d(p["dso"]) for p in k["dso"]["trend"]])]
    dso_series += [(name, [_d(p["dso"]) for p in grp["trend"]]) for name, grp in countries]
    delay_series = [(name, [_d(p["payment_delay"]) for p in grp["trend"]]) for name, grp in countries]
    ageing_colors = (report.GOOD, "#8fbf5a", report.WARN, "#e07b39", report.BAD)
    funding_rows = []
    for f in k["funding"]["factors"]:
        funding_rows.append((f"{f['name']} used", Decimal(f["outstanding_assigned"]), Decimal(f["limits"]),
                             report.PALETTE[0]))
        funding_rows.append((f"{f['name']} available", Decimal(f["available_funding"]), None, report.GOOD))
    cost_months = k["cost"]["months"]
    recon_months = k["reconciliation"]["months"]
    charts = [
        ("DSO trend (days)", report.line_chart("DSO trend", months, dso_series, "")),
        ("Payment delay by country (days after due date)",
         report.line_chart("Payment delay", months, delay_series, "")),
        ("Ageing", report.bar_chart(f"Ageing of open receivables ({cur})",
                                    [(a["bucket"], Decimal(a["amount"]), ageing_colors[i % len(ageing_colors)])
                                     for i, a in enumerate(k["ageing"])])),
        ("Funding use", report.hbar_chart(f"Funding used against limits ({cur})", funding_rows)),
        ("Factoring cost", report.bar_chart(
            f"Factoring cost per month ({cur})",
            [(report._month_label(m["month"]), Decimal(0), "") for m in cost_months],
            stacked=[("fees", [Decimal(m["fees"]) for m in cost_months], report.PALETTE[0]),
                     ("interest", [Decimal(m["interest"]) for m in cost_months], report.PALETTE[1]),
                     ("VAT", [Decimal(m["vat"]) for m in cost_months], report.MUTED)])),
        ("Auto-match rate", report.line_chart("Auto-match rate per month",
                                              [report._month_label(m["month"]) for m in recon_months],
                                              [("auto-match", [_d(m["auto_match_rate"]) for m in recon_months])],
                                              "%")),
    ]
    tiles = [
        ("DSO (days)", k["dso"]["current"], ""),
        ("Open invoices", k["portfolio"]["open"], f"{k['portfolio']['open_amount']} {cur}"),
        ("Reserve held", k["reserve"]["balance"], cur),
        ("Auto-match rate", k["reconciliation"]["auto_match_rate"], "%"),
        ("Exceptions", k["reconciliation"]["exceptions"], ""),
    ]
    country_rows = [(name, grp["invoices"], grp["dso"], grp["payment_delay_12m"])
                    for name, grp in k["dso"]["by_country"].items()]
    return {"missing": None, "as_of": k.get("as_of"), "currency": cur, "tiles": tiles, "charts": charts,
            "countries": country_rows}
