"""The file and ISO 20022 channels of the assignment engine (:class:`connector.factors.channel.Channel`).

Reads: one leased outbox batch as ``Store.claim_batch`` returns it (items with their JSON payload, the
batch's number, currency, item count and control sum) and the factor's profile. Writes: the batch's
bordereau file(s) (layout from ``mappings/factors/``) or its tsin.006 message into the factor's outbox
folder, by an atomic rename, and the printable HTML bordereau beside them.

Exactly once without a store of its own: the file is a pure function of the batch (the file number is
the batch number, the file date the batch's creation date), so a resend after a crash writes the same
bytes under the same name, and :meth:`lookup` finds a file already released for the batch instead. The
control totals are read back from the rendered bytes and checked against the batch row (its item count
and control sum) and its items before anything is written; a disagreement is a definitive refusal.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.channels.bordereau import (
    ControlTotalMismatch,
    check_against_ledger,
    detail_values,
    render_files,
    render_html,
    write_atomically,
)
from connector.channels.fixedwidth import load_layout
from connector.channels.iso20022 import build_tsin006
from connector.channels.replies import import_reply_file
from connector.channels.sftp import SftpError, target_for
from connector.errors import CessioError, ConfigError, Quarantine, RetryLater, StopAndAsk
from connector.factors.api import Ambiguous
from connector.model import Invoice, InvoiceKind, Party
from connector.money import Money

log = logging.getLogger("cessio.channels")
ITEM_KINDS = {"assignment": "invoice", "credit_note": "credit_note", "collection_report": "payment"}


def payload_invoice(payload: dict[str, Any]) -> Invoice:
    """The canonical invoice as far as an outbox payload describes it (what a bordereau line needs)."""
    debtor = payload.get("debtor") or {}
    legal_id = debtor.get("legal_id")
    amount = Money.parse(Decimal(payload["amount"]), payload["currency"])
    kind = InvoiceKind(payload.get("kind") or "invoice")
    return Invoice(
        number=payload["number"], kind=kind, type_code="381" if kind is InvoiceKind.CREDIT_NOTE else "380",
        issue_date=dt.date.fromisoformat(payload["issue_date"]), currency=payload["currency"],
        total_gross=amount, amount_due=amount,
        seller=Party(erp_id=payload.get("seller")),
        buyer=Party(name=debtor.get("name"), country=debtor.get("country"), vat_id=debtor.get("vat_id"),
                    legal_id=legal_id, legal_id_scheme=("0009" if legal_id and len(legal_id) == 14 else None),
                    erp_id=debtor.get("erp_id")),
        due_date=dt.date.fromisoformat(payload["due_date"]) if payload.get("due_date") else None,
        preceding_invoices=tuple(payload.get("preceding_invoices") or ()))


def _batch_ledger(batch: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {"count_all": 0, "total_signed_minor": 0}
    for item in batch["items"]:
        kind = ITEM_KINDS[item["kind"]]
        totals[f"count_{kind}"] = totals.get(f"count_{kind}", 0) + 1
        totals[f"sum_{kind}"] = totals.get(f"sum_{kind}", 0) + item["amount_minor"]
        totals["count_all"] += 1
        totals["total_signed_minor"] += -item["amount_minor"] if kind in ("credit_note", "payment") \
            else item["amount_minor"]
    if (batch.get("item_count"), batch.get("control_sum_minor")) != (totals["count_all"], totals["total_signed_minor"]):
        totals["batch_item_count"] = batch.get("item_count")
        totals["batch_control_sum_minor"] = batch.get("control_sum_minor")
    return totals


def _batch_date(batch: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str(batch["created_at"])[:10])


class FileChannel:
    """Bordereau files in an outbox folder (the factor or a transfer agent picks them up)."""

    name = "file"
    can_lookup = True

    def __init__(self, profile: Any, *, layout: str, outbox: Path, params: dict[str, Any] | None = None) -> None:
        self.profile = profile
        self.layout = load_layout(layout)
        self.outbox = Path(outbox)
        replies = getattr(profile, "replies_dir", None)
        self.replies = Path(replies) if replies else None
        self.sftp = target_for(profile)
        self.params = {"client_number": getattr(profile, "client_number", None), **(params or {})}

    def render(self, batch: dict[str, Any]) -> list[Any]:
        file_date = _batch_date(batch)
        details = []
        for seq, item in enumerate(batch["items"], start=1):
            payload = item["payload"]
            invoice = payload_invoice(payload)
            if not self.params.get("company_name"):
                self.params["company_name"] = payload.get("seller_name") or self.profile.name
            details.append(detail_values(invoice, ITEM_KINDS[item["kind"]], invoice.amount_due.minor_units,
                                         seq=seq, file_date=file_date, params=self.params, payload=payload))
        head = {**self.params, "factor": self.profile.name, "file_number": batch["number"], "file_date": file_date,
                "currency": batch["currency"], "batch_number": batch["number"]}
        where = f"batch {self.profile.name}#{batch['number']}"
        parts = render_files(self.layout, details, head=head, where=where)
        check_against_ledger(parts, self.layout, _batch_ledger(batch), where=where)
        return parts

    def deliver(self, batch: dict[str, Any]) -> Any:
        from connector.factors.api import Definitive
        from connector.factors.channel import Delivery

        try:
            parts = self.render(batch)
        except (ControlTotalMismatch, Quarantine) as exc:
            raise Definitive(str(exc), status=422, code="control_totals") from None
        try:
            for part in parts:
                write_atomically(self.outbox, part.file_name, part.content)
        except RetryLater as exc:
            # a final file may already be there (EIO after the rename): look it up before writing again
            raise Ambiguous(str(exc)) from None
        for part in parts:
            self._upload(part.file_name, part.content)
        page = render_html(title=self.layout.title, factor=self.profile.name, batch_number=batch["number"],
                           file_names=[p.file_name for p in parts], file_date=_batch_date(batch),
                           details=[d for p in parts for d in p.details],
                           totals={k: sum(p.totals.get(k, 0) for p in parts) for k in parts[0].totals},
                           currency=batch["currency"], company=str(self.params.get("company_name") or ""))
        try:
            write_atomically(self.outbox / "html", Path(parts[0].file_name).stem + ".html", page.encode("utf-8"))
        except RetryLater as exc:  # the bordereau itself is released; its printable summary is not essential
            log.warning("batch %s: printable bordereau not written: %s", batch["number"], exc)
        names = ",".join(p.file_name for p in parts)
        return Delivery(remote_ids={item["idempotency_key"]: names for item in batch["items"]},
                        remote_batch_id=names, detail={"files": [p.file_name for p in parts]})

    def lookup(self, batch: dict[str, Any]) -> Any:
        """The batch's file(s) already in the outbox (a crash after the rename): the factor holds it."""
        from connector.factors.channel import Delivery

        try:
            parts = self.render(batch)
        except CessioError:
            return None
        if all((self.outbox / p.file_name).is_file() for p in parts) and \
                all(self._remote_has(p.file_name, p.content) for p in parts):
            names = ",".join(p.file_name for p in parts)
            return Delivery(remote_ids={item["idempotency_key"]: names for item in batch["items"]},
                            remote_batch_id=names, detail={"found": True})
        return None

    def _upload(self, name: str, content: bytes) -> None:
        """Copy a released file to the factor's SFTP folder, when one is configured."""
        if self.sftp is None:
            return
        try:
            self.sftp.upload(name, content)
        except SftpError as exc:  # maybe renamed there before the failure: look it up before the next upload
            raise Ambiguous(str(exc)) from None

    def _remote_has(self, name: str, content: bytes) -> bool:
        if self.sftp is None:
            return True
        try:
            return self.sftp.has(name, content)
        except SftpError as exc:
            raise Ambiguous(str(exc)) from None

    def probe(self) -> str:
        """No side effect: the outbox (or the folder that will hold it) must be a writable folder."""
        from connector.factors.api import NotSent

        for folder, what in ((self.outbox, "outbox_dir"), (self.replies, "replies_dir")):
            if folder is None:
                continue
            existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
            if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                raise NotSent(f"{what} {folder} is not a writable folder")
        replies = f"; replies read from {self.replies}" if self.replies else "; no replies_dir configured"
        remote = f"; {self.sftp.probe()}" if self.sftp is not None else ""
        return f"{self.name} channel: outbox {self.outbox} writable{replies}{remote}"

    # -- replies: the factor's acknowledgements, status messages and statements -------------------------
    def ingest_replies(self, store: Any) -> dict[str, int]:
        """Import every reply file waiting in ``replies_dir`` into factor events (the API channel's
        ``ingest_events`` equivalent), then move it to ``imported/`` (or ``quarantined/``).

        Each file's events commit in one transaction keyed by (factor, event id), so a crash before the
        move re-imports the file harmlessly. Dot files and ``.part``/``.partial``/``.tmp`` files are still
        being written by the transfer and are left for the next run."""
        counts: dict[str, int] = {"files": 0, "events": 0, "new": 0, "quarantined": 0}
        if self.replies is None or not self.replies.is_dir():
            return counts
        for path in sorted(p for p in self.replies.iterdir() if p.is_file()):
            if path.name.startswith(".") or path.suffix.lower() in (".part", ".partial", ".tmp"):
                continue
            result = import_reply_file(store, path, factor=self.profile.name,
                                       csv_layout=getattr(self.profile, "reply_layout", None))
            counts["files"] += 1
            counts["events"] += result.get("events", 0)
            counts["new"] += result.get("new", 0)
            counts["quarantined"] += "quarantined" in result
            _move_aside(path, self.replies / ("quarantined" if "quarantined" in result else "imported"))
        return counts


