"""End-to-end review desk in headless Chromium over a real store and the real desk server on loopback."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from tests.conftest import PROJECT
from tests.web.conftest import export_built, login, review_built, shot

GOOD_INVOICE = PROJECT / "tests" / "fixtures" / "einvoice" / "cii-en16931.xml"

pytestmark = pytest.mark.slow


def test_reviewer_sees_the_queue_with_candidates_and_evidence(desk, page):
    login(page, desk, "alice")
    assert page.get_by_test_id("queue-total").inner_text().startswith("4 ")
    first = page.locator("article.line").first
    assert first.locator("tr.cand").count() == 2
    text = first.inner_text()
    assert "invoice_number_in_text" in text and "remittance" in text and "name_similarity" in text
    assert "1,000.00" in text  # amount formatted per currency, en-GB
    assert page.locator("article.line button.accept").count() == 8  # reviewer: one-click accept on each candidate
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # fits a 1280 px screen
    shot(page, "queue")


def test_queue_in_french_formats_amounts_and_dates(desk, page):
    login(page, desk, "alice")
    page.goto(f"{desk.url}/queue?lang=fr")
    text = page.locator("main").inner_text()
    assert "File de rapprochement" in text and "Accepter" in text
    assert "1\u202f000,00" in text and "nov. 2026" in text
    page.goto(f"{desk.url}/log")  # the choice sticks (cookie)
    assert "Journal de rapprochement" in page.locator("h1").inner_text()


def test_manual_split_shows_live_remaining_amount(desk, page):
    login(page, desk, "alice")
    line = page.locator("article.line").nth(2)  # the line paying two invoices
    line.locator("details.split summary").click()
    remaining = line.get_by_test_id("remaining")
    total = remaining.inner_text()
    amounts = line.locator("input[name=amount]")
    amounts.nth(0).fill("1000,50")
    assert remaining.inner_text() != total
    amounts.nth(0).fill("abc")
    assert remaining.inner_text() == "?"
    amounts.nth(0).fill("")
    assert remaining.inner_text() == total


def test_keyboard_moves_between_lines(desk, page):
    login(page, desk, "alice")
    page.keyboard.press("j")
    assert page.locator("article.line.current").get_attribute("data-line") == str(desk.seeded.lines[1])
    page.keyboard.press("s")
    assert page.locator("article.line.current details.split").get_attribute("open") is not None


@pytest.mark.skipif(not review_built(), reason="connector.reconcile.review (issue 7) is not built yet")
def test_accept_reject_and_split_are_audited_with_the_user(desk, page):
    login(page, desk, "alice")
    lines = desk.seeded.lines
    accept_id, reject_id = desk.seeded.suggestions[lines[0]][0], desk.seeded.suggestions[lines[1]][1]
    page.locator(f"tr[data-allocation='{accept_id}'] button.accept").click()
    page.wait_for_selector(".flash.ok")
    page.locator(f"tr[data-allocation='{reject_id}'] button.reject").click()
    page.wait_for_selector(".flash.ok")
    split_line = page.locator(f"#line-{lines[2]}")
    split_line.locator("details.split summary").click()
    numbers = split_line.locator("input[name=invoice_number]")
    amounts = split_line.locator("input[name=amount]")
    with desk.store() as store:
        line = store.desk_line(lines[2])
        candidates = store.desk_line_allocations([lines[2]])
    first, second = candidates[0], candidates[1]
    numbers.nth(0).fill(first["invoice_number"])
    amounts.nth(0).fill(f"{first['amount_minor'] // 100}.{first['amount_minor'] % 100:02d}")
    rest = line["amount_minor"] - first["amount_minor"]
    numbers.nth(1).fill(second["invoice_number"])
    amounts.nth(1).fill(f"{rest // 100}.{rest % 100:02d}")
    assert split_line.get_by_test_id("remaining").inner_text() == "0.00"
    split_line.locator("form.alloc button[type=submit]").click()
    page.wait_for_selector(".flash.ok")
    shot(page, "queue-after-decisions")

    page.goto(f"{desk.url}/log?status=manual")
    assert page.get_by_test_id("log").locator("tbody tr").count() >= 2
    page.goto(f"{desk.url}/audit?actor=desk:alice")
    events = page.get_by_test_id("audit").inner_text()
    assert "desk:alice" in events and "desk.login" in events
    with desk.store() as store:
        actors = {r["actor"] for r in store.audit_rows(limit=50)}
    assert "desk:alice" in actors
    shot(page, "audit")


@pytest.mark.skipif(not export_built(), reason="connector.reconcile.export (issue 7) is not built yet")
def test_export_is_identical_to_the_cli(desk, page):
    login(page, desk, "alice")
    page.goto(f"{desk.url}/log")
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    web_csv = download.value.path().read_bytes()
    cli = subprocess.run([sys.executable, "-m", "connector", "--db", str(desk.db), "export", "reconciliation",
                          "--format", "csv"], capture_output=True, timeout=60, check=True)
    assert web_csv == cli.stdout
    assert list(csv.reader(io.StringIO(web_csv.decode())))


def test_viewer_cannot_change_anything(desk, page):
    login(page, desk, "victor")
    assert page.locator("button.accept, button.reject, form.alloc").count() == 0
    assert "cannot change" in page.locator("main").inner_text()
    token = page.locator("header form input[name=csrf_token]").input_value()
    allocation = desk.seeded.suggestions[desk.seeded.lines[0]][0]
    response = page.request.post(f"{desk.url}/queue/accept/{allocation}", form={"csrf_token": token})
    assert response.status == 403
    page.goto(f"{desk.url}/quarantine")
    assert page.locator("button", has_text="Re-try").count() == 0
    with desk.store() as store:
        assert store.desk_allocation(allocation)["status"] == "suggested"


def test_form_posted_without_its_csrf_token_is_refused(desk, page):
    login(page, desk, "alice")
    allocation = desk.seeded.suggestions[desk.seeded.lines[0]][0]
    form = page.locator(f"tr[data-allocation='{allocation}'] form").first
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.locator("button").click()
    assert "CSRF" in page.get_by_test_id("error").inner_text()
    page.goto(f"{desk.url}/queue")  # a forged token is refused too
    response = page.request.post(f"{desk.url}/queue/reject/{allocation}", form={"csrf_token": "forged"})
    assert response.status == 400
    with desk.store() as store:
        assert store.desk_allocation(allocation)["status"] == "suggested"


def test_quarantine_retry_after_a_fix(desk, page, tmp_path):
    from connector.ingest import ingest_paths

    broken = tmp_path / "inbox" / "invoice.xml"
    broken.parent.mkdir()
    broken.write_bytes(b"<Invoice><unclosed></Invoice>")
    with desk.store() as store:
        ingest_paths(store, [broken])
    login(page, desk, "alice")
    page.goto(f"{desk.url}/quarantine")
    table = page.get_by_test_id("quarantine")
    assert "invoice.xml" in table.inner_text()
    shot(page, "quarantine")
    broken.write_bytes(GOOD_INVOICE.read_bytes())  # the fix: a valid invoice at the same path
    table.locator("button", has_text="Re-try").click()
    assert "imported" in page.locator(".flash").inner_text()
    assert page.get_by_test_id("quarantine").count() == 0
    with desk.store() as store:
        row = next(r for r in store.audit_rows(limit=20) if r["event"] == "desk.quarantine_retry")
        assert row["actor"] == "desk:alice"


def test_log_assignments_dashboard_pages_render(desk, page):
    login(page, desk, "ada")
    page.goto(f"{desk.url}/log?debtor=Kunde")
    assert "EUR" in page.get_by_test_id("totals").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "log")
    page.goto(f"{desk.url}/assignments")
    assert "F2026-0001" in page.get_by_test_id("assignments").inner_text()
    shot(page, "assignments")
    page.goto(f"{desk.url}/dashboard")
    assert page.locator("figure.card svg").count() >= 4
    shot(page, "dashboard")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
