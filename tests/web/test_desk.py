"""Desk without a browser: users and passwords, sessions and CSRF over real HTTP, formatting, the `serve` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from connector.errors import ConfigError, MoneyError
from connector.reconcile.export import reconciliation_rows
from connector.store import Store
from connector.web import i18n
from connector.web.app import SESSION_COOKIE, parse_amount
from connector.web.auth import authenticate, create_user
from tests.conftest import PROJECT
from tests.web.conftest import PASSWORDS
from tests.web.seeding import seed_volume

TEMPLATES = PROJECT / "connector" / "web" / "templates"


def _login(session: requests.Session, url: str, name: str, password: str | None = None) -> requests.Response:
    form = session.get(f"{url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return session.post(f"{url}/login", data={"csrf_token": token, "username": name,
                                             "password": password or PASSWORDS[name]}, timeout=10)


def test_passwords_are_argon2_hashed_and_checked(store):
    create_user(store, "carol", "reviewer", "a-long-enough-password")
    row = store.desk_user("carol")
    assert row["password_hash"].startswith("$argon2id$") and "a-long-enough-password" not in row["password_hash"]
    assert authenticate(store, "carol", "a-long-enough-password")["role"] == "reviewer"
    assert authenticate(store, "carol", "wrong-password-here") is None
    assert authenticate(store, "nobody", "a-long-enough-password") is None
    with pytest.raises(ConfigError, match="at least 12"):
        create_user(store, "dave", "viewer", "short")
    with pytest.raises(ConfigError, match="role"):
        create_user(store, "dave", "superuser", "a-long-enough-password")
    audit = store.audit_rows(limit=5)
    assert audit[0]["event"] == "desk.user_created" and "argon2" not in audit[0]["payload"]


def test_login_sets_a_strict_httponly_cookie_and_is_audited(desk):
    session = requests.Session()
    response = _login(session, desk.url, "alice")
    assert response.url.endswith("/queue") and response.status_code == 200
    cookie = next(c for c in response.history[0].raw.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert all(v not in response.url for v in session.cookies.values())  # no secret in URLs
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    with desk.store() as store:
        assert store.audit_rows(limit=1)[0]["actor"] == "desk:alice"


def test_wrong_password_is_refused_and_recorded(desk):
    session = requests.Session()
    response = _login(session, desk.url, "alice", "not-her-password")
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert session.get(f"{desk.url}/queue", timeout=10).url.endswith("/login")
    with desk.store() as store:
        assert store.audit_rows(limit=1)[0]["event"] == "desk.login_failed"


def test_every_page_needs_a_login(desk):
    for path in ("/queue", "/log", "/assignments", "/quarantine", "/dashboard", "/audit", "/log/export.csv"):
        response = requests.get(f"{desk.url}{path}", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and response.headers["Location"].endswith("/login"), path
    assert requests.post(f"{desk.url}/queue/accept/1", allow_redirects=False, timeout=10).status_code == 302


def test_login_form_without_csrf_token_is_refused(desk):
    response = requests.post(f"{desk.url}/login", data={"username": "alice", "password": PASSWORDS["alice"]},
                             timeout=10)
    assert response.status_code == 400 and "CSRF" in response.text


def test_logout_ends_the_session_on_the_server(desk):
    session = requests.Session()
    _login(session, desk.url, "alice")
    token = session.cookies[SESSION_COOKIE]
    page = session.get(f"{desk.url}/queue", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    session.post(f"{desk.url}/logout", data={"csrf_token": csrf}, timeout=10)
    replay = requests.get(f"{desk.url}/queue", cookies={SESSION_COOKIE: token}, allow_redirects=False, timeout=10)
    assert replay.status_code == 302  # the stolen-after-logout cookie is worth nothing


def test_queue_and_log_pages_are_paginated(store):
    seeded = seed_volume(store, 1200)  # the realistic generator, imported and matched by the engine
    waiting = len(seeded.lines)
    assert waiting > 100 and store.desk_queue_count() == waiting
    first = store.desk_queue_lines(limit=50, offset=0)
    last = store.desk_queue_lines(limit=50, offset=100)
    assert len(first) == 50 and len(last) == waiting - 100 and first[0]["booking_date"] <= last[-1]["booking_date"]
    assert [r["id"] for r in first + store.desk_queue_lines(limit=50, offset=50) + last] == seeded.lines
    assert len(store.desk_log_page({}, limit=50, offset=0)) == 50
    rows = reconciliation_rows(store)
    for rule in ("reference.exact", "identity.ambiguous_amount"):
        totals = store.desk_log_totals({"rule": rule})
        assert totals[0]["n"] == sum(r["rule"] == rule for r in rows) > 0 and totals[0]["currency"] == "EUR"
    # a date bound every line meets is dropped (no join), a real one is kept: same answers either way
    days = sorted({r["line_date"] for r in rows if r["allocated_amount"]})
    everything = store.desk_log_totals({})
    assert store.desk_log_totals({"date_from": "2000-01-01", "date_to": "2999-12-31"}) == everything
    middle = {"date_from": days[1], "date_to": days[-2], "status": "suggested"}
    expected = sum(r["status"] == "suggested" and days[1] <= r["line_date"] <= days[-2] for r in rows)
    assert store.desk_log_totals(middle)[0]["n"] == expected > 0
    assert len(store.desk_log_page({"status": "suggested"}, limit=50, offset=0)) == 50
    # page and totals in one pass when joins are needed: the same as the two queries
    debtor = next(r["counterparty"] for r in rows if r["counterparty"]).split()[0]
    for joined in (middle, {"debtor": debtor}, {"debtor": debtor, "status": "auto", "amount_min": 10000}):
        assert store.desk_log_page_and_totals(joined, limit=50, offset=10) == (
            store.desk_log_page(joined, limit=50, offset=10), store.desk_log_totals(joined))
    plan = " ".join(str(tuple(r)) for r in store._all(
        "EXPLAIN QUERY PLAN SELECT id FROM statement_lines INDEXED BY desk_lines_waiting "
        "WHERE match_status IN ('open', 'suggested') ORDER BY booking_date, id LIMIT 50"))
    assert "desk_lines_waiting" in plan and "TEMP B-TREE" not in plan


def test_any_page_number_gives_a_page_never_an_error(desk):
    """``?page=`` is typed by people and pasted from old links: garbage is page 1, an enormous number is an
    empty page past the end (it was a 500: the offset overflowed SQLite's 64-bit integers)."""
    session = requests.Session()
    _login(session, desk.url, "alice")
    for path in ("/queue", "/log", "/assignments", "/quarantine", "/audit"):
        for page in ("abc", "-5", "0", "2", str(10 ** 30)):
            response = session.get(f"{desk.url}{path}?page={page}", timeout=20)
            assert response.status_code == 200, (path, page, response.status_code)


@pytest.mark.parametrize(("minor", "currency", "lang", "text"), [
    (123450, "EUR", "en", "1,234.50"), (123450, "EUR", "fr", "1\u202f234,50"), (-1500, "JPY", "en", "-1,500"),
    (1234, "TND", "fr", "1,234"), (5, "EUR", "en", "0.05")])
def test_amounts_have_the_currency_digits(minor, currency, lang, text):
    assert i18n.amount(minor, currency, lang) == text


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("1 234,50", "EUR", 123450), ("1,234.50", "EUR", 123450), ("1234.5", "EUR", 123450), ("1.234,5", "EUR", 123450),
    ("1500", "JPY", 1500), ("0,125", "TND", 125)])
