"""The ERP's status in eligibility: paid, cancelled, credited and partly paid invoices are never assigned, and an
invoice the ERP settles after its assignment is held (not yet sent) or surfaced (already with the factor)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from connector.factors.eligibility import REASONS, Candidate, DebtorLimit, Portfolio, decide
from connector.factors.engine import decide_and_claim, render_report
from connector.factors.profile import FactorProfile
from connector.money import Money
from tests.factories import make_invoice
from tests.helpers import run_cessio

TODAY = dt.date(2026, 11, 20)
PROFILE = FactorProfile(name="f", concentration_floor=Decimal("0"), concentration_limit=Decimal("1"),
                        require_limit=False)
LIMIT = DebtorLimit("approved", Money.parse("10000.00", "EUR"))


def codes(invoice=None, **facts) -> list[str]:
    return decide(Candidate(invoice or make_invoice(), **facts), LIMIT, Portfolio(), PROFILE, TODAY).codes


def test_the_reason_codes_are_stable():
    for code in ("ERP_PAID", "ERP_CANCELLED", "ERP_CREDITED", "PARTLY_PAID"):
        assert REASONS.get(code)


@pytest.mark.parametrize("status, expected", [
    ("paid", ["ERP_PAID"]),
    ("cancelled", ["ERP_CANCELLED"]),
    ("credited", ["ERP_CREDITED"]),
    ("partially_paid", ["PARTLY_PAID"]),
    ("open", []),
    (None, []),
    ("partially_credited", []),  # the credit note naming it is netted instead (see test_eligibility)
])
def test_erp_status_of_the_document(status, expected):
    assert codes(make_invoice(erp_status=status)) == expected


def test_a_paid_invoice_owing_nothing_is_not_reported_as_credited():
    """Tryton and the CSV exports say paid with an amount due of zero: the reason is the payment, and the
    decision must not claim a credit note cancelled it."""
    paid = make_invoice(erp_status="paid", amount_due=Money.zero("EUR"))
    assert codes(paid) == ["ERP_PAID"]
    assert codes(make_invoice(amount_due=Money.zero("EUR"))) == ["FULLY_CREDITED"]


def test_the_status_the_store_holds_now_wins_over_the_documents_copy():
    assert codes(make_invoice(erp_status="open"), erp_status="paid") == ["ERP_PAID"]
    assert codes(make_invoice(erp_status="cancelled"), erp_status="open") == []  # re-opened in the ERP


def test_every_other_reason_is_still_listed():
    overdue_and_paid = make_invoice(erp_status="paid", due=dt.date(2026, 11, 1))
    assert codes(overdue_and_paid) == ["ERP_PAID", "OVERDUE"]


# -- the engine feeds the store's status ------------------------------------------------------------------

def _save(store, *invoices):
    with store.transaction():
        return [store.save_invoice(invoice).invoice_id for invoice in invoices]


def _fresh(number: str, **changes):
    from connector.clock import today

    issue = today() - dt.timedelta(days=5)
    return make_invoice(number, issue=issue, due=issue + dt.timedelta(days=40), erp_status="open", **changes)


def test_engine_uses_the_erp_status_column_not_the_stored_document(store):
    _save(store, _fresh("F-1"), _fresh("F-2"))
    with store.transaction():  # a status-only change, as a pull records it: no new invoice version
        store.set_erp_status(_fresh("F-2").invoice_key, "paid")
    assert store.invoice_row(2)["current_version"] == 1
    report = decide_and_claim(store, PROFILE, dry_run=True)
    verdicts = {row["number"]: decision.codes for row, decision in report.decisions}
    assert verdicts == {"F-1": [], "F-2": ["ERP_PAID"]}
    claimed = decide_and_claim(store, PROFILE)
    assert claimed.claimed == 1
    assert [a["invoice_key"] for a in store.assignment_rows()] == [_fresh("F-1").invoice_key]
    reasons = json.loads(store.last_decision(2, "f")["reasons"])
    assert [r["code"] for r in reasons] == ["ERP_PAID"]


def test_a_cancelled_credit_note_nets_nothing(store):
    invoice = _fresh("F-1")
    note = dataclasses.replace(_fresh("AV-1", kind="credit_note", type_code="381"),
                               preceding_invoices=("F-1",))
    _save(store, invoice, note)
    assert decide_and_claim(store, PROFILE, dry_run=True).decisions[0][1].codes == ["FULLY_CREDITED"]
    with store.transaction():
        store.set_erp_status(note.invoice_key, "cancelled")
    assert decide_and_claim(store, PROFILE, dry_run=True).decisions[0][1].codes == []


def test_a_claim_the_erp_settles_before_it_is_sent_is_held(store):
    _save(store, _fresh("F-1"))
    decide_and_claim(store, PROFILE)
    with store.transaction():
        store.set_erp_status(_fresh("F-1").invoice_key, "cancelled")
    report = decide_and_claim(store, PROFILE)
    assert report.held_settled == [_fresh("F-1").invoice_key]
    assert store.outbox_counts("f") == {"hold": 1}
    assert "HOLD (the ERP reports it paid or cancelled" in "\n".join(render_report(report, dry_run=False))
    events = [r["event"] for r in store.audit_rows(entity=f"assignment:{store.assignment_rows()[0]['id']}")]
    assert "assignment.hold" in events


def _send(store, factor: str = "f") -> None:
    """The factor acknowledged the batch (what the outbox records after a successful send)."""
    batch = store.claim_batch(factor, "api", batch_size=50, lease_seconds=60)
    store.finish_batch(batch["id"], "sent", remote_ids={i["idempotency_key"]: f"R{i['id']}" for i in batch["items"]})


@pytest.mark.parametrize("mode, status, action", [
    ("notified", "paid", "indirect payment"),
    ("confidential", "paid", "report the collection"),
    ("notified", "cancelled", "cancel the assignment"),
])
def test_an_assigned_invoice_the_erp_settles_later_is_surfaced_and_audited_once(store, mode, status, action):
    profile = dataclasses.replace(PROFILE, mode=mode)
    _save(store, _fresh("F-1"), _fresh("F-2"))
    decide_and_claim(store, profile)
    _send(store)
    with store.transaction():
        store.set_erp_status(_fresh("F-2").invoice_key, status)
    dry = decide_and_claim(store, profile, dry_run=True)
    assert len(dry.erp_settled) == 1
    assert not [r for r in store.audit_rows(limit=1000) if r["event"] == "assignment.erp_settled"]  # dry run

    report = decide_and_claim(store, profile)
    assert len(report.erp_settled) == 1 and report.erp_settled[0].startswith(f"F-2 ({status}, assignment sent)")
    assert action in report.erp_settled[0]
    text = "\n".join(render_report(report, dry_run=False))
    assert "SETTLED IN THE ERP AFTER ASSIGNMENT" in text and "F-2" in text
    flagged = [r for r in store.audit_rows(limit=1000) if r["event"] == "assignment.erp_settled"]
    assert len(flagged) == 1
    payload = json.loads(flagged[0]["payload"])
    assert (payload["erp_status"], payload["factor"]) == (status, "f") and action in payload["action"]
    decide_and_claim(store, profile)  # still listed, not audited twice
    assert len([r for r in store.audit_rows(limit=1000) if r["event"] == "assignment.erp_settled"]) == 1
    assert store.verify_audit().ok
    # `cessio status` lists it too, with the same advice, until the factor's own events close it
    from types import SimpleNamespace

    from connector.factors import factor_positions

    [position] = factor_positions(store, SimpleNamespace(factors={"f": {"mode": mode}}))
    [line] = position["settled in the ERP after assignment"]
    assert line.startswith(f"F-2 ({status}, assignment sent)") and action in line


def test_an_assigned_invoice_the_factor_already_collected_is_not_surfaced(store):
    _save(store, _fresh("F-1"))
    decide_and_claim(store, PROFILE)
    _send(store)
    with store.transaction():
        store.set_financing_state(1, "collected")
        store.set_erp_status(_fresh("F-1").invoice_key, "paid")
    assert decide_and_claim(store, PROFILE).erp_settled == []


# -- end to end: a CSV source, a second export that says paid, `cessio assign` ---------------------------------

HEADER = ("invoice_number,issue_date,due_date,currency,total,open_amount,net,vat,type,status,customer_id,customer,"
          "customer_vat,customer_siren,customer_country,customer_street,customer_postcode,customer_city,order,"
          "credits_invoice,payment_ref")


def _export(path: Path, statuses: dict[str, tuple[str, str]]) -> None:
    issue = dt.date.today() - dt.timedelta(days=5)
    due = issue + dt.timedelta(days=45)
    rows = [HEADER]
    for number, (status, open_amount) in statuses.items():
        rows.append(f"{number},{issue},{due},EUR,1200.00,{open_amount},1000.00,200.00,INV,{status},C001,"
                    f"ACME Industrie SA,FR96552100554,552100554,FR,12 rue de la Paix,75002,Paris,,,")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _cessio(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_cessio("--config", str(config), *args, cwd=config.parent)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("status, open_amount, code", [
    ("paid", "0.00", "ERP_PAID"),              # a new version (the open amount moved) and a status change
    ("cancelled", "1200.00", "ERP_CANCELLED"),  # a status change alone: no new version of the invoice
])
def test_csv_pull_then_settled_in_a_second_export_is_not_assigned(tmp_path: Path, status, open_amount, code):
    exports = tmp_path / "exports"
    exports.mkdir()
    _export(exports / "ventes.csv", {"FA-100": ("open", "1200.00"), "FA-101": ("open", "1200.00")})
    config = tmp_path / "cessio.toml"
    config.write_text(f'''
[store]
path = "{tmp_path / 'cessio.db'}"

[company]
name = "Cessio Demo SAS"
legal_id = "732829320"

[sources.erp]
type = "csv"
path = "{exports}"
mapping = "generic"

[factors.f]
base_url = "http://127.0.0.1:9/v1"
token = "env:CESSIO_TEST_FACTOR_TOKEN"
require_limit = false
concentration_limit = "1"
''', encoding="utf-8")
    first = _cessio(config, "pull")
    assert "2 new" in first.stdout
    # the next export from the ERP: FA-101 was paid directly to the company
    _export(exports / "ventes.csv", {"FA-100": ("open", "1200.00"), "FA-101": (status, open_amount)})
    second = _cessio(config, "pull")
    assert "1 status changes" in second.stdout
    dry = _cessio(config, "assign", "--dry-run").stdout
    blocks = dry.split("\n  FA-")
    paid = next(b for b in blocks if b.startswith("101"))
    assert "not eligible" in paid and f"{code}: {REASONS[code]}" in paid
    assert "FULLY_CREDITED" not in paid
    fresh = next(b for b in blocks if b.startswith("100"))
    assert ": eligible" in fresh

    from connector.store import Store

    # what `cessio assign` would claim (the engine function it calls; no factor is reachable in this test)
    with Store(tmp_path / "cessio.db") as store:
        profile = FactorProfile(name="f", require_limit=False, concentration_limit=Decimal("1"))
        report = decide_and_claim(store, profile)
        assert report.claimed == 1
        assert [a["invoice_key"].rsplit("|", 1)[1] for a in store.assignment_rows()] == ["FA-100"]
        row = next(r for r in store.invoice_rows() if r["number"] == "FA-101")
        assert row["erp_status"] == status and row["financing_state"] == "ineligible"
        reasons = json.loads(store.last_decision(row["id"], "f")["reasons"])
        assert [r["code"] for r in reasons] == [code]


def test_the_review_desk_lists_what_to_tell_the_factor(store):
    """Finance staff see the invoices the ERP settled after assignment on the desk's Assignments page, with the
    action, and whether the assignment run already recorded it (the desk itself writes nothing)."""
    import requests

    from connector.web.auth import create_user
    from tests.web.conftest import PASSWORDS, serve_desk
    from tests.web.test_desk import _login

    _save(store, _fresh("F-1"), _fresh("F-2"))
    decide_and_claim(store, PROFILE)
    _send(store)
    with store.transaction():
        store.set_erp_status(_fresh("F-2").invoice_key, "paid")
    create_user(store, "alice", "reviewer", PASSWORDS["alice"])

    def settled_table(served, lang: str = "en") -> str:
        with requests.Session() as session:
            assert _login(session, served.url, "alice").ok
            page = session.get(f"{served.url}/assignments", params={"lang": lang}, timeout=10).text
        return page.split('data-testid="settled"', 1)[1].split("</table>", 1)[0]

    with serve_desk(store.path) as served:
        table = settled_table(served)
        assert "F-2" in table and "F-1" not in table and "indirect payment" in table
        assert "at the next assignment run" in table
        decide_and_claim(store, PROFILE)  # the run records it once in the audit log
        assert "in the audit log" in settled_table(served)
        assert "paiement indirect" in settled_table(served, "fr")
    rows = store.audit_rows(limit=10_000)
    assert sum(r["event"] == "assignment.erp_settled" for r in rows) == 1
    assert {r["event"] for r in rows if r["actor"].startswith("desk:")} == {"desk.login"}  # reading writes nothing
