"""Ledger posting: balanced journal entries for reconciled cash and factor movements, CSV and FEC exports,
and the write-back of reconciled payments to the source ERP.

Reads: decided allocations (``auto``/``manual``) and the unapplied cash of decided lines, allocations taken
back after posting, factor events, the ``[ledger]`` config (accounts default to the French chart).
Writes: ``ledger_entries`` (append-only: a correction is a reversing entry, never an edit), one audited
piece per allocation or event, each balanced or refused; ERP payments through the source adapter's
``record_payment`` hook (``connector.pull.record_payment_in_erp``: intent first, idempotent by reference).

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
    write_back_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        out = (f"ledger: {self.posted} receipt(s) posted, {self.reversed} reversal(s), {self.factor_posted} factor "
               f"movement(s) posted, {self.written_back} payment(s) written back to the ERP")
        if self.not_posted:
            out += "; without a posting rule: " + ", ".join(f"{k} {v}" for k, v in sorted(self.not_posted.items()))
        return out + "".join(f"\n  write-back failed: {e}" for e in self.write_back_errors)


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
        for allocation in store.ledger_allocations_to_post(bank_journal):
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
                    new_receipts.append(allocation)
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
    if new_receipts and (config is None or config.section("ledger").get("write_back", True)):
        _write_back(store, config, new_receipts, result, given=adapters)
    return result


def _write_back(store: Any, config: Any, receipts: list[dict[str, Any]], result: LedgerResult, *,
                given: dict[str, Any] | None = None) -> None:
    """Record each new receipt in the ERP its invoice came from, when that source supports it."""
    sources = dict(config.sources or {}) if config is not None else {}
    adapters: dict[str, Any] = dict(given or {})
    for name in adapters:
        sources.setdefault(name, {"enabled": True})
    for allocation in receipts:
        source = allocation["source"]
        if source not in sources or not allocation["source_id"] or not sources[source].get("enabled", True):
            continue
        try:
            if source not in adapters:
                from connector.pull import build_adapter

                adapters[source] = build_adapter(source, sources[source], config.section("company"))
            adapter = adapters[source]
            if not adapter.supports_write_back:
                continue
            from connector.pull import record_payment_in_erp

            currency = allocation["invoice_currency"] or allocation["currency"]
            amount = Money.from_minor(abs(allocation["invoice_amount_minor"] or allocation["amount_minor"]), currency)
            if allocation["invoice_kind"] == "credit_note":
                continue  # the ERP nets the credit note itself when the invoice is paid
            record_payment_in_erp(store, adapter, invoice_id=allocation["invoice_id"], amount=amount,
                                  date=dt.date.fromisoformat(allocation["booking_date"]),
                                  reference=f"cessio-allocation-{allocation['id']}")
            result.written_back += 1
        except CessioError as exc:  # retried at the next posting run (the intent row stays pending)
            result.write_back_errors.append(f"allocation {allocation['id']} ({allocation['invoice_number']}): {exc}")
            log.warning("write-back of allocation %s failed: %s", allocation["id"], exc)
    for name, adapter in adapters.items():
        if name not in (given or {}):
            adapter.close()


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
