"""The review desk's Flask application: server-rendered pages over the store, one store connection per request.

Reads the store through ``Store.desk_*`` methods (paginated) and changes it only through the same library
functions as the CLI (``connector.reconcile.review``, ``connector.reconcile.export``, ``connector.ingest``),
with the request's store opened under the user's name so every audit row records who did it. Until a
library function exists, its page says so (it never shows made-up data).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, flash, g, redirect, render_template, request, url_for

from connector.errors import CessioError, MoneyError
from connector.factors import settled_after_assignment
from connector.money import Money
from connector.web import auth, i18n

PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # 50 million rows; beyond it an offset would overflow SQLite's integers (a 500 before)
DEFAULT_LOG_DAYS = 31
SESSION_COOKIE = "cessio_desk"
LOGIN_CSRF_COOKIE = "cessio_login_csrf"
LANG_COOKIE = "cessio_lang"
LOG_FILTERS = ("date_from", "date_to", "account", "debtor", "status", "rule", "amount_min", "amount_max")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True)
class Page:
    """The page of a list view (``?page=N``, 1-based, :data:`PAGE_SIZE` rows a page)."""

    number: int

    @property
    def limit(self) -> int:
        return PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE

    def count(self, total: int) -> int:
        """How many pages ``total`` rows fill (at least one, for an empty list)."""
        return max(1, -(-total // PAGE_SIZE))


def library_function(module: str, name: str) -> Callable[..., Any] | None:
    """A function another area provides, or None while it is not built (the page then says so)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return [text]
    return value if isinstance(value, list) else [value]


def parse_amount(text: str, currency: str) -> Money:
    """An amount typed by a person: ``1 234,50`` or ``1,234.50`` or ``1234.5`` → exact Money."""
    cleaned = (text or "").strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if "," in cleaned and "." in cleaned:
        cleaned = cleaned.replace(",", "") if cleaned.rfind(".") > cleaned.rfind(",") else \
            cleaned.replace(".", "").replace(",", ".")
    elif "," in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        Decimal(cleaned)
        return Money.parse(cleaned, currency)
    except (InvalidOperation, MoneyError, ValueError) as exc:
        raise MoneyError(f"amount {text!r}: not a {currency} amount ({exc})") from None


