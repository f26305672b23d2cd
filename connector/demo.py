"""``cessio demo``: the whole pipeline on the embedded default, in a temporary folder.

Each stage is a function ``stage_*(ctx)`` that prints a short human summary; a stage whose
capability is not built says so. Later capabilities fill in their stage here.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DemoContext:
    folder: Path
    echo: Callable[[str], None]
    store: Any = None
    state: dict[str, Any] = field(default_factory=dict)


def stage_store(ctx: DemoContext) -> None:
    from connector.store import Store

    ctx.store = Store(ctx.folder / "cessio.db", actor="demo")
    ctx.echo(f"  store ready at {ctx.store.path} (WAL, synchronous=FULL, migrations applied)")


def stage_audit(ctx: DemoContext) -> None:
    verdict = ctx.store.verify_audit()
    ctx.echo(f"  audit chain {'valid' if verdict.ok else 'BROKEN'}: {verdict.rows} rows")


def _stage(target: str) -> Callable[[DemoContext], None]:
    """A stage implemented in its capability's module as ``demo_stage(ctx)``; until that capability
    exists the demo says so plainly (it never pretends)."""

    def run(ctx: DemoContext) -> None:
        import importlib

        module_name, _, func = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            stage = getattr(module, func)
        except (ImportError, AttributeError):
            ctx.echo(f"  not built in this version yet ({module_name})")
            return
        stage(ctx)

    return run


# The mission in order. Each capability owns its stage function in its own module.
STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("store", stage_store),
    ("sandbox factor", _stage("connector.factors.demo:start_sandbox_stage")),
    ("ingest e-invoices", _stage("connector.ingest:demo_stage")),
    ("pull ERP export", _stage("adapters.csv_export:demo_stage")),
    ("eligibility and assignment", _stage("connector.factors.demo:assign_stage")),
    ("factor files and ISO 20022", _stage("connector.channels.demo:demo_stage")),
    ("factor events: decisions, fundings, fees", _stage("connector.factors.demo:events_stage")),
    ("statements import", _stage("connector.reconcile.demo:import_stage")),
    ("reconciliation", _stage("connector.reconcile.demo:reconcile_stage")),
    ("ledger posting", _stage("connector.reconcile.demo:ledger_stage")),
    ("report", _stage("connector.report:demo_stage")),
    ("audit", stage_audit),
]


def run_demo(*, keep: bool = False, echo: Callable[[str], None] = print) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cessio-demo-"))
    ctx = DemoContext(folder=folder, echo=echo)
    started = time.monotonic()
    echo(f"Cessio demo in {folder}")
    try:
        for name, stage in STAGES:
            echo(f"[{name}]")
            stage(ctx)
        echo(f"demo finished in {time.monotonic() - started:.1f}s")
    finally:
        if ctx.store is not None:
            ctx.store.close()
        for closer in ctx.state.get("cleanup", []):
            closer()
        report = ctx.state.get("report_path")
        if keep or report:  # the HTML report is the demo's result: keep its folder so it can be opened
            echo(f"kept {folder}" + (f" (open {report}; delete the folder when done)" if report else ""))
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return folder
