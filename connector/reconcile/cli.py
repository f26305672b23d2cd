"""The ``cessio reconcile`` sub-commands, parsed here so that :mod:`connector.cli` stays a thin layer.

Reads: the command's arguments. Writes: summaries and JSON lines on stdout through ``echo``; errors are
raised as Cessio exceptions (the CLI turns them into one line and an exit code).
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.errors import ConfigError, MoneyError
from connector.money import Money

USAGE = ("usage: cessio reconcile [queue [N] | accept ALLOCATION_ID | reject ALLOCATION_ID | "
         "allocate LINE_ID INVOICE=AMOUNT ... | ledger [--fec FILE] [--csv FILE]]")


def _actor() -> str:
    if os.environ.get("CESSIO_ACTOR"):
        return os.environ["CESSIO_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _int(text: str, what: str) -> int:
    try:
        return int(text.lstrip("#"))
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}; {USAGE}") from None


def reconcile_command(app: Any, args: list[str], *, echo: Callable[[str], None]) -> None:
    if not args:
        from connector.reconcile.engine import run_reconciliation

        with app.open_store(actor="reconcile") as store:
            summary = run_reconciliation(store, app.config)
        echo(summary.text())
        return
    verb, rest = args[0], args[1:]
    actor = _actor()
    if verb == "queue":
        from connector.reconcile.review import review_queue

        limit = _int(rest[0], "N") if rest else 50
        with app.open_store(actor=actor) as store:
            for item in review_queue(store, limit=limit, offset=0):
                echo(json.dumps(item, ensure_ascii=False))
    elif verb in ("accept", "reject") and len(rest) == 1:
        from connector.reconcile.review import accept_suggestion, reject_suggestion

        function = accept_suggestion if verb == "accept" else reject_suggestion
        with app.open_store(actor=actor) as store:
            ids = function(store, _int(rest[0], "ALLOCATION_ID"), actor=actor)
        echo(f"{verb}ed allocation(s) {', '.join(map(str, ids))} (by {actor})")
    elif verb == "allocate" and len(rest) >= 2:
        from connector.reconcile.review import allocate_manually

        line_id = _int(rest[0], "LINE_ID")
        with app.open_store(actor=actor) as store:
            line = store.statement_line(line_id)
            if line is None:
                raise ConfigError(f"statement line {line_id} does not exist")
            pieces = []
            for spec in rest[1:]:
                reference, sep, amount = spec.rpartition("=")
                if not sep or not reference:
                    raise ConfigError(f"{spec!r} is not INVOICE=AMOUNT; {USAGE}")
                invoice_id = (_int(reference, "invoice id") if reference.startswith("#")
                              else store.recon_invoice_by_number(reference, line["currency"]))
                if invoice_id is None:
                    raise ConfigError(f"no {line['currency']} invoice numbered {reference!r}")
                try:
                    pieces.append((invoice_id, Money.parse(amount.replace(",", "."), line["currency"])))
                except MoneyError as exc:
                    raise ConfigError(f"amount {amount!r}: {exc}") from None
            ids = allocate_manually(store, line_id, pieces, actor=actor)
        echo(f"allocated line {line_id}: allocation(s) {', '.join(map(str, ids))} (by {actor})")
    elif verb == "ledger":
        from connector.reconcile.ledger import export_csv, export_fec, post_ledger

        options = dict(zip(rest[::2], rest[1::2], strict=False))
        unknown = set(options) - {"--fec", "--csv"}
        if unknown or len(rest) % 2:
            raise ConfigError(USAGE)
        with app.open_store(actor="ledger") as store:
            result = post_ledger(store, app.config)
            echo(result.text())
            if "--csv" in options:
                with Path(options["--csv"]).open("w", encoding="utf-8", newline="") as fp:
                    export_csv(store, fp)
                echo(f"wrote {options['--csv']}")
            if "--fec" in options:
                with Path(options["--fec"]).open("w", encoding="utf-8", newline="") as fp:
                    export_fec(store, fp, app.config)
                echo(f"wrote {options['--fec']}")
    else:
        raise ConfigError(USAGE)
