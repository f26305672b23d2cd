"""Tryton ERP (tested with trytond 8.2 + account_invoice) over its JSON-RPC API, as a Tryton client talks.

Reads: posted, paid and cancelled customer invoices (``account.invoice``, ``type = out``) of one company,
with their lines to pay (maturity dates), the customer's identifiers (``eu_vat``, ``fr_siren``,
``fr_siret``), invoice address and payment state. A Tryton credit note is an ``out`` invoice with a
negative total: it becomes a ``credit_note`` with positive amounts, crediting the invoices its lines
originate from. A cancelled invoice is a status change, never a new receivable.

Cursor: ``{"write_date": ISO datetime, "id": N}`` — keyset pagination ordered by ``(write_date, id)``;
a checkpoint after every page. Tryton stamps ``write_date`` when the writing transaction *starts*, so
each run starts ``overlap_seconds`` before the cursor: a record committed late is still seen, and a
record read twice is recognised by the store as unchanged.

Writes back (``record_payment``): runs Tryton's own "Pay invoice" wizard (``account.invoice.pay``) with
the configured payment method, which posts a payment move and reconciles it against the invoice's
receivable line when it settles the invoice, so Tryton shows it paid. The move's description is the
caller's reference, looked up before paying: a retry never pays twice.

Protocol facts: ``common.db.login`` with ``[login, {"password": ...}, lang]`` returns ``[user_id, session,
...]``; calls go to ``POST {url}/{database}/rpc/`` with ``Authorization: Session base64(login:id:session)``.
"""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from adapters.jsonrpc import JsonRpcClient, RpcFault, reveal
from connector.adapter import Adapter, Checkpoint, ReadStream, Rejected, StatusChange, status_from_amounts
from connector.config import Key
from connector.errors import ConfigError, Quarantine, StopAndAsk
from connector.model import Address, Invoice, InvoiceKind, Party, PaymentInstructions
from connector.money import Money

INVOICE_FIELDS = [
    "id", "number", "reference", "description", "invoice_date", "state", "write_date", "currency.code",
    "total_amount", "untaxed_amount", "tax_amount", "amount_to_pay",
    "party.name", "party.identifiers.type", "party.identifiers.code",
    "invoice_address.street", "invoice_address.postal_code", "invoice_address.city",
    "invoice_address.country.code", "lines_to_pay.maturity_date", "lines.origin",
]
IDENTIFIER_SCHEMES = {"fr_siren": "0002", "fr_siret": "0009"}


def party_from_tryton(party: dict[str, Any], address: dict[str, Any] | None, party_id: Any) -> Party:
    """A Tryton party (with ``identifiers.``) as a canonical Party (pure).

    >>> party_from_tryton({"name": "ACME", "identifiers.": [{"type": "fr_siren", "code": "552 100 554"},
    ...     {"type": "eu_vat", "code": "FR96552100554"}]}, None, 7).key
    '0002:552100554'
    """
    vat = legal = scheme = None
    for ident in party.get("identifiers.") or []:
        code = (ident.get("code") or "").replace(" ", "")
        if ident.get("type") == "eu_vat" and not vat:
            vat = code
        elif ident.get("type") in IDENTIFIER_SCHEMES and (scheme is None or ident["type"] == "fr_siren"):
            legal, scheme = code, IDENTIFIER_SCHEMES[ident["type"]]
    addr = None
    country = None
    if address:
        country = (address.get("country.") or {}).get("code")
        street = address.get("street")
        addr = Address(lines=tuple(s for s in (street or "").splitlines() if s.strip()), city=address.get("city"),
                       postal_code=address.get("postal_code"), country=country)
    if country is None and vat and vat[:2].isalpha():
        country = vat[:2]
    return Party(name=party.get("name"), country=country, vat_id=vat, legal_id=legal, legal_id_scheme=scheme,
                 address=addr, erp_id=None if party_id is None else str(party_id))


