"""Odoo (16/17) customer invoices over the documented external JSON-RPC API (``/jsonrpc``, ``execute_kw``).

Reads: ``account.move`` with ``move_type`` ``out_invoice`` / ``out_refund`` in state ``posted`` (and
``cancel``, reported as a status change) of the configured company: amounts, ``invoice_date_due``,
``payment_state`` (not_paid, partial, in_payment, paid, reversed) and the partner's ``vat`` and
``company_registry`` (a 9-digit SIREN or a 14-digit SIRET), country and address. A refund names the
invoice it reverses (``reversed_entry_id``).

Odoo sends amounts as JSON numbers: they are decoded straight to Decimal (never a float) and rounded to
the currency's minor unit, which is how Odoo itself rounds monetary fields.

Cursor: ``{"write_date": "YYYY-MM-DD HH:MM:SS", "id": N}``, keyset pagination ordered by
``write_date, id``, one checkpoint per page, each run starting ``overlap_seconds`` before the cursor.

Writes back (``record_payment``): the "Register Payment" wizard (``account.payment.register`` create +
``action_create_payments``) on the configured bank journal, with the caller's reference as the payment's
``ref``, looked up first so that a retry never pays twice.

Writes off (``record_writeoff``): a journal entry on the configured miscellaneous journal (the write-off
account debited, the receivable credited, the caller's reference as its ``ref``, looked up first), posted and
reconciled with the invoice's receivable line, so Odoo shows the invoice paid. Reverses
(``reverse_writeback``): a payment written back earlier is reset to draft and cancelled (Odoo unreconciles
it), a write-off entry likewise (``button_draft`` + ``button_cancel``); the state is read first, so a retry
finds it cancelled and does nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial
from typing import Any, ClassVar

from adapters.jsonrpc import ErpAdapter, JsonRpcClient, RpcFault, reveal
from connector.adapter import Checkpoint, ReadStream, StatusChange
from connector.config import Key
from connector.errors import ConfigError, Quarantine, RetryLater, StopAndAsk
from connector.model import Address, Invoice, InvoiceKind, Party, PaymentInstructions
from connector.money import Money

MOVE_FIELDS = ["name", "move_type", "state", "payment_state", "invoice_date", "invoice_date_due", "currency_id",
               "amount_untaxed", "amount_tax", "amount_total", "amount_residual", "partner_id", "company_id",
               "write_date", "reversed_entry_id", "ref", "payment_reference"]
PARTNER_FIELDS = ["name", "vat", "company_registry", "country_id", "street", "street2", "zip", "city"]
PAYMENT_STATES = {"not_paid": "open", "partial": "partially_paid", "in_payment": "paid", "paid": "paid",
                  "reversed": "credited"}


def _m2o(value: Any) -> tuple[int, str] | None:
    """Odoo's many2one value ``[id, "display name"]`` (or ``false``)."""
    return (int(value[0]), str(value[1])) if isinstance(value, list) and value else None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def partner_from_odoo(partner: dict[str, Any]) -> Party:
    """A ``res.partner`` record as a canonical Party (pure).

    >>> partner_from_odoo({"id": 7, "name": "ACME", "vat": "FR96552100554", "company_registry": "552 100 554",
    ...                    "country_id": [75, "France"]}).key
    '0002:552100554'
    """
    registry = (_text(partner.get("company_registry")) or "").replace(" ", "")
    legal, scheme = None, None
    if registry.isdigit() and len(registry) in (9, 14):
        legal, scheme = registry, "0002" if len(registry) == 9 else "0009"
    country = _m2o(partner.get("country_id"))
    vat = _text(partner.get("vat"))
    country_code = partner.get("country_code") or (vat[:2] if vat and vat[:2].isalpha() else None)
    if country_code is None and country is not None:
        country_code = country[1]
    lines = tuple(x for x in (_text(partner.get("street")), _text(partner.get("street2"))) if x)
    return Party(name=_text(partner.get("name")), country=country_code, vat_id=vat, legal_id=legal,
                 legal_id_scheme=scheme, erp_id=str(partner["id"]) if partner.get("id") else None,
                 address=Address(lines=lines, city=_text(partner.get("city")), postal_code=_text(partner.get("zip")),
                                 country=country_code))


