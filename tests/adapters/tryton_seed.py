"""Seed a Tryton template database the way a user would, with proteus (run as a subprocess).

Usage: ``python tryton_seed.py CONFIG DBNAME`` after ``trytond-admin`` created and activated
``account_invoice`` in DBNAME. It creates the company Cessio Demo SAS (SIREN 732829320), its chart of
accounts, a fiscal year around today with invoice sequences, a 20 % VAT, a service product, payment
terms (30 days; two instalments), a "Bank" invoice payment method, and two customers with their
identifiers and addresses. Tests copy the resulting SQLite file; nothing here runs inside pytest.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal


def seed(config_file: str, database: str) -> None:
    from proteus import Model
    from proteus import config as proteus_config

    cfg = proteus_config.set_trytond(database, config_file=config_file)
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, create_tax, get_accounts
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences
    from trytond.modules.company.tests.tools import create_company, get_company
    from trytond.modules.currency.tests.tools import get_currency

    Party = Model.get("party.party")
    Country = Model.get("country.country")
    france = Country(name="France", code="FR", code3="FRA")
    france.save()
    belgium = Country(name="Belgium", code="BE", code3="BEL")
    belgium.save()

    company_party = Party(name="Cessio Demo SAS")
    siren = company_party.identifiers.new()
    siren.type = "fr_siren"
    siren.code = "732829320"
    vat = company_party.identifiers.new()
    vat.type = "eu_vat"
    vat.code = "FR44732829320"
    company_party.save()
    create_company(party=company_party, currency=get_currency("EUR"))
    cfg = proteus_config.get_config()
    company = get_company()
    create_chart(company)
    today = dt.date.today()
    fiscalyear = set_fiscalyear_invoice_sequences(
        create_fiscalyear(company, today=(today - dt.timedelta(days=400), today + dt.timedelta(days=400))))
    fiscalyear.click("create_period")
    accounts = get_accounts(company)

    tax = create_tax(Decimal("0.20"))
    tax.save()
    Category = Model.get("product.category")
    category = Category(name="Services", accounting=True)
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.customer_taxes.append(tax)
    category.save()
    Uom = Model.get("product.uom")
    unit, = Uom.find([("name", "=", "Unit")])
    Template = Model.get("product.template")
    template = Template(name="Consulting day", default_uom=unit, type="service", list_price=Decimal("500"))
    template.account_category = category
    template.save()

    Term = Model.get("account.invoice.payment_term")
    term30 = Term(name="30 days")
    line = term30.lines.new(type="remainder")
    line.relativedeltas.new(days=30)
    term30.save()
    split = Term(name="30/60 days")
    line = split.lines.new(type="percent", ratio=Decimal("0.5"))
    delta, = line.relativedeltas
    delta.days = 30
    line = split.lines.new(type="remainder")
    line.relativedeltas.new(days=60)
    split.save()

    Journal = Model.get("account.journal")
    cash_journal, = Journal.find([("type", "=", "cash")])
    Method = Model.get("account.invoice.payment.method")
    method = Method(name="Bank", journal=cash_journal, credit_account=accounts["cash"],
                    debit_account=accounts["cash"])
    method.save()

    for name, siren_code, street, postal, city, country in (
            ("ACME Industrie SA", "552100554", "12 rue de la Paix", "75002", "Paris", france),
            ("Brasserie du Nord SARL", "542051180", "3 quai de Lille", "59000", "Lille", france)):
        party = Party(name=name)
        ident = party.identifiers.new()
        ident.type = "fr_siren"
        ident.code = siren_code
        ident = party.identifiers.new()
        ident.type = "eu_vat"
        from stdnum.fr import siren as siren_module

        ident.code = "FR" + siren_module.to_tva(siren_code)
        address, = party.addresses
        address.street = street
        address.postal_code = postal
        address.city = city
        address.country = country
        party.save()
    del cfg


_CONFIGURED: dict[str, str] = {}
ANSWER = "@@cessio-operate@@ "  # prefix of the answer lines of "serve" (trytond may print other lines)


def operate(config_file: str, database: str, operations: list[dict]) -> list[dict]:
    """Do what a Tryton user would: create and post invoices, credit them, register payments.

    Each operation is ``{"op": "invoice", "party": NAME, "term": NAME, "lines": [[qty, "price"], ...],
    "date": ISO, "count": N}``, ``{"op": "credit", "number": N}`` (a posted credit note of the whole
    invoice) or ``{"op": "pay", "number": N, "amount": "..."}``. Returns what was created.
    """
    from proteus import Model, Wizard
    from proteus import config as proteus_config

    if _CONFIGURED.get("database") != database:
        proteus_config.set_trytond(database, config_file=config_file)
        _CONFIGURED["database"] = database
    Invoice = Model.get("account.invoice")
    Party = Model.get("party.party")
    Product = Model.get("product.product")
    Term = Model.get("account.invoice.payment_term")
    Method = Model.get("account.invoice.payment.method")
    product, = Product.find([])
    out: list[dict] = []
    for op in operations:
        if op["op"] == "invoice":
            party, = Party.find([("name", "=", op["party"])])
            term, = Term.find([("name", "=", op.get("term", "30 days"))])
            invoice = Invoice(type="out", party=party, payment_term=term,
                              invoice_date=dt.date.fromisoformat(op["date"]) if op.get("date") else dt.date.today())
            for quantity, price in op["lines"]:
                line = invoice.lines.new()
                line.product = product
                line.quantity = quantity
                line.unit_price = Decimal(price)
            invoice.save()
            invoices = [invoice]
            if int(op.get("count", 1)) > 1:  # more of the same: Tryton's own "Duplicate", done on the server
                invoices += Invoice.duplicate([invoice] * (int(op["count"]) - 1),
                                              default={"invoice_date": invoice.invoice_date})
            for start in range(0, len(invoices), 100):  # posted 100 at a time: one transaction each
                Invoice.click(invoices[start:start + 100], "post")
            out += [{"id": i.id, "number": i.number, "total": str(i.total_amount)} for i in invoices]
        elif op["op"] == "credit":
            invoice, = Invoice.find([("number", "=", op["number"]), ("type", "=", "out")])
            credit = Wizard("account.invoice.credit", [invoice])
            credit.form.with_refund = False
            credit.execute("credit")
            note, = Invoice.find([("type", "=", "out"), ("total_amount", "<", 0), ("state", "=", "draft")])
            note.invoice_date = invoice.invoice_date
            note.save()
            note.click("post")
            out.append({"id": note.id, "number": note.number, "total": str(note.total_amount)})
        elif op["op"] == "pay":
            invoice, = Invoice.find([("number", "=", op["number"]), ("type", "=", "out")])
            method, = Method.find([("name", "=", "Bank")])
            partial = Decimal(op["amount"]) < invoice.amount_to_pay
            pay = Wizard("account.invoice.pay", [invoice])
            pay.form.amount = Decimal(op["amount"])
            pay.form.payment_method = method
            pay.form.description = op.get("description", "paid by the debtor")
            pay.execute("choice")
            if partial:  # the wizard asks what to do with the rest: keep it open
                pay.form.type = "partial"
                pay.execute("pay")
            invoice.reload()
            out.append({"id": invoice.id, "number": invoice.number, "state": invoice.state})
        elif op["op"] == "party":  # a customer as a user creates one: name, SIREN and VAT, one address
            party = Party(name=op["name"])
            for kind, code in (("fr_siren", op["siren"]), ("eu_vat", op["vat"])):
                ident = party.identifiers.new()
                ident.type = kind
                ident.code = code
            address, = party.addresses
            address.street, address.postal_code, address.city = op["street"], op["postal_code"], op["city"]
            address.country, = Model.get("country.country").find([("code", "=", "FR")])
            party.save()
            out.append({"id": party.id, "name": party.name})
        elif op["op"] == "move_party":  # the customer moved: its address edited in the party form
            party, = Party.find([("name", "=", op["name"])])
            party.addresses[0].city = op["city"]
            party.addresses[0].postal_code = op["postal_code"]
            party.save()
            out.append({"id": party.id})
        elif op["op"] == "party_vat":  # a corrected VAT id, written on the identifier record alone
            Identifier = Model.get("party.identifier")
            ident, = Identifier.find([("party.name", "=", op["name"]), ("type", "=", "eu_vat")])
            ident.code = op["vat"]
            ident.save()
            out.append({"id": ident.id})
        elif op["op"] == "writeoff_method":
            WriteOff = Model.get("account.move.reconcile.write_off")
            found = WriteOff.find([("name", "=", op["name"])])
            if not found:
                from trytond.modules.account.tests.tools import get_accounts

                Journal = Model.get("account.journal")
                journal = Journal(name="Write-Off", type="write-off")
                journal.save()
                expense = get_accounts()["expense"]
                found = [WriteOff(name=op["name"], journal=journal, credit_account=expense, debit_account=expense)]
                found[0].save()
            out.append({"id": found[0].id, "name": op["name"]})
    return out


def serve(config_file: str, database: str) -> None:
    """Answer one JSON list of operations per stdin line with one ``ANSWER`` line, loading trytond once
    (a test session pays the start-up of proteus once instead of once per operation)."""
    import json
    import traceback

    for request in sys.stdin:
        try:
            answer = {"result": operate(config_file, database, json.loads(request))}
        except Exception:  # reported to the test, which raises it
            answer = {"error": traceback.format_exc()[-3000:]}
        sys.stdout.write(ANSWER + json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "operate":
        import json

        print(json.dumps(operate(sys.argv[2], sys.argv[3], json.load(sys.stdin))))
    else:
        seed(sys.argv[1], sys.argv[2])