def create_app(store_path: str | Path, *, config: Any = None, secure_cookies: bool | None = None,
               warm_dashboard: bool = False) -> Flask:
    """The desk application for one store file.

    Cookies are HttpOnly and SameSite=Strict; they are marked Secure when the request came over HTTPS
    (``secure_cookies=None``, the default), or always/never when forced. Browsers drop Secure cookies
    sent over plain http://127.0.0.1, which is what a local desk without a TLS proxy uses.
    """
    from connector.store import Store

    store_path = Path(store_path)
    Store(store_path, actor="desk").close()  # migrate once, at start; requests open without migrating
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)  # only signs one-shot flash messages; sessions are server-side
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=bool(secure_cookies), SESSION_COOKIE_NAME="cessio_flash",
                      MAX_CONTENT_LENGTH=256 * 1024)

    def cookie_secure() -> bool:
        return request.is_secure if secure_cookies is None else secure_cookies

    def desk_config() -> Any:
        if config is not None:
            return config
        from connector.config import empty_config

        return empty_config(store_path.resolve())

    if warm_dashboard:
        from connector.web.dashboard import warm

        warm(store_path, desk_config())

    # -- per request: store, language, user ------------------------------------------------------
    @app.before_request
    def open_request() -> Response | None:
        g.store = Store(store_path, actor="desk", migrate=False)
        g.lang = i18n.pick_language(request.args.get("lang") or request.cookies.get(LANG_COOKIE),
                                    request.accept_languages)
        g.t = i18n.translator(g.lang)
        g.user = None
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            g.user = g.store.desk_session(token)
            if g.user:
                g.store.actor = auth.desk_actor(g.user["username"])
        if request.endpoint in ("login", "static", "favicon"):
            return None
        if g.user is None:
            return redirect(url_for("login"))
        if request.method == "POST" and not auth.csrf_ok(g.user["csrf_token"], request.form.get("csrf_token")):
            abort(400, "the form's CSRF token is missing or wrong; reload the page and try again")
        return None

    @app.teardown_request
    def close_request(_exc: BaseException | None) -> None:
        store = g.pop("store", None)
        if store is not None:
            store.close()

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        if request.args.get("lang") in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, request.args["lang"], max_age=365 * 86400, samesite="Strict",
                                secure=cookie_secure(), httponly=True)
        return response

    @app.context_processor
    def helpers() -> dict[str, Any]:
        lang = g.get("lang", "en")
        return {"t": g.get("t", i18n.translator("en")), "lang": lang, "user": g.get("user"),
                "csrf_token": (g.user or {}).get("csrf_token") if g.get("user") else "",
                "may": lambda permission: bool(g.get("user")) and auth.may(g.user["role"], permission),
                "amount": lambda minor, cur: i18n.amount(minor, cur, lang),
                "date": lambda value: i18n.date_text(value, lang),
                "dec": lambda value: i18n.decimal_text(value, lang), "json_list": _json_list}

    def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def checked(*args: Any, **kwargs: Any) -> Any:
                if not auth.may(g.user["role"], permission):
                    abort(403, g.t("Your role cannot change anything here."))
                return view(*args, **kwargs)
            return checked
        return wrap

    def page_number() -> Page:
        try:
            return Page(min(max(1, int(request.args.get("page", "1"))), MAX_PAGE))
        except ValueError:
            return Page(1)

    # -- login ---------------------------------------------------------------------------------------
    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        if request.method == "POST":
            # login CSRF: double-submit of a random cookie (there is no session yet to hold a token)
            if not auth.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), request.form.get("csrf_token")):
                abort(400, "the form's CSRF token is missing or wrong; reload the page and try again")
            user = auth.authenticate(g.store, request.form.get("username", ""), request.form.get("password", ""))
            if user is not None:
                token = auth.open_session(g.store, user)
                response = redirect(url_for("queue"))
                response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=cookie_secure(),
                                    max_age=int(auth.SESSION_LIFETIME.total_seconds()))
                response.delete_cookie(LOGIN_CSRF_COOKIE)
                return response
            with g.store.transaction():
                g.store.audit("desk.login_failed", None, {"username": request.form.get("username", "")[:64]},
                              actor="desk")
            error = g.t("Wrong user name or password.")
        # reuse a token already given: a second tab (or the favicon's redirect) must not void the first form
        login_token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = app.make_response((render_template("login.html", login_csrf=login_token, error=error),
                                      401 if error else 200))
        response.set_cookie(LOGIN_CSRF_COOKIE, login_token, httponly=True, samesite="Strict", secure=cookie_secure())
        return response

    @app.post("/logout")
    def logout() -> Any:
        with g.store.transaction():
            g.store.desk_close_session(request.cookies.get(SESSION_COOKIE, ""))
            g.store.audit("desk.logout", f"desk_user:{g.user['username']}", {})
        response = redirect(url_for("login"))
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(status=204)

    @app.get("/")
    def home() -> Any:
        return redirect(url_for("queue"))

    # -- reconciliation queue ----------------------------------------------------------------------------
    @app.get("/queue")
    def queue() -> Any:
        page = page_number()
        with g.store.snapshot():
            total = g.store.desk_queue_count()
            lines = g.store.desk_queue_lines(limit=page.limit, offset=page.offset)
            allocations = g.store.desk_line_allocations([line["id"] for line in lines])
        by_line: dict[int, list[dict[str, Any]]] = {}
        for allocation in allocations:
            by_line.setdefault(allocation["line_id"], []).append(allocation)
        for line in lines:
            line["allocations"] = by_line.get(line["id"], [])
            # one proposal may pay several invoices: accepting or rejecting it acts on all its pieces, so the
            # buttons sit on its first row and say how many invoices they decide
            groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
            for allocation in line["allocations"]:
                key = (allocation["proposal"] if allocation["proposal"] is not None else f"a{allocation['id']}",
                       allocation["status"])
                groups.setdefault(key, []).append(allocation)
            line["allocations"] = []  # each proposal's pieces together (the table spans rows over them)
            for pieces in groups.values():
                for n, allocation in enumerate(pieces):
                    allocation["lead"], allocation["pieces"] = n == 0, len(pieces)
                line["allocations"] += pieces
            line["exponent"] = i18n.currency_exponent(line["currency"])
            line["allocated_minor"] = sum(a["amount_minor"] + a["writeoff_minor"] for a in line["allocations"]
                                          if a["status"] in ("auto", "manual"))
        review = {name: library_function("connector.reconcile.review", name) is not None
                  for name in ("accept_suggestion", "reject_suggestion", "allocate_manually")}
        return render_template("queue.html", lines=lines, total=total, page=page.number, pages=page.count(total),
                               review=review)

    def review_action(name: str, *args: Any) -> Any:
        function = library_function("connector.reconcile.review", name)
        if function is None:
            abort(501, f"{g.t('This capability is not built yet in this version:')} connector.reconcile.review.{name}")
        try:
            function(g.store, *args, actor=g.store.actor)
        except CessioError as exc:
            flash(f"{g.t('Refused:')} {exc}", "error")
        else:
            flash(g.t("Done."), "ok")
        return redirect(request.form.get("next") or url_for("queue"))

    @app.post("/queue/accept/<int:allocation_id>")
    @requires("reconcile")
    def accept(allocation_id: int) -> Any:
        return review_action("accept_suggestion", allocation_id)

    @app.post("/queue/reject/<int:allocation_id>")
    @requires("reconcile")
    def reject(allocation_id: int) -> Any:
        return review_action("reject_suggestion", allocation_id)

    @app.post("/queue/allocate/<int:line_id>")
    @requires("reconcile")
    def allocate(line_id: int) -> Any:
        line = g.store.desk_line(line_id)
        if line is None:
            abort(404)
        pieces: list[tuple[int, Money]] = []
        try:
            for number, text in zip(request.form.getlist("invoice_number"), request.form.getlist("amount"),
                                    strict=False):
                if not number.strip() and not text.strip():
                    continue
                invoice = g.store.desk_invoice_by_number(number.strip(), line["currency"])
                if invoice is None:
                    raise MoneyError(f"invoice {number!r}: no {line['currency']} invoice with this number")
                pieces.append((invoice["id"], parse_amount(text, line["currency"])))
        except MoneyError as exc:
            flash(f"{g.t('Refused:')} {exc}", "error")
            return redirect(request.form.get("next") or url_for("queue"))
        if not pieces:
            flash(f"{g.t('Refused:')} no invoice and amount given", "error")
            return redirect(request.form.get("next") or url_for("queue"))
        return review_action("allocate_manually", line_id, pieces)

    @app.get("/invoices.json")
    def open_invoices() -> Any:
        currency = request.args.get("currency", "EUR")[:3].upper()
        rows = g.store.desk_open_invoices(currency, search=request.args.get("q", "")[:64])
        return {"invoices": [{"number": r["number"], "debtor": r["buyer_name"],
                              "open": i18n.amount(r["amount_due_minor"], r["currency"], g.lang)} for r in rows]}

    # -- reconciliation log --------------------------------------------------------------------------
    def log_filters() -> dict[str, Any]:
        filters: dict[str, Any] = {k: request.args.get(k, "").strip() for k in LOG_FILTERS}
        if "date_from" not in request.args and "date_to" not in request.args:
            # the log opens on the last 31 days of statements (shown in the form; emptied, it shows everything)
            last = g.store.desk_last_booking_date()
            if last:
                filters["date_from"] = (dt.date.fromisoformat(last) - dt.timedelta(days=DEFAULT_LOG_DAYS)).isoformat()
        currency = request.args.get("currency", "").strip().upper()[:3]
        for key in ("amount_min", "amount_max"):  # typed as amounts; compared as minor units
            if filters[key]:
                try:
                    filters[key] = parse_amount(filters[key], currency or "EUR").minor_units
                except MoneyError:
                    flash(f"{g.t('Refused:')} {key} {filters[key]!r}", "error")
                    filters[key] = ""
        filters["currency"] = currency
        return filters

    @app.get("/log")
    def log() -> Any:
        page = page_number()
        filters = log_filters()
        with g.store.snapshot():
            rows, totals = g.store.desk_log_page_and_totals(filters, limit=page.limit, offset=page.offset)
            choices = g.store.desk_log_choices()
        count = sum(t["n"] for t in totals)
        export_ready = library_function("connector.reconcile.export", "reconciliation_rows") is not None
        args = {**request.args.to_dict(), "date_from": filters["date_from"]}
        return render_template("log.html", rows=rows, totals=totals, choices=choices, page=page.number,
                               pages=page.count(count), args=args, export_ready=export_ready)

    @app.get("/log/export.csv")
    def log_export() -> Any:
        rows_of = library_function("connector.reconcile.export", "reconciliation_rows")
        write = library_function("connector.reconcile.export", "write_reconciliation")
        if rows_of is None or write is None:
            abort(501, f"{g.t('This capability is not built yet in this version:')} connector.reconcile.export")
        filters = {k: v for k, v in request.args.items() if k in (*LOG_FILTERS, "currency") and v}
        try:
            rows = rows_of(g.store, **filters)
        except TypeError as exc:  # a filter the export does not know: refuse rather than export something else
            abort(400, f"the export does not support these filters: {exc}")
        buffer = io.StringIO()
        write(rows, buffer, "csv")
        with g.store.transaction():
            g.store.audit("desk.export", "reconciliation", {"filters": filters, "format": "csv"})
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=reconciliation.csv"})

    # -- assignments ---------------------------------------------------------------------------------------
    @app.get("/assignments")
    def assignments() -> Any:
        page = page_number()
        with g.store.snapshot():
            total = g.store.desk_assignment_count()
            rows = g.store.desk_assignment_page(limit=page.limit, offset=page.offset)
            limits = g.store.desk_limit_use()
            accounts = g.store.desk_factor_accounts()
            gaps = list(reversed(g.store.factor_gap_rows()))[:100]  # the factor current-account journal, newest first
            settled = settled_after_assignment(g.store, desk_config())  # each with what to tell the factor
        for row in rows:
            row["reason_list"] = _json_list(row["reasons"]) if row["reasons"] else []
        for gap in gaps:
            try:
                detail = json.loads(gap["detail"] or "{}")
            except ValueError:
                detail = {"flagged": [gap["detail"]]}
            gap["notes"] = [*(detail.get("explained") or []), *(detail.get("flagged") or [])] \
                if isinstance(detail, dict) else [str(detail)]
        for item in limits:
            item["use_pct"] = (Decimal(item["used_minor"] * 100) / item["limit_minor"]).quantize(Decimal("1")) \
                if item["limit_minor"] else None
        return render_template("assignments.html", rows=rows, limits=limits, accounts=accounts, gaps=gaps,
                               settled=settled, page=page.number, pages=page.count(total))

    # -- quarantine -------------------------------------------------------------------------------------------
    @app.get("/quarantine")
    def quarantine() -> Any:
        page = page_number()
        status = "resolved" if request.args.get("status") == "resolved" else "open"
        with g.store.snapshot():
            total = g.store.desk_quarantine_count(status)
            rows = g.store.desk_quarantine_page(status, limit=page.limit, offset=page.offset)
        return render_template("quarantine.html", rows=rows, status=status, page=page.number,
                               pages=page.count(total))

    @app.post("/quarantine/<int:entry_id>/retry")
    @requires("retry")
    def quarantine_retry(entry_id: int) -> Any:
        from connector.web.retry import retry_quarantined

        entry = g.store.desk_quarantine_entry(entry_id)
        if entry is None:
            abort(404)
        try:
            outcome = retry_quarantined(g.store, entry)
        except CessioError as exc:
            outcome = f"{g.t('Refused:')} {exc}"
        with g.store.transaction():
            g.store.audit("desk.quarantine_retry", f"quarantine:{entry_id}",
                          {"location": entry["location"], "outcome": outcome})
        flash(outcome, "ok")
        return redirect(url_for("quarantine"))

    # -- dashboard, audit --------------------------------------------------------------------------------------
    @app.get("/dashboard")
    def dashboard() -> Any:
        from connector.web.dashboard import cached_dashboard_parts

        parts = cached_dashboard_parts(g.store, desk_config(), refresh=request.args.get("refresh") == "1")
        return render_template("dashboard.html", parts=parts)

    @app.get("/audit")
    def audit_log() -> Any:
        page = page_number()
        actor = request.args.get("actor", "").strip()
        rows = g.store.desk_audit_page(actor=actor, limit=page.limit, offset=page.offset)
        return render_template("audit.html", rows=rows, actor=actor, page=page.number,
                               pages=page.number + 1 if len(rows) == page.limit else page.number)

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(501)
    def error_page(exc: Any) -> Any:
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    return app
