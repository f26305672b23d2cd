"""Write-back of write-offs and reversals by the ledger posting, against an ERP test double at the adapter edge
(the real ERPs: tests/adapters/test_tryton.py and test_odoo.py). What is checked here is Cessio's side: the
order (payment, then write-off; reversal newest first), exactly once across failures, and the bookkeeping."""

from __future__ import annotations

from connector.adapter import Adapter
from connector.errors import RetryLater
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.ledger import payment_reference, post_ledger
from connector.reconcile.review import reject_suggestion
from tests.reconcile.helpers import add_invoices, config, import_lines, line


class LookupErp(Adapter):
    """Test double of an ERP: keeps what it was asked to create by reference and finds it again (as the real
    adapters do); ``lose_answers`` makes the next calls succeed in the ERP but lose their answer."""

    type_name = "lookup"
    supports_write_back = True

    def __init__(self, name, options):
        super().__init__(name, options)
        self.created: dict[str, tuple] = {}
        self.calls: list[str] = []
        self.lose_answers = 0
        self.refuse_payments = False

    def _create(self, reference: str, what: tuple) -> str:
        self.calls.append(reference)
        self.created.setdefault(reference, (f"erp-{len(self.created) + 1}", *what))
        if self.lose_answers:
            self.lose_answers -= 1
            raise RetryLater("the connection dropped after the ERP committed")
        return self.created[reference][0]

    def record_payment(self, *, source_id, amount, date, reference):
        if self.refuse_payments:
            raise RetryLater("ERP down")
        return self._create(reference, ("payment", source_id, amount))

    def record_writeoff(self, *, source_id, amount, date, reference, kind=None):
        return self._create(reference, ("writeoff", source_id, amount, kind))

    def reverse_writeback(self, *, source_id, erp_id, date, reference, what="payment"):
        return self._create(reference, ("reversal", source_id, erp_id, what))


def _short_payment(store):
    add_invoices(store, ("W-1", "1000.00", {"source": "erp", "source_id": "inv-1"}))
    ids = import_lines(store, [line("990.00", "W-1")])
    run_reconciliation(store, config())
    return ids


def test_writeoff_follows_the_payment_once(store):
    _short_payment(store)
    erp = LookupErp("erp", {})
    first = post_ledger(store, config(), adapters={"erp": erp})
    assert (first.written_back, first.written_off) == (1, 1)
    kind, source_id, amount, writeoff_kind = erp.created["cessio-writeoff-1"][1:]
    assert (kind, source_id, str(amount.amount), amount.currency, writeoff_kind) == ("writeoff", "inv-1", "10.00",
                                                                                     "EUR", "bank_fee")
    rows = {w["reference"]: w for w in store.writebacks("erp")}
    assert (rows["cessio-writeoff-1"]["state"], rows["cessio-writeoff-1"]["amount_minor"]) == ("done", 1000)
    assert post_ledger(store, config(), adapters={"erp": erp}).written_off == 0
    assert erp.calls.count("cessio-writeoff-1") == 1
    assert "erp.writeoff_done" in {r["event"] for r in store.audit_rows(limit=100)}
    assert store.verify_audit().ok


def test_a_lost_answer_is_retried_and_found_by_reference(store):
    _short_payment(store)
    erp = LookupErp("erp", {})
    erp.refuse_payments = True  # the payment is not in the ERP: nothing may be written off yet
    blocked = post_ledger(store, config(), adapters={"erp": erp})
    assert (blocked.written_back, blocked.written_off) == (0, 0) and "cessio-writeoff-1" not in erp.calls
    # the payment goes through at the next pull (connector.pull.resume_writebacks does the same call)
    from connector.pull import resume_writebacks

    erp.refuse_payments = False
    assert resume_writebacks(store, erp) == 1
    erp.lose_answers = 1  # the write-off is made in the ERP, its answer lost
    lost = post_ledger(store, config(), adapters={"erp": erp})
    assert lost.written_off == 0 and lost.write_back_errors
    assert "cessio-writeoff-1" not in {w["reference"] for w in store.writebacks("erp")}
    retried = post_ledger(store, config(), adapters={"erp": erp})
    assert (retried.written_off, retried.write_back_errors) == (1, [])
    assert len([r for r in erp.created if r == "cessio-writeoff-1"]) == 1
    assert {w["reference"]: w["erp_id"] for w in store.writebacks("erp")}["cessio-writeoff-1"] \
        == erp.created["cessio-writeoff-1"][0]


def test_a_reversed_receipt_undoes_the_writeoff_then_the_payment(store):
    ids = _short_payment(store)
    erp = LookupErp("erp", {})
    post_ledger(store, config(), adapters={"erp": erp})
    reject_suggestion(store, store.recon_line_allocations(ids[sorted(ids)[0]])[0]["id"], actor="carol")
    result = post_ledger(store, config(), adapters={"erp": erp})
    assert (result.reversed, result.reversed_in_erp) == (1, 2)
    reversals = [ref for ref in erp.calls if ref.endswith("-reversal")]
    assert reversals == ["cessio-writeoff-1-reversal", "cessio-allocation-1-reversal"]  # newest first
    payment_id = erp.created["cessio-allocation-1"][0]
    writeoff_id = erp.created["cessio-writeoff-1"][0]
    assert erp.created["cessio-allocation-1-reversal"][1:] == ("reversal", "inv-1", payment_id, "payment")
    assert erp.created["cessio-writeoff-1-reversal"][1:] == ("reversal", "inv-1", writeoff_id, "writeoff")
    assert post_ledger(store, config(), adapters={"erp": erp}).reversed_in_erp == 0
    assert len(reversals) == len([ref for ref in erp.calls if ref.endswith("-reversal")])
    # the payment resume replays pending rows only: the follow-ups (done when recorded) are never replayed
    from connector.pull import resume_writebacks

    assert resume_writebacks(store, erp) == 0


def test_payment_references_of_later_rounds_are_their_own():
    assert payment_reference(7) == "cessio-allocation-7"
    assert payment_reference(7, 2) == "cessio-allocation-7.2"


def test_an_adapter_without_the_hooks_is_left_alone(store):
    ids = _short_payment(store)

    class PaymentsOnly(Adapter):
        type_name = "payments"
        supports_write_back = True

        def record_payment(self, *, source_id, amount, date, reference):
            return "p-1"

    erp = PaymentsOnly("erp", {})
    result = post_ledger(store, config(), adapters={"erp": erp})
    assert (result.written_back, result.written_off, result.write_back_errors) == (1, 0, [])
    reject_suggestion(store, store.recon_line_allocations(ids[sorted(ids)[0]])[0]["id"], actor="carol")
    assert post_ledger(store, config(), adapters={"erp": erp}).write_back_errors == []
