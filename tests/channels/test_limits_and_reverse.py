"""Credit-limit requests (RECECO) through the API and as files, fed to eligibility; reverse factoring end to
end against the platform sandbox (a real HTTP server on 127.0.0.1), including an ambiguous failure
resolved by look-up and the buyer's payment at maturity reconciled."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connector.channels import limits, reverse
from connector.clock import utc_iso
from connector.errors import Quarantine
from connector.model import Party
from connector.money import Money
from connector.sandbox.platform import PlatformServer
from tests.channels.sample import DOMESTIC, EXPORT
from tests.factories import make_invoice


@pytest.fixture
def platform():
    server = PlatformServer().start()
    yield server
    server.stop()


def test_limit_request_is_idempotent_and_its_decision_feeds_eligibility(store, platform):
    api = limits.HttpLimitApi(platform.url, timeout=(2, 5))
    first = limits.request_limit(store, factor="bpce", debtor=DOMESTIC, request_type="new",
                                 amount=Money.parse("50000", "EUR"), on=dt.date(2026, 11, 28))
    again = limits.request_limit(store, factor="bpce", debtor=DOMESTIC, request_type="new",
                                 amount=Money.parse("50000", "EUR"), on=dt.date(2026, 11, 28))
    assert first == again
    assert limits.send_pending(store, "bpce", api) == 1
    assert limits.send_pending(store, "bpce", api) == 0  # nothing pending any more
    assert len(platform.state.limits) == 1
    assert limits.poll_decisions(store, "bpce", api) == 0  # the factor is still deciding
    remote = store.limit_requests(factor="bpce")[0]["remote_id"]
    import requests
    requests.post(f"{platform.url}/limits/{remote}/decide", timeout=5, json={
        "response_code": "5", "granted_amount": "30000.00", "valid_from": "2026-11-28", "valid_to": "2027-05-28"})
    assert limits.poll_decisions(store, "bpce", api) == 1
    current = store.limit_current("bpce", DOMESTIC.key)
    assert (current["status"], current["amount_minor"], current["valid_to"]) == ("partly_approved", 3000000,
                                                                                 "2027-05-28")
    seen = limits.limits_for_eligibility(store, "bpce")[DOMESTIC.key]
    assert seen.status == "partly_approved" and seen.amount == Money.parse("30000", "EUR")
    assert seen.valid_to == dt.date(2027, 5, 28)


def test_investigating_keeps_the_current_limit_and_refusal_zeroes_it(store):
    new = limits.request_limit(store, factor="bpce", debtor=DOMESTIC, request_type="new",
                               amount=Money.parse("10000", "EUR"), on=dt.date(2026, 11, 1))
    limits.record_decision(store, new, response="approved", granted=Money.parse("10000", "EUR"),
                           valid_to=dt.date(2027, 11, 1))
    increase = limits.request_limit(store, factor="bpce", debtor=DOMESTIC, request_type="increase",
                                    amount=Money.parse("20000", "EUR"), on=dt.date(2026, 11, 2))
    limits.record_decision(store, increase, response="6")  # still investigating
    assert store.limit_current("bpce", DOMESTIC.key)["amount_minor"] == 1000000
    limits.record_decision(store, increase, response="3", reason_code="12")  # refused: adverse information
    current = store.limit_current("bpce", DOMESTIC.key)
    assert (current["status"], current["amount_minor"]) == ("declined", 0)
    assert store.limit_requests(factor="bpce")[1]["reason_code"] == "12"
    assert store.verify_audit().ok


def test_limit_requests_and_answers_as_files(store):
    limits.request_limit(store, factor="eurofactor", debtor=EXPORT, request_type="new",
                         amount=Money.parse("8000", "EUR"), on=dt.date(2026, 11, 28))
    limits.request_limit(store, factor="eurofactor", debtor=DOMESTIC, request_type="cancel",
                         amount=Money.parse("0", "EUR"), on=dt.date(2026, 11, 28))
    pending = store.limit_requests(factor="eurofactor", state="pending")
    data = limits.request_file(pending)
    lines = data.decode().splitlines()
    assert lines[0] == ";".join(limits.FILE_COLUMNS)
    assert lines[1].split(";")[3:] == ["2", "8000.00", "EUR"] and lines[2].split(";")[3] == "6"
    answer = ("reference;response_code;granted_amount;valid_from;valid_to;reason_code\r\n"
              f"{pending[0]['idempotency_key']};4;8000.00;2026-12-01;2027-02-15;8\r\n"
              f"{pending[1]['idempotency_key']};8;;;;\r\n").encode()
    assert limits.import_decision_file(store, answer, factor="eurofactor", source="answer.csv") == 2
    assert store.limit_current("eurofactor", EXPORT.key)["status"] == "conditionally_approved"
    assert store.limit_current("eurofactor", DOMESTIC.key)["status"] == "cancelled"
    with pytest.raises(Quarantine, match="unknown request reference"):
        limits.import_decision_file(store, answer.replace(b"limit-", b"other-"), factor="eurofactor", source="x")


def test_expiring_limits_are_reported_ahead(store):
    for debtor, end in ((DOMESTIC, dt.date(2026, 12, 10)), (EXPORT, dt.date(2027, 6, 1))):
        rid = limits.request_limit(store, factor="bpce", debtor=debtor, request_type="new",
                                   amount=Money.parse("1000", "EUR"), on=dt.date(2026, 6, 1))
        limits.record_decision(store, rid, response="2", granted=Money.parse("1000", "EUR"), valid_to=end)
    soon = limits.expiring_limits(store, within_days=30, on=dt.date(2026, 11, 28))
    assert [(e.debtor_key, e.days_left) for e in soon] == [(DOMESTIC.key, 12)]


def test_unidentified_debtor_cannot_be_assessed(store):
    with pytest.raises(Quarantine, match="no legal id"):
        limits.request_limit(store, factor="bpce", debtor=Party(name="Nobody"), request_type="new",
                             amount=Money.parse("1", "EUR"))


# -- reverse factoring ------------------------------------------------------------------------------------

BUYER_CO = Party(name="Cessio Buyer SA", country="FR", legal_id="552100554", legal_id_scheme="0002")
SUPPLIER_A = Party(name="Fournisseur A SARL", country="FR", legal_id="41234567890123", legal_id_scheme="0009",
                   ibans=("FR7630006000011234567890189",))
SUPPLIER_B = Party(name="Lieferant B GmbH", country="DE", vat_id="DE811907980", ibans=("DE89370400440532013000",))


def _add_statement_line(store, *, booked: str, amount_minor: int, text: str) -> int:
    """The buyer's bank statement line (what the statements import of the reconciliation area stores)."""
    with store.transaction():
        statement = store._execute(
            "INSERT INTO statements (account, format, currency, content_sha256, imported_at) "
            "VALUES ('FR76BUYER', 'camt.053', 'EUR', 'test', ?)", (utc_iso(),)).lastrowid
        return store._execute(
            "INSERT INTO statement_lines (identity, statement_id, account, booking_date, amount_minor, currency, "
            "remittance, data, imported_at) VALUES (?, ?, 'FR76BUYER', ?, ?, 'EUR', ?, '{}', ?)",
            (f"line-{booked}-{amount_minor}-{text}", statement, booked, amount_minor, text, utc_iso())).lastrowid