def _money(value: Any, currency: str, field: str) -> Money:
    if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
        raise Quarantine(f"{value!r} is not an amount", field=field, rule="odoo.amount")
    return Money.of(value, currency, rounding=ROUND_HALF_EVEN)


def _date(value: Any, field: str, *, required: bool = False) -> dt.date | None:
    if not value:
        if required:
            raise Quarantine("date is empty", field=field, rule="odoo.date")
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Quarantine(f"{value!r} is not a date", field=field, rule="odoo.date") from None


def invoice_from_odoo(move: dict[str, Any], partner: dict[str, Any], *, seller: Party, source: str) -> Invoice:
    """One ``account.move`` (read with :data:`MOVE_FIELDS`) and its partner as an Invoice (pure)."""
    currency = _m2o(move.get("currency_id"))
    if currency is None:
        raise Quarantine("no currency", field="currency_id", rule="odoo.currency")
    code = currency[1]
    kind = InvoiceKind.CREDIT_NOTE if move.get("move_type") == "out_refund" else InvoiceKind.INVOICE
    total = abs(_money(move.get("amount_total"), code, "amount_total"))
    residual = abs(_money(move.get("amount_residual"), code, "amount_residual"))
    status = PAYMENT_STATES.get(move.get("payment_state") or "not_paid")
    if status is None:
        raise Quarantine(f"unknown payment_state {move.get('payment_state')!r}", field="payment_state",
                         rule="odoo.payment_state")
    reversed_entry = _m2o(move.get("reversed_entry_id"))
    name = _text(move.get("name"))
    if not name or name == "/":
        raise Quarantine("posted move without a number", field="name", rule="odoo.name")
    return Invoice(
        number=name, kind=kind, type_code="381" if kind is InvoiceKind.CREDIT_NOTE else "380",
        issue_date=_date(move.get("invoice_date"), "invoice_date", required=True), currency=code,
        total_gross=total, amount_due=residual, seller=seller, buyer=partner_from_odoo(partner), source=source,
        source_id=str(move["id"]), due_date=_date(move.get("invoice_date_due"), "invoice_date_due"),
        total_net=abs(_money(move.get("amount_untaxed"), code, "amount_untaxed")),
        total_tax=abs(_money(move.get("amount_tax"), code, "amount_tax")),
        payment=PaymentInstructions(reference=_text(move.get("payment_reference"))),
        preceding_invoices=(reversed_entry[1].split(" ")[0],) if reversed_entry else (),
        buyer_reference=_text(move.get("ref")), erp_status="credited" if status == "credited" else status,
    )


