"""The fast canonical JSON writers give exactly the text of the general path (json.dumps of to_jsonable).

The stored invoice data, the fingerprints and the audit hashes are all computed from these texts: a single
character of difference would make every stored invoice look changed, or break the audit chain.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from connector.model import (
    Address,
    FactorEvent,
    Invoice,
    InvoiceKind,
    Party,
    PaymentInstructions,
    Statement,
    StatementLine,
    canonical_json,
    canonical_text,
    invoice_texts,
    to_jsonable,
)
from connector.money import Money
from connector.store.audit import _row_material

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "einvoice"
AWKWARD = ["", "plain", 'quote " and \\ backslash', "tab\tnew\nline\r", "\x00\x01\x1f\x7f\x85\x9f", "é ü ß 中文 😀",
           "\ud800 lone surrogate", "\ufffe\uffff", "\u2028\u2029", "</script>"]


def general(value: object) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def invoices() -> list[Invoice]:
    from connector.einvoice.reader import read_document
    from connector.errors import Quarantine

    out = []
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".xml", ".pdf"):
            try:
                out.append(read_document(path.read_bytes(), source=path.name).invoice)
            except Quarantine:
                continue
    seller = Party(name="Seller SAS", country="FR", legal_id="732829320", legal_id_scheme="0002")
    base = Invoice(number="A-1", kind=InvoiceKind.INVOICE, type_code="380", issue_date=dt.date(2026, 1, 2),
                   currency="EUR", total_gross=Money.parse("12.50", "EUR"), amount_due=Money.parse("0", "EUR"),
                   seller=seller, buyer=Party(name="Buyer"))
    out.append(base)
    for index, text in enumerate(AWKWARD):
        out.append(dataclasses.replace(
            base, number=f"N{index}{text}", notes=(text, text), flags=("x", text), preceding_invoices=(text,),
            buyer=Party(name=text or None, vat_id=text or None, erp_id=text, ibans=(text,), address=Address(
                lines=(text, "b"), city=text, postal_code=None)),
            payee=Party(name=text), payment=PaymentInstructions(iban=text, reference=text), source=text,
            source_id=text, erp_status=text, content_hash=text, due_date=dt.date(2026, 2, 1), due_date_derived=True,
            total_net=Money.parse("-0.00", "EUR"), total_tax=Money(Decimal("1E+1"), "EUR"),
            prepaid=Money.parse("1000000.5", "EUR"), rounding=Money.parse("-0.01", "EUR")))
    out.append(dataclasses.replace(base, currency="JPY", total_gross=Money.parse("1500", "JPY"),
                                   amount_due=Money.parse("1500", "JPY"), kind="credit_note"))
    return out


@pytest.mark.parametrize("invoice", invoices(), ids=lambda i: i.number[:20])
def test_invoice_texts_are_the_general_json(invoice: Invoice) -> None:
    full, business = invoice_texts(invoice)
    assert full == general(invoice) == canonical_json(invoice)
    data = to_jsonable(invoice)
    for name in ("source", "source_id", "content_hash", "erp_status"):
        data.pop(name)
    assert business == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(full) == invoice.to_dict()


def test_undeclared_value_types_take_the_general_path() -> None:
    """Values of another type than declared (Decimal, str subclasses, lists, dicts, datetimes) still give the
    general text; a float is still refused."""

    class Label(str):
        pass

    invoice = invoices()[-2]
    odd = dataclasses.replace(invoice)
    for name, value in [("number", Label("N-1")), ("due_date", dt.datetime(2026, 1, 2, 3, 4)),
                        ("notes", ["a", Label("b")]), ("flags", ("x", Decimal("1.50"))), ("profile", 7),
                        ("syntax", True), ("order_reference", {"b": 1, "a": [None, "é"]}),
                        ("due_date_derived", 0), ("payee", None), ("payment", PaymentInstructions())]:
        object.__setattr__(odd, name, value)
        odd.__dict__.pop("_texts", None)
        assert invoice_texts(odd)[0] == general(odd), name
    object.__setattr__(odd, "profile", 1.5)
    odd.__dict__.pop("_texts", None)
    with pytest.raises(TypeError):
        invoice_texts(odd)


def test_other_model_objects() -> None:
    line = StatementLine(account="FR76", booking_date=dt.date(2026, 1, 1), amount=Money.parse("-1.00", "EUR"),
                         remittance="a\nb", references=("x", "y"), reversal=True, charges=None)
    values = [
        None, True, False, 0, -12, "x\x00", (), [], ("a",), Decimal("1.10"), dt.date(2026, 1, 1),
        InvoiceKind.CREDIT_NOTE, Money.parse("1.234", "TND"), line,
        Statement(account="FR76", currency="EUR", lines=(line, line), opening_balance=Money.zero("EUR")),
        FactorEvent(factor="f", event_id="1", kind="funding", occurred_on=dt.date(2026, 1, 1),
                    detail={"z": 1, "a": {"b": [Money.parse("1", "EUR")]}, "é": None}),
        {"b": Money.parse("1", "EUR"), "a": [dt.date(2026, 1, 1), InvoiceKind.INVOICE], 3: "x"},
        Party(name="x", address=Address(lines=("a",))), PaymentInstructions(bic="B"),
    ]
    for value in values:
        assert canonical_text(value) == general(value), value


@pytest.mark.parametrize("text", AWKWARD)
def test_audit_material_is_the_general_json(text: str) -> None:
    for entity in (None, text, "invoice:1"):
        for seq in (1, 10**12):
            args = ("0" * 64, seq, "2026-01-01T00:00:00Z", text or "system", "invoice.created", entity, text)
            assert _row_material(*args) == json.dumps(list(args), separators=(",", ":"), ensure_ascii=False)
