"""Review-desk data for tests and ``bench/serve.py``, made the way production makes it: invoices through
``Store.save_invoice``, a camt.053 bank statement through the real importer
(:func:`connector.reconcile.importing.import_bytes`) and the real matching engine
(:func:`connector.reconcile.engine.run_reconciliation`). No SQL here: what the desk shows is what the engine
decided.

- :func:`seed_desk`: a small, demo-style day (ten invoices of four debtors, nine bank lines): three lines the
  engine settles by itself (invoice number, bank fee, unique amount of a known payer) and six that wait for a
  person — two equal invoices of one debtor, an amount two debtors owe, two payments that each settle exactly
  one combination of two invoices, an instalment of a known payer ("acompte") and an unknown payer.
- :func:`seed_volume`: the reconciliation benchmark's realistic generator at any size (``bench/serve.py``
  uses 100,000 lines): every kind of payment people make, in the proportions of a real bank account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.model import Party
from tests.factories import make_invoice

BANK_IBAN = "FR7630006000011234567890189"
RECONCILIATION = f'[reconciliation]\naccounts = ["{BANK_IBAN}"]\n'
# the generator's own accounts and the factor's paying account (as bench/reconcile.py configures them)
VOLUME_RECONCILIATION = ('[company]\nname = "Cessio Demo SAS"\n[reconciliation]\naccounts = '
                         f'["{BANK_IBAN}", "FR7630006000019876543210145"]\n'
                         'factor_payers = ["FR7610107001011234567890129"]\n')

KUNDE = Party(name="Kunde GmbH", country="DE", vat_id="DE123456789")
LYON = Party(name="Client Lyonnais SARL", country="FR", vat_id="FR40303265045")
ROMA = Party(name="Cliente Roma SpA", country="IT", vat_id="IT00743110157")
BOULANGE = Party(name="Boulangeries Réunies SA", country="FR", vat_id="FR44732829320")
DEBTORS = [KUNDE, LYON, ROMA, BOULANGE]

INVOICES = [("F2026-0001", "1000.00", KUNDE), ("F2026-0002", "1000.00", KUNDE), ("F2026-0003", "2480.50", KUNDE),
            ("F2026-0004", "1250.37", LYON), ("F2026-0005", "3100.00", LYON), ("F2026-0006", "2215.00", LYON),
            ("F2026-0007", "1750.74", ROMA), ("F2026-0008", "990.00", ROMA),
            ("F2026-0009", "990.00", BOULANGE), ("F2026-0010", "4300.00", BOULANGE)]

# (bank reference, amount, payer as the bank writes it, remittance text); what the engine makes of each
LINES = [
    ("BNK-0001", "1000.00", "KUNDE GMBH", "Zahlung November"),              # two equal invoices: a person decides
    ("BNK-0002", "990.00", "J. MARTIN", "virement"),                          # amount only, two debtors
    ("BNK-0003", "3465.37", "CLIENT LYONNAIS", "reglement factures novembre"),  # one combination of two invoices
    ("BNK-0004", "2000.00", "CLIENT LYONNAIS", "acompte"),                    # known payer, no amount fits
    ("BNK-0005", "3100.00", "Client Lyonnais SARL", "Facture F2026-0005"),    # auto: invoice number
    ("BNK-0006", "2473.00", "Kunde GmbH", "INV F2026-0003"),                  # auto: short by a 7.50 bank fee
    ("BNK-0007", "1750.74", "CLIENTE ROMA", "pagamento"),                     # auto: the payer's only such invoice
    ("BNK-0008", "5290.00", "Boulangeries Reunies", "factures 9 et 10"),      # one combination of two invoices
    ("BNK-0009", "777.77", "INCONNU SAS", "divers"),                          # nobody: manual allocation
]
WAITING = ["BNK-0001", "BNK-0002", "BNK-0003", "BNK-0004", "BNK-0008", "BNK-0009"]


@dataclass
class Seeded:
    invoices: dict[str, int] = field(default_factory=dict)  # number -> id
    lines: list[int] = field(default_factory=list)  # lines waiting for a decision, in queue order
    by_ref: dict[str, int] = field(default_factory=dict)  # bank reference -> line id
    suggestions: dict[int, list[int]] = field(default_factory=dict)  # line id -> suggested allocation ids
    summary: dict[str, Any] = field(default_factory=dict)


def reconciliation_config(text: str = RECONCILIATION) -> Any:
    from connector.config import parse_config

    return parse_config(text)


def _collect(store: Any, seeded: Seeded) -> Seeded:
    waiting = store.statement_line_rows(statuses=("open", "suggested"))
    seeded.lines = [row["id"] for row in waiting]
    seeded.by_ref = {row["bank_reference"]: row["id"] for row in store.statement_line_rows()}
    for allocation in store.desk_line_allocations(seeded.lines):
        if allocation["status"] == "suggested":
            seeded.suggestions.setdefault(allocation["line_id"], []).append(allocation["id"])
    return seeded


def seed_desk(store: Any, *, day: dt.date = dt.date(2026, 11, 20)) -> Seeded:
    """The demo-style day described in the module docstring; returns ids to act on."""
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.generator import camt053_bytes
    from connector.reconcile.importing import import_bytes

    seeded = Seeded()
    with store.transaction():
        for n, (number, amount, buyer) in enumerate(INVOICES):
            result = store.save_invoice(make_invoice(number, amount, buyer=buyer, issue=day - dt.timedelta(days=50 - n),
                                                     due=day + dt.timedelta(days=10 + n)))
            seeded.invoices[number] = result.invoice_id
    lines = [{"ref": ref, "amount": Decimal(amount), "currency": "EUR", "name": name, "text": text, "date": day,
              "code": "PMNT/RCDT/ESCT"} for ref, amount, name, text in LINES]
    data = camt053_bytes(lines, account=BANK_IBAN, currency="EUR", opening=Decimal("25000.00"),
                         message_id=f"DESK-{day:%Y%m%d}", statement_id=f"DESK-{day:%Y%m%d}", created=day)
    imported = import_bytes(store, data, file_name="bank-camt053.xml")
    assert imported.error is None and imported.new == len(LINES), imported.line()
    seeded.summary = run_reconciliation(store, reconciliation_config()).to_dict()
    return _collect(store, seeded)


def seed_volume(store: Any, lines: int, *, seed: int = 20261127) -> Seeded:
    """``lines`` bank lines against as many open invoices (the realistic generator), imported and matched."""
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.generator import generate, scenario_camt
    from connector.reconcile.importing import import_bytes

    scenario = generate(seed, n_invoices=lines, n_lines=lines)
    seeded = Seeded()
    with store.transaction():
        for invoice in scenario.invoices:
            seeded.invoices[invoice.number] = store.save_invoice(invoice).invoice_id
    imported = import_bytes(store, scenario_camt(scenario), file_name="bench-camt053.xml")
    assert imported.error is None, imported.line()
    seeded.summary = run_reconciliation(store, reconciliation_config(VOLUME_RECONCILIATION)).to_dict()
    seeded.summary["imported_lines"] = imported.new
    return _collect(store, seeded)