def test_typed_amounts_are_parsed_exactly(typed, currency, minor):
    assert parse_amount(typed, currency).minor_units == minor


@pytest.mark.parametrize("typed", ["abc", "1.234", "1e3", ""])
def test_bad_typed_amounts_are_refused(typed):
    with pytest.raises(MoneyError):
        parse_amount(typed, "EUR" if typed != "1.234" else "JPY")


def test_every_template_text_has_a_french_translation():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'\bt\("([^"]+)"\)', template.read_text()))
        used |= {label for label in re.findall(r'\("\w+", "([^"]+)"\)', template.read_text())}
    missing = sorted(u for u in used if u not in i18n.FRENCH)
    assert not missing, missing


def test_create_user_cli_reads_the_password_from_stdin_not_argv(tmp_path: Path):
    db = tmp_path / "cessio.db"
    env = {k: v for k, v in os.environ.items() if k != "CESSIO_DESK_PASSWORD"}
    done = subprocess.run([sys.executable, "-m", "connector", "--db", str(db), "serve", "--create-user", "erin",
                           "--role", "admin"], input="erin-secret-password\n", capture_output=True, text=True,
                          timeout=60, env=env, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert "erin-secret-password" not in done.stdout + done.stderr
    with Store(db) as store:
        assert authenticate(store, "erin", "erin-secret-password")["role"] == "admin"
    short = subprocess.run([sys.executable, "-m", "connector", "--db", str(db), "serve", "--create-user", "x"],
                           input="short\n", capture_output=True, text=True, timeout=60, env=env, cwd=PROJECT)
    assert short.returncode == 2 and "at least 12" in short.stderr


def test_serve_runs_on_loopback_and_refuses_other_addresses(tmp_path: Path):
    db = tmp_path / "cessio.db"
    refused = subprocess.run([sys.executable, "-m", "connector", "--db", str(db), "serve", "--host", "0.0.0.0"],
                             capture_output=True, text=True, timeout=60, cwd=PROJECT)
    assert refused.returncode == 2 and "not a loopback address" in refused.stderr
    server = subprocess.Popen([sys.executable, "-m", "connector", "--db", str(db), "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert "Sign in" in requests.get(f"{url}login", timeout=10).text
    finally:
        server.terminate()
        server.wait(timeout=20)
