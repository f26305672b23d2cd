"""The ``cessio`` command: a thin layer over the library; data on stdout, logs on stderr.

Each command parses its options and calls one library function. Exit codes: 0 success, 1 failure,
2 configuration error, 3 stopped for a human, 4 capability not built in this version.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from connector import __version__
from connector.errors import CessioError, ConfigError, NotBuiltYet

log = logging.getLogger("cessio")


@dataclass
class AppContext:
    """What every command may need, loaded lazily (file-only commands need no config)."""

    config_path: Path | None
    db_path: Path | None
    log_format: str
    _config: Any = field(default=None, repr=False)

    @property
    def config(self):
        from connector.config import DEFAULT_CONFIG_NAME, empty_config, load_config

        if self._config is None:
            path = self.config_path
            if path is None and Path(DEFAULT_CONFIG_NAME).exists():
                path = Path(DEFAULT_CONFIG_NAME)
            if path is not None:
                self._config = load_config(path)
            elif self.db_path is not None:
                self._config = empty_config(self.db_path.resolve())
            else:
                raise ConfigError(f"no configuration: pass --config FILE (or --db FILE), or create "
                                  f"{DEFAULT_CONFIG_NAME} with `cessio init`")
        return self._config

    @property
    def store_path(self) -> Path:
        return self.db_path if self.db_path is not None else self.config.store_path

    def open_store(self, *, actor: str = "cli"):
        from connector.store import Store

        return Store(self.store_path, actor=actor)


def not_built(command: str, issue: str) -> None:
    raise NotBuiltYet(f"`cessio {command}` is not built in this version yet ({issue}); nothing was done")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


class CessioGroup(click.Group):
    """Turns Cessio errors into one clear line on stderr and the matching exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CessioError as exc:
            from connector.logs import redact

            click.echo(f"cessio: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=CessioGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="CESSIO_CONFIG",
              help="Configuration file (default: ./cessio.toml, or $CESSIO_CONFIG).")
@click.option("--db", "db_path", type=click.Path(path_type=Path), help="Store file; overrides store.path.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(__version__, prog_name="cessio")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, db_path: Path | None, log_format: str,
        verbose: int, quiet: bool) -> None:
    """Cessio: assign receivables to a factor exactly once, and reconcile what is paid.

    \b
    Example:
        cessio init > cessio.toml
        cessio --config cessio.toml check
        cessio demo
    """
    from connector.logs import setup_logging

    level = "WARNING" if quiet else ("DEBUG" if verbose > 1 else "INFO")
    setup_logging(fmt=log_format, level=level)
    ctx.obj = AppContext(config_path=config_path, db_path=db_path, log_format=log_format)


@cli.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(output: Path | None, force: bool) -> None:
    """Write a commented starter configuration.

    \b
    Example:
        cessio init -o cessio.toml
    """
    from connector.config import render_example

    text = render_example()
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to overwrite")
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@cli.command()
@click.option("--rows/--no-rows", default=True, show_default=True,
              help="Verify every business row (invoice fingerprints and columns, ledger pieces, statement lines).")
@click.option("--max-listed", type=click.IntRange(min=0), default=20, show_default=True,
              help="List at most this many mismatched rows, then their count.")
@click.pass_obj
def check(app: AppContext, rows: bool, max_listed: int) -> None:
    """Validate the config, open the store, verify it, probe every source and factor (no side effects).

    The store is verified with SQLite's quick_check, the audit hash chain and, unless --no-rows, every
    business row: each invoice version against its fingerprint, each invoice against its current version,
    each ledger piece balanced, each statement line against its data and its allocations.

    \b
    Example:
        cessio --config cessio.toml check
    """
    from connector.operations import run_checks

    results = run_checks(app.config, app.store_path, rows=rows, max_listed=max_listed)
    failed = False
    for item in results:
        click.echo(f"{'ok  ' if item['ok'] else 'FAIL'} {item['what']}: {item['detail']}")
        failed |= not item["ok"]
    if failed:
        sys.exit(1)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def status(app: AppContext, fmt: str) -> None:
    """Jobs, backlog and each factor's position.

    \b
    Example:
        cessio --db cessio.db status --format json
    """
    from connector.operations import collect_status, render_status

    with app.open_store(actor="cli") as store:
        data = collect_status(store, app.config)
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(render_status(data))


@cli.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.pass_obj
def audit_verify(app: AppContext) -> None:
    """Recompute the audit hash chain; name the first broken row.

    \b
    Example:
        cessio --db cessio.db audit verify
    """
    with app.open_store() as store:
        verdict = store.verify_audit()
    if verdict.ok:
        click.echo(f"audit chain ok: {verdict.rows} rows, head {verdict.head_hash or '-'}")
    else:
        click.echo(f"audit chain BROKEN at seq {verdict.first_broken_seq}: {verdict.problem}")
        sys.exit(1)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--official/--no-official", default=True, show_default=True,
              help="Also run the official EN 16931 / Factur-X rules (saxonche; ~1 s to compile once).")
@click.option("--default-payment-days", type=int, default=None,
              help="Derive a due date this many days after issue when the invoice states none (flagged).")