def test_reverse_factoring_end_to_end(store, platform):
    api = reverse.PlatformApi(platform.url, timeout=(2, 5))
    with store.transaction():
        a = store.save_invoice(make_invoice("SUP-A-101", "10000.00", seller=SUPPLIER_A, buyer=BUYER_CO,
                                            due=dt.date(2027, 1, 31), erp_status="approved")).invoice_id
        b = store.save_invoice(make_invoice("SUP-B-7", "2500.50", seller=SUPPLIER_B, buyer=BUYER_CO,
                                            due=dt.date(2027, 2, 15), erp_status="approved")).invoice_id
        c = store.save_invoice(make_invoice("SUP-A-102", "99.00", seller=SUPPLIER_A, buyer=BUYER_CO,
                                            erp_status="disputed")).invoice_id
    assert reverse.payable_candidates(store, BUYER_CO.key) == [a, b]  # the disputed one is not approved
    assert len(reverse.claim_payables(store, "scf", [a, b, c])) == 2
    assert reverse.claim_payables(store, "scf", [a, b]) == []  # claimed once
    assert store.quarantined()[0]["field"] == "erp_status"

    # the first submission reaches the platform but the answer is lost: ambiguous
    platform.state.drop_after_commit = 1
    first = reverse.submit_pending(store, "scf", api)
    assert first == {"confirmed": 1, "found": 0, "unknown": 1, "rejected": 0}
    # the next run looks it up before resending: found, never submitted twice
    second = reverse.submit_pending(store, "scf", api)
    assert second == {"confirmed": 0, "found": 1, "unknown": 0, "rejected": 0}
    assert len(platform.state.payables) == 2 and platform.state.submissions == 2
    assert reverse.payables_summary(store, "scf") == {"confirmed": 2}

    # supplier A takes early payment at a discount
    remote_a = next(r["remote_id"] for r in store.reverse_payables("scf") if r["number"] == "SUP-A-101")
    import requests
    requests.post(f"{platform.url}/payables/{remote_a}/early-payment", timeout=5,
                  json={"paid_on": "2026-12-01", "discount": "85.00"})
    assert reverse.follow_events(store, "scf", api) == 1
    assert reverse.follow_events(store, "scf", api) == 0  # cursor kept
    row_a = next(r for r in store.reverse_payables("scf") if r["number"] == "SUP-A-101")
    assert (row_a["state"], row_a["early_paid_minor"]) == ("early_paid", 991500)
    event = store.channel_factor_events("scf")[0]
    assert event["kind"] == "early_payment" and json.loads(event["detail"])["discount"] == "85.00"

    # at maturity the buyer owes the platform the full amounts
    due = reverse.expected_payments(store, "scf", until=dt.date(2027, 2, 28))
    assert [(e.number, e.amount) for e in due] == [("SUP-A-101", Money.parse("10000.00", "EUR")),
                                                   ("SUP-B-7", Money.parse("2500.50", "EUR"))]
    line_a = _add_statement_line(store, booked="2027-02-01", amount_minor=-1000000, text=f"SCF {remote_a} SUP-A-101")
    _add_statement_line(store, booked="2027-02-01", amount_minor=-1000000, text="rent february")  # same amount
    pairs = reverse.reconcile_maturity(store, "scf", until=dt.date(2027, 2, 5))
    assert pairs == [(row_a["id"], line_a)]
    states = {r["number"]: r["state"] for r in store.reverse_payables("scf")}
    assert states == {"SUP-A-101": "settled", "SUP-B-7": "confirmed"}
    line_b = _add_statement_line(store, booked="2027-02-16", amount_minor=-250050, text="SUP-B-7")
    assert reverse.reconcile_maturity(store, "scf", until=dt.date(2027, 2, 16))[0][1] == line_b
    assert reverse.payables_summary(store, "scf") == {"settled": 2}
    assert store.verify_audit().ok


def test_crash_after_claim_before_answer_is_resolved_by_lookup(store, platform):
    """A sender killed between its call and its commit leaves the payable 'unknown' (the attempt is counted
    before the call); the restart finds it at the platform instead of submitting it again."""
    api = reverse.PlatformApi(platform.url, timeout=(2, 5))
    with store.transaction():
        a = store.save_invoice(make_invoice("SUP-A-201", "10.00", seller=SUPPLIER_A, buyer=BUYER_CO)).invoice_id
    reverse.claim_payables(store, "scf", [a])
    row = store.reverse_payables("scf")[0]
    with store.transaction():
        store.reverse_set_state(row["id"], "unknown", error="sending")
    api.submit(reverse._request_body(store, row), row["idempotency_key"])  # reached the platform, then "crash"
    assert reverse.submit_pending(store, "scf", api)["found"] == 1
    assert len(platform.state.payables) == 1 and platform.state.submissions == 1
