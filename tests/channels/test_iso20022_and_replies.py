"""tsin.006 written and validated against the schema (as the python-iso20022 bindings generated from the
official XSD carry it); tsin.007/008/013 samples written from the standard's field tree read into the
right factor events; CSV statements and acknowledgement files read through their TOML layouts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from connector.channels import iso20022, replies
from connector.errors import Quarantine, UnsafeDocument
from connector.money import Money
from tests.channels.sample import FIXTURES, sample_invoices

NS6 = {"t": "urn:iso:std:iso:20022:tech:xsd:tsin.006.001.01"}


def _tsin006(invoices=None) -> bytes:
    return iso20022.build_tsin006(
        invoices or sample_invoices(), message_id="CESSIO-TSIN006-1", batch_id="BATCH-1",
        issue_date=dt.date(2026, 11, 28), assignor_name="Cessio Demo SAS", assignor_legal_id="732829320",
        factor_name="BPCE Factor", factor_id="123456")


def test_tsin006_validates_and_carries_counts_sums_and_credit_debit():
    data = _tsin006()
    assert iso20022.validation_problems(data, "tsin.006.001.01") == []
    root = etree.fromstring(data)
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:tsin.006.001.01}Document"
    items = root.findall("t:InvcAssgnmtReq/t:AssgnmtList/t:FinItm", NS6)
    assert [i.findtext("t:ItmCntxt/t:Idr", namespaces=NS6) for i in items] == \
        ["F2026-0001", "F2026-0002", "F2026-0003", "AV2026-0001"]
    assert [i.findtext("t:CdtDbtInd", namespaces=NS6) for i in items] == ["DBIT", "DBIT", "DBIT", "CRDT"]
    assert root.findtext("t:InvcAssgnmtReq/t:ItmCnt", namespaces=NS6) == "4"
    assert root.findtext("t:InvcAssgnmtReq/t:AssgnmtList/t:CtrlSum", namespaces=NS6) == "6649.99"
    assert Decimal(root.findtext("t:InvcAssgnmtReq/t:CtrlSum", namespaces=NS6)) == sum(
        Decimal(i.findtext("t:TtlAmt/t:TtlInvcAmt", namespaces=NS6)) for i in items)
    credit = items[3]
    assert credit.findtext("t:ItmCntxt/t:RltdItm", namespaces=NS6) == "F2026-0001"
    # every Buyr points at a party the letter declares
    declared = {e.text for e in root.findall("t:InvcAssgnmtReq/t:Hdr/t:OthrPty/t:Id", NS6)}
    assert {i.findtext("t:ItmCntxt/t:Buyr", namespaces=NS6) for i in items} <= declared


def test_tsin006_is_deterministic():
    assert _tsin006() == _tsin006()


def test_tsin006_of_a_zero_decimal_currency():
    yen = [dataclasses.replace(inv, currency="JPY", total_gross=Money.parse("150000", "JPY"),
                               amount_due=Money.parse("150000", "JPY")) for inv in sample_invoices()[:1]]
    data = _tsin006(yen)
    assert b'<TtlInvcAmt Ccy="JPY">150000</TtlInvcAmt>' in data


@pytest.mark.parametrize("breakage, expected", [
    (lambda d: d.replace(b"<CdtDbtInd>DBIT</CdtDbtInd>", b"<CdtDbtInd>DEBIT</CdtDbtInd>", 1), "code list"),
    (lambda d: d.replace(b"<ItmCnt>4</ItmCnt>\n      <CtrlSum>", b"<CtrlSum>", 1), "ItmCnt: required"),
    (lambda d: d.replace(b"<Buyr>BUYER-1</Buyr>", b"<Buyr>NOBODY</Buyr>", 1), "does not declare"),
    (lambda d: d.replace(b"<TtlTaxblAmt Ccy=\"EUR\">1200.00", b"<TtlTaxblAmt Ccy=\"EURO\">1200.00", 1),
     "does not match"),
    (lambda d: d.replace(b"<IsseDt>2026-11-28</IsseDt>\n      <Assgne>", b"<Assgne>", 1), "IsseDt: required"),
    (lambda d: d.replace(b"<Assgne>ASSIGNEE</Assgne>\n      <Assgnr>ASSIGNOR</Assgnr>",
                         b"<Assgnr>ASSIGNOR</Assgnr>\n      <Assgne>ASSIGNEE</Assgne>", 1), "sequence order"),
    (lambda d: d.replace(b"<Ccy>EUR</Ccy>", b"<Ccy>EUR</Ccy><Colour>red</Colour>", 1), "unexpected element"),
    (lambda d: d.replace(b"<Id>BUYER-2</Id>", b"<Id>BUYER-1</Id>", 1), "more than once"),
])
def test_the_validator_refuses_what_the_schema_refuses(breakage, expected):
    broken = breakage(_tsin006())
    problems = iso20022.validation_problems(broken, "tsin.006.001.01")
    assert any(expected in p for p in problems), problems


def test_tsin007_status_reads_into_decisions_and_fundings():
    data = (FIXTURES / "tsin007_status.xml").read_bytes()
    events = iso20022.read_reply(data, factor="bpce", source="tsin007_status.xml")
    by = {(e.detail["number"], e.kind): e for e in events}
    assert set(by) == {
        ("F2026-0001", "acknowledged"), ("F2026-0002", "acknowledged"), ("F2026-0003", "acknowledged"),
        ("AV2026-0001", "rejected"), ("F2026-0001", "financed"), ("F2026-0002", "financed"),
        ("F2026-0003", "declined")}
    assert by[("F2026-0001", "financed")].amount == Money.parse("1200.00", "EUR")
    assert by[("F2026-0001", "financed")].detail["financed_amount"] == "1080.00"
    assert by[("F2026-0002", "financed")].detail["financed_amount"] == "314.99"
    assert by[("F2026-0003", "declined")].reason_code == "BE08"
    assert by[("AV2026-0001", "rejected")].reason_code == "ID01"
    assert all(e.occurred_on == dt.date(2026, 11, 29) for e in events)
    assert len({e.event_id for e in events}) == len(events)


def test_tsin008_and_tsin013_read_into_notified_and_acknowledged():
    notified = iso20022.read_reply((FIXTURES / "tsin008_notification.xml").read_bytes(), factor="bpce")
    acked = iso20022.read_reply((FIXTURES / "tsin013_acknowledgement.xml").read_bytes(), factor="bpce")
    assert [(e.kind, e.detail["number"]) for e in notified] == [("notified", "F2026-0001")]
    assert [(e.kind, e.detail["number"]) for e in acked] == [("assignment_acknowledged", "F2026-0001")]


def test_invalid_tsin007_is_quarantined_with_its_problems():
    with pytest.raises(Quarantine) as caught:
        iso20022.read_reply((FIXTURES / "tsin007_invalid.xml").read_bytes(), factor="bpce", source="bad.xml")
    assert "Hdr/Dt: required element missing" in str(caught.value)
    assert "TechnicalValidationStatus1Code" in str(caught.value)


def test_reply_with_a_doctype_is_refused():
    evil = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    with pytest.raises(UnsafeDocument):
        iso20022.read_reply(evil, factor="bpce")


def test_import_reply_records_events_once_and_links_invoices(store):
    with store.transaction():
        for invoice in sample_invoices():
            store.save_invoice(invoice)
    path = FIXTURES / "tsin007_status.xml"
    first = replies.import_reply_file(store, path, factor="bpce")
    again = replies.import_reply_file(store, path, factor="bpce")
    assert (first["new"], again["new"], again["seen"]) == (7, 0, 7)
    rows = store.channel_factor_events("bpce")
    financed = [r for r in rows if r["kind"] == "assignment.accepted"]  # the engine's vocabulary
    assert {r["amount_minor"] for r in financed} == {120000, 34999}
    keys = {r["invoice_key"] for r in financed}
    assert keys == {store.invoice_rows(where="number = ?", params=(n,))[0]["invoice_key"]
                    for n in ("F2026-0001", "F2026-0002")}
    # the same bookkeeping as the API channel: states moved, factor accounts posted
    states = {r["number"]: r["financing_state"] for r in store.invoice_rows()}
    assert (states["F2026-0001"], states["F2026-0003"]) == ("accepted", "declined")
    assert store.factor_ledger_totals("bpce")[("outstanding", "EUR")] == 154999
    assert store.verify_audit().ok


def test_statement_posts_fundings_fees_and_reserve_to_the_factor_accounts(store):
    with store.transaction():
        for invoice in sample_invoices():
            store.save_invoice(invoice)
    result = replies.import_reply_file(store, FIXTURES / "statement_generic.csv", factor="bpce",
                                       csv_layout="generic_statement")
    assert result["new"] == 7
    ledger = store.factor_ledger_totals("bpce")
    assert ledger[("funded", "EUR")] == 108000 and ledger[("fees", "EUR")] == 300
    assert ledger[("fees_vat", "EUR")] == 60 and ledger[("reserve", "EUR")] == 12000
    assert ledger[("charged_back", "EUR")] == 34999
    states = {r["number"]: r["financing_state"] for r in store.invoice_rows()}
    assert states["F2026-0002"] == "charged_back"


def test_csv_statement_reads_every_movement():
    layout = replies.load_reply_layout("generic_statement")
    events = replies.read_csv_reply((FIXTURES / "statement_generic.csv").read_bytes(), layout, factor="bpce",
                                    source="statement_generic.csv")
    assert [e.kind for e in events] == ["acknowledged", "rejected", "funding", "fee", "reserve", "collection",
                                        "chargeback"]
    fee = events[3]
    assert (fee.amount, fee.vat) == (Money.parse("3.00", "EUR"), Money.parse("0.60", "EUR"))
    assert events[1].reason_code == "ID01 unknown debtor reference"
    assert events[6].detail["number"] == "F2026-0002"


def test_latin1_statement_with_decimal_comma():
    layout = replies.load_reply_layout("factofrance_releve")
    events = replies.read_csv_reply((FIXTURES / "statement_factofrance.csv").read_bytes(), layout,
                                    factor="factofrance", source="statement_factofrance.csv")
    assert [(e.kind, e.amount) for e in events] == [("funding", Money.parse("1080.00", "EUR")),
                                                    ("fee", Money.parse("3.00", "EUR"))]
    assert events[0].detail["debtor"] == "SOCIÉTÉ GÉNÉRALE"


def test_bad_line_quarantines_the_whole_file_naming_line_and_field(store):
    path = FIXTURES / "statement_bad_amount.csv"
    result = replies.import_reply_file(store, path, factor="bpce", csv_layout="generic_statement")
    assert result["new"] == 0
    assert store.channel_factor_events("bpce") == []  # nothing half-imported
    entry = store.quarantined()[0]
    assert entry["field"] == "Montant" and entry["location"] == str(path)
    assert "statement_bad_amount.csv:5" in result["quarantined"]


# -- camt.053 of the factor account ---------------------------------------------------------------------

def test_factor_camt053_entries_become_classified_events():
    from connector.channels.factor_camt import read_factor_camt

    events = read_factor_camt((FIXTURES / "camt053_factor_account.xml").read_bytes(), factor="bpce")
    assert [(e.kind, e.amount, e.detail["number"]) for e in events] == [
        ("funding", Money.parse("1080.00", "EUR"), "F2026-0001"),
        ("fee", Money.parse("-3.60", "EUR"), "F2026-0001"),
        ("reserve", Money.parse("-120.00", "EUR"), "F2026-0001"),
        ("chargeback", Money.parse("-349.99", "EUR"), "F2026-0002"),
        ("unclassified", Money.parse("7.77", "EUR"), None),  # kept for a person, never dropped
    ]  # the pending entry is not a movement yet
    assert events[0].event_id == "camt:FACTOR-CC-123456:FAC-0001"


def test_factor_camt053_import_is_idempotent_and_reads_other_versions(store, corpus):
    from connector.channels.factor_camt import import_factor_camt, read_factor_camt

    path = FIXTURES / "camt053_factor_account.xml"
    assert import_factor_camt(store, path, factor="bpce")["new"] == 5
    assert import_factor_camt(store, path, factor="bpce")["new"] == 0
    assert replies.import_reply_file(store, path, factor="bpce")["seen"] == 5  # the generic entry point too
    # a real bank's camt.053.001.04 from the shared corpus parses (its entries are not factor movements)
    real = read_factor_camt((corpus / "payments" / "genkgo-camt" / "camt053.v4.xml").read_bytes(), factor="x")
    assert real and all(e.amount is not None for e in real)
