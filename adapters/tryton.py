"""Tryton ERP (tested with trytond 8.2 + account_invoice) over its JSON-RPC API, as a Tryton client talks.

Reads: posted, paid and cancelled customer invoices (``account.invoice``, ``type = out``) of one company,
with their lines to pay (maturity dates), the customer's identifiers (``eu_vat``, ``fr_siren``,
``fr_siret``), invoice address and payment state. A Tryton credit note is an ``out`` invoice with a
negative total: it becomes a ``credit_note`` with positive amounts, crediting the invoices its lines
originate from. A cancelled invoice is a status change, never a new receivable.

Cursor: ``{"write_date": ISO datetime, "id": N, "parties": ISO datetime}`` — keyset pagination ordered
by ``(write_date, id)``; a checkpoint after every page. Tryton stamps ``write_date`` when the writing
transaction *starts*, so each run starts ``overlap_seconds`` before the cursor: a record committed late is
still seen, and a record read twice is recognised by the store as unchanged. ``parties`` is the latest
write date of customers, identifiers and addresses at the previous read: the posted invoices of customers
changed since are read again (a new VAT id or address does not move the invoice's own write date).

Writes back (``record_payment``): runs Tryton's own "Pay invoice" wizard (``account.invoice.pay``) with
the configured payment method, which posts a payment move and reconciles it against the invoice's
receivable line when it settles the invoice, so Tryton shows it paid. The move's description is the
caller's reference, looked up before paying: a retry never pays twice.

Writes off (``record_writeoff``): what is left open on the invoice (a bank fee or a discount the debtor
took) with the "Reconcile Lines" wizard (``account.move.reconcile_lines``) and the configured write-off
method: Tryton posts a write-off move and reconciles the invoice's lines to pay with its payment lines, so
the invoice is paid. Reverses (``reverse_writeback``): a payment or write-off move written back earlier, as a
user undoes one: "Unreconcile Lines" on its reconciled lines, then "Cancel Moves" (a reversal move,
reconciled with the original), so the invoice is open again. Both use the caller's reference as the new
move's description and look it up first.

Protocol facts: ``common.db.login`` with ``[login, {"password": ...}, lang]`` returns ``[user_id, session,
...]``; calls go to ``POST {url}/{database}/rpc/`` with ``Authorization: Session base64(login:id:session)``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

from adapters.jsonrpc import ErpAdapter, JsonRpcClient, RpcFault, reveal
from connector.adapter import Checkpoint, ReadStream, StatusChange, status_from_amounts
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


class TrytonAdapter(ErpAdapter):
    """A Tryton server's customer invoices, incrementally by write date; see the module docstring."""

    type_name = "tryton"
    invoice_model = "account.invoice"
    config_keys: ClassVar[dict[str, Key]] = {
        "url": Key("str", required=True, help="Tryton server root, e.g. http://127.0.0.1:8000"),
        "database": Key("str", required=True, help="Tryton database name"),
        "login": Key("str", required=True, help="Tryton user (read access to invoices; pay for write-back)"),
        "password": Key("secret", required=True, help="that user's password"),
        "company": Key("int", help="company id (default: the user's current company)"),
        "payment_method": Key("str", help="name of the invoice payment method used to write payments back"),
        "writeoff_method": Key("str", help="name of the write-off method used to write fees and discounts off"),
        "page_size": Key("int", 200, help="invoices per request and per committed batch"),
        "overlap_seconds": Key("int", 60, help="re-read window before the cursor (late commits)"),
        "timeout": Key("int", 60, help="seconds to wait for an answer"),
    }

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self._session: str | None = None
        self._user_id: int | None = None

    def connect(self, *, timeout: tuple[float, float]) -> JsonRpcClient:
        return JsonRpcClient(f"{self.url}/{self.database}/rpc/", timeout=timeout)

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
        self._user_id = int(user_id)

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

    def user_company(self) -> int:
        prefs = self.call("model.res.user.get_preferences", True, {})
        if not prefs.get("company"):
            raise ConfigError("the Tryton user has no current company; set company", key=f"sources.{self.name}.company")
        return int(prefs["company"])

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
        # taken before the invoices are read: a customer changed during this read is seen by the next one
        party_mark = self._party_mark(ctx)
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
            yield from self._items(rows, seller, ctx)
            if rows:
                after_date, after_id = rows[-1]["write_date"], rows[-1]["id"]
                last = {**(last or {}), "write_date": after_date.isoformat(), "id": after_id}
                yield Checkpoint(last)
            if len(rows) < self.page_size:
                break
        # A change of the customer alone (its VAT id, its address) leaves the invoice's write_date where it was:
        # the posted invoices of customers changed since the last read are read again (the store keeps what did
        # not change). The first read, or a cursor from before this pass existed, only sets the mark.
        since = cursor.get("parties") if cursor else None
        if since:
            changed = self._changed_parties(_parse_dt(since) - self.overlap, ctx)
            after_id = 0
            while changed:
                rows = self.call("model.account.invoice.search_read",
                                 [*base[:2], ("state", "in", ["posted", "paid"]), ("party", "in", changed),
                                  ("id", ">", after_id)], 0, self.page_size, [["id", "ASC"]], INVOICE_FIELDS, ctx)
                yield from self._items(rows, seller, ctx)
                if len(rows) < self.page_size:
                    break
                after_id = rows[-1]["id"]
        if party_mark is not None and (last or {}).get("parties") != party_mark:
            last = {**(last or {}), "parties": party_mark}
            yield Checkpoint(last)
        return last

    def _items(self, rows: list[dict[str, Any]], seller: Party, ctx: dict[str, Any]) -> ReadStream:
        """Read items of one page of ``account.invoice`` rows (a cancelled invoice is a status change)."""
        credited = self._credited_numbers(rows, ctx)
        for row in rows:
            if row.get("state") == "cancelled":
                yield StatusChange(str(row["id"]), "cancelled", {"number": row.get("number")})
                continue
            yield self.mapped(row["id"], row.get("number"),
                              partial(invoice_from_tryton, row, seller=seller, source=self.name,
                                      credited_numbers=credited.get(row["id"], ())))

    # a customer's name lives on party.party, its VAT/SIREN on party.identifier, its address on party.address:
    # each is a record of its own, written alone when edited alone
    PARTY_MODELS = (("party.party", "id"), ("party.identifier", "party"), ("party.address", "party"))

    def _party_mark(self, ctx: dict[str, Any]) -> str | None:
        """The latest write date over customers, their identifiers and addresses (server time), if any."""
        marks = []
        for model, _ in self.PARTY_MODELS:
            rows = self.call(f"model.{model}.search_read", [("write_date", "!=", None)], 0, 1,
                             [["write_date", "DESC"]], ["write_date"], ctx)
            marks += [row["write_date"] for row in rows if row.get("write_date")]
        return max(marks).isoformat() if marks else None

    def _changed_parties(self, since: dt.datetime, ctx: dict[str, Any]) -> list[int]:
        ids: set[int] = set()
        for model, field in self.PARTY_MODELS:
            rows = self.call(f"model.{model}.search_read", [("write_date", ">", since)], 0, None, None, [field], ctx)
            ids.update(int(row[field]) for row in rows if row.get(field))
        return sorted(ids)

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
        method_name = self.write_back_option("payment_method", "write payments back")
        self._login()  # the pay wizard wants a fresh session
        ctx = self.context()
        invoice_id = int(source_id)
        existing = self.find_payment(invoice_id, reference)
        if existing is not None:
            return existing
        self._posted_invoice(invoice_id, amount.currency, ["amount_to_pay"], ctx, refusal="cannot pay it")
        method = self._named("account.invoice.payment.method", method_name, "payment method", "payment_method", ctx)
        wizard_ctx = {**ctx, "active_model": "account.invoice", "active_id": invoice_id, "active_ids": [invoice_id]}
        with self._wizard("account.invoice.pay", wizard_ctx) as wizard:
            view = wizard.execute({}, wizard.start)
            start = _form(view["view"]["defaults"])
            start.update({"amount": amount.amount, "date": date, "description": reference, "payment_method": method})
            answer = wizard.execute({"start": start}, "choice")
            if "view" in (answer or {}):  # the "ask" step: a partial payment, kept open on the invoice
                ask = _form(answer["view"]["defaults"])
                ask["type"] = "partial"
                wizard.execute({"start": start, "ask": ask}, "pay")
        return _created(self.find_payment(invoice_id, reference), f"payment of invoice {invoice_id}", reference)

    def find_payment(self, invoice_id: int, reference: str) -> str | None:
        """The id of the payment move already created for ``reference`` on this invoice, if any."""
        found = self.call("model.account.move.search",
                          [("origin", "=", f"account.invoice,{invoice_id}"), ("description", "=", reference)],
                          0, 1, None, self.context())
        return str(found[0]) if found else None

    def find_move(self, reference: str, *domain: Any) -> str | None:
        """The id of the move a write-back created with ``reference`` as its description, if any."""
        found = self.call("model.account.move.search", [("description", "=", reference), *domain], 0, 1, None,
                          self.context())
        return str(found[0]) if found else None

    def record_writeoff(self, *, source_id: str, amount: Money, date: dt.date, reference: str,
                        kind: str | None = None) -> str:
        """Write off ``amount``, which must be exactly what invoice ``source_id`` still owes in Tryton (the
        receipt was written back first); idempotent by ``reference``. Returns the write-off move's id."""
        method_name = self.write_back_option("writeoff_method", "write fees and discounts off")
        self._login()  # wizards want a fresh session
        ctx = self.context()
        invoice_id = int(source_id)
        # the write-off move has no origin: it is found through its line reconciled with the invoice's lines
        on_invoice = ("lines.reconciliation.lines.move.origin", "=", f"account.invoice,{invoice_id}")
        existing = self.find_move(reference, on_invoice)
        if existing is not None:
            return existing
        invoice = self._posted_invoice(invoice_id, amount.currency,
                                       ["amount_to_pay", "lines_to_pay.reconciliation", "payment_lines.reconciliation"],
                                       ctx, refusal="nothing to write off")
        owed = Money.of(invoice["amount_to_pay"], amount.currency)
        if owed != amount:
            # writing off anything else would hide a real difference: a person decides
            raise StopAndAsk(f"Tryton invoice {invoice_id} still owes {owed}, Cessio would write off {amount}")
        lines = [line["id"] for name in ("lines_to_pay.", "payment_lines.") for line in invoice.get(name) or []
                 if not line.get("reconciliation")]
        method = self._named("account.move.reconcile.write_off", method_name, "write-off method", "writeoff_method",
                             ctx)
        wizard_ctx = {**ctx, "active_model": "account.move.line", "active_id": lines[0], "active_ids": lines}
        with self._wizard("account.move.reconcile_lines", wizard_ctx) as wizard:
            view = wizard.execute({}, wizard.start)
            form = _form(view["view"]["defaults"])
            if Money.of(form.get("amount") or Decimal(0), amount.currency) != amount:
                raise StopAndAsk(f"Tryton would write off {form.get('amount')} on invoice {invoice_id}, not {amount}")
            form.update({"writeoff": method, "date": date, "description": reference})
            wizard.execute({"writeoff": form}, "reconcile")
        return _created(self.find_move(reference, on_invoice), f"write-off of invoice {invoice_id}", reference)

    def reverse_writeback(self, *, source_id: str, erp_id: str, date: dt.date, reference: str,
                          what: str = "payment") -> str:
        """Undo move ``erp_id`` (a payment or write-off written back earlier to invoice ``source_id``):
        unreconcile its lines, then cancel it with a reversal move whose description is ``reference``
        (looked up first). Tryton dates the reversal like the move it cancels (or today in a closed period).
        ``what`` (payment or writeoff) changes nothing here: both are moves. Returns the reversal move's id."""
        self._login()
        ctx = self.context()
        move_id = int(erp_id)
        existing = self.find_move(reference, ("origin", "=", f"account.move,{move_id}"))
        if existing is not None:
            return existing
        moves = self.call("model.account.move.read", [move_id], ["state", "lines.reconciliation"], ctx)
        if not moves:
            raise StopAndAsk(f"Tryton move {move_id} (written back for invoice {source_id}) does not exist")
        reconciled = [line["id"] for line in moves[0].get("lines.") or [] if line.get("reconciliation")]
        if reconciled:
            line_ctx = {**ctx, "active_model": "account.move.line", "active_id": reconciled[0],
                        "active_ids": reconciled}
            # undoing a write-off is the point here: confirm Tryton's "this deletes a write-off" warning
            self._run_wizard("account.move.unreconcile_lines", line_ctx, confirm=(".delete.write-off",))
        move_ctx = {**ctx, "active_model": "account.move", "active_id": move_id, "active_ids": [move_id]}
        # a payment move has the invoice as origin: Tryton warns that cancelling it reconciles its lines, which
        # is what undoing a payment is (the invoice, unreconciled above, owes the amount again)
        self._run_wizard("account.move.cancel", move_ctx, form={"description": reference, "reversal": True},
                         then="cancel", confirm=(".cancel_invoice_move",))
        return _created(self.find_move(reference, ("origin", "=", f"account.move,{move_id}")),
                        f"cancel of move {move_id}", reference)

    def _posted_invoice(self, invoice_id: int, currency: str, fields: list[str], ctx: dict[str, Any], *,
                        refusal: str) -> dict[str, Any]:
        """Invoice ``invoice_id`` (read with ``fields``), refused unless it is posted and in ``currency``: a
        write-back never lands on a draft, a paid invoice or one in another currency (``refusal``: what then
        cannot be done)."""
        rows = self.call("model.account.invoice.read", [invoice_id], ["state", "currency.code", *fields], ctx)
        if not rows:
            raise StopAndAsk(f"Tryton invoice {invoice_id} does not exist")
        invoice = rows[0]
        if (invoice.get("currency.") or {}).get("code") != currency:
            raise StopAndAsk(f"Tryton invoice {invoice_id} is not in {currency}")
        if invoice["state"] != "posted":
            raise StopAndAsk(f"Tryton invoice {invoice_id} is {invoice['state']}, not posted: {refusal}")
        return invoice

    def _named(self, model: str, name: str, what: str, key: str, ctx: dict[str, Any]) -> int:
        """The id of the ``model`` record (a payment or write-off method: ``what``) named ``name`` by option ``key``."""
        found = self.call(f"model.{model}.search", [("name", "=", name)], 0, 1, None, ctx)
        if not found:
            raise ConfigError(f"no {what} named {name!r}", key=f"sources.{self.name}.{key}")
        return found[0]

    @contextmanager
    def _wizard(self, name: str, ctx: dict[str, Any]) -> Iterator[_Wizard]:
        """A session of wizard ``name`` on the records ``ctx`` names, deleted on the way out whatever happens:
        the server keeps a session (its forms) until it is deleted."""
        session_id, start_state, _end = self.call(f"wizard.{name}.create", ctx)
        try:
            yield _Wizard(self, name, session_id, start_state, ctx)
        finally:
            self.call(f"wizard.{name}.delete", session_id, ctx)

    def _run_wizard(self, name: str, ctx: dict[str, Any], *, form: dict[str, Any] | None = None,
                    then: str | None = None, confirm: tuple[str, ...] = ()) -> None:
        """Run wizard ``name``: from its start state, or with ``form`` as its start view's values and the
        button leading to state ``then`` ("Cancel Moves": a description, then "cancel").

        Tryton asks a user to confirm some steps with a ``UserWarning`` naming a key; the client confirms by
        creating a ``res.user.warning`` for that key and calling again. Cessio does the same, only for the
        warnings listed in ``confirm`` (what the caller means to do anyway), so any other stays a stop."""
        for attempt in range(2):
            with self._wizard(name, ctx) as wizard:
                try:
                    if then is None:
                        wizard.execute({}, wizard.start)
                    else:
                        wizard.execute({wizard.start: form or {}}, then)
                    return
                except RpcFault as exc:
                    key = str(exc).removeprefix("UserWarning: ")
                    if attempt or exc.kind != "UserWarning" or not key.endswith(confirm) or not confirm:
                        raise
                    self.call("model.res.user.warning.create",
                              [{"user": self._user_id, "name": key, "always": False}], ctx)


@dataclass(frozen=True)
class _Wizard:
    """One session of a Tryton wizard, opened by :meth:`TrytonAdapter._wizard`."""

    adapter: TrytonAdapter
    name: str
    session_id: int
    start: str  # the wizard's start state
    ctx: dict[str, Any]

    def execute(self, data: dict[str, Any], state: str) -> Any:
        """Submit ``data`` (the forms, by state name) and go to ``state``; Tryton's answer (the next view, if any)."""
        return self.adapter.call(f"wizard.{self.name}.execute", self.session_id, data, state, self.ctx)


def _created(move_id: str | None, what: str, reference: str) -> str:
    """The move a wizard just wrote for ``reference``, looked up afterwards: none means Tryton accepted ``what``
    but wrote nothing a retry could find, which a person must look at."""
    if move_id is None:
        raise StopAndAsk(f"Tryton accepted the {what} but no move {reference!r} exists")
    return move_id


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
