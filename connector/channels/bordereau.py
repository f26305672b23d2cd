"""Bordereau files: a closed batch of assignments → the factor's file(s), checked, recorded, released.

Reads: a batch from the store (its assignment rows and the invoice versions they were claimed at) and
a layout from ``mappings/factors/``. Writes: the file bytes (kept in ``channel_files`` first), then the
file in the outbox folder by an atomic rename, plus a printable HTML bordereau beside it.

Release protocol (crash-safe, never two files for one batch, never a batch without its file):

1. In one transaction: render the file(s) from the invoice data, read them back, and compare the
   control totals three ways (detail records, the trailer's own totals, the store's assignment rows and
   batch control sum). Any disagreement raises :class:`ControlTotalMismatch` and nothing is recorded:
   the file is never released. Otherwise the bytes, the file number and name are recorded
   (``prepared``), with the audit row.
2. The recorded bytes are written to ``.<name>.partial`` in the outbox, fsynced, renamed to ``<name>``
   and the folder fsynced. A final file already there with the same SHA-256 is accepted as is.
3. In one transaction the file is marked ``released``, its batch ``released`` and its items ``sent``.

A crash before 1 commits leaves nothing; after 1 a rerun writes the *recorded* bytes under the
*recorded* name (the file number is never reallocated); a leftover ``.partial`` is overwritten; a crash
after the rename is finished by step 3 on the rerun. ``CESSIO_CHANNELS_FAULT=<point>`` kills the
process at a named point (``after_record``, ``mid_write``, ``after_rename``) for the fault tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.channels.fixedwidth import Layout, encode_lines, load_layout, parse_value, read_records, render_record
from connector.clock import today
from connector.errors import Quarantine, RetryLater, StopAndAsk
from connector.model import Invoice
from connector.money import Money
from connector.store.channels import FILE_KIND, file_kind

FAULT_ENV = "CESSIO_CHANNELS_FAULT"
NEGATIVE_KINDS = frozenset({"credit_note", "payment"})


class ControlTotalMismatch(StopAndAsk):
    """The file's control totals disagree with its own records or with the store: never released."""


def _fault(point: str) -> None:
    """Die here, as a kill -9 would, when the fault test asks for it (no effect otherwise)."""
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


# -- pure: values of the records ---------------------------------------------------------------------

def debtor_identifier(invoice: Invoice) -> str | None:
    """SIRET when the buyer has one, else its VAT id (factor files take one or the other)."""
    buyer = invoice.buyer
    if buyer.legal_id and buyer.legal_id_scheme in ("0009", None) and len(buyer.legal_id.replace(" ", "")) == 14:
        return buyer.legal_id.replace(" ", "")
    return buyer.vat_id