def inspect(files: tuple[Path, ...], official: bool, default_payment_days: int | None) -> None:
    """Parse invoice files; print one JSON object per file; store nothing.

    Exit code 1 when any file is not a readable invoice (its object says why).

    \b
    Example:
        cessio inspect invoice.xml factur-x.pdf
    """
    from connector.ingest import inspect_file

    failed = False
    for path in files:
        result = inspect_file(path, official=official, default_payment_days=default_payment_days)
        failed = failed or not result["ok"]
        emit_json(result)
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--official", is_flag=True,
              help="Also run the official EN 16931 rules (slower; native rules always run).")
@click.pass_obj
def ingest(app: AppContext, paths: tuple[Path, ...], official: bool) -> None:
    """Parse and store invoice files or folders (idempotent); quarantine the rest.

    Folders are read recursively. Prints a summary and one line per quarantined file.

    \b
    Example:
        cessio --db cessio.db ingest inbox/
    """
    from connector.ingest import ingest_paths, iter_files

    config = app.config
    days = config.section("company").get("default_payment_days")
    official = official or bool(config.section("inbox").get("official_rules", False))
    with app.open_store() as store:
        if sys.stderr.isatty():
            files = list(iter_files(paths))
            with click.progressbar(length=len(files), label="ingesting", file=sys.stderr) as bar:
                report = ingest_paths(store, files, official=official, default_payment_days=days,
                                      progress=lambda _outcome: bar.update(1))
        else:
            report = ingest_paths(store, paths, official=official, default_payment_days=days)
    click.echo(report.line())
    for outcome in report.outcomes:
        if outcome.status == "rejected":
            click.echo(f"  quarantined {outcome.reason}")


@cli.command()
@click.option("--source", help="Only this configured source.")
@click.pass_obj
def pull(app: AppContext, source: str | None) -> None:
    """Run the configured source adapters once (incremental).

    \b
    Example:
        cessio --config cessio.toml pull --source tryton
    """
    import contextlib

    from connector.pull import pull as pull_sources

    def bar(name: str):
        return _TtyProgress(name) if sys.stderr.isatty() else contextlib.nullcontext(_NoBar())

    with app.open_store(actor="pull") as store:
        summaries = pull_sources(app.config, store, source=source, progress_factory=bar)
    for summary in summaries:
        click.echo(summary.line())
    if any(s.error for s in summaries):
        sys.exit(1)


class _NoBar:
    """Progress sink when stderr is not a terminal (logs and pipes stay clean)."""

    def update(self, n: int) -> None:
        pass


class _TtyProgress:
    """A one-line counter on a terminal's stderr (a source's size is unknown before it is read)."""

    def __init__(self, name: str) -> None:
        self.name, self.done = name, 0

    def __enter__(self) -> _TtyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.done >= 250:
            click.echo(err=True)  # end the counter's line before the summary

    def update(self, n: int) -> None:
        self.done += n
        if self.done % 250 == 0:
            click.echo(f"\rpulling {self.name}: {self.done} records", err=True, nl=False)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show decisions and reasons; send nothing.")
@click.option("--factor", help="Only this configured factor.")
@click.pass_obj
def assign(app: AppContext, dry_run: bool, factor: str | None) -> None:
    """Decide eligibility (with every reason), then assign to the factor exactly once.

    \b
    Example:
        cessio --config cessio.toml assign --dry-run
    """
    from connector.factors.engine import render_report, run_assign

    with app.open_store(actor="cli") as store:
        reports = run_assign(store, app.config, factor=factor, dry_run=dry_run)
    for report in reports:
        click.echo("\n".join(render_report(report, dry_run=dry_run)))
    if not reports:
        click.echo("no factor configured ([factors.NAME] in the config)", err=True)
        sys.exit(1)


@cli.group()
def statements() -> None:
    """Bank and factor statements."""


@statements.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def statements_import(app: AppContext, files: tuple[Path, ...]) -> None:
    """Import camt.052/053/054, MT940/942 or CFONB 120 files (detected by content), and the replies of
    file-based factors (tsin.007/008/013, CSV statements in the factor's reply_layout) into factor events.

    \b
    Example:
        cessio --db cessio.db statements import bank/2026-11-27.xml
    """
    from connector.channels.replies import import_factor_replies
    from connector.reconcile.importing import import_files

    with app.open_store(actor="statements") as store:
        replies, rest, replies_failed = import_factor_replies(store, app.config, list(files))
        results = import_files(store, rest) if rest else []
    for line in replies:
        click.echo(line)
    for result in results:
        click.echo(result.line())
    if replies_failed or any(r.error for r in results):
        sys.exit(1)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1)