def invoice_from_tryton(row: dict[str, Any], *, seller: Party, source: str,
                        credited_numbers: tuple[str, ...] = ()) -> Invoice:
    """One ``account.invoice`` record (read with :data:`INVOICE_FIELDS`) as an Invoice (pure)."""
    if not row.get("number"):
        raise Quarantine("posted invoice without a number", field="number", rule="tryton.number")
    currency = (row.get("currency.") or {}).get("code")
    if not currency:
        raise Quarantine("invoice without a currency", field="currency", rule="tryton.currency")
    total = _money(row.get("total_amount"), currency, "total_amount")
    kind = InvoiceKind.CREDIT_NOTE if total.is_negative() else InvoiceKind.INVOICE
    to_pay = _money(row.get("amount_to_pay") or Decimal(0), currency, "amount_to_pay")
    maturities = sorted(line["maturity_date"] for line in row.get("lines_to_pay.") or [] if line.get("maturity_date"))
    status = status_from_amounts(total, to_pay, state=row.get("state") or "posted")
    if row.get("state") == "paid":
        to_pay = Money.zero(currency)
    issue = row.get("invoice_date")
    if not isinstance(issue, dt.date):
        raise Quarantine("invoice without an invoice date", field="invoice_date", rule="tryton.date")
    return Invoice(
        number=row["number"], kind=kind, type_code="381" if kind is InvoiceKind.CREDIT_NOTE else "380",
        issue_date=issue, currency=currency, total_gross=abs(total), amount_due=abs(to_pay), seller=seller,
        buyer=party_from_tryton(row.get("party.") or {}, row.get("invoice_address."), row.get("party")),
        source=source, source_id=str(row["id"]), due_date=maturities[0] if maturities else None,
        total_net=abs(_money(row.get("untaxed_amount"), currency, "untaxed_amount")),
        total_tax=abs(_money(row.get("tax_amount"), currency, "tax_amount")),
        payment=PaymentInstructions(reference=row.get("number")),
        preceding_invoices=credited_numbers, buyer_reference=row.get("reference") or None,
        erp_status=status, flags=("instalments",) if len(maturities) > 1 else (),
    )


def _money(value: Any, currency: str, field: str) -> Money:
    if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
        raise Quarantine(f"{value!r} is not an exact amount", field=field, rule="tryton.amount")
    try:
        return Money.of(value, currency)
    except ValueError as exc:
        raise Quarantine(str(exc), field=field, rule="tryton.amount") from None


