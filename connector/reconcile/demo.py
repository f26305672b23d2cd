"""The demo's reconciliation stages: statements built for the invoices in the store, imported, matched,
posted to the ledger.

``import_stage`` writes ``<folder>/statements/bank-camt053.xml`` (payments of the store's open invoices:
one by invoice number, one partial, one short by a bank fee, one net of a discount, one with the number
written loosely, an interest line, a card settlement, a supplier debit) and
``<folder>/statements/factor-camt053.xml`` (the factor current account as the factor reports it: Cessio's
own factor movements, one booked a day late, plus a fee Cessio never heard of), imports both, then the
bank file again to show that nothing is imported twice. ``reconcile_stage`` runs the engine, prints the
summary, the log and the factor balance-gap journal. ``ledger_stage`` posts the journal entries and writes
``<folder>/ledger/FEC.txt`` and ``<folder>/ledger/ledger.csv``.

``ctx.state`` keys set: ``statement_files`` (paths), ``reconciliation_config`` (the Config used),
``reconciliation_summary`` (dict), ``ledger_files`` (paths).
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.clock import today
from connector.money import Money

BANK_IBAN = "FR7630006000011234567890189"
FACTOR_ACCOUNT = "FR7610107001019876543210160"
FACTOR_PAYER = "FR7610107001011234567890129"


def _config(ctx: Any) -> Any:
    from connector.config import parse_config

    text = (f'[store]\npath = "{ctx.folder / "cessio.db"}"\n\n[company]\nname = "Cessio Demo SAS"\n'
            f'iban = "{BANK_IBAN}"\n\n[reconciliation]\naccounts = ["{BANK_IBAN}"]\n'
            f'factor_accounts = ["sandbox={FACTOR_ACCOUNT}"]\nfactor_payers = ["{FACTOR_PAYER}"]\n\n'
            '[factors.sandbox]\nadvance_rate = "0.90"\nfee_rate = "0.0025"\nfee_vat_rate = "0.20"\n')
    return parse_config(text, path=ctx.folder / "cessio-reconcile.toml")


def _money(minor: int, currency: str) -> Decimal:
    return Money.from_minor(minor, currency).amount


def bank_lines(invoices: list[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    """Payments of the first open EUR invoices in the ways people pay, and three lines that are not."""
    lines: list[dict[str, Any]] = []
    shapes = ("full", "partial", "fee", "discount", "loose")
    for shape, inv in zip(shapes, invoices, strict=False):
        due = _money(inv["amount_due_minor"], "EUR")
        line = {"name": inv["buyer_name"], "iban": None, "currency": "EUR", "sref": None, "e2e": None,
                "charges": None, "instructed": None, "code": "PMNT/RCDT/ESCT", "date": day}
        if shape == "full":
            line.update(amount=due, text=f"Facture {inv['number']}")
        elif shape == "partial":
            line.update(amount=(due * Decimal("0.4")).quantize(Decimal("0.01")), text=f"Acompte {inv['number']}")
        elif shape == "fee":
            line.update(amount=due - Decimal("7.50"), text=f"INV {inv['number']}", charges=Decimal("7.50"))
        elif shape == "discount":
            line.update(amount=(due * Decimal("0.98")).quantize(Decimal("0.01")), text=f"{inv['number']} escompte 2%")
        else:
            compact = "".join(ch for ch in inv["number"] if ch.isalnum())
            line.update(amount=due, text=f"reglement fact n° {compact} merci")
        lines.append(line)
    lines.append({"name": "BANQUE DEMO", "amount": Decimal("3.12"), "text": "INTERETS CREDITEURS", "currency": "EUR",
                  "code": "ACMT/MDOP/INTR", "date": day})
    lines.append({"name": "DEMO ACQUIRING", "amount": Decimal("418.40"), "text": "REMISE CB 0042", "currency": "EUR",
                  "code": "PMNT/CCRD/POSD", "date": day})
    lines.append({"name": "Fournisseur Papier SARL", "amount": Decimal("-250.00"), "text": "Facture fournisseur 8812",
                  "currency": "EUR", "code": "PMNT/ICDT/ESCT", "date": day})
    for n, line in enumerate(lines, start=1):
        line["ref"] = f"DEMO-{day:%Y%m%d}-{n:04d}"
    return lines


def factor_lines(movements: list[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    """The factor's view of the current account: Cessio's movements, one a day late, plus an extra fee."""
    lines = []
    for n, move in enumerate(m for m in movements if m["currency"] == "EUR"):
        booked = dt.date.fromisoformat(move["occurred_on"]) + dt.timedelta(days=1 if n == 0 else 0)
        lines.append({"ref": f"FCT-{n + 1:05d}", "amount": _money(move["amount_minor"], "EUR"), "currency": "EUR",
                      "text": f"{move['kind']} {move['invoice_key'] or ''}".strip(), "name": "DEMO FACTOR",
                      "date": booked, "code": "PMNT/RCDT/ESCT"})
    lines.append({"ref": f"FCT-{len(lines) + 1:05d}", "amount": Decimal("-35.00"), "currency": "EUR",
                  "text": "COMMISSION DE GESTION TRIMESTRIELLE", "name": "DEMO FACTOR", "date": day,
                  "code": "ACMT/MDOP/CHRG"})
    return lines


def import_stage(ctx: Any) -> None:
    from connector.reconcile.generator import camt053_bytes
    from connector.reconcile.importing import import_files

    store, day = ctx.store, today()
    config = _config(ctx)
    ctx.state["reconciliation_config"] = config
    invoices = store.invoice_rows(where="kind = 'invoice' AND currency = 'EUR' AND amount_due_minor > 1000",
                                  order_by="id")
    folder = Path(ctx.folder) / "statements"
    folder.mkdir(exist_ok=True)
    bank = folder / "bank-camt053.xml"
    bank.write_bytes(camt053_bytes(bank_lines(invoices, day), account=BANK_IBAN, currency="EUR",
                                   opening=Decimal("25000.00"), message_id=f"DEMO-{day:%Y%m%d}",
                                   statement_id=f"DEMO-{day:%Y%m%d}", created=day))
    factor = folder / "factor-camt053.xml"
    movements = store.factor_current_movements("sandbox")
    factor.write_bytes(camt053_bytes(factor_lines(movements, day), account=FACTOR_ACCOUNT, currency="EUR",
                                     opening=Decimal("0.00"), message_id=f"FCT-{day:%Y%m%d}",
                                     statement_id=f"FCT-{day:%Y%m%d}", created=day))
    ctx.state["statement_files"] = [str(bank), str(factor)]
    for result in import_files(store, [bank, factor]):
        ctx.echo(f"  {result.line().replace(str(ctx.folder) + '/', '')}")
    again = import_files(store, [bank])[0]
    ctx.echo(f"  imported again: {again.line().replace(str(ctx.folder) + '/', '')}")


def reconcile_stage(ctx: Any) -> None:
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.export import reconciliation_rows, write_reconciliation

    config = ctx.state.get("reconciliation_config") or _config(ctx)
    summary = run_reconciliation(ctx.store, config)
    ctx.state["reconciliation_summary"] = summary.to_dict()
    for text in summary.text().splitlines():
        ctx.echo(f"  {text}")
    rows = [r for r in reconciliation_rows(ctx.store) if r["account"] != FACTOR_ACCOUNT]
    ctx.echo("  reconciliation log (the export's first columns):")
    for row in rows:
        ctx.echo(f"    {row['statement_line_id']:<22} {row['line_amount']:>10} {row['invoice_number'] or '-':<14} "
                 f"{row['allocated_amount']:>10} {row['status']:<9} {row['rule']} {row['confidence']}"
                 + (f" (write-off {row['writeoff_amount']} {row['writeoff_kind']})" if row["writeoff_amount"] else ""))
    buffer = io.StringIO()
    write_reconciliation(rows, buffer, "csv")
    path = Path(ctx.folder) / "reconciliation.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    ctx.echo(f"  export: {path}")
    gaps = ctx.store.factor_gap_rows("sandbox")
    if gaps:
        ctx.echo("  factor current account, balance-gap journal (Cessio vs the factor's statement):")
        import json

        for gap in gaps:
            ctx.echo(f"    {gap['day']} cessio {_money(gap['cessio_minor'], gap['currency'])} factor "
                     f"{_money(gap['factor_minor'], gap['currency'])} gap {_money(gap['gap_minor'], gap['currency'])}"
                     f" {gap['status']}")
            detail = json.loads(gap["detail"])
            for note in (detail.get("explained") or []) + (detail.get("flagged") or []):
                ctx.echo(f"      {note}")


def ledger_stage(ctx: Any) -> None:
    from connector.reconcile.ledger import export_csv, export_fec, post_ledger

    config = ctx.state.get("reconciliation_config") or _config(ctx)
    result = post_ledger(ctx.store, config)
    ctx.echo(f"  {result.text()}")
    again = post_ledger(ctx.store, config)
    ctx.echo(f"  posted again: {again.posted} new receipt(s), {again.factor_posted} new factor movement(s)")
    rows = ctx.store.ledger_rows()
    debit = sum(r["debit_minor"] for r in rows)
    credit = sum(r["credit_minor"] for r in rows)
    ctx.echo(f"  {len(rows)} ledger lines, debits {debit} = credits {credit} (minor units): "
             f"{'balanced' if debit == credit else 'NOT BALANCED'}")
    folder = Path(ctx.folder) / "ledger"
    folder.mkdir(exist_ok=True)
    fec = folder / f"732829320FEC{today():%Y%m%d}.txt"
    with fec.open("w", encoding="utf-8", newline="") as fp:
        export_fec(ctx.store, fp, config)
    csv_path = folder / "ledger.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fp:
        export_csv(ctx.store, fp)
    ctx.state["ledger_files"] = [str(fec), str(csv_path)]
    ctx.echo(f"  FEC: {fec}")
    ctx.echo(f"  CSV: {csv_path}")