@click.pass_obj
def reconcile(app: AppContext, args: tuple[str, ...]) -> None:
    """Run the matching engine; review with queue | accept | reject | allocate.

    \b
    reconcile                          match every undecided line, print the summary
    reconcile queue [N]                lines waiting for a decision, with candidates (JSON lines)
    reconcile accept ALLOCATION_ID     accept a suggestion (every piece of its proposal)
    reconcile reject ALLOCATION_ID     reject a suggestion, or take a decision back
    reconcile allocate LINE_ID INVOICE=AMOUNT ...   allocate by hand (invoice number or #id)
    The decider is $CESSIO_ACTOR (default: your login name).

    \b
    Example:
        cessio --db cessio.db reconcile
        cessio --db cessio.db reconcile accept 42
        cessio --db cessio.db reconcile allocate 17 FA-2026-00123=1200.00 AV-2026-00007=-200.00
    """
    from connector.reconcile.cli import reconcile_command

    reconcile_command(app, list(args), echo=click.echo)


@cli.group()
def export() -> None:
    """Exports for finance staff."""


@export.command("reconciliation")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path))
@click.pass_obj
def export_reconciliation(app: AppContext, fmt: str, output: Path | None) -> None:
    """One row per allocation (the reconciliation log).

    \b
    Example:
        cessio --db cessio.db export reconciliation --format csv -o recon.csv
    """
    from connector.reconcile.export import reconciliation_rows, write_reconciliation

    with app.open_store(actor="export") as store:
        rows = reconciliation_rows(store)
    if output is None:
        write_reconciliation(rows, sys.stdout, fmt)
    else:
        with output.open("w", encoding="utf-8", newline="") as fp:
            write_reconciliation(rows, fp, fmt)
        click.echo(f"wrote {len(rows)} row(s) to {output}", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path))
@click.pass_obj
def report(app: AppContext, fmt: str, output: Path | None) -> None:
    """KPIs for finance staff: DSO, ageing, funding, reserve, fees, auto-match rate.

    \b
    Example:
        cessio --db cessio.db report --format html -o report.html
    """
    from connector.clock import today
    from connector.report import render_report, write_report

    with app.open_store(actor="report") as store:
        if output is not None:
            write_report(store, app.config, today(), output, fmt=fmt)
            click.echo(f"wrote {output}", err=True)
        else:
            click.echo(render_report(store, app.config, today(), fmt=fmt), nl=False)


@cli.command()
@click.pass_obj
def run(app: AppContext) -> None:
    """The agent (scheduler) in the foreground, for systemd or a container.

    \b
    Example:
        cessio --config /etc/cessio/cessio.toml run
    """
    from connector.agent import run_agent
    from connector.logs import setup_logging

    config = app.config
    if config.section("log")["format"] == "json" and app.log_format == "text":
        setup_logging(fmt="json", level=config.section("log")["level"])  # the agent's logs go to a collector
    sys.exit(run_agent(config, store_path=app.store_path, config_path=config.path))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8600, show_default=True, type=int)
@click.option("--create-user", "create_user", metavar="NAME",
              help="Create (or reset) a desk user and exit; the password is read from $CESSIO_DESK_PASSWORD "
                   "or from stdin, never from the command line.")
@click.option("--role", type=click.Choice(["viewer", "reviewer", "admin"]), default="viewer", show_default=True)
@click.pass_obj
def serve(app: AppContext, host: str, port: int, create_user: str | None, role: str) -> None:
    """The review desk for finance staff (web, loopback only; port 0 picks a free one).

    \b
    Example:
        printf '%s' "$PASSWORD" | cessio --db cessio.db serve --create-user alice --role reviewer
        cessio --db cessio.db serve --port 8600
    """
    import os

    if create_user:
        from connector.web.auth import create_user as make_user

        password = os.environ.get("CESSIO_DESK_PASSWORD")
        if password is None:
            password = sys.stdin.readline().rstrip("\r\n")
        with app.open_store(actor="cli") as store:
            make_user(store, create_user, role, password)
        click.echo(f"desk user {create_user} ({role}) saved", err=True)
        return
    from connector.web import serve as serve_desk

    config = None
    if app.config_path is not None or app.db_path is None:
        config = app.config
    serve_desk(app.store_path, host=host, port=port, config=config, echo=lambda line: click.echo(line))


@cli.command("sandbox-factor")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--data", type=click.Path(path_type=Path), default=Path("sandbox-factor.db"), show_default=True)
@click.option("--faults", default="", help="kind=probability pairs, e.g. drop_after_commit=0.1,http_503=0.05")
@click.option("--seed", type=int, default=0, show_default=True)
def sandbox_factor(host: str, port: int, data: Path, faults: str, seed: int) -> None:
    """A realistic factor on loopback implementing the Cessio Factor API.

    \b
    Example:
        cessio sandbox-factor --port 8700 --data /tmp/factor.db --faults http_503=0.1 --seed 7

    Port 0 picks a free port; the first stdout line names the URL. Sandbox-only admin routes:
    POST /v1/_sandbox/advance {"days": N}, POST /v1/_sandbox/outage {"seconds": S}, GET /v1/_sandbox/stats.
    """
    from connector.sandbox import serve

    try:
        serve(host, port, data, faults, seed, echo=lambda line: click.echo(line))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the temporary folder and print its path.")
def demo(keep: bool) -> None:
    """Run the whole pipeline on the embedded default, in a temporary folder.

    \b
    Example:
        cessio demo
    """
    from connector.demo import run_demo

    run_demo(keep=keep, echo=click.echo)


def main() -> None:
    cli(prog_name="cessio")
