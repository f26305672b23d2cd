"""TEST DOUBLE of an Odoo 17 server at the HTTP edge (Odoo cannot run on this machine).

A real HTTP server on 127.0.0.1 (free port) speaking Odoo's documented external JSON-RPC API:
``POST /jsonrpc`` with ``{"service": "common", "method": "version" | "authenticate"}`` and
``{"service": "object", "method": "execute_kw", "args": [db, uid, key, model, method, args, kwargs]}``.
It replays records shaped as Odoo answers them (``tests/fixtures/erp/odoo_recorded.json``: many2one as
``[id, name]``, ``false`` for empty values, amounts as JSON numbers) and implements the few methods the
adapter uses: ``search_read``, ``read``, ``search``, ``search_count`` with Odoo's prefix-notation domains,
and the "Register Payment" wizard (``account.payment.register`` ``create`` + ``action_create_payments``),
which updates the invoice's residual, payment state and write date as Odoo does. For write-offs and
reversals: ``account.move`` ``create`` of a journal entry (``line_ids`` as ``(0, 0, values)`` commands),
``action_post``, ``button_draft`` (unreconciles its lines) and ``button_cancel``; ``account.move.line``
``reconcile``; ``account.payment`` ``action_draft`` (unreconciles) and ``action_cancel`` — the buttons of
Odoo 17's documented models, with Odoo's rules (only a draft can be cancelled, only a draft posted).
Errors are answered in Odoo's ``{"error": {"code": 200, "message": "Odoo Server Error", "data": {"name": ...}}}`` shape.
"""

from __future__ import annotations

import copy
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "fixtures" / "erp" / "odoo_recorded.json"


class OdooError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _match(record: dict[str, Any], term: list[Any]) -> bool:
    field, op, value = term
    actual = record.get(field)
    if isinstance(actual, list) and actual and field.endswith("_id"):
        actual = actual[0]
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == ">":
        return actual is not False and actual is not None and actual > value
    if op == "<":
        return actual is not False and actual is not None and actual < value
    raise OdooError("builtins.ValueError", f"Invalid domain operator {op!r}")


def evaluate(domain: list[Any], record: dict[str, Any]) -> bool:
    """Odoo's domain: implicit AND between terms, prefix ``|`` and ``&`` operators."""

    def parse(position: int) -> tuple[bool, int]:
        token = domain[position]
        if token in ("|", "&"):
            left, after_left = parse(position + 1)
            right, after_right = parse(after_left)
            return (left or right) if token == "|" else (left and right), after_right
        return _match(record, token), position + 1

    position, result = 0, True
    while position < len(domain):
        value, position = parse(position)
        result = result and value
    return result


