"""Sample e-invoices rendered from the templates in ``mappings/samples/`` (shipped with the package).

Used by the demo stage and by tests: ``render(template, **values)`` fills a UBL, CII or ZUGFeRD 1
template; ``pdf_with_attachment`` wraps an XML in a one-page PDF under a given attachment name (a plain
PDF carrying the XML as an embedded file, enough to exercise the reader; not a PDF/A-3 certificate).
"""

from __future__ import annotations

import datetime as dt
import io
import string
from decimal import Decimal
from importlib import resources

TEMPLATES = {"ubl": "ubl-invoice.xml", "cii": "cii-invoice.xml", "zugferd1": "zugferd1-invoice.xml"}


def render(syntax: str, *, number: str, issue_date: dt.date, due_date: dt.date, currency: str, net: Decimal,
           buyer: dict[str, str], type_code: str = "380", payment_reference: str = "",
           vat_rate: Decimal = Decimal("0.20")) -> bytes:
    """A sample invoice of ``syntax`` with exact amounts (net, 20 % VAT, gross) in ``currency``."""
    from connector.money import Money

    tax = Money.of(net * vat_rate, currency, rounding="ROUND_HALF_UP").amount
    net_amount = Money.of(net, currency).amount
    template = (resources.files("mappings") / "samples" / TEMPLATES[syntax]).read_text(encoding="utf-8")
    values = {
        "number": number, "type_code": type_code, "currency": currency,
        "issue_date": issue_date.isoformat(), "issue_date_102": issue_date.strftime("%Y%m%d"),
        "due_date": due_date.isoformat(), "due_date_102": due_date.strftime("%Y%m%d"),
        "net": str(net_amount), "tax": str(tax), "gross": str(net_amount + tax),
        "payment_reference": payment_reference or number, "buyer_reference": buyer.get("reference", "PO-1"),
        "buyer_name": buyer["name"], "buyer_city": buyer.get("city", ""), "buyer_country": buyer["country"],
        "buyer_vat": buyer.get("vat_id", ""), "buyer_legal_id": buyer.get("legal_id", ""),
        "buyer_scheme": buyer.get("legal_id_scheme", "0002"),
    }
    return string.Template(template).substitute(values).encode("utf-8")


def pdf_with_attachment(xml: bytes, name: str = "factur-x.xml") -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment(name, xml)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
