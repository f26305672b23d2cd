"""Ledger posting: balanced journal entries for reconciled cash and factor movements, CSV and FEC exports,
and the write-back of reconciled payments to the source ERP.

Reads: decided allocations (``auto``/``manual``) and the unapplied cash of decided lines, allocations taken
back after posting, factor events, the ``[ledger]`` config (accounts default to the French chart).
Writes: ``ledger_entries`` (append-only: a correction is a reversing entry, never an edit), one audited
piece per allocation or event, each balanced or refused; ERP payments through the source adapter's
``record_payment`` hook (``connector.pull.record_payment_in_erp``: intent first, idempotent by reference);
then, once a receipt's payment is in the ERP, its write-off (``record_writeoff``: the bank fee or discount
the piece wrote off) and, when the piece was reversed, the undoing of what was written back
(``reverse_writeback``), each idempotent by its own reference (see :func:`_write_back_followups`).

Entries (debit / credit):

- customer receipt (bank journal): bank / customers, plus bank charges or discount / customers for what a
  short payment wrote off; a credit note netted by the payer is the reverse (customers / bank);
- unapplied cash: bank / suspense (``unapplied``);
- factor (factor journal): assignment accepted: factor current account / customers; funding paid: bank /
  factor current account; reserve held: reserve / factor current account; reserve released: factor
  current account / reserve; fee: fees + VAT on fees / factor current account; interest: fees / factor
  current account; chargeback: customers / factor current account.

Amounts are posted in the currency of the cash (the statement's); a payment in another currency than its
invoice names the invoice amount in the label. The FEC file lists them as they are (``Idevise``,
``Montantdevise`` filled for non-EUR entries): converting to EUR at the accounting rate is the accountant's
step, not guessed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from connector.clock import today
from connector.errors import CessioError
from connector.money import Money, minor_unit_exponent

log = logging.getLogger("cessio.ledger")
ACCOUNT_LABELS = {"customers": "Clients", "factor_current": "Factor - compte courant", "reserve": "Factor - retenue",
                  "fees": "Frais d'affacturage", "vat_on_fees": "TVA deductible sur frais", "bank": "Banque",
                  "bank_charges": "Frais bancaires", "discounts": "Escomptes accordes", "writeoff": "Pertes",
                  "unapplied": "Encaissements a affecter"}
FEC_COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
               "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
               "ValidDate", "Montantdevise", "Idevise")
DEFAULTS = {"customers": "411000", "factor_current": "467000", "reserve": "467100", "fees": "622500",
            "vat_on_fees": "445660", "bank": "512000", "bank_charges": "627000", "discounts": "665000",
            "writeoff": "658000", "unapplied": "471000", "journal": "FACT", "bank_journal": "BQ"}
# factor event kinds (the API's and the files') → (debit account, credit account), amounts in ``amount``
FACTOR_POSTINGS = {
    "assignment.accepted": ("factor_current", "customers"), "assignment.partly_accepted": ("factor_current",
                                                                                             "customers"),
    "accepted": ("factor_current", "customers"),
    "funding.paid": ("bank", "factor_current"), "funding": ("bank", "factor_current"),
    "reserve.held": ("reserve", "factor_current"), "reserve": ("reserve", "factor_current"),
    "reserve.released": ("factor_current", "reserve"), "reserve_release": ("factor_current", "reserve"),
    "fee.charged": ("fees", "factor_current"), "fee": ("fees", "factor_current"),
    "interest": ("fees", "factor_current"),
    "chargeback": ("customers", "factor_current"),
    "credit_note.applied": ("customers", "factor_current"),
}
# events that move no money of the company's books (decisions, limits, the factor's own collections)
NO_POSTING = frozenset({"limit.decided", "assignment.declined", "assignment.cancelled", "acknowledged", "rejected",
                        "declined", "not_financed", "collection.received", "collection", "unclassified"})


@dataclass
class LedgerResult:
    posted: int = 0
    reversed: int = 0
    factor_posted: int = 0
    not_posted: dict[str, int] = field(default_factory=dict)
    written_back: int = 0
    written_off: int = 0         # write-offs recorded in the ERP
    reversed_in_erp: int = 0     # payments or write-offs undone in the ERP after their piece was reversed
    write_back_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        out = (f"ledger: {self.posted} receipt(s) posted, {self.reversed} reversal(s), {self.factor_posted} factor "
               f"movement(s) posted, {self.written_back} payment(s) written back to the ERP")
        if self.written_off or self.reversed_in_erp:
            out += f", {self.written_off} write-off(s) and {self.reversed_in_erp} reversal(s) written back"
        if self.not_posted:
            out += "; without a posting rule: " + ", ".join(f"{k} {v}" for k, v in sorted(self.not_posted.items()))
        return out + "".join(f"\n  write-back failed: {e}" for e in self.write_back_errors)


_PAYMENT_REFERENCE = re.compile(r"cessio-allocation-(\d+)(?:\.(\d+))?")


def payment_reference(allocation_id: int, round_no: int = 1) -> str:
    """The ERP reference of the receipt posted as piece ``A<id>.<round>``. A receipt reversed then posted
    again is a new payment in the ERP (the first was undone there), so later rounds get their own reference;
    the first keeps the form written back before rounds were told apart."""
    return f"cessio-allocation-{allocation_id}" + ("" if round_no == 1 else f".{round_no}")


def accounts(config: Any) -> dict[str, str]:
    section = config.section("ledger") if config is not None else {}
    return {key: section.get(key) or default for key, default in DEFAULTS.items()}


def _receipt_lines(allocation: dict[str, Any], acc: dict[str, str]) -> list[dict[str, Any]]:
    amount, writeoff = allocation["amount_minor"], allocation["writeoff_minor"] or 0
    number = allocation["invoice_number"] or "?"
    label = f"Reglement {number} {allocation['buyer_name'] or ''}".strip()
    if allocation["invoice_currency"] and allocation["invoice_currency"] != allocation["currency"]:
        exponent = minor_unit_exponent(allocation["invoice_currency"])
        settled = Decimal(allocation["invoice_amount_minor"]).scaleb(-exponent)
        label += f" ({settled} {allocation['invoice_currency']})"
    if amount >= 0:
        lines = [{"account": acc["bank"], "label": label, "debit_minor": amount}]
        if writeoff:
            kind = allocation["writeoff_kind"]
            account = acc["bank_charges"] if kind == "bank_fee" else acc["discounts"] if kind == "discount" \
                else acc["writeoff"]
            lines.append({"account": account, "label": f"{kind or 'ecart'} {number}", "debit_minor": writeoff})
        lines.append({"account": acc["customers"], "label": label, "credit_minor": amount + writeoff,
                      "invoice_id": allocation["invoice_id"]})
    else:  # a credit note netted by the payer
        lines = [{"account": acc["customers"], "label": f"Avoir {number} deduit", "debit_minor": -amount,
                  "invoice_id": allocation["invoice_id"]},
                 {"account": acc["bank"], "label": f"Avoir {number} deduit", "credit_minor": -amount}]
    return lines


def _reversal(lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    out = [{"account": e["account"], "label": f"Annulation {e['label']}"[:200], "debit_minor": e["credit_minor"],
            "credit_minor": e["debit_minor"], "invoice_id": e["invoice_id"]} for e in lines]
    return out, {n: e["id"] for n, e in enumerate(lines, start=1)}


def post_ledger(store: Any, config: Any, *, adapters: dict[str, Any] | None = None) -> LedgerResult:
    """Post what is not posted yet and reverse what was taken back; idempotent (piece references).
    ``adapters`` (source name → adapter) replaces the adapters built from ``[sources.NAME]`` for the
    write-back; the caller then owns them."""
    acc = accounts(config)
    bank_journal, factor_journal = acc["bank_journal"], acc["journal"]
    result = LedgerResult()
    new_receipts: list[dict[str, Any]] = []
    with store.transaction():
        allocations = store.ledger_allocations_to_post(bank_journal)
        for allocation in allocations:
            decided = allocation["active"] and (allocation["status"] in ("auto", "manual") or (
                allocation["status"] == "unmatched" and allocation["rule"] == "unapplied_cash"))
            if allocation["status"] == "unmatched" and store.statement_line(allocation["line_id"])["match_status"] \
                    != "matched":
                decided = False
            round_no = 1
            while store.ledger_piece_exists(bank_journal, f"A{allocation['id']}.{round_no}"):
                round_no += 1
            last = round_no - 1  # pieces A<id>.1, .2 ... ; a reversal is A<id>.<n>R
            is_open = last >= 1 and not store.ledger_piece_exists(bank_journal, f"A{allocation['id']}.{last}R")
            if decided and not is_open and allocation["amount_minor"]:
                if allocation["invoice_id"] is None:
                    payer = allocation["counterparty_name"] or ""
                    lines = [{"account": acc["bank"], "label": f"Encaissement non affecte {payer}".strip(),
                              "debit_minor": allocation["amount_minor"]},
                             {"account": acc["unapplied"], "label": "Encaissement non affecte",
                              "credit_minor": allocation["amount_minor"]}]
                else:
                    lines = _receipt_lines(allocation, acc)
                store.ledger_post_piece(bank_journal, f"A{allocation['id']}.{round_no}", allocation["booking_date"],
                                        allocation["currency"], lines)
                result.posted += 1
                if allocation["invoice_id"] is not None:
                    new_receipts.append({**allocation, "round": round_no})
            elif not decided and is_open:
                original = store.ledger_piece(bank_journal, f"A{allocation['id']}.{last}")
                lines, reverses = _reversal(original)
                store.ledger_post_piece(bank_journal, f"A{allocation['id']}.{last}R", today().isoformat(),
                                        original[0]["currency"], lines, reverses=reverses)
                result.reversed += 1
        for event in store.ledger_factor_events():
            posting = FACTOR_POSTINGS.get(event["kind"])
            piece = f"E{event['factor']}:{event['event_id']}"
            if event["kind"] in NO_POSTING:
                continue
            if posting is None or not event["amount_minor"]:
                result.not_posted[event["kind"]] = result.not_posted.get(event["kind"], 0) + 1
                continue
            if store.ledger_piece_exists(factor_journal, piece):
                continue
            amount, vat = abs(event["amount_minor"]), abs(event["vat_minor"] or 0)
            label = f"{event['kind']} {event['invoice_number'] or ''} {event['factor']}".strip()
            debit, credit = posting
            lines = [{"account": acc[debit], "label": label, "debit_minor": amount,
                      "invoice_id": event["invoice_id"] if debit == "customers" else None}]
            if vat:
                lines.append({"account": acc["vat_on_fees"], "label": f"TVA {label}", "debit_minor": vat})
            lines.append({"account": acc[credit], "label": label, "credit_minor": amount + vat,
                          "invoice_id": event["invoice_id"] if credit == "customers" else None})
            store.ledger_post_piece(factor_journal, piece, event["occurred_on"], event["currency"], lines)
            result.factor_posted += 1
    if config is None or config.section("ledger").get("write_back", True):
        kinds = {a["id"]: a["writeoff_kind"] for a in allocations if a["writeoff_minor"] and a["amount_minor"] > 0}
        _write_back(store, config, new_receipts, result, given=adapters, writeoffs=kinds, journal=bank_journal,
                    bank_account=acc["bank"])
    return result


def _write_back(store: Any, config: Any, receipts: list[dict[str, Any]], result: LedgerResult, *,
                given: dict[str, Any] | None = None, writeoffs: dict[int, str | None] | None = None,
                journal: str = "BQ", bank_account: str = DEFAULTS["bank"]) -> None:
    """Record each new receipt in the ERP its invoice came from, when that source supports it; then the
    write-offs and reversals that follow receipts already in the ERP (:func:`_write_back_followups`)."""
    sources = dict(config.sources or {}) if config is not None else {}
    adapters: dict[str, Any] = dict(given or {})
    for name in adapters:
        sources.setdefault(name, {"enabled": True})

    def adapter_of(source: str) -> Any:
        if source not in adapters:
            from connector.pull import build_adapter

            adapters[source] = build_adapter(source, sources[source], config.section("company"))
        return adapters[source]

    try:
        for allocation in receipts:
            source = allocation["source"]
            if source not in sources or not allocation["source_id"] or not sources[source].get("enabled", True):
                continue
            try:
                adapter = adapter_of(source)
                if not adapter.supports_write_back:
                    continue
                from connector.pull import record_payment_in_erp

                currency = allocation["invoice_currency"] or allocation["currency"]
                amount = Money.from_minor(abs(allocation["invoice_amount_minor"] or allocation["amount_minor"]),
                                          currency)
                if allocation["invoice_kind"] == "credit_note":
                    continue  # the ERP nets the credit note itself when the invoice is paid
                record_payment_in_erp(store, adapter, invoice_id=allocation["invoice_id"], amount=amount,
                                      date=dt.date.fromisoformat(allocation["booking_date"]),
                                      reference=payment_reference(allocation["id"], allocation.get("round", 1)))
                result.written_back += 1
            except CessioError as exc:  # retried at the next posting run (the intent row stays pending)
                result.write_back_errors.append(f"allocation {allocation['id']} ({allocation['invoice_number']}): "
                                                f"{exc}")
                log.warning("write-back of allocation %s failed: %s", allocation["id"], exc)
        _write_back_followups(store, result, writeoffs or {}, journal, bank_account,
                              lambda source: adapter_of(source) if source in sources
                              and sources[source].get("enabled", True) else None)
    finally:
        for name, adapter in adapters.items():
            if name not in (given or {}):
                adapter.close()


def _write_back_followups(store: Any, result: LedgerResult, writeoffs: dict[int, str | None], journal: str,
                          bank_account: str, adapter_of: Any) -> None:
    """What follows a receipt already written back to the ERP (its payment row is ``done``):

    - its piece wrote off a bank fee or a discount (``writeoffs``: allocation id → kind): the same amount is
      written off on the invoice in the ERP (``cessio-writeoff-<id>``), so the ERP shows it settled too;
    - its piece was reversed (the match was taken back, the payment returned): what was written back for it
      (the payment, and the write-off if any, newest first) is undone in the ERP (``<reference>-reversal``).

    The ledger pieces are the intents (append-only, committed first) and every adapter call looks its
    reference up before creating anything, so a crash anywhere repeats nothing; a failure is reported and
    tried again at the next posting run. Sources whose adapter lacks the hook are left alone.
    """
    rows = store.writebacks()
    by_reference = {row["reference"]: row for row in rows}
    due: list[tuple[str, dict[str, Any], str, int, str | None]] = []  # kind, row, reference, amount, wo kind
    for row in rows:
        match = _PAYMENT_REFERENCE.fullmatch(row["reference"])
        if match is None or row["state"] != "done":
            continue
        allocation_id, round_no = int(match[1]), int(match[2] or 1)
        piece = f"A{allocation_id}.{round_no}"
        writeoff_reference = "cessio-writeoff-" + row["reference"].removeprefix("cessio-allocation-")
        if store.ledger_piece_exists(journal, piece + "R"):
            for original in (by_reference.get(writeoff_reference), row):  # newest first
                if original is not None and original["state"] == "done" \
                        and f"{original['reference']}-reversal" not in by_reference:
                    due.append(("reversal", original, f"{original['reference']}-reversal", original["amount_minor"],
                                None))
        elif allocation_id in writeoffs and writeoff_reference not in by_reference:
            lines = store.ledger_piece(journal, piece)
            if not lines:
                continue
            amount = sum(line["debit_minor"] for line in lines if line["account"] != bank_account)
            if lines[0]["currency"] != row["currency"]:
                result.write_back_errors.append(f"allocation {allocation_id}: the write-off is in "
                                                f"{lines[0]['currency']}, the invoice in {row['currency']}; "
                                                "write it off in the ERP by hand")
                continue
            if amount:
                due.append(("writeoff", row, writeoff_reference, amount, writeoffs[allocation_id]))
    for kind, row, reference, amount_minor, writeoff_kind in due:
        try:
            adapter = adapter_of(row["source"])
            hook = getattr(adapter, "record_writeoff" if kind == "writeoff" else "reverse_writeback", None)
            if adapter is None or not adapter.supports_write_back or hook is None:
                continue
            if kind == "writeoff":
                date = row["payment_date"]
                erp_id = hook(source_id=row["source_id"], amount=Money.from_minor(amount_minor, row["currency"]),
                              date=dt.date.fromisoformat(date), reference=reference, kind=writeoff_kind)
            else:
                date = today().isoformat()
                what = "writeoff" if row["reference"].startswith("cessio-writeoff-") else "payment"
                erp_id = hook(source_id=row["source_id"], erp_id=row["erp_id"], date=today(), reference=reference,
                              what=what)
            with store.transaction():
                store.writeback_followup_done(row["source"], reference, kind=kind, invoice_id=row["invoice_id"],
                                              source_id=row["source_id"], amount_minor=amount_minor,
                                              currency=row["currency"], date=date, erp_id=str(erp_id))
            if kind == "writeoff":
                result.written_off += 1
            else:
                result.reversed_in_erp += 1
        except CessioError as exc:
            result.write_back_errors.append(f"{kind} {reference}: {exc}")
            log.warning("write-back of %s %s failed: %s", kind, reference, exc)


# -- exports ---------------------------------------------------------------------------------------------

def _fmt(minor: int, currency: str, *, comma: bool = False) -> str:
    exponent = minor_unit_exponent(currency)
    text = f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"
    return text.replace(".", ",") if comma else text


def export_csv(store: Any, fp: IO[str]) -> int:
    rows = store.ledger_rows()
    writer = csv.writer(fp, lineterminator="\n")
    writer.writerow(["journal", "piece", "line", "date", "account", "label", "debit", "credit", "currency",
                     "invoice_id", "reverses", "posted_at"])
    for r in rows:
        writer.writerow([r["journal"], r["piece_ref"], r["line_no"], r["entry_date"], r["account"], r["label"],
                         _fmt(r["debit_minor"], r["currency"]), _fmt(r["credit_minor"], r["currency"]), r["currency"],
                         r["invoice_id"] or "", r["reverses"] or "", r["posted_at"]])
    return len(rows)


def export_fec(store: Any, fp: IO[str], config: Any) -> int:
    """The French "fichier des écritures comptables" (art. A47 A-1 LPF): tab-separated, dates YYYYMMDD,
    decimal comma, one numbered entry per piece. Name the file ``<SIREN>FEC<closing date YYYYMMDD>.txt``."""
    acc = accounts(config)
    labels = {acc[k]: v for k, v in ACCOUNT_LABELS.items()}
    section = config.section("ledger") if config is not None else {}
    journals = dict(item.partition("=")[::2] for item in (section.get("journal_labels") or []))
    rows = store.ledger_rows()
    numbers: dict[tuple[str, str], int] = {}
    writer = csv.writer(fp, delimiter="\t", lineterminator="\r\n")
    writer.writerow(FEC_COLUMNS)
    for r in rows:
        key = (r["journal"], r["piece_ref"])
        numbers.setdefault(key, len(numbers) + 1)
        date = r["entry_date"].replace("-", "")
        foreign = r["currency"] != "EUR"
        writer.writerow([
            r["journal"], journals.get(r["journal"], r["journal"]), numbers[key], date, r["account"],
            labels.get(r["account"], r["account"]), "", "", r["piece_ref"], date, r["label"],
            _fmt(r["debit_minor"], r["currency"], comma=True), _fmt(r["credit_minor"], r["currency"], comma=True),
            "", "", r["posted_at"][:10].replace("-", ""),
            _fmt(r["debit_minor"] - r["credit_minor"], r["currency"], comma=True) if foreign else "",
            r["currency"] if foreign else ""])
    return len(rows)