def detail_values(invoice: Invoice, kind: str, amount_minor: int, *, seq: int, file_date: dt.date,
                  params: Mapping[str, Any], payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a detail record draws on, for one invoice, credit note or reported payment."""
    payload = payload or {}
    buyer = invoice.buyer
    domestic = (buyer.country or "FR") == (invoice.seller.country or params.get("company_country") or "FR")
    debtor_id = debtor_identifier(invoice)
    signed = -amount_minor if kind in NEGATIVE_KINDS else amount_minor
    if kind == "adjustment" and payload.get("direction") == "credit":
        signed = -amount_minor
    address = buyer.address
    issue = invoice.issue_date
    if kind in ("payment", "adjustment") and payload.get("payment_date"):
        issue = dt.date.fromisoformat(payload["payment_date"])
    return {
        **params,
        "seq": seq, "file_date": file_date, "kind": kind, "number": invoice.number,
        "issue_date": issue, "due_date": invoice.due_date, "currency": invoice.currency,
        "amount_minor": amount_minor, "signed_minor": signed,
        "debtor_siret": debtor_id, "debtor_id": debtor_id, "debtor_name": buyer.name or "",
        "debtor_ref": buyer.erp_id or buyer.legal_id or buyer.vat_id,
        "debtor_address": " ".join(address.lines) if address else "",
        "debtor_zip": address.postal_code if address else "", "debtor_city": address.city if address else "",
        "debtor_country": buyer.country or "", "activity": "D" if domestic else "E",
        "factor_buyer_id": (params.get("buyer_ids") or {}).get(buyer.key),
        "order_reference": invoice.order_reference,
        "order_reference_invoice_only": invoice.order_reference if kind == "invoice" else None,
        "buyer_reference": invoice.buyer_reference,
        "original_invoice": invoice.preceding_invoices[0] if invoice.preceding_invoices else None,
        "comment": payload.get("comment", ""),
    }


def totals_of(details: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {"count_all": 0, "total_signed_minor": 0}
    for kind in ("invoice", "credit_note", "payment", "adjustment"):
        totals[f"count_{kind}"] = 0
        totals[f"sum_{kind}"] = 0
    for values in details:
        totals["count_all"] += 1
        totals[f"count_{values['kind']}"] += 1
        totals[f"sum_{values['kind']}"] += values["amount_minor"]
        totals["total_signed_minor"] += values["signed_minor"]
    return totals


@dataclass(frozen=True)
class FilePart:
    """One file of a batch (most layouts: one; Eurofactor: one per emitter)."""

    part: str
    file_name: str
    content: bytes
    totals: dict[str, int]
    details: list[dict[str, Any]] = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def render_files(layout: Layout, details: Sequence[dict[str, Any]], *, head: Mapping[str, Any],
                 where: str = "batch") -> list[FilePart]:
    """Render the batch's file(s): header, details (sequence numbered), trailer with control totals."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for values in details:
        key = str(values.get(layout.split_by) or "") if layout.split_by else ""
        groups.setdefault(key, []).append(values)
    parts = []
    for part, group in sorted(groups.items()):
        # every part of a split batch carries the batch's file number: the split key (the emitter) is in
        # the file name, so the numbers of two batches never collide
        number = head["file_number"]
        context = {**head, "file_number": number, "file_number_mod": number % 1000}
        if layout.split_by:
            context["emitter"] = (head.get("emitters") or {}).get(part) or head.get("emitter")
            for values in group:
                values["emitter"] = context["emitter"]
        lines = []
        seq = 1
        if "header" in layout.records:
            lines.append(render_record(layout, "header", {**context, "seq": seq}, where=where))
            seq += 1
        for values in group:
            values["seq"] = seq
            lines.append(render_record(layout, "detail", values, where=f"{where} {values['number']}"))
            seq += 1
        totals = totals_of(group)
        if "trailer" in layout.records:
            lines.append(render_record(layout, "trailer", {**context, **totals, "seq": seq}, where=where))
        name = layout.file_name.format(**{**context, "factor": head.get("factor", layout.name)})
        parts.append(FilePart(part, name, encode_lines(layout, lines, where=name), totals, list(group)))
    return parts


def _reverse_map(layout: Layout, map_name: str) -> dict[str, str]:
    return {code: kind for kind, code in layout.codes[map_name].items() if code}


def file_totals(layout: Layout, content: bytes, *, source: str = "file") -> dict[str, int]:
    """Read a file back and recompute its totals from its detail records; check its trailer against them.

    Raises :class:`ControlTotalMismatch` when a trailer total disagrees with the detail records.
    """
    records = read_records(layout, content, source=source)
    types = [rtype for rtype, _ in records]
    if "header" in layout.records and (not types or types[0] != "header" or types.count("header") != 1):
        raise ControlTotalMismatch(f"{source}: the file must start with exactly one header record")
    if layout.has_trailer and (not types or types[-1] != "trailer" or types.count("trailer") != 1):
        raise ControlTotalMismatch(f"{source}: the file must end with exactly one trailer record")
    detail = layout.records["detail"]
    kind_field = next(f for f in detail.fields if f.source == "kind" and f.map)
    kinds = _reverse_map(layout, kind_field.map)
    amount_field = next((f for f in detail.fields if f.source == "amount_minor"), None)
    signed_field = next((f for f in detail.fields if f.source == "signed_minor" and f.kind == "decimal"), None)
    sign_field = next((f for f in detail.fields if f.kind == "sign"), None)
    details = []
    for rtype, raw in records:
        if rtype != "detail":
            continue
        code = raw[kind_field.name].strip()
        if code not in kinds:
            raise ControlTotalMismatch(f"{source}: unknown document type {code!r}")
        kind = kinds[code]
        if signed_field is not None:
            signed, _ = parse_value(signed_field, raw[signed_field.name])
            amount = abs(signed)
        else:
            amount = parse_value(amount_field, raw[amount_field.name]) or 0
            if sign_field is not None:
                signed = -amount if raw[sign_field.name] == "-" else amount
            else:
                signed = -amount if kind in NEGATIVE_KINDS else amount
        details.append({"kind": kind, "amount_minor": amount, "signed_minor": signed})
    totals = totals_of(details)
    if layout.has_trailer:
        trailer = next(raw for rtype, raw in records if rtype == "trailer")
        for spec in layout.records["trailer"].fields:
            if not spec.total:
                continue
            value = parse_value(spec, trailer[spec.name])
            if isinstance(value, tuple):
                value = value[0]
            if value != totals[spec.source]:
                raise ControlTotalMismatch(
                    f"{source}: trailer {spec.name} (position {spec.pos}) says {value}, the detail records "
                    f"add up to {totals[spec.source]}")
    return totals


def check_against_ledger(parts: Sequence[FilePart], layout: Layout, ledger: Mapping[str, int], *,
                         where: str) -> None:
    """Sum the totals read back from every part and compare them with the store's; raise on any gap."""
    combined: dict[str, int] = {}
    for part in parts:
        for key, value in file_totals(layout, part.content, source=part.file_name).items():
            combined[key] = combined.get(key, 0) + value
    if "batch_control_sum_minor" in ledger:
        raise ControlTotalMismatch(
            f"{where}: the batch row says {ledger['batch_item_count']} items for {ledger['batch_control_sum_minor']} "
            f"but its assignments add up to {ledger['count_all']} items for {ledger['total_signed_minor']}; "
            "the file is not released")
    for key in sorted(set(combined) | set(ledger)):
        if combined.get(key, 0) != ledger.get(key, 0):
            raise ControlTotalMismatch(
                f"{where}: control total {key} is {combined.get(key, 0)} in the file but {ledger.get(key, 0)} "
                f"in the store; the file is not released")


# -- the printable bordereau ---------------------------------------------------------------------------

def render_html(*, title: str, factor: str, batch_number: int, file_names: Sequence[str], file_date: dt.date,
                details: Sequence[Mapping[str, Any]], totals: Mapping[str, int], currency: str,
                company: str) -> str:
    """A one-page summary of the batch for signature (quittance subrogative / bordereau de cession)."""
    def money(minor: int) -> str:
        return html.escape(str(Money.from_minor(minor, currency)))

    rows = "\n".join(
        f"<tr><td>{i}</td><td>{html.escape(str(d['number']))}</td><td>{html.escape(str(d['kind']))}</td>"
        f"<td>{html.escape(str(d.get('debtor_name') or ''))}</td><td>{html.escape(str(d.get('debtor_id') or ''))}</td>"
        f"<td>{d['issue_date'].isoformat() if d.get('issue_date') else ''}</td>"
        f"<td>{d['due_date'].isoformat() if d.get('due_date') else ''}</td>"
        f"<td class=n>{money(d['signed_minor'])}</td></tr>"
        for i, d in enumerate(details, start=1))
    summary = "\n".join(
        f"<tr><td>{kind.replace('_', ' ')}</td><td class=n>{totals.get(f'count_{kind}', 0)}</td>"
        f"<td class=n>{money(totals.get(f'sum_{kind}', 0))}</td></tr>"
        for kind in ("invoice", "credit_note", "payment", "adjustment") if totals.get(f"count_{kind}"))
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Bordereau {html.escape(factor)} n° {batch_number}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:3px 6px}}.n{{text-align:right}}
.sig{{height:6em;border:1px solid #999;margin-top:2em}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>Bordereau de cession de créances</h1>
<p>{html.escape(title)} — factor <b>{html.escape(factor)}</b> — remise n° <b>{batch_number}</b>
du {file_date.isoformat()}<br>
Cédant : {html.escape(company)}<br>Fichier(s) : {html.escape(", ".join(file_names))}</p>
<table><thead><tr><th>#</th><th>Document</th><th>Type</th><th>Débiteur</th><th>Identifiant</th><th>Date</th>
<th>Échéance</th><th>Montant</th></tr></thead><tbody>
{rows}
</tbody></table>
<h2>Totaux de contrôle</h2>
<table><thead><tr><th>Type</th><th>Nombre</th><th>Montant</th></tr></thead><tbody>
{summary}
<tr><th>Solde</th><th class=n>{totals.get('count_all', 0)}</th>
<th class=n>{money(totals.get('total_signed_minor', 0))}</th></tr>
</tbody></table>
<div class=sig>Date, cachet et signature du cédant :</div>
</body></html>
"""


# -- I/O: the outbox -------------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutboxWriteError(RetryLater):
    """The outbox folder refused a write (disk full, I/O error, permissions): nothing was released;
    the next run writes the recorded bytes again."""


def write_atomically(outbox: Path, name: str, content: bytes) -> Path:
    """Write ``content`` as ``outbox/name`` through a ``.partial`` file and a rename (idempotent).

    An ``OSError`` (ENOSPC, EIO, EACCES...) becomes :class:`OutboxWriteError` (retry later); the
    ``.partial`` file is removed when it can be, so the outbox never holds a half-written final file."""
    final = outbox / name
    partial = outbox / f".{name}.partial"
    digest = hashlib.sha256(content).hexdigest()
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        if final.exists():
            if hashlib.sha256(final.read_bytes()).hexdigest() == digest:
                return final
            raise StopAndAsk(f"{final} already exists with other content; refusing to overwrite a released file")
        with open(partial, "wb") as handle:
            half = len(content) // 2
            handle.write(content[:half])
            handle.flush()
            _fault("mid_write")
            handle.write(content[half:])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)
        _fsync_dir(outbox)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise OutboxWriteError(f"cannot write {final}: {exc.strerror or exc}; nothing released, retried next run") \
            from None
    return final


# -- the release --------------------------------------------------------------------------------------

def _batch_details(store: Any, batch_id: int, *, file_date: dt.date, params: Mapping[str, Any]) -> list[dict]:
    details = []
    for seq, item in enumerate(store.channel_batch_items(batch_id), start=1):
        invoice = Invoice.from_dict(json.loads(item["invoice_data"]))
        if item["kind"] not in FILE_KIND:
            raise Quarantine(f"a {item['kind']} cannot go in a bordereau file", source=f"batch:{batch_id}")
        payload = json.loads(item["payload"] or "{}")
        kind = file_kind(item["kind"], payload)
        # the amount comes from the invoice version (or the reported payment), not from the claim row,
        # so that the ledger check compares two independent records
        if kind in ("payment", "adjustment"):
            amount = Money.parse(payload["amount"], invoice.currency).minor_units
        else:
            amount = invoice.amount_due.minor_units
        details.append(detail_values(invoice, kind, amount, seq=seq, file_date=file_date, params=params,
                                     payload=payload))
    return details


def prepare_batch_files(store: Any, batch_id: int, *, layout: Layout, params: Mapping[str, Any],
                        file_date: dt.date | None = None) -> list[dict[str, Any]]:
    """Step 1: render, check and record the batch's file(s) once; returns the recorded rows."""
    with store.transaction():
        existing = [f for f in store.channel_files(batch_id=batch_id) if f["layout"] == layout.name]
        if existing:
            return existing
        batch = store.channel_batch(batch_id)
        if batch is None:
            raise Quarantine(f"no batch {batch_id}", source="bordereau")
        file_date = file_date or today()
        details = _batch_details(store, batch_id, file_date=file_date, params=params)
        number = store.channel_next_file_number(batch["factor"], layout.name)
        head = {**params, "factor": batch["factor"], "file_number": number, "file_date": file_date,
                "currency": batch["currency"], "batch_number": batch["number"]}
        where = f"batch {batch['factor']}#{batch['number']}"
        parts = render_files(layout, details, head=head, where=where)
        try:
            check_against_ledger(parts, layout, store.channel_ledger_totals(batch_id), where=where)
        except ControlTotalMismatch as exc:
            # the refusal is recorded in its own transaction after this one rolls back
            refused = exc
        else:
            refused = None
        if refused is None:
            page = render_html(
                title=layout.title, factor=batch["factor"], batch_number=batch["number"],
                file_names=[p.file_name for p in parts], file_date=file_date,
                details=[d for p in parts for d in p.details], totals=_sum_totals(parts),
                currency=batch["currency"], company=str(params.get("company_name") or ""))
            for part in parts:
                store.channel_record_file(
                    batch_id=batch_id, part=part.part, factor=batch["factor"], layout=layout.name,
                    file_number=number, file_name=part.file_name, sha256=part.sha256,
                    content=part.content, html=page, item_count=part.totals["count_all"],
                    total_signed_minor=part.totals["total_signed_minor"], currency=batch["currency"])
            store.channel_set_batch_state(batch_id, "file_prepared")
            rows = [f for f in store.channel_files(batch_id=batch_id) if f["layout"] == layout.name]
    if refused is not None:
        with store.transaction():
            store.audit("channel.file_refused", f"batch:{batch_id}", {"layout": layout.name, "reason": str(refused)})
        raise refused
    _fault("after_record")
    return rows


def _sum_totals(parts: Sequence[FilePart]) -> dict[str, int]:
    combined: dict[str, int] = {}
    for part in parts:
        for key, value in part.totals.items():
            combined[key] = combined.get(key, 0) + value
    return combined


def release_batch(store: Any, batch_id: int, *, layout_name: str, outbox: Path,
                  params: Mapping[str, Any], file_date: dt.date | None = None) -> list[Path]:
    """Steps 1-3 for one batch; safe to call again after any crash (it finishes what was started)."""
    layout = load_layout(layout_name)
    rows = prepare_batch_files(store, batch_id, layout=layout, params=params, file_date=file_date)
    paths = []
    for row in rows:
        path = write_atomically(Path(outbox), row["file_name"], row["content"])
        if row["html"]:
            write_atomically(Path(outbox) / "html", Path(row["file_name"]).stem + ".html",
                             row["html"].encode("utf-8"))
        _fault("after_rename")
        with store.transaction():
            store.channel_mark_released(row["id"])
        paths.append(path)
    return paths


def release_pending(store: Any, factor: str, *, layout_name: str, outbox: Path,
                    params: Mapping[str, Any]) -> list[Path]:
    """Release every closed batch of ``factor`` that has no released file yet (the agent's job)."""
    paths: list[Path] = []
    for batch_id in store.channel_batches_without_released_file(factor):
        paths += release_batch(store, batch_id, layout_name=layout_name, outbox=outbox, params=params)
    return paths


def claim_items(store: Any, invoice_ids: Sequence[int], *,
                payments: Mapping[int, Mapping[str, str]] | None = None,
                adjustments: Mapping[int, Mapping[str, str]] | None = None) -> list[dict[str, Any]]:
    """Batch items for invoices (current version) and, in confidential ("balance") mode, payments received
    on them and adjustments to them (FactoFrance 103 / 104).

    ``payments`` maps an invoice id to ``{"amount": "120.00", "payment_date": "2026-11-20", ...}``;
    ``adjustments`` likewise, plus ``"direction": "credit"`` (reduces what the debtor owes: a discount, a
    write-off) or ``"debit"`` (adds to it), and a ``reference`` that tells two adjustments apart.
    """
    payments = dict(payments or {})
    items = []
    for invoice_id in invoice_ids:
        invoice = store.get_invoice(invoice_id)
        row = store.invoice_row(invoice_id)
        items.append({"invoice_id": invoice_id, "invoice_key": invoice.invoice_key,
                      "invoice_version": row["current_version"],
                      "kind": "credit_note" if invoice.is_credit_note else "assignment",
                      "amount_minor": invoice.amount_due.minor_units, "currency": invoice.currency, "payload": {}})
    reports = [(i, dict(p)) for i, p in payments.items()]
    for invoice_id, adjustment in (adjustments or {}).items():
        if adjustment.get("direction", "credit") not in ("credit", "debit"):
            raise Quarantine(f"adjustment direction {adjustment.get('direction')!r} is not credit or debit",
                             source=f"invoice:{invoice_id}", field="direction")
        reports.append((invoice_id, {"direction": "credit", **dict(adjustment), "adjustment": True}))
    for invoice_id, payload in reports:
        invoice = store.get_invoice(invoice_id)
        row = store.invoice_row(invoice_id)
        items.append({"invoice_id": invoice_id, "invoice_key": invoice.invoice_key,
                      "invoice_version": row["current_version"], "kind": "collection_report",
                      "amount_minor": Money.parse(payload["amount"], invoice.currency).minor_units,
                      "currency": invoice.currency, "payload": payload})
    return items