class Tsin006Channel(FileChannel):
    """ISO 20022 InvoiceAssignmentRequest files (one schema-validated tsin.006 per batch) in the outbox."""

    name = "iso20022"

    def __init__(self, profile: Any, *, outbox: Path, params: dict[str, Any] | None = None) -> None:
        self.profile = profile
        self.outbox = Path(outbox)
        replies = getattr(profile, "replies_dir", None)
        self.replies = Path(replies) if replies else None
        self.sftp = target_for(profile)
        self.params = {"client_number": getattr(profile, "client_number", None), **(params or {})}

    def _file_name(self, batch: dict[str, Any]) -> str:
        return f"tsin006_{self.profile.name}_{batch['number']:06d}.xml"

    def render(self, batch: dict[str, Any]) -> Any:
        invoices = [payload_invoice(item["payload"]) for item in batch["items"] if item["kind"] != "collection_report"]
        ledger = _batch_ledger(batch)
        if "batch_control_sum_minor" in ledger:
            raise ControlTotalMismatch(f"batch {batch['number']}: the batch row and its items disagree")
        return build_tsin006(invoices, message_id=f"CESSIO-{self.profile.name}-{batch['number']}"[:35],
                             batch_id=f"{self.profile.name}-{batch['number']}"[:35], issue_date=_batch_date(batch),
                             assignor_name=str(self.params.get("company_name") or "assignor"),
                             assignor_legal_id=self.params.get("company_id"), factor_name=self.profile.name,
                             factor_id=self.params.get("client_number"))

    def deliver(self, batch: dict[str, Any]) -> Any:
        from connector.factors.api import Definitive
        from connector.factors.channel import Delivery

        try:
            data = self.render(batch)
        except (ControlTotalMismatch, Quarantine) as exc:
            raise Definitive(str(exc), status=422, code="invalid_message") from None
        name = self._file_name(batch)
        try:
            write_atomically(self.outbox, name, data)
        except RetryLater as exc:
            raise Ambiguous(str(exc)) from None
        self._upload(name, data)
        return Delivery(remote_ids={item["idempotency_key"]: name for item in batch["items"]}, remote_batch_id=name)

    def lookup(self, batch: dict[str, Any]) -> Any:
        from connector.factors.channel import Delivery

        name = self._file_name(batch)
        if (self.outbox / name).is_file() and (self.sftp is None or self._remote_has(name, self.render(batch))):
            return Delivery(remote_ids={item["idempotency_key"]: name for item in batch["items"]},
                            remote_batch_id=name, detail={"found": True})
        return None


