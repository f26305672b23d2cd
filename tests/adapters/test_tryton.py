"""The Tryton adapter against a real trytond server on SQLite (see conftest.py and tryton_server.py).

Invoices are created, credited and paid in Tryton with proteus as a user would; the adapter reads them
over JSON-RPC and writes payments back with Tryton's own "Pay invoice" wizard.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, ClassVar

import pytest

from adapters.tryton import TrytonAdapter
from connector.errors import ConfigError
from connector.model import InvoiceKind
from connector.money import Money
from connector.pull import pull_source, record_payment_in_erp
from connector.testing import AdapterContract

pytestmark = pytest.mark.slow
PARTIAL = itertools.count(1)


def make(tryton, **extra) -> TrytonAdapter:
    return TrytonAdapter("tryton", tryton.options(**extra))


class TestTrytonContract(AdapterContract):
    batch_option: ClassVar[dict[str, Any]] = {"page_size": 2}

    @pytest.fixture
    def make_adapter(self, tryton):
        return lambda **overrides: make(tryton, **overrides)

    @pytest.fixture
    def bad_adapter(self, tryton, monkeypatch):
        monkeypatch.setenv("CESSIO_TEST_WRONG_PASSWORD", "not-the-password")
        return make(tryton, password="env:CESSIO_TEST_WRONG_PASSWORD")

    @pytest.fixture
    def change_one_record(self, tryton):
        def change() -> str:
            first = tryton.seeded[0]
            # a user registers a small partial payment: the amount due changes in Tryton
            tryton.operate({"op": "pay", "number": first["number"], "amount": f"{next(PARTIAL)}.00"})
            return str(first["id"])
        return change


def test_unreachable_server_is_retry_later(tryton) -> None:
    from connector.errors import RetryLater
    from tests.adapters.tryton_server import free_port

    adapter = make(tryton, url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryLater):
        adapter.check()


def test_clear_text_password_is_refused(tryton) -> None:
    with pytest.raises(ConfigError, match="never in clear"):
        make(tryton, password="admin").check()


def test_invoices_appear_with_amounts_due_dates_and_debtor_identity(tryton, store) -> None:
    created, = tryton.operate({"op": "invoice", "party": "Brasserie du Nord SARL", "term": "30/60 days",
                               "lines": [[2, "750.00"], [1, "0.10"]]})
    today = dt.date.today()  # Tryton numbers invoices in date order: seeded invoices are dated today
    pull_source(store, make(tryton))
    key = store.invoice_key_by_source_id("tryton", str(created["id"]))
    invoice = store.get_invoice(store.find_invoice_id(key))
    assert invoice.number == created["number"]
    assert invoice.kind is InvoiceKind.INVOICE
    assert invoice.total_net == Money.parse("1500.10", "EUR")
    assert invoice.total_tax == Money.parse("300.02", "EUR")
    assert invoice.total_gross == Money.parse("1800.12", "EUR") == invoice.amount_due
    assert invoice.issue_date == today
    assert invoice.due_date == today + dt.timedelta(days=30)  # first instalment of the 30/60 days term
    assert "instalments" in invoice.flags
    assert invoice.buyer.name == "Brasserie du Nord SARL"
    assert (invoice.buyer.legal_id, invoice.buyer.legal_id_scheme) == ("542051180", "0002")
    assert invoice.buyer.vat_id == "FR59542051180"
    assert invoice.buyer.address.city == "Lille" and invoice.buyer.country == "FR"
    assert (invoice.seller.name, invoice.seller.legal_id) == ("Cessio Demo SAS", "732829320")
    assert invoice.erp_status == "open"


def test_credit_note_and_payment_in_tryton_update_cessio(tryton, store) -> None:
    first, second = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "100.00"]],
                                    "count": 2})
    pull_source(store, make(tryton))
    note, _paid = tryton.operate({"op": "credit", "number": first["number"]},
                                 {"op": "pay", "number": second["number"], "amount": "120.00"})
    summary = pull_source(store, make(tryton))
    key_first = store.invoice_key_by_source_id("tryton", str(first["id"]))
    key_second = store.invoice_key_by_source_id("tryton", str(second["id"]))
    credit = store.get_invoice(store.find_invoice_id(store.invoice_key_by_source_id("tryton", str(note["id"]))))
    assert credit.kind is InvoiceKind.CREDIT_NOTE
    assert credit.total_gross == Money.parse("120.00", "EUR")
    assert credit.preceding_invoices == (first["number"],)
    assert store.erp_status_of(key_first) == "credited"
    assert store.erp_status_of(key_second) == "paid"
    assert {"invoice_key": key_second, "from": "open", "to": "paid"} in summary.events
    events = {row["event"] for row in store.audit_rows(entity=f"invoice:{store.find_invoice_id(key_first)}")}
    assert "invoice.erp_status" in events


def test_payment_written_back_shows_the_invoice_paid_in_tryton(tryton, store) -> None:
    created, = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[4, "250.00"]]})
    adapter = make(tryton)
    pull_source(store, adapter)
    invoice_id = store.find_invoice_id(store.invoice_key_by_source_id("tryton", str(created["id"])))
    today = dt.date.today()
    partial = record_payment_in_erp(store, make(tryton), invoice_id=invoice_id,
                                    amount=Money.parse("200.00", "EUR"), date=today, reference="cessio:alloc:1")
    state = adapter.call("model.account.invoice.read", [created["id"]], ["state", "amount_to_pay"], adapter.context())
    assert (state[0]["state"], str(state[0]["amount_to_pay"])) == ("posted", "1000.00")
    rest = record_payment_in_erp(store, make(tryton), invoice_id=invoice_id,
                                 amount=Money.parse("1000.00", "EUR"), date=today, reference="cessio:alloc:2")
    state = adapter.call("model.account.invoice.read", [created["id"]], ["state", "amount_to_pay", "reconciled"],
                         adapter.context())
    assert state[0]["state"] == "paid" and state[0]["reconciled"] is not None  # reconciled in Tryton
    assert partial != rest
    # the same reference again: no second payment in Tryton
    again = record_payment_in_erp(store, make(tryton), invoice_id=invoice_id,
                                  amount=Money.parse("1000.00", "EUR"), date=today, reference="cessio:alloc:2")
    assert again == rest
    moves = adapter.call("model.account.move.search", [("origin", "=", f"account.invoice,{created['id']}"),
                                                         ("description", "like", "cessio:%")],
                         0, None, None, adapter.context())
    assert len(moves) == 2
    # and Cessio sees the invoice paid at the next pull
    pull_source(store, make(tryton))
    assert store.erp_status_of(store.invoice_key_by_source_id("tryton", str(created["id"]))) == "paid"
    assert [w["state"] for w in store.writebacks("tryton")] == ["done", "done"]


def test_crash_after_tryton_paid_but_before_cessio_recorded_it_pays_once(tryton, store) -> None:
    created, = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "80.00"]]})
    pull_source(store, make(tryton))
    invoice_id = store.find_invoice_id(store.invoice_key_by_source_id("tryton", str(created["id"])))
    # Tryton accepted the payment, then Cessio died before recording the answer
    erp_id = make(tryton).record_payment(source_id=str(created["id"]), amount=Money.parse("96.00", "EUR"),
                                         date=dt.date.today(), reference="cessio:alloc:crash")
    again = record_payment_in_erp(store, make(tryton), invoice_id=invoice_id, amount=Money.parse("96.00", "EUR"),
                                  date=dt.date.today(), reference="cessio:alloc:crash")
    assert again == erp_id
    adapter = make(tryton)
    moves = adapter.call("model.account.move.search", [("origin", "=", f"account.invoice,{created['id']}"),
                                                         ("description", "like", "cessio:%")],
                         0, None, None, adapter.context())
    assert len(moves) == 1


def test_reconciled_bank_payment_is_posted_and_written_back_to_tryton(tryton, store) -> None:
    """The whole path a deployment runs: an invoice created in Tryton is pulled, its debtor pays it by bank
    transfer (a camt.053 statement), reconciliation matches it, the ledger posting writes the payment back
    through the adapter built from ``[sources.tryton]``, and Tryton shows the invoice paid and reconciled."""
    from connector.config import parse_config
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.ledger import post_ledger
    from tests.reconcile.helpers import ACCOUNT, import_lines, line

    created, = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[3, "123.45"]]})
    assert created["total"] == "444.42"
    options = tryton.options()
    source = "\n".join(f"{key} = {value!r}".replace("'", '"') for key, value in options.items())
    config = parse_config(f'[company]\nname = "Cessio Demo SAS"\nlegal_id = "732829320"\n\n[reconciliation]\n'
                          f'accounts = ["{ACCOUNT}"]\n\n[sources.tryton]\n{source}\n')
    pull_source(store, make(tryton))
    key = store.invoice_key_by_source_id("tryton", str(created["id"]))
    import_lines(store, [line("444.42", f"VIR ACME INDUSTRIE SA FACTURE {created['number']}",
                              name="ACME Industrie SA", date=dt.date.today())])
    run_reconciliation(store, config)
    result = post_ledger(store, config)
    assert (result.written_back, result.write_back_errors) == (1, [])
    adapter = make(tryton)
    state, = adapter.call("model.account.invoice.read", [created["id"]], ["state", "amount_to_pay", "reconciled"],
                          adapter.context())
    assert state["state"] == "paid" and state["amount_to_pay"] == 0
    assert state["reconciled"] is not None
    writeback, = store.writebacks("tryton")
    assert (writeback["state"], writeback["amount_minor"], writeback["source_id"]) == ("done", 44442,
                                                                                       str(created["id"]))
    # posting again writes nothing back twice; the next pull sees the invoice paid
    assert post_ledger(store, config).written_back == 0
    moves = adapter.call("model.account.move.search", [("origin", "=", f"account.invoice,{created['id']}"),
                                                         ("description", "like", "cessio-%")],
                         0, None, None, adapter.context())
    assert len(moves) == 1
    pull_source(store, make(tryton))
    assert store.erp_status_of(key) == "paid"


def _tryton_config(tryton, **extra):
    from connector.config import parse_config
    from tests.reconcile.helpers import ACCOUNT

    options = tryton.options(**extra)
    source = "\n".join(f"{key} = {value!r}".replace("'", '"') for key, value in options.items())
    return parse_config(f'[company]\nname = "Cessio Demo SAS"\nlegal_id = "732829320"\n\n[reconciliation]\n'
                        f'accounts = ["{ACCOUNT}"]\n\n[sources.tryton]\n{source}\n')


def _moves(adapter: TrytonAdapter, *domain) -> list[dict]:
    return adapter.call("model.account.move.search_read", list(domain), 0, None, None,
                        ["description", "origin", "journal.type", "state"], adapter.context())


def test_short_payment_written_off_then_reversed_in_tryton(tryton, store) -> None:
    """A debtor pays 115.00 of a 120.00 invoice (the bank kept a fee): reconciliation books the 5.00 as a bank
    fee; the ledger posting writes the payment back, then writes the 5.00 off in Tryton with its write-off
    method, so Tryton shows the invoice paid. The match is then taken back: the reversal undoes both moves in
    Tryton (unreconcile, cancel), so the invoice is open for its full amount again. Nothing is done twice."""
    from connector.reconcile.engine import run_reconciliation
    from connector.reconcile.ledger import post_ledger
    from connector.reconcile.review import reject_suggestion
    from tests.reconcile.helpers import import_lines, line

    tryton.operate({"op": "writeoff_method", "name": "Bank fees"})
    created, = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "100.00"]]})
    config = _tryton_config(tryton, writeoff_method="Bank fees")
    pull_source(store, make(tryton))
    ids = import_lines(store, [line("115.00", f"VIR ACME INDUSTRIE SA FACTURE {created['number']}",
                                    name="ACME Industrie SA", date=dt.date.today())])
    run_reconciliation(store, config)
    allocation, = store.recon_line_allocations(ids[sorted(ids)[0]])
    assert (allocation["amount_minor"], allocation["writeoff_minor"]) == (11500, 500)
    result = post_ledger(store, config)
    assert (result.written_back, result.written_off, result.write_back_errors) == (1, 1, [])
    adapter = make(tryton)
    state, = adapter.call("model.account.invoice.read", [created["id"]], ["state", "amount_to_pay", "reconciled"],
                          adapter.context())
    assert state["state"] == "paid" and state["amount_to_pay"] == 0 and state["reconciled"] is not None
    writeoff, = _moves(adapter, ("description", "=", f"cessio-writeoff-{allocation['id']}"),
                       ("lines.reconciliation.lines.move.origin", "=", f"account.invoice,{created['id']}"))
    assert writeoff["journal."]["type"] == "write-off" and writeoff["state"] == "posted"
    lines = adapter.call("model.account.move.line.search_read", [("move", "=", writeoff["id"])], 0, None, None,
                         ["debit", "credit"], adapter.context())
    assert sorted((str(x["debit"]), str(x["credit"])) for x in lines) == [("0", "5.00"), ("5.00", "0")]
    rows = {w["reference"]: w for w in store.writebacks("tryton")}
    assert rows[f"cessio-writeoff-{allocation['id']}"]["erp_id"] == str(writeoff["id"])
    assert rows[f"cessio-writeoff-{allocation['id']}"]["amount_minor"] == 500

    again = post_ledger(store, config)  # idempotent: nothing new in Tryton
    assert (again.written_back, again.written_off, again.reversed_in_erp) == (0, 0, 0)
    assert len(_moves(adapter, ("description", "=", f"cessio-writeoff-{allocation['id']}"))) >= 1

    reject_suggestion(store, allocation["id"], actor="carol")  # the match was wrong: taken back
    undone = post_ledger(store, config)
    assert (undone.reversed, undone.reversed_in_erp, undone.write_back_errors) == (1, 2, [])
    state, = adapter.call("model.account.invoice.read", [created["id"]], ["state", "amount_to_pay", "reconciled"],
                          adapter.context())
    assert state["state"] == "posted" and str(state["amount_to_pay"]) == "120.00" and state["reconciled"] is None
    payment = rows[f"cessio-allocation-{allocation['id']}"]["erp_id"]
    for original in (payment, str(writeoff["id"])):
        cancel, = _moves(adapter, ("origin", "=", f"account.move,{original}"))
        assert cancel["description"].endswith("-reversal") and cancel["state"] == "posted"
    assert post_ledger(store, config).reversed_in_erp == 0  # looked up, never reversed twice
    pull_source(store, make(tryton))
    assert store.erp_status_of(store.invoice_key_by_source_id("tryton", str(created["id"]))) == "open"
    events = {row["event"] for row in store.audit_rows(entity=f"invoice:{allocation['invoice_id']}", limit=200)}
    assert {"erp.writeoff_done", "erp.reversal_done"} <= events


def test_writeoff_of_another_amount_than_tryton_owes_stops(tryton, store) -> None:
    from connector.errors import StopAndAsk

    tryton.operate({"op": "writeoff_method", "name": "Bank fees"})
    created, = tryton.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "10.00"]]})
    adapter = make(tryton, writeoff_method="Bank fees")
    with pytest.raises(StopAndAsk, match=r"still owes 12\.00"):
        adapter.record_writeoff(source_id=str(created["id"]), amount=Money.parse("2.00", "EUR"),
                                date=dt.date.today(), reference="cessio-writeoff-wrong")
    assert _moves(adapter, ("description", "=", "cessio-writeoff-wrong")) == []


def test_a_change_of_the_customer_alone_is_picked_up(tryton, store) -> None:
    """The customer's address (edited in the party form) then its VAT id (the identifier record alone) change
    in Tryton; the invoice's own write date does not move, yet the next pulls see the new debtor data. (No
    overlap window, and a later invoice after it: the invoice at the cursor's edge is read again anyway.)"""
    name = f"Verrerie {next(PARTIAL)} SAS"
    tryton.operate({"op": "party", "name": name, "siren": "732829320", "vat": "FR44732829320",
                    "street": "1 rue du Four", "postal_code": "59100", "city": "Roubaix"})
    created, _later = tryton.operate({"op": "invoice", "party": name, "lines": [[1, "40.00"]]},
                                     {"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "1.00"]]})
    adapter = make(tryton)
    write_date = adapter.call("model.account.invoice.read", [created["id"]], ["write_date"], adapter.context())
    pull_source(store, make(tryton, overlap_seconds=0))
    key = store.invoice_key_by_source_id("tryton", str(created["id"]))
    assert store.get_invoice(store.find_invoice_id(key)).buyer.address.city == "Roubaix"

    tryton.operate({"op": "move_party", "name": name, "city": "Lille", "postal_code": "59000"})
    summary = pull_source(store, make(tryton, overlap_seconds=0))
    assert summary.changed == 1
    invoice = store.get_invoice(store.find_invoice_id(key))
    assert (invoice.buyer.address.city, invoice.buyer.address.postal_code) == ("Lille", "59000")

    tryton.operate({"op": "party_vat", "name": name, "vat": "FR96552100554"})
    assert pull_source(store, make(tryton, overlap_seconds=0)).changed == 1
    assert store.get_invoice(store.find_invoice_id(key)).buyer.vat_id == "FR96552100554"
    assert store.invoice_row(store.find_invoice_id(key))["current_version"] == 3
    # Tryton itself did not touch the invoice: only the customer pass could see these changes
    assert adapter.call("model.account.invoice.read", [created["id"]], ["write_date"], adapter.context()) \
        == write_date
    assert pull_source(store, make(tryton, overlap_seconds=0)).changed == 0
