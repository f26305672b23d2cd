"""``cessio run`` as a real subprocess: files flow through, signals, the single-agent lock, crash and restart."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.request

import pytest

from tests.agent.helpers import (
    AgentProcess,
    free_port,
    invoice_numbers,
    invoice_total,
    reconciliation,
    runs,
    signal_when,
    stored_invoices_now,
    wait_for,
    with_store,
    write_config,
    write_export,
    write_statement,
)
from tests.conftest import PROJECT

EINVOICE = PROJECT / "tests" / "fixtures" / "einvoice" / "cii-en16931.xml"

STOP_BOUND_SECONDS = 8  # stop_timeout_seconds (5) + interpreter shutdown, with margin for a loaded CI box


@pytest.fixture
def agent_folder(tmp_path):
    write_config(tmp_path, agent={"health_port": free_port()})
    return tmp_path


def receipts(folder) -> set[str]:
    """Pieces of the bank journal (customer receipts) posted by the ledger job."""
    return {r["piece_ref"] for r in with_store(folder, lambda s: s.ledger_rows()) if r["journal"] == "BQ"}


@pytest.fixture
def sandbox_factor(tmp_path):
    """The sandbox factor on loopback (own SQLite state), as `cessio sandbox-factor` serves it."""
    from connector.clock import today
    from connector.sandbox import start_in_thread

    server = start_in_thread(data=tmp_path / "sandbox-factor.db", start=today())
    yield server
    server.shutdown()
    server.server_close()
    server.book.close()


def test_files_flow_through_to_assignments_and_reconciliation_then_sigterm_exits_cleanly(tmp_path, sandbox_factor):
    folder = tmp_path / "agent"
    folder.mkdir()
    write_config(folder, agent={"health_port": free_port()}, factor_url=sandbox_factor.url, inbox=True)
    first = write_export(folder / "exports" / "2026-11-01.csv", 1, 5)
    shutil.copy(EINVOICE, folder / "inbox" / "supplier-portal-cii.xml")
    agent = AgentProcess(folder, "--log-format", "json")
    try:
        wait_for(lambda: len(invoice_numbers(folder)) == 6, 30, "the export and the e-invoice to be stored")
        second = write_export(folder / "exports" / "2026-11-02.csv", 100, 3)  # dropped while it runs
        wait_for(lambda: len(invoice_numbers(folder)) == 9, 30, "the file dropped later to be pulled")
        assert sorted(n for n in invoice_numbers(folder) if n.startswith("AG-")) == sorted(first + second)
        assert (folder / "inbox" / "processed" / "supplier-portal-cii.xml").exists()

        # assignments: the factor grants the limits, then every CSV invoice is sent, accepted, funded...
        def assigned() -> set[str]:
            rows = with_store(folder, lambda s: s.assignment_rows("sandbox"))
            return {r["invoice_key"].rsplit("|", 1)[-1] for r in rows
                    if r["kind"] == "assignment" and r["state"] not in ("claimed", "hold")}
        wait_for(lambda: set(first + second) <= assigned(), 60,
                 "the CSV invoices to be assigned to the sandbox factor")

        # a bank statement dropped into the same inbox is imported as a statement, matched and posted
        write_statement(folder / "inbox" / "bank-2026-11-20.xml", paid=[1, 2, 100])
        wait_for(lambda: sum(r["status"] == "auto" for r in reconciliation(folder)) == 3, 40,
                 "the statement's payments to be reconciled")
        log = reconciliation(folder)
        assert {(r["invoice_number"], r["allocated_amount"]) for r in log if r["status"] == "auto"} == {
            ("AG-000001", str(invoice_total(1))), ("AG-000002", str(invoice_total(2))),
            ("AG-000100", str(invoice_total(100)))}
        assert [r["status"] for r in log if r["invoice_number"] in (None, "")] == ["unmatched"]  # the unknown payer
        assert (folder / "inbox" / "processed" / "bank-2026-11-20.xml").exists()
        assert not list((folder / "inbox" / "rejected").glob("bank-*"))  # never taken for a broken invoice
        wait_for(lambda: len(receipts(folder)) >= 3, 30, "the receipts to be posted to the ledger")
        # the same statement again (a re-download): nothing imported twice, nothing matched twice
        write_statement(folder / "inbox" / "bank-2026-11-20-again.xml", paid=[1, 2, 100])
        wait_for(lambda: (folder / "inbox" / "processed" / "bank-2026-11-20-again.xml").exists(), 20,
                 "the re-download to be taken")
        assert with_store(folder, lambda s: s.count_statement_lines()) == 4
        wait_for(lambda: len(runs(folder, "pull:erp")) >= 3, 20, "several pull runs")

        started = time.monotonic()
        agent.signal(signal.SIGTERM)
        code = agent.wait(STOP_BOUND_SECONDS)
        elapsed = time.monotonic() - started
    finally:
        agent.stop()
    assert code == 0, agent.log
    assert elapsed < STOP_BOUND_SECONDS
    assert "agent stopped cleanly" in agent.log
    # every run was finished and recorded; none left open; the session closed as "stopped"
    pulls = runs(folder, "pull:erp")
    assert all(r["outcome"] == "ok" for r in pulls), pulls
    assert with_store(folder, lambda s: s.last_agent_session()["outcome"]) == "stopped"
    # every capability is built now: each job ran and succeeded
    for job_id in ("inbox", "assign:sandbox", "factor-events:sandbox", "reconcile", "ledger", "report"):
        outcomes = {r["outcome"] for r in runs(folder, job_id)}
        assert outcomes and outcomes <= {"ok", "skipped"}, (job_id, outcomes)
    ledger = with_store(folder, lambda s: s.ledger_rows())
    assert sum(r["debit_minor"] for r in ledger) == sum(r["credit_minor"] for r in ledger)
    assert len(receipts(folder)) == 3  # each receipt posted once (bank journal)
    assert any(r["journal"] == "FACT" for r in ledger)  # and the factor's movements (fundings, fees)
    assert with_store(folder, lambda s: s.verify_audit().ok)
    # the daily report job wrote its HTML file
    assert list((folder / "reports").glob("report-*.html"))
    # JSON logs: one object per line; each job line carries the run id recorded in job_runs
    entries = [json.loads(line) for line in agent.log.splitlines() if line.strip()]
    job_lines = [e for e in entries if e.get("job") == "pull:erp"]
    assert job_lines and all(e["run_id"] in {r["run_id"] for r in pulls} for e in job_lines)


def test_second_agent_on_the_same_store_is_refused(agent_folder):
    first = AgentProcess(agent_folder)
    try:
        wait_for(lambda: runs(agent_folder, "report"), 20, "the first agent to run")
        second = AgentProcess(agent_folder)
        code = second.wait(20)
        assert code == 3, second.log
        assert "another agent" in second.log and str(first.proc.pid) in second.log
        assert first.proc.poll() is None  # the first one is unaffected
    finally:
        first.signal(signal.SIGTERM)
        first.wait(STOP_BOUND_SECONDS)
        first.stop()


def test_sigkill_then_restart_resumes_with_nothing_lost_or_doubled(tmp_path):
    agent_folder = tmp_path
    write_config(agent_folder, inbox=True)
    numbers = write_export(agent_folder / "exports" / "big.csv", 1, 3000)
    paid = list(range(1, 3001, 75))  # 40 payments, of invoices early and late in the export
    write_statement(agent_folder / "inbox" / "bank.xml", paid=paid)
    agent = AgentProcess(agent_folder)
    try:
        # kill it while the pull is committing batches (some invoices stored, not all)
        signal_when(agent, lambda: 0 < stored_invoices_now(agent_folder) < 3000, signal.SIGKILL, 60,
                    "the pull to be half-way")
    finally:
        agent.stop()
    partial = len(invoice_numbers(agent_folder))
    assert 0 < partial < 3000
    assert any(r["outcome"] is None for r in runs(agent_folder, "pull:erp"))  # the run the kill cut short

    restarted = AgentProcess(agent_folder)  # the kernel released the flock: the lock is not stuck
    try:
        wait_for(lambda: len(invoice_numbers(agent_folder)) == 3000, 60, "the pull to finish after restart")
        wait_for(lambda: any(r["outcome"] == "ok" for r in runs(agent_folder, "pull:erp")), 20, "a clean pull run")
        # payments that arrived before their invoice was pulled are matched once it is there
        wait_for(lambda: sum(r["status"] == "auto" for r in reconciliation(agent_folder)) == len(paid), 40,
                 "every payment to be reconciled")
        wait_for(lambda: len(receipts(agent_folder)) == len(paid), 30, "every receipt to be posted")
    finally:
        restarted.signal(signal.SIGTERM)
        restarted.wait(STOP_BOUND_SECONDS)
        restarted.stop()
    assert sorted(invoice_numbers(agent_folder)) == sorted(numbers)  # none lost, none twice
    # the statement: imported once, each payment allocated once, each receipt posted once
    assert with_store(agent_folder, lambda s: s.count_statement_lines()) == len(paid) + 1
    auto = sorted(r["invoice_number"] for r in reconciliation(agent_folder) if r["status"] == "auto")
    assert auto == sorted(f"AG-{n:06d}" for n in paid)
    ledger = with_store(agent_folder, lambda s: s.ledger_rows())
    assert len(receipts(agent_folder)) == len(paid)
    assert sum(r["debit_minor"] for r in ledger) == sum(r["credit_minor"] for r in ledger)
    assert with_store(agent_folder, lambda s: s.count_audit_events("invoice.created")) == 3000
    outcomes = [r["outcome"] for r in runs(agent_folder, "pull:erp")]
    assert "interrupted" in outcomes and None not in outcomes
    sessions = with_store(agent_folder, lambda s: s.agent_sessions())
    assert [r["outcome"] for r in sessions] == ["crashed", "stopped"]
    assert with_store(agent_folder, lambda s: s.verify_audit().ok)


def test_sighup_with_a_broken_config_keeps_the_old_one(agent_folder):
    config = agent_folder / "cessio.toml"
    port = int(next(line for line in config.read_text().splitlines() if line.startswith("health_port")).split()[-1])
    agent = AgentProcess(agent_folder)
    try:
        wait_for(lambda: runs(agent_folder, "pull:erp"), 20, "the agent to run")
        good = config.read_text()
        config.write_text(good.replace("[agent]", "[agent]\nno_such_key = 1"), encoding="utf-8")
        agent.signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in agent.log, 10, "the refusal to be logged")
        assert "no_such_key" in agent.log
        # still alive and still working on the old configuration
        before = len(runs(agent_folder, "pull:erp"))
        wait_for(lambda: len(runs(agent_folder, "pull:erp")) > before + 1, 10, "pulls to go on")
        assert agent.proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            health = json.load(reply)
        assert health["status"] == "ok" and health["pid"] == agent.proc.pid

        # a valid change is applied: the pull job disappears when the source is disabled
        config.write_text(good.replace('path = "exports"', 'path = "exports"\nenabled = false'), encoding="utf-8")
        agent.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in agent.log, 10, "the reload")
        wait_for(lambda: "pull:erp" not in {r["job_id"] for r in with_store(agent_folder,
                                                                             lambda s: s.published_schedule())},
                 10, "the schedule without the pull job")
        assert with_store(agent_folder, lambda s: s.count_audit_events("agent.config_refused")) == 1
        assert with_store(agent_folder, lambda s: s.count_audit_events("agent.config_reloaded")) == 1
    finally:
        agent.signal(signal.SIGTERM)
        code = agent.wait(STOP_BOUND_SECONDS)
        agent.stop()
    assert code == 0


@pytest.mark.parametrize(("stop_timeout", "rows"), [(30, 1500), (1, 20000)], ids=["job-finishes", "bound-reached"])
def test_sigterm_during_a_job_waits_for_it_within_the_bound(tmp_path, stop_timeout, rows):
    write_config(tmp_path, agent={"stop_timeout_seconds": stop_timeout})
    numbers = write_export(tmp_path / "exports" / "big.csv", 1, rows)
    agent = AgentProcess(tmp_path)
    try:
        signal_when(agent, lambda: 0 < stored_invoices_now(tmp_path) < rows, signal.SIGTERM, 60,
                    "the pull to be under way")
        started = time.monotonic()
        code = agent.wait(stop_timeout + 10)
        elapsed = time.monotonic() - started
    finally:
        agent.stop()
    pulls = runs(tmp_path, "pull:erp")
    if stop_timeout == 30:  # the running pull finished its work, then the agent exited cleanly
        assert code == 0, agent.log
        assert sorted(invoice_numbers(tmp_path)) == sorted(numbers)
        assert pulls[0]["outcome"] == "ok"
    else:  # the bound was reached: exit 1 at once, the open transaction rolled back, the run left open
        assert code == 1, agent.log
        assert elapsed < stop_timeout + 4
        assert "still running after 1s" in agent.log
        assert 0 < len(invoice_numbers(tmp_path)) < rows
        assert pulls[0]["outcome"] is None
        assert with_store(tmp_path, lambda s: s.integrity_check()) == []