def _move_aside(path: Path, folder: Path) -> None:
    """Move a handled reply file into ``folder`` (never overwriting an earlier file of the same name)."""
    try:
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
        os.replace(path, target)
    except OSError as exc:  # imported already (ids make a re-import harmless): say so, go on
        log.warning("reply file %s imported but not moved aside: %s", path, exc.strerror or exc)


def make_channel(profile: Any) -> Any:
    """The channel for a factor whose ``channel`` is ``file`` or ``iso20022`` (called by the engine).

    The factor's ``layout`` (file channel) and ``outbox_dir`` must be configured: a missing one is a
    configuration error, never a silent default folder."""
    outbox = getattr(profile, "outbox_dir", None)
    if not outbox:
        raise ConfigError(f"the {profile.channel} channel needs outbox_dir", key=f"factors.{profile.name}.outbox_dir")
    params = dict(getattr(profile, "layout_params", None) or {})
    if profile.channel == "file":
        layout = getattr(profile, "layout", None)
        if not layout:
            raise ConfigError("the file channel needs a layout (bpce, eurofactor, factofrance, generic_csv, ...)",
                              key=f"factors.{profile.name}.layout")
        return FileChannel(profile, layout=layout, outbox=Path(outbox), params=params)
    if profile.channel == "iso20022":
        return Tsin006Channel(profile, outbox=Path(outbox), params=params)
    raise StopAndAsk(f"factor {profile.name}: unknown channel {profile.channel!r}")