class OdooDouble:
    """The in-memory Odoo database and the HTTP server answering for it."""

    database = "cessio-odoo"
    login = "cessio"
    api_key = "odoo-test-api-key"  # the double's own key, not a real secret

    def __init__(self) -> None:
        self.data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"), parse_float=Decimal)
        self.requests: list[dict[str, Any]] = []
        self.clock = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OdooDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)

    # -- what a user does in Odoo ------------------------------------------------------------------
    def touch(self) -> str:
        self.clock += 1
        return f"2026-11-02 09:{self.clock // 60:02d}:{self.clock % 60:02d}"

    def write(self, model: str, record_id: int, **values: Any) -> None:
        with self._lock:
            record = next(r for r in self.data[model] if r["id"] == record_id)
            record.update(values, write_date=self.touch())

    # -- the API -----------------------------------------------------------------------------------
    def answer(self, payload: dict[str, Any]) -> dict[str, Any]:
        params = payload.get("params") or {}
        try:
            if params.get("service") == "common" and params.get("method") == "version":
                result: Any = {"server_version": self.data["server_version"], "protocol_version": 1}
            elif params.get("service") == "common" and params.get("method") == "authenticate":
                db, login, key, _ = params["args"]
                result = 2 if (db, login, key) == (self.database, self.login, self.api_key) else False
            elif params.get("service") == "object" and params.get("method") == "execute_kw":
                db, uid, key, model, method, args, *rest = params["args"]
                if (db, uid, key) != (self.database, 2, self.api_key):
                    raise OdooError("odoo.exceptions.AccessDenied", "Access Denied")
                with self._lock:
                    result = self.execute(model, method, args, rest[0] if rest else {})
            else:
                raise OdooError("werkzeug.exceptions.NotFound", "unknown service")
        except OdooError as exc:
            return {"jsonrpc": "2.0", "id": payload.get("id"), "error": {
                "code": 200, "message": "Odoo Server Error",
                "data": {"name": exc.name, "message": str(exc), "arguments": [str(exc)], "debug": ""}}}
        return {"jsonrpc": "2.0", "id": payload.get("id"), "result": result}

    def execute(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        records = self.data.get(model)
        if records is None and model != "account.payment.register":
            raise OdooError("builtins.KeyError", f"Object {model} doesn't exist")
        if method in ("search_read", "search", "search_count"):
            found = [r for r in records if evaluate(args[0] if args else [], r)]
            if kwargs.get("order"):
                for part in reversed(kwargs["order"].split(",")):
                    name, _, direction = part.strip().partition(" ")
                    found.sort(key=lambda r, n=name: (r.get(n) is False, r.get(n)), reverse=direction == "desc")
            if kwargs.get("limit"):
                found = found[: kwargs["limit"]]
            if method == "search_count":
                return len(found)
            if method == "search":
                return [r["id"] for r in found]
            return [self._fields(r, kwargs.get("fields")) for r in found]
        if method == "read":
            by_id = {r["id"]: r for r in records}
            missing = [i for i in args[0] if i not in by_id]
            if missing:
                raise OdooError("odoo.exceptions.MissingError", f"Record does not exist: {missing}")
            return [self._fields(by_id[i], kwargs.get("fields")) for i in args[0]]
        if model == "account.move" and method == "create":
            return self._create_entry(args[0], kwargs)
        if model == "account.move" and method in ("action_post", "button_draft", "button_cancel"):
            for move_id in args[0]:
                self._move_button(next(m for m in records if m["id"] == move_id), method)
            return True
        if model == "account.move.line" and method == "reconcile":
            return self._reconcile(args[0])
        if model == "account.payment" and method in ("action_draft", "action_cancel"):
            for payment_id in args[0]:
                self._payment_button(next(p for p in records if p["id"] == payment_id), method)
            return True
        if model == "account.payment.register" and method == "create":
            wizard = dict(args[0], id=len(self.data.setdefault("_wizards", [])) + 1,
                          context=kwargs.get("context") or {})
            self.data["_wizards"].append(wizard)
            return wizard["id"]
        if model == "account.payment.register" and method == "action_create_payments":
            wizard = next(w for w in self.data["_wizards"] if w["id"] == args[0][0])
            return self._register_payment(wizard)
        raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")

    def _fields(self, record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        chosen = {k: v for k, v in record.items() if not fields or k in fields or k == "id"}
        return copy.deepcopy(chosen)

    def _register_payment(self, wizard: dict[str, Any]) -> dict[str, Any]:
        move_id = wizard["context"]["active_ids"][0]
        move = next(m for m in self.data["account.move"] if m["id"] == move_id)
        amount = Decimal(str(wizard["amount"]))
        residual = Decimal(str(move["amount_residual"])) - amount
        if residual < 0:
            raise OdooError("odoo.exceptions.UserError", "The amount is more than the amount due")
        payment_id = len(self.data["account.payment"]) + 1
        self.data["account.payment"].append({"id": payment_id, "ref": wizard.get("communication"),
                                             "amount": amount, "journal_id": [wizard["journal_id"], "Bank"],
                                             "date": wizard.get("payment_date"), "move_id": move_id,
                                             "state": "posted", "reconciled_invoice_ids": [move_id]})
        self._settle(move_id, -amount, paid_state="in_payment")
        return {"type": "ir.actions.act_window_close"}

    # -- reconciliation (what Odoo's account.partial.reconcile does to residuals) ------------------------------
    def _settle(self, move_id: int, change: Decimal, *, paid_state: str = "paid") -> None:
        """Change an invoice's open amount by ``change`` (negative: paid) on the move and its receivable line."""
        move = next(m for m in self.data["account.move"] if m["id"] == move_id)
        residual = Decimal(str(move["amount_residual"])) + change
        if residual < 0 or residual > Decimal(str(move["amount_total"])):
            raise OdooError("odoo.exceptions.UserError", "The amount is more than the amount due")
        state = "not_paid" if residual == Decimal(str(move["amount_total"])) else \
            paid_state if residual == 0 else "partial"
        move.update(amount_residual=residual, payment_state=state, write_date=self.touch())
        for line in self.data["account.move.line"]:
            if line["move_id"][0] == move_id and line["account_type"] == "asset_receivable":
                line.update(amount_residual=residual, reconciled=residual == 0)

    def _create_entry(self, values: dict[str, Any], kwargs: dict[str, Any]) -> int:
        if values.get("move_type") != "entry":
            raise OdooError("odoo.exceptions.UserError", "the double only creates journal entries")
        move_id = max(m["id"] for m in self.data["account.move"]) + 1
        journal = next(j for j in self.data["account.journal"] if j["id"] == values["journal_id"])
        self.data["account.move"].append({"id": move_id, "name": f"{journal['code']}/2026/{move_id:05d}",
                                          "move_type": "entry", "state": "draft", "ref": values.get("ref"),
                                          "date": values.get("date"), "journal_id": [journal["id"], journal["name"]],
                                          "company_id": [1, "Cessio Demo SAS"], "write_date": self.touch()})
        accounts = {a["id"]: a for a in self.data["account.account"]}
        total = Decimal(0)
        for command, _, line in values.get("line_ids") or []:
            if command != 0:
                raise OdooError("builtins.ValueError", f"unsupported x2many command {command}")
            account = accounts[line["account_id"]]
            debit, credit = Decimal(str(line.get("debit") or 0)), Decimal(str(line.get("credit") or 0))
            total += debit - credit
            partner = next((p for p in self.data["res.partner"] if p["id"] == line.get("partner_id")), None)
            self.data["account.move.line"].append({
                "id": max(x["id"] for x in self.data["account.move.line"]) + 1,
                "move_id": [move_id, f"{journal['code']}/2026/{move_id:05d}"], "name": line.get("name") or "",
                "account_id": [account["id"], f"{account['code']} {account['name']}"],
                "account_type": account["account_type"],
                "partner_id": [partner["id"], partner["name"]] if partner else False, "debit": debit,
                "credit": credit, "amount_residual": debit - credit, "reconciled": False, "parent_state": "draft"})
        if total != 0:
            raise OdooError("odoo.exceptions.UserError", "The move is not balanced.")
        return move_id

    def _move_button(self, move: dict[str, Any], button: str) -> None:
        lines = [x for x in self.data["account.move.line"] if x["move_id"][0] == move["id"]]
        if button == "action_post":
            if move["state"] != "draft":
                raise OdooError("odoo.exceptions.UserError", "Only draft journal entries can be posted.")
            move["state"] = "posted"
        elif button == "button_draft":
            if move["state"] != "posted":
                raise OdooError("odoo.exceptions.UserError", "Only posted journal entries can be reset to draft.")
            for partial in [p for p in self.data.setdefault("_partials", []) if p["credit_line"] in
                            {x["id"] for x in lines}]:  # resetting to draft removes its reconciliations
                self._settle(partial["invoice"], partial["amount"])
                self.data["_partials"].remove(partial)
            move["state"] = "draft"
        else:
            if move["state"] != "draft":
                raise OdooError("odoo.exceptions.UserError", "Only draft journal entries can be cancelled.")
            move["state"] = "cancel"
        for line in lines:
            line["parent_state"] = move["state"]
        move["write_date"] = self.touch()

    def _reconcile(self, line_ids: list[int]) -> bool:
        lines = [x for x in self.data["account.move.line"] if x["id"] in line_ids]
        if len({x["account_id"][0] for x in lines}) != 1 or any(x["reconciled"] for x in lines) \
                or any(x["parent_state"] != "posted" for x in lines):
            raise OdooError("odoo.exceptions.UserError", "Entries are not from the same account, already "
                                                         "reconciled or not posted.")
        debit = next(x for x in lines if Decimal(str(x["amount_residual"])) > 0)
        credit = next(x for x in lines if Decimal(str(x["amount_residual"])) < 0)
        amount = min(Decimal(str(debit["amount_residual"])), -Decimal(str(credit["amount_residual"])))
        self._settle(debit["move_id"][0], -amount)
        credit["amount_residual"] = Decimal(str(credit["amount_residual"])) + amount
        credit["reconciled"] = credit["amount_residual"] == 0
        self.data.setdefault("_partials", []).append({"invoice": debit["move_id"][0], "credit_line": credit["id"],
                                                      "amount": amount})
        return True

    def _payment_button(self, payment: dict[str, Any], button: str) -> None:
        if button == "action_draft":
            if payment["state"] != "posted":
                raise OdooError("odoo.exceptions.UserError", "Only a posted payment can be reset to draft.")
            for move_id in payment["reconciled_invoice_ids"]:  # resetting to draft unreconciles the payment
                self._settle(move_id, Decimal(str(payment["amount"])))
            payment.update(state="draft", reconciled_invoice_ids=[])
        else:
            if payment["state"] != "draft":
                raise OdooError("odoo.exceptions.UserError", "Only a draft payment can be cancelled.")
            payment["state"] = "cancel"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/jsonrpc":
                    self.send_error(404)
                    return
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])), parse_float=Decimal)
                double.requests.append(payload)
                body = json.dumps(double.answer(payload), default=_number).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _number(value: Any) -> Any:
    """Odoo itself stores monetary fields as floats and writes them as JSON numbers; so does the double
    (the adapter must decode them exactly, which is what the tests check)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
