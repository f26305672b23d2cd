"""The Odoo adapter against a TEST DOUBLE of Odoo's external JSON-RPC API (tests/adapters/odoo_double.py):
a real HTTP server on loopback replaying Odoo-shaped records, since Odoo cannot run on this machine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from adapters.odoo import OdooAdapter
from connector.errors import ConfigError, RetryLater
from connector.model import InvoiceKind
from connector.money import Money
from connector.pull import pull_source, record_payment_in_erp
from connector.testing import AdapterContract
from tests.adapters.odoo_double import OdooDouble


@pytest.fixture
def odoo(monkeypatch):
    double = OdooDouble().start()
    monkeypatch.setenv("CESSIO_TEST_ODOO_KEY", double.api_key)
    yield double
    double.stop()


def make(odoo: OdooDouble, **extra) -> OdooAdapter:
    return OdooAdapter("odoo", {"url": odoo.url, "database": odoo.database, "login": odoo.login,
                                "api_key": "env:CESSIO_TEST_ODOO_KEY", "payment_journal": "BNK1", **extra})


class TestOdooContract(AdapterContract):
    batch_option: ClassVar[dict[str, Any]] = {"page_size": 2}

    @pytest.fixture
    def make_adapter(self, odoo):
        return lambda **overrides: make(odoo, **overrides)

    @pytest.fixture
    def bad_adapter(self, odoo, monkeypatch):
        monkeypatch.setenv("CESSIO_TEST_ODOO_WRONG", "wrong-key")
        return make(odoo, api_key="env:CESSIO_TEST_ODOO_WRONG")

    @pytest.fixture
    def change_one_record(self, odoo):
        def change() -> str:
            odoo.write("account.move", 11, amount_residual=200.0, payment_state="partial")
            return "11"
        return change


def test_moves_map_to_invoices_with_exact_amounts_and_identity(odoo, store) -> None:
    summary = pull_source(store, make(odoo))
    assert (summary.new, summary.quarantined) == (6, 1)  # INV/2026/00017 has no invoice date
    assert store.quarantined()[0]["field"] == "invoice_date"
    by_number = {row["number"]: store.get_invoice(row["id"]) for row in store.invoice_rows()}
    acme = by_number["INV/2026/00011"]
    assert acme.total_gross == Money.parse("1200.00", "EUR") and acme.total_net == Money.parse("1000.00", "EUR")
    assert acme.due_date == dt.date(2026, 10, 31)
    assert (acme.buyer.legal_id, acme.buyer.legal_id_scheme, acme.buyer.vat_id) == ("552100554", "0002",
                                                                                    "FR96552100554")
    brasserie = by_number["INV/2026/00012"]
    assert brasserie.buyer.legal_id_scheme == "0009"  # a 14-digit company registry is a SIRET
    assert (brasserie.amount_due, brasserie.erp_status) == (Money.parse("180.00", "EUR"), "partially_paid")
    assert by_number["INV/2026/00014"].total_gross.amount.as_tuple().exponent == -2  # 1234.56 exactly
    assert str(by_number["INV/2026/00014"].total_gross.amount) == "1234.56"
    refund = by_number["RINV/2026/00001"]
    assert refund.kind is InvoiceKind.CREDIT_NOTE and refund.preceding_invoices == ("INV/2026/00011",)
    assert store.erp_status_of(acme.invoice_key) == "partially_credited"
    assert by_number["INV/2026/00018"].erp_status == "paid"  # in_payment: the debtor paid
    assert "INV/2026/00016" not in by_number  # cancelled before Cessio saw it: nothing to store


def test_cancellation_after_pull_is_recorded(odoo, store) -> None:
    pull_source(store, make(odoo))
    odoo.write("account.move", 14, state="cancel")
    summary = pull_source(store, make(odoo))
    key = store.invoice_key_by_source_id("odoo", "14")
    assert store.erp_status_of(key) == "cancelled"
    assert {"invoice_key": key, "from": "open", "to": "cancelled"} in summary.events


def test_payment_written_back_once(odoo, store) -> None:
    pull_source(store, make(odoo))
    invoice_id = store.find_invoice_id(store.invoice_key_by_source_id("odoo", "14"))
    first = record_payment_in_erp(store, make(odoo), invoice_id=invoice_id, amount=Money.parse("1234.56", "EUR"),
                                  date=dt.date(2026, 11, 20), reference="cessio:alloc:9")
    again = record_payment_in_erp(store, make(odoo), invoice_id=invoice_id, amount=Money.parse("1234.56", "EUR"),
                                  date=dt.date(2026, 11, 20), reference="cessio:alloc:9")
    assert first == again and len(odoo.data["account.payment"]) == 1
    wizard = next(r for r in odoo.requests if "account.payment.register" in str(r) and "create" in str(r))
    assert wizard["params"]["args"][6]["context"]["active_ids"] == [14]
    pull_source(store, make(odoo))
    assert store.erp_status_of(store.invoice_key_by_source_id("odoo", "14")) == "paid"


def test_errors_are_classified(odoo) -> None:
    with pytest.raises(ConfigError):
        make(odoo, api_key="plain-text-key").check()
    odoo.stop()
    with pytest.raises(RetryLater):
        make(odoo).check()


def _config(odoo, tmp_path, *, ledger: bool = False):
    """cessio.toml with the Odoo double as source ``odoo``; ``ledger`` adds the bank account to reconcile and
    the account bank fees are written off to."""
    from connector.config import parse_config
    from tests.reconcile.helpers import ACCOUNT

    reconciliation = f'\n[reconciliation]\naccounts = ["{ACCOUNT}"]\n' if ledger else ""
    writeoff = 'writeoff_account = "627000"\n' if ledger else ""
    return parse_config(f'''
[company]
name = "Cessio Demo SAS"
{reconciliation}
[sources.odoo]
type = "odoo"
url = "{odoo.url}"
database = "{odoo.database}"
login = "{odoo.login}"
api_key = "env:CESSIO_TEST_ODOO_KEY"
payment_journal = "BNK1"
{writeoff}''', path=tmp_path / "cessio.toml")


def test_a_write_back_left_pending_is_completed_by_the_next_pull(odoo, store, tmp_path, monkeypatch) -> None:
    """The ledger posting recorded the intent, then the ERP call failed (Odoo down): the next `cessio pull`
    completes it once, and the read that follows already sees the invoice paid."""
    from connector.pull import pull

    pull_source(store, make(odoo))
    invoice_id = store.find_invoice_id(store.invoice_key_by_source_id("odoo", "14"))
    config = _config(odoo, tmp_path)
    served = odoo.answer
    monkeypatch.setattr(odoo, "answer", lambda payload: {"jsonrpc": "2.0", "id": payload.get("id"), "error": {
        "code": 200, "message": "Odoo Server Error", "data": {"name": "psycopg2.OperationalError",
                                                               "message": "could not serialize access"}}}
                        if "account.payment.register" in str(payload) else served(payload))
    with pytest.raises(Exception, match="could not serialize"):
        record_payment_in_erp(store, make(odoo), invoice_id=invoice_id, amount=Money.parse("1234.56", "EUR"),
                              date=dt.date(2026, 11, 20), reference="cessio-allocation-7")
    assert [w["state"] for w in store.writebacks("odoo")] == ["pending"]
    monkeypatch.setattr(odoo, "answer", served)
    summary, = pull(config, store)
    assert summary.written_back == 1 and "1 pending payment(s) written back" in summary.line()
    assert [w["state"] for w in store.writebacks("odoo")] == ["done"]
    assert len(odoo.data["account.payment"]) == 1
    assert store.erp_status_of(store.invoice_key_by_source_id("odoo", "14")) == "paid"
    again, = pull(config, store)
    assert again.written_back == 0 and len(odoo.data["account.payment"]) == 1


def _move(odoo, move_id: int) -> dict:
    return next(m for m in odoo.data["account.move"] if m["id"] == move_id)


def test_short_payment_written_off_then_reversed_in_odoo(odoo, store, tmp_path) -> None:
    """INV/2026/00014 (1,234.56) is paid 1,230.00 by bank transfer: the payment is registered in Odoo, the
    4.56 bank fee written off with a journal entry reconciled against the invoice (paid); then the match is
    taken back and both are reset to draft and cancelled in Odoo (the invoice owes 1,234.56 again)."""
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.ledger import post_ledger
    from connector.reconcile.review import reject_suggestion
    from tests.reconcile.helpers import import_lines, line

    config = _config(odoo, tmp_path, ledger=True)
    pull_source(store, make(odoo))
    ids = import_lines(store, [line("1230.00", "VIR MULLER GMBH INV/2026/00014", name="Müller GmbH",
                                    date=dt.date(2026, 11, 20))])
    run_reconciliation(store, config)
    allocation, = store.recon_line_allocations(ids[sorted(ids)[0]])
    assert (allocation["amount_minor"], allocation["writeoff_minor"]) == (123000, 456)
    result = post_ledger(store, config)
    assert (result.written_back, result.written_off, result.write_back_errors) == (1, 1, [])
    invoice = _move(odoo, 14)
    assert (invoice["amount_residual"], invoice["payment_state"]) == (0, "paid")
    entry, = [m for m in odoo.data["account.move"] if m.get("ref") == f"cessio-writeoff-{allocation['id']}"]
    assert entry["state"] == "posted" and entry["journal_id"][0] == 3
    lines = sorted((x["account_id"][1], x["debit"], x["credit"]) for x in odoo.data["account.move.line"]
                   if x["move_id"][0] == entry["id"])
    assert [(a, str(d), str(c)) for a, d, c in lines] == [("411100 Clients", "0", "4.56"),
                                                          ("627000 Services bancaires et assimilés", "4.56", "0")]
    created = [r for r in odoo.requests if r["params"].get("args", [None] * 5)[3:5] == ["account.move", "create"]]
    assert len(created) == 1

    again = post_ledger(store, config)  # the entry is looked up by its ref: nothing is created twice
    assert (again.written_back, again.written_off, again.reversed_in_erp) == (0, 0, 0)
    assert [m["id"] for m in odoo.data["account.move"] if str(m.get("ref")).startswith("cessio-writeoff")] \
        == [entry["id"]]

    reject_suggestion(store, allocation["id"], actor="carol")
    undone = post_ledger(store, config)
    assert (undone.reversed, undone.reversed_in_erp, undone.write_back_errors) == (1, 2, [])
    assert entry["state"] == "cancel" and odoo.data["account.payment"][0]["state"] == "cancel"
    assert (invoice["amount_residual"], invoice["payment_state"]) == (Decimal("1234.56"), "not_paid")
    assert post_ledger(store, config).reversed_in_erp == 0
    pull_source(store, make(odoo))
    assert store.erp_status_of(store.invoice_key_by_source_id("odoo", "14")) == "open"
    references = {w["reference"]: w["state"] for w in store.writebacks("odoo")}
    suffix = allocation["id"]
    assert references == {f"cessio-allocation-{suffix}": "done", f"cessio-writeoff-{suffix}": "done",
                          f"cessio-allocation-{suffix}-reversal": "done",
                          f"cessio-writeoff-{suffix}-reversal": "done"}


def test_a_reversal_interrupted_after_the_draft_finishes_once(odoo, store) -> None:
    """Odoo reset the payment to draft, then the connection dropped: the retry reads the state and only
    cancels (resetting twice would fail in Odoo, and unreconcile twice in the double)."""
    pull_source(store, make(odoo))
    invoice_id = store.find_invoice_id(store.invoice_key_by_source_id("odoo", "11"))
    payment = record_payment_in_erp(store, make(odoo), invoice_id=invoice_id, amount=Money.parse("100.00", "EUR"),
                                    date=dt.date(2026, 11, 20), reference="cessio-allocation-3")
    odoo.execute("account.payment", "action_draft", [[int(payment)]], {})
    assert make(odoo).reverse_writeback(source_id="11", erp_id=payment, date=dt.date(2026, 11, 21),
                                        reference="cessio-allocation-3-reversal") == payment
    assert odoo.data["account.payment"][0]["state"] == "cancel"
    assert _move(odoo, 11)["amount_residual"] == Decimal("1200.0")
    make(odoo).reverse_writeback(source_id="11", erp_id=payment, date=dt.date(2026, 11, 21),
                                 reference="cessio-allocation-3-reversal")
    assert _move(odoo, 11)["amount_residual"] == Decimal("1200.0")


def test_writeoff_of_another_amount_than_odoo_owes_stops(odoo, store) -> None:
    from connector.errors import StopAndAsk

    with pytest.raises(StopAndAsk, match=r"still owes 1200\.00"):
        make(odoo, writeoff_account="627000").record_writeoff(
            source_id="11", amount=Money.parse("5.00", "EUR"), date=dt.date(2026, 11, 20), reference="cessio-w")
    assert not [m for m in odoo.data["account.move"] if m.get("ref") == "cessio-w"]
