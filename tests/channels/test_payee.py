"""The factor written as payee (BG-10) into real UBL and CII invoices of the shared corpus: read back by the
e-invoice reader, type codes 393/396, the factor's account as BT-84, no new finding of the official EN 16931
schematron, and idempotent."""

from __future__ import annotations

import pytest
from lxml import etree

from connector.channels.payee import CAC, CBC, FactorPayee, write_payee
from connector.einvoice.reader import read_document
from connector.errors import Quarantine

FACTOR = FactorPayee(name="BPCE Factor", iban="FR14 2004 1010 0505 0001 3M02 606", legal_id="379160070",
                     vat_id="FR21379160070")
SAMPLES = [("ubl/examples/ubl-tc434-example1.xml", "393"), ("ubl/examples/ubl-tc434-creditnote1.xml", "396"),
           ("cii/examples/CII_example1.xml", "393")]


def _errors(reading) -> set[tuple[str, str]]:
    return {(f.rule, f.message) for f in reading.findings if f.level in ("error", "fatal")}


@pytest.mark.parametrize("path, code", SAMPLES)
def test_payee_written_read_back_and_still_valid(corpus, path, code):
    original = (corpus / "einvoice" / "en16931" / path).read_bytes()
    factored = write_payee(original, FACTOR, source=path)
    assert write_payee(factored, FACTOR) == factored  # applying twice changes nothing
    before = read_document(original, source=path, official=True)
    after = read_document(factored, source=path, official=True)
    invoice = after.invoice
    assert invoice.type_code == code and invoice.already_factored
    assert (invoice.payee.name, invoice.payee.legal_id, invoice.payee.legal_id_scheme) == \
        ("BPCE Factor", "379160070", "0002")
    assert invoice.payment.iban == "FR1420041010050500013M02606"
    assert invoice.amount_due == before.invoice.amount_due and invoice.number == before.invoice.number
    assert _errors(after) <= _errors(before), _errors(after) - _errors(before)


def test_ubl_payee_sits_before_payment_means_and_is_not_duplicated(corpus):
    original = (corpus / "einvoice" / "en16931" / "ubl/examples/ubl-tc434-example1.xml").read_bytes()
    root = etree.fromstring(write_payee(write_payee(original, FACTOR), FACTOR))
    names = [etree.QName(c).localname for c in root if isinstance(c.tag, str)]
    assert names.count("PayeeParty") == 1
    assert names.index("AccountingCustomerParty") < names.index("PayeeParty") < names.index("PaymentMeans")
    means = root.findall(f"{{{CAC}}}PaymentMeans")
    accounts = [m.findall(f"{{{CAC}}}PayeeFinancialAccount/{{{CBC}}}ID") for m in means]
    assert [[a.text for a in found] for found in accounts] == [["FR1420041010050500013M02606"]] * len(means)


def test_not_an_invoice_and_bad_iban_are_refused():
    with pytest.raises(Quarantine, match="not a UBL or CII"):
        write_payee(b"<Order/>", FACTOR)
    with pytest.raises(Quarantine, match="IBAN"):
        FactorPayee(name="X", iban="FR00 0000")
