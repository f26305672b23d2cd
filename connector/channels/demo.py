"""Demo stage "factor files and ISO 20022": a *preview* bordereau (BPCE Factor layout), its printable HTML
and a schema-checked tsin.006 for the invoices in the demo store, written into the demo folder.

It is a dry preview on purpose: nothing is claimed, so invoices the API stage already assigned are never
assigned a second time (the file factor would otherwise need invoices of its own). Reads the store's
invoices; writes ``<folder>/factor-files/``. Sets ``ctx.state["channels"]`` = ``{"bordereau": path,
"html": path, "tsin006": path, "previewed": n, "skipped": n}``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from connector.channels.bordereau import (
    check_against_ledger,
    detail_values,
    render_files,
    render_html,
    totals_of,
    write_atomically,
)
from connector.channels.fixedwidth import load_layout, render_record
from connector.channels.iso20022 import build_tsin006
from connector.clock import today
from connector.errors import Quarantine
from connector.money import Money

PREVIEW_LAYOUT = "bpce"
MAX_PREVIEW = 200


def _preview_invoices(store: Any) -> list[Any]:
    rows = store.invoice_rows(where="kind IN ('invoice', 'credit_note')", limit=MAX_PREVIEW)
    invoices = [store.get_invoice(row["id"]) for row in rows]
    if not invoices:
        return []
    currency = Counter(inv.currency for inv in invoices).most_common(1)[0][0]
    return [inv for inv in invoices if inv.currency == currency and inv.due_date is not None]


def demo_stage(ctx: Any) -> None:
    layout = load_layout(PREVIEW_LAYOUT)
    invoices = _preview_invoices(ctx.store)
    if not invoices:
        ctx.echo("  no invoices in the store to preview a bordereau for")
        return
    file_date = today()
    seller = invoices[0].seller
    params = {"client_number": "000001", "company_name": seller.name or "Cessio", "statement_date": file_date}
    details, skipped = [], Counter()
    for invoice in invoices:
        values = detail_values(invoice, "credit_note" if invoice.is_credit_note else "invoice",
                               invoice.amount_due.minor_units, seq=len(details) + 2, file_date=file_date,
                               params=params)
        try:  # a debtor without SIRET/VAT or reference cannot go in this layout: count it, go on
            render_record(layout, "detail", values, where=invoice.number)
        except Quarantine as exc:
            skipped[exc.field or "other"] += 1
            continue
        details.append(values)
    if not details:
        ctx.echo(f"  none of {len(invoices)} invoices fits the {layout.title} layout ({dict(skipped)})")
        return
    head = {**params, "factor": "preview", "file_number": 1, "file_date": file_date,
            "currency": invoices[0].currency}
    parts = render_files(layout, details, head=head, where="preview")
    # the control the store would give: the previewed documents' own totals
    check_against_ledger(parts, layout, totals_of(details), where="preview")
    folder = ctx.folder / "factor-files"
    paths = [write_atomically(folder, "PREVIEW_" + part.file_name, part.content) for part in parts]
    totals = parts[0].totals
    page = render_html(title=layout.title + " (preview, not released)", factor="preview", batch_number=1,
                       file_names=[p.name for p in paths], file_date=file_date, details=details, totals=totals,
                       currency=invoices[0].currency, company=params["company_name"])
    html_path = write_atomically(folder, paths[0].stem + ".html", page.encode("utf-8"))
    previewed = [inv for inv in invoices if inv.number in {d["number"] for d in details}]
    try:
        tsin = build_tsin006(previewed, message_id=f"CESSIO-PREVIEW-{file_date:%Y%m%d}", batch_id="PREVIEW-1",
                             issue_date=file_date, assignor_name=params["company_name"],
                             assignor_legal_id=seller.legal_id, factor_name="Preview Factor", factor_id="000001")
    except Quarantine as exc:
        tsin_path = None
        ctx.echo(f"  tsin.006 not written: {exc}")
    else:
        tsin_path = write_atomically(folder, "PREVIEW_tsin006.xml", tsin)
    ctx.state["channels"] = {"bordereau": str(paths[0]), "html": str(html_path),
                             "tsin006": str(tsin_path) if tsin_path else None,
                             "previewed": len(details), "skipped": sum(skipped.values())}
    ctx.echo(f"  dry preview (nothing claimed, so no invoice is assigned twice): {len(details)} documents, "
             f"balance {Money.from_minor(totals['total_signed_minor'], invoices[0].currency)}")
    if skipped:
        ctx.echo(f"  {sum(skipped.values())} left out of the {layout.title} layout: missing {dict(skipped)}")
    ctx.echo(f"  bordereau ({layout.title}, 275-char records, trailer checked): {paths[0]}")
    ctx.echo(f"  printable bordereau: {html_path}")
    if tsin_path is not None:
        ctx.echo(f"  tsin.006 InvoiceAssignmentRequest (schema-checked, {len(previewed)} items): {tsin_path}")