class TrytonAdapter(Adapter):
    """A Tryton server's customer invoices, incrementally by write date; see the module docstring."""

    type_name = "tryton"
    supports_write_back = True
    stable_locations = True
    config_keys: ClassVar[dict[str, Key]] = {
        "url": Key("str", required=True, help="Tryton server root, e.g. http://127.0.0.1:8000"),
        "database": Key("str", required=True, help="Tryton database name"),
        "login": Key("str", required=True, help="Tryton user (read access to invoices; pay for write-back)"),
        "password": Key("secret", required=True, help="that user's password"),
        "company": Key("int", help="company id (default: the user's current company)"),
        "payment_method": Key("str", help="name of the invoice payment method used to write payments back"),
        "page_size": Key("int", 200, help="invoices per request and per committed batch"),
        "overlap_seconds": Key("int", 60, help="re-read window before the cursor (late commits)"),
        "timeout": Key("int", 60, help="seconds to wait for an answer"),
    }

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.url = str(self.option("url", required=True)).rstrip("/")
        self.database = self.option("database", required=True)
        self.login_name = self.option("login", required=True)
        self.page_size = int(self.option("page_size", 200))
        self.overlap = dt.timedelta(seconds=int(self.option("overlap_seconds", 60)))
        self.client = JsonRpcClient(f"{self.url}/{self.database}/rpc/",
                                    timeout=(5.0, float(self.option("timeout", 60))))
        self._session: str | None = None
        self._company: int | None = None

    # -- transport ---------------------------------------------------------------------------------
    def _login(self) -> None:
        password = reveal(self.option("password", required=True), f"sources.{self.name}.password")
        self.client.headers.pop("Authorization", None)
        answer = self.client.post({"method": "common.db.login",
                                   "params": [self.login_name, {"password": password}, "en"]})
        if "error" in answer or not answer.get("result"):
            raise ConfigError(f"Tryton refused the login of {self.login_name!r}: {_error_text(answer)}",
                              key=f"sources.{self.name}.login")
        user_id, session = answer["result"][:2]
        token = base64.b64encode(f"{self.login_name}:{user_id}:{session}".encode()).decode()
        self.client.headers["Authorization"] = f"Session {token}"
        self._session = session

    def call(self, method: str, *params: Any) -> Any:
        if self._session is None:
            self._login()
        answer = self.client.post({"method": method, "params": list(params)})
        if answer.get("error"):
            kind = answer["error"][0] if isinstance(answer["error"], list) else "error"
            if kind in ("LoginException", "RateLimitException"):
                raise ConfigError(f"Tryton: {_error_text(answer)}", key=f"sources.{self.name}.login")
            raise RpcFault(str(kind), _error_text(answer))
        return answer.get("result")

    def context(self) -> dict[str, Any]:
        return {"company": self.company_id(), "language": "en"}

    def company_id(self) -> int:
        if self._company is None:
            configured = self.option("company")
            if configured is not None:
                self._company = int(configured)
            else:
                prefs = self.call("model.res.user.get_preferences", True, {})
                if not prefs.get("company"):
                    raise ConfigError("the Tryton user has no current company; set company",
                                      key=f"sources.{self.name}.company")
                self._company = int(prefs["company"])
        return self._company

    # -- contract --------------------------------------------------------------------------------
    def check(self) -> str:
        company = self.call("model.company.company.read", [self.company_id()], ["rec_name", "currency.code"],
                            self.context())
        if not company:
            raise ConfigError(f"company {self.company_id()} not found", key=f"sources.{self.name}.company")
        count = self.call("model.account.invoice.search_count", [("type", "=", "out")], None, None, self.context())
        return (f"Tryton {self.url}/{self.database}: company {company[0]['rec_name']}, "
                f"{count} customer invoices readable")

    def discover(self) -> dict[str, Any]:
        ctx = self.context()
        companies = self.call("model.company.company.search_read", [], 0, None, None, ["rec_name", "currency.code"],
                              ctx)
        journals = self.call("model.account.journal.search_read", [], 0, None, None, ["name", "type"], ctx)
        methods = self.call("model.account.invoice.payment.method.search_read", [], 0, None, None, ["name"], ctx)
        currencies = self.call("model.currency.currency.search_read", [], 0, None, None, ["code"], ctx)
        return {"streams": [{"name": "invoices", "model": "account.invoice", "primary_key": ["id"],
                             "cursor": ["write_date", "id"]}],
                "currencies": sorted(c["code"] for c in currencies),
                "companies": [{"id": c["id"], "name": c["rec_name"], "currency": (c.get("currency.") or {}).get("code")}
                              for c in companies],
                "journals": [{"id": j["id"], "name": j["name"], "type": j["type"]} for j in journals],
                "payment_methods": [m["name"] for m in methods]}

    def seller(self) -> Party:
        company = self.call("model.company.company.read", [self.company_id()],
                            ["party", "party.name", "party.identifiers.type", "party.identifiers.code",
                             "party.addresses.country.code"], self.context())[0]
        party = company.get("party.") or {}
        addresses = party.get("addresses.") or []
        return party_from_tryton(party, addresses[0] if addresses else None, None)

    def read(self, cursor: Any) -> ReadStream:
        seller = self.seller()
        ctx = self.context()
        after_date = _parse_dt(cursor["write_date"]) - self.overlap if cursor and cursor.get("write_date") else None
        after_id = 0
        base = [("company", "=", self.company_id()), ("type", "=", "out"),
                ("state", "in", ["posted", "paid", "cancelled"])]
        last = cursor
        while True:
            domain = list(base)
            if after_date is not None:
                domain.append(["OR", ("write_date", ">", after_date),
                               [("write_date", "=", after_date), ("id", ">", after_id)]])
            rows = self.call("model.account.invoice.search_read", domain, 0, self.page_size,
                             [["write_date", "ASC"], ["id", "ASC"]], INVOICE_FIELDS, ctx)
            credited = self._credited_numbers(rows, ctx)
            for row in rows:
                location = f"{self.name}:{row['id']}"
                if row.get("state") == "cancelled":
                    yield StatusChange(str(row["id"]), "cancelled", {"number": row.get("number")})
                    continue
                try:
                    yield invoice_from_tryton(row, seller=seller, source=self.name,
                                              credited_numbers=credited.get(row["id"], ()))
                except Quarantine as exc:
                    yield Rejected(location, exc.located(f"tryton account.invoice,{row['id']} "
                                                         f"({row.get('number')})"))
                except ValueError as exc:
                    yield Rejected(location, Quarantine(str(exc), source=f"tryton account.invoice,{row['id']}",
                                                        rule="tryton.model"))
            if rows:
                after_date, after_id = rows[-1]["write_date"], rows[-1]["id"]
                last = {"write_date": after_date.isoformat(), "id": after_id}
                yield Checkpoint(last)
            if len(rows) < self.page_size:
                return last

    def _credited_numbers(self, rows: list[dict[str, Any]], ctx: dict[str, Any]) -> dict[int, tuple[str, ...]]:
        """Credit note id -> numbers of the invoices its lines originate from (one call per page)."""
        origins: dict[int, list[int]] = {}
        for row in rows:
            if isinstance(row.get("total_amount"), Decimal) and row["total_amount"] < 0:
                for line in row.get("lines.") or []:
                    origin = line.get("origin") or ""
                    if origin.startswith("account.invoice.line,"):
                        origins.setdefault(row["id"], []).append(int(origin.split(",")[1]))
        wanted = sorted({i for ids in origins.values() for i in ids})
        if not wanted:
            return {}
        lines = self.call("model.account.invoice.line.read", wanted, ["invoice.number"], ctx)
        number_of = {line["id"]: (line.get("invoice.") or {}).get("number") for line in lines}
        return {cid: tuple(sorted({number_of[i] for i in ids if number_of.get(i)})) for cid, ids in origins.items()}

    # -- write-back ------------------------------------------------------------------------------
    def record_payment(self, *, source_id: str, amount: Money, date: dt.date, reference: str) -> str:
        """Pay invoice ``source_id`` in Tryton with its "Pay invoice" wizard; idempotent by ``reference``."""
        method_name = self.option("payment_method")
        if not method_name:
            raise ConfigError("set payment_method to write payments back", key=f"sources.{self.name}.payment_method")
        self._login()  # the pay wizard wants a fresh session
        ctx = self.context()
        invoice_id = int(source_id)
        existing = self.find_payment(invoice_id, reference)
        if existing is not None:
            return existing
        invoice = self.call("model.account.invoice.read", [invoice_id], ["state", "currency.code", "amount_to_pay"],
                            ctx)
        if not invoice:
            raise StopAndAsk(f"Tryton invoice {invoice_id} does not exist")
        if (invoice[0].get("currency.") or {}).get("code") != amount.currency:
            raise StopAndAsk(f"Tryton invoice {invoice_id} is not in {amount.currency}")
        if invoice[0]["state"] != "posted":
            raise StopAndAsk(f"Tryton invoice {invoice_id} is {invoice[0]['state']}, not posted: cannot pay it")
        methods = self.call("model.account.invoice.payment.method.search", [("name", "=", method_name)], 0, 1,
                            None, ctx)
        if not methods:
            raise ConfigError(f"no payment method named {method_name!r}", key=f"sources.{self.name}.payment_method")
        wizard_ctx = {**ctx, "active_model": "account.invoice", "active_id": invoice_id, "active_ids": [invoice_id]}
        session_id, start_state, _end = self.call("wizard.account.invoice.pay.create", wizard_ctx)
        try:
            view = self.call("wizard.account.invoice.pay.execute", session_id, {}, start_state, wizard_ctx)
            start = _form(view["view"]["defaults"])
            start.update({"amount": amount.amount, "date": date, "description": reference,
                          "payment_method": methods[0]})
            answer = self.call("wizard.account.invoice.pay.execute", session_id, {"start": start}, "choice",
                               wizard_ctx)
            if "view" in (answer or {}):  # the "ask" step: a partial payment, kept open on the invoice
                ask = _form(answer["view"]["defaults"])
                ask["type"] = "partial"
                self.call("wizard.account.invoice.pay.execute", session_id, {"start": start, "ask": ask}, "pay",
                          wizard_ctx)
        finally:
            self.call("wizard.account.invoice.pay.delete", session_id, wizard_ctx)
        created = self.find_payment(invoice_id, reference)
        if created is None:
            raise StopAndAsk(f"Tryton accepted the payment of invoice {invoice_id} but no move {reference!r} exists")
        return created

    def find_payment(self, invoice_id: int, reference: str) -> str | None:
        """The id of the payment move already created for ``reference`` on this invoice, if any."""
        found = self.call("model.account.move.search",
                          [("origin", "=", f"account.invoice,{invoice_id}"), ("description", "=", reference)],
                          0, 1, None, self.context())
        return str(found[0]) if found else None

    def close(self) -> None:
        self.client.close()


def _form(defaults: dict[str, Any]) -> dict[str, Any]:
    """A wizard form's default values without the ``field.`` display companions Tryton adds."""
    return {key: value for key, value in defaults.items() if "." not in key}


def _parse_dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _error_text(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    if isinstance(error, list) and len(error) > 1:
        detail = error[1]
        if isinstance(detail, list) and detail:
            return str(detail[0])
        return str(detail)
    return str(error or "no result")
