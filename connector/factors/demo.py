"""Demo stages of the assignment engine (called by ``connector/demo.py``).

``ctx.state`` keys set here: ``factor_url`` (the sandbox's base URL, ``http://127.0.0.1:PORT/v1``),
``factor_server`` (the running server object), ``factor_config`` (a Config with ``[factors.sandbox]``
pointing at it), ``assign_reports`` (the list of AssignReport of the run). Cleanup stops the server.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import requests

from connector.clock import today

DEMO_TOKEN_ENV = "CESSIO_DEMO_FACTOR_TOKEN"


def _config(ctx: Any) -> Any:
    from connector.config import parse_config

    url = ctx.state["factor_url"]
    text = (f'[store]\npath = "{ctx.folder / "cessio.db"}"\n\n[factors.sandbox]\nbase_url = "{url}"\n'
            f'token = "env:{DEMO_TOKEN_ENV}"\nread_timeout = "5"\ndeadline = "20"\nbatch_size = 20\n'
            'currencies = ["EUR", "USD", "GBP", "CHF", "JPY"]\nmax_age_days = 3650\nmax_tenor_days = 365\n')
    return parse_config(text, path=ctx.folder / "cessio.toml")


def start_sandbox_stage(ctx: Any) -> None:
    from connector.sandbox import start_in_thread

    server = start_in_thread(data=ctx.folder / "sandbox-factor.db", faults="", seed=0, start=today())
    os.environ.setdefault(DEMO_TOKEN_ENV, "demo-token-not-a-secret")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        server.book.close()

    ctx.state.setdefault("cleanup", []).append(stop)
    ctx.state["factor_server"] = server
    ctx.state["factor_url"] = f"{server.url}/v1"
    ctx.state["factor_config"] = _config(ctx)
    ctx.echo(f"  sandbox factor on {server.url} (own SQLite state, business date {server.book.business_date})")


def assign_stage(ctx: Any) -> None:
    from connector.factors.engine import render_report, run_assign

    if "factor_config" not in ctx.state:
        ctx.echo("  no sandbox factor running: skipped")
        return
    if not ctx.store.count_invoices():
        ctx.echo("  no invoices ingested or pulled by the earlier stages: nothing to assign")
        return
    config = ctx.state["factor_config"]
    dry = run_assign(ctx.store, config, dry_run=True)
    eligible = sum(d.eligible for r in dry for _, d in r.decisions)
    ctx.echo(f"  dry run: {eligible} of {sum(len(r.decisions) for r in dry)} invoice(s) eligible before limits "
             "are requested")
    reports = run_assign(ctx.store, config, max_seconds=20)
    ctx.state["assign_reports"] = reports
    for report in reports:
        lines = render_report(report, dry_run=False)
        shown = lines if len(lines) <= 18 else [*lines[:16], f"  … {len(lines) - 18} more line(s)", *lines[-2:]]
        for line in shown:
            ctx.echo("  " + line)


def events_stage(ctx: Any) -> None:
    from connector.factors import factor_positions
    from connector.factors.channel import ApiChannel
    from connector.factors.events import ingest_events
    from connector.factors.profile import profiles

    if "factor_config" not in ctx.state:
        ctx.echo("  no sandbox factor running: skipped")
        return
    config = ctx.state["factor_config"]
    profile = profiles(config)[0]
    channel = ApiChannel(profile)
    counts = ingest_events(ctx.store, profile, channel)
    ctx.echo(f"  decisions received: {counts or 'none'}")
    base = ctx.state["factor_url"].removesuffix("/v1")
    moved = requests.post(f"{base}/v1/_sandbox/advance", json={"days": 1}, timeout=(2, 10)).json()
    counts = ingest_events(ctx.store, profile, channel)
    ctx.echo(f"  next business day at the factor ({moved['business_date']}): {moved['funded']} funded; "
             f"events {counts or 'none'}")
    for position in factor_positions(ctx.store, config):
        ctx.echo(f"  factor {position['name']}:")
        for key, value in position.items():
            if key == "name":
                continue
            if isinstance(value, list):
                unit = "debtor(s)" if "limit" in key else "invoice(s)"
                ctx.echo(f"    {key}: {len(value)} {unit}" + (" (first 5 shown)" if len(value) > 5 else ""))
                for line in value[:5]:
                    ctx.echo(f"      {line}")
            else:
                ctx.echo(f"    {key}: {value}")
    ctx.state["factor_events_seen_on"] = dt.date.today().isoformat()