class OdooAdapter(ErpAdapter):
    """An Odoo database's customer invoices, incrementally by ``write_date``; see the module docstring."""

    type_name = "odoo"
    invoice_model = "account.move"
    config_keys: ClassVar[dict[str, Key]] = {
        "url": Key("str", required=True, help="Odoo root, e.g. https://erp.example.com"),
        "database": Key("str", required=True, help="Odoo database name"),
        "login": Key("str", required=True, help="Odoo user login"),
        "api_key": Key("secret", required=True, help="that user's API key (Preferences > Account Security)"),
        "company": Key("int", help="res.company id (default: the user's company)"),
        "payment_journal": Key("str", help="code of the bank journal payments are registered on (write-back)"),
        "writeoff_journal": Key("str", "MISC", help="code of the journal write-off entries are posted in"),
        "writeoff_account": Key("str", help="code of the account fees and discounts are written off to"),
        "page_size": Key("int", 200, help="moves per request and per committed batch"),
        "overlap_seconds": Key("int", 60, help="re-read window before the cursor (late commits)"),
        "timeout": Key("int", 60, help="seconds to wait for an answer"),
    }

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self._uid: int | None = None
        self._key: str | None = None

    def connect(self, *, timeout: tuple[float, float]) -> JsonRpcClient:
        return OdooClient(f"{self.url}/jsonrpc", timeout=timeout)

    def _auth(self) -> tuple[int, str]:
        if self._uid is None:
            key = reveal(self.option("api_key", required=True), f"sources.{self.name}.api_key")
            uid = self._call("common", "authenticate", [self.database, self.login_name, key, {}])
            if not uid:
                raise ConfigError(f"Odoo refused the login {self.login_name!r}", key=f"sources.{self.name}.login")
            self._uid, self._key = int(uid), key
        return self._uid, self._key  # type: ignore[return-value]

    def _call(self, service: str, method: str, args: list[Any]) -> Any:
        answer = self.client.post({"jsonrpc": "2.0", "method": "call",
                                   "params": {"service": service, "method": method, "args": args}})
        if answer.get("error"):
            error = answer["error"]
            data = error.get("data") or {}
            kind = str(data.get("name") or error.get("message") or "error")
            message = str(data.get("message") or error.get("message"))
            if "AccessDenied" in kind or "AccessError" in kind:
                raise ConfigError(f"Odoo: {message}", key=f"sources.{self.name}.login")
            raise RpcFault(kind, message)
        return answer.get("result")

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        uid, key = self._auth()
        return self._call("object", "execute_kw", [self.database, uid, key, model, method, args, kwargs or {}])

    def user_company(self) -> int:
        uid, _ = self._auth()
        user = self.execute("res.users", "read", [[uid]], {"fields": ["company_id"]})
        return _m2o(user[0]["company_id"])[0]

    def check(self) -> str:
        version = self._call("common", "version", [])
        count = self.execute("account.move", "search_count",
                             [[["move_type", "in", ["out_invoice", "out_refund"]],
                               ["company_id", "=", self.company_id()]]])
        return f"Odoo {version.get('server_version', '?')} {self.url}/{self.database}: {count} customer moves readable"

    def discover(self) -> dict[str, Any]:
        companies = self.execute("res.company", "search_read", [[]], {"fields": ["name", "currency_id"]})
        journals = self.execute("account.journal", "search_read", [[["type", "in", ["bank", "cash"]]]],
                                {"fields": ["name", "code", "type"]})
        currencies = self.execute("res.currency", "search_read", [[["active", "=", True]]], {"fields": ["name"]})
        return {"streams": [{"name": "invoices", "model": "account.move", "primary_key": ["id"],
                             "cursor": ["write_date", "id"]}],
                "currencies": sorted(c["name"] for c in currencies),
                "companies": [{"id": c["id"], "name": c["name"], "currency": (_m2o(c["currency_id"]) or (0, ""))[1]}
                              for c in companies],
                "journals": [{"code": j["code"], "name": j["name"], "type": j["type"]} for j in journals]}

    def seller(self) -> Party:
        company = self.execute("res.company", "read", [[self.company_id()]], {"fields": ["partner_id"]})[0]
        partner = self.execute("res.partner", "read", [[_m2o(company["partner_id"])[0]]],
                               {"fields": PARTNER_FIELDS})[0]
        return partner_from_odoo(partner)

    def read(self, cursor: Any) -> ReadStream:
        seller = self.seller()
        after_date = after_id = None
        if cursor and cursor.get("write_date"):
            start = dt.datetime.fromisoformat(cursor["write_date"]) - self.overlap
            after_date, after_id = start.strftime("%Y-%m-%d %H:%M:%S"), 0
        base = [["move_type", "in", ["out_invoice", "out_refund"]], ["state", "in", ["posted", "cancel"]],
                ["company_id", "=", self.company_id()]]
        last = cursor
        while True:
            domain = list(base)
            if after_date is not None:
                domain += ["|", ["write_date", ">", after_date], "&", ["write_date", "=", after_date],
                           ["id", ">", after_id]]
            moves = self.execute("account.move", "search_read", [domain],
                                 {"fields": MOVE_FIELDS, "order": "write_date asc, id asc", "limit": self.page_size})
            partner_ids = sorted({p[0] for p in (_m2o(m.get("partner_id")) for m in moves) if p})
            partners = {p["id"]: p for p in self.execute("res.partner", "read", [partner_ids],
                                                         {"fields": PARTNER_FIELDS})} if partner_ids else {}
            for move in moves:
                if move.get("state") == "cancel":
                    yield StatusChange(str(move["id"]), "cancelled", {"number": move.get("name")})
                    continue
                partner = partners.get((_m2o(move.get("partner_id")) or (0, ""))[0], {})
                yield self.mapped(move["id"], move.get("name"),
                                  partial(invoice_from_odoo, move, partner, seller=seller, source=self.name))
            if moves:
                after_date, after_id = moves[-1]["write_date"], moves[-1]["id"]
                last = {"write_date": after_date, "id": after_id}
                yield Checkpoint(last)
            if len(moves) < self.page_size:
                return last

    # -- write-back ------------------------------------------------------------------------------
    def find_payment(self, reference: str) -> str | None:
        found = self.execute("account.payment", "search", [[["ref", "=", reference]]], {"limit": 1})
        return str(found[0]) if found else None

    def record_payment(self, *, source_id: str, amount: Money, date: dt.date, reference: str) -> str:
        """Register a payment on invoice ``source_id`` with Odoo's wizard; idempotent by ``reference``."""
        journal_code = self.write_back_option("payment_journal", "write payments back")
        existing = self.find_payment(reference)
        if existing is not None:
            return existing
        move_id = int(source_id)
        self._posted_invoice(move_id, amount.currency, [])
        journal = self._by_code("account.journal", journal_code, "payment_journal")
        context = {"active_model": "account.move", "active_ids": [move_id]}
        wizard = self.execute("account.payment.register", "create",
                              [{"amount": str(amount.amount), "payment_date": date.isoformat(),
                                "journal_id": journal, "communication": reference}], {"context": context})
        self.execute("account.payment.register", "action_create_payments", [[wizard]], {"context": context})
        created = self.find_payment(reference)
        if created is None:
            raise RetryLater(f"Odoo registered no payment {reference!r} yet; looked up again next time")
        return created

    def _by_code(self, model: str, code: str, key: str) -> int:
        """The id of the ``model`` record (a journal, an account) with ``code``, which option ``key`` names."""
        found = self.execute(model, "search", [[["code", "=", code]]], {"limit": 1})
        if not found:
            raise ConfigError(f"no {model.removeprefix('account.')} with code {code!r}",
                              key=f"sources.{self.name}.{key}")
        return found[0]

    def _posted_invoice(self, move_id: int, currency: str, fields: list[str]) -> dict[str, Any]:
        """Invoice ``move_id`` as Odoo holds it (with ``fields``), refused unless posted and in ``currency``:
        a write-back never lands on a draft or on an invoice in another currency."""
        move = self.execute("account.move", "read", [[move_id]], {"fields": ["state", "currency_id", *fields]})
        if not move or move[0]["state"] != "posted":
            raise StopAndAsk(f"Odoo move {move_id} is not a posted invoice")
        if (_m2o(move[0]["currency_id"]) or (0, ""))[1] != currency:
            raise StopAndAsk(f"Odoo move {move_id} is not in {currency}")
        return move[0]

    def find_entry(self, reference: str) -> str | None:
        found = self.execute("account.move", "search", [[["ref", "=", reference], ["move_type", "=", "entry"],
                                                         ["state", "=", "posted"]]], {"limit": 1})
        return str(found[0]) if found else None

    def record_writeoff(self, *, source_id: str, amount: Money, date: dt.date, reference: str,
                        kind: str | None = None) -> str:
        """Write off ``amount``, which must be exactly what invoice ``source_id`` still owes in Odoo, with a
        journal entry reconciled against its receivable line; idempotent by ``reference``."""
        account_code = self.write_back_option("writeoff_account", "write fees and discounts off")
        existing = self.find_entry(reference)
        if existing is not None:
            return existing
        move_id = int(source_id)
        move = self._posted_invoice(move_id, amount.currency, ["amount_residual", "partner_id"])
        owed = _money(move["amount_residual"], amount.currency, "amount_residual")
        if owed != amount:  # writing off anything else would hide a real difference: a person decides
            raise StopAndAsk(f"Odoo invoice {move_id} still owes {owed}, Cessio would write off {amount}")
        receivable = self.execute("account.move.line", "search_read",
                                  [[["move_id", "=", move_id], ["account_type", "=", "asset_receivable"],
                                    ["reconciled", "=", False]]], {"fields": ["account_id", "partner_id"]})
        if len(receivable) != 1:
            raise StopAndAsk(f"Odoo invoice {move_id} has {len(receivable)} open receivable lines, not one")
        account = self._by_code("account.account", account_code, "writeoff_account")
        journal = self._by_code("account.journal", self.option("writeoff_journal", "MISC"), "writeoff_journal")
        partner = (_m2o(receivable[0]["partner_id"]) or (None, ""))[0]
        receivable_account = _m2o(receivable[0]["account_id"])[0]
        label = f"{kind or 'write-off'} {reference}"
        entry = self.execute("account.move", "create", [{
            "move_type": "entry", "ref": reference, "journal_id": journal, "date": date.isoformat(),
            "line_ids": [[0, 0, {"account_id": account, "partner_id": partner, "name": label,
                                 "debit": str(amount.amount), "credit": "0"}],
                         [0, 0, {"account_id": receivable_account, "partner_id": partner, "name": label,
                                 "debit": "0", "credit": str(amount.amount)}]]}])
        self.execute("account.move", "action_post", [[entry]])
        credit = self.execute("account.move.line", "search", [[["move_id", "=", entry],
                                                               ["account_id", "=", receivable_account]]])
        self.execute("account.move.line", "reconcile", [[receivable[0]["id"], *credit]])
        return str(entry)

    def reverse_writeback(self, *, source_id: str, erp_id: str, date: dt.date, reference: str,
                          what: str = "payment") -> str:
        """Undo what a write-back created (``what``: ``payment`` → ``account.payment`` ``erp_id``; ``writeoff``
        → the journal entry ``erp_id``): reset to draft (Odoo unreconciles it) and cancel. Cancelled already:
        nothing to do. Returns ``erp_id``."""
        model, draft, cancel = (("account.payment", "action_draft", "action_cancel") if what == "payment"
                                else ("account.move", "button_draft", "button_cancel"))
        record = self.execute(model, "read", [[int(erp_id)]], {"fields": ["state"]})
        if not record:
            raise StopAndAsk(f"Odoo {model} {erp_id} (written back for move {source_id}) does not exist")
        if record[0]["state"] == "posted":
            self.execute(model, draft, [[int(erp_id)]])
            record[0]["state"] = "draft"
        if record[0]["state"] == "draft":
            self.execute(model, cancel, [[int(erp_id)]])
        return str(erp_id)


class OdooClient(JsonRpcClient):
    """Odoo's JSON: plain JSON out (Odoo knows none of Tryton's typed values), numbers decoded as Decimal so that
    no amount ever becomes a float."""

    not_found_hint = "check the url"  # the database is a login argument here, not part of the URL
    # Odoo refuses a login inside a 200 answer (see OdooAdapter._call); a 401/403 can only come from a proxy in
    # front of it (a stop for a person to look at, not a credentials error). A 429/503 of that proxy with a
    # Retry-After is honoured, as for Tryton.
    refused_statuses = ()

    def encode(self, payload: dict[str, Any]) -> str:
        return json.dumps({**payload, "id": self._id})

    def decode(self, content: bytes) -> Any:
        return json.loads(content, parse_float=Decimal)
