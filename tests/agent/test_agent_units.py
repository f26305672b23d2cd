"""The agent's parts in process: the lock, job planning, failure recording and alerts, the health endpoint."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from connector.agent import Agent, AgentAlreadyRunning, AgentLock
from connector.agent.health import start_health_server
from connector.agent.jobs import JobSpec, capability, plan_jobs
from connector.config import parse_config
from connector.errors import CessioError, ConfigError, NotBuiltYet, RetryLater
from connector.store import Store
from tests.agent.helpers import free_port

BASE = """
[store]
path = "cessio.db"
[inbox]
path = "inbox"
[sources.erp]
type = "csv"
path = "exports"
[factors.sandbox]
[agent]
"""


def test_the_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    db = tmp_path / "cessio.db"
    with AgentLock(db) as lock:
        assert lock.path.name == "cessio.db.agent.lock" and lock.path.parent == tmp_path  # beside, not on, the DB
        with pytest.raises(AgentAlreadyRunning, match="another agent"):
            AgentLock(db).acquire()
    AgentLock(db).acquire().release()  # released: free again


def test_a_killed_holder_does_not_leave_the_lock_stuck(tmp_path):
    db = tmp_path / "cessio.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from connector.agent import AgentLock; "
        f"AgentLock({str(db)!r}).acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AgentAlreadyRunning, match=str(holder.pid)):
            AgentLock(db).acquire()
        holder.kill()
        holder.wait(10)
        AgentLock(db).acquire().release()
    finally:
        holder.kill()
        holder.wait(10)


def test_jobs_are_planned_from_config_with_stable_ids(tmp_path):
    config = parse_config(BASE, path=tmp_path / "cessio.toml")
    ids = [spec.id for spec in plan_jobs(config)]
    assert ids == ["pull:erp", "inbox", "assign:sandbox", "factor-events:sandbox", "reconcile", "ledger", "report"]
    assert ids == [spec.id for spec in plan_jobs(config)]
    describe = {spec.id: spec.describe for spec in plan_jobs(config)}
    assert describe["assign:sandbox"] == "cron 0 9-16 * * mon-fri (Europe/Paris)"
    assert describe["pull:erp"] == "every 15 minutes"


@pytest.mark.parametrize(("line", "key"), [
    ('assign_cron = "61 * * * *"', "agent.assign_cron"),
    ('report_cron = "every morning"', "agent.report_cron"),
    ('timezone = "Mars/Olympus"', "agent.timezone"),
    ("pull_every_minutes = 0", "agent.pull_every_minutes"),
])
def test_a_bad_schedule_is_a_config_error_naming_the_key(tmp_path, line, key):
    config = parse_config(BASE + line + "\n", path=tmp_path / "cessio.toml")
    with pytest.raises(ConfigError, match=key):
        plan_jobs(config)


def test_a_missing_capability_is_not_built_but_a_broken_one_fails():
    with pytest.raises(NotBuiltYet):
        capability("connector.no_such_module:run", "connector.report:no_such_function")
    assert capability("connector.no_such_module:run", "connector.report:compute_kpis").__name__ == "compute_kpis"


def test_failures_are_recorded_with_their_class_and_alert_after_repeats(tmp_path, caplog):
    config = parse_config(BASE + "alert_after_failures = 2\n", path=tmp_path / "cessio.toml")
    agent = Agent(config)
    calls = []

    def flaky(store, cfg):
        calls.append(1)
        if len(calls) <= 3:
            raise RetryLater("factor unreachable")
        return {"done": True}

    spec = JobSpec("flaky", None, "test", flaky)
    with caplog.at_level(logging.INFO, logger="cessio.agent"):
        for _ in range(4):
            agent.execute(spec)
    with Store(tmp_path / "cessio.db") as store:
        history = list(reversed(store.job_runs_of("flaky")))
    assert [r["outcome"] for r in history] == ["failed", "failed", "failed", "ok"]
    assert history[0]["error"] == "RetryLater: factor unreachable"
    assert all(r["duration_ms"] is not None and r["run_id"] for r in history)
    alerts = [r for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert [a.getMessage()[:40] for a in alerts] == ["ALERT: job flaky failed 2 times in a row",
                                                     "ALERT: job flaky failed 3 times in a row"]
    assert agent.health()["status"] == "ok"  # the last run succeeded: the alert is over


def test_health_endpoint_answers_on_loopback_with_503_on_alert(tmp_path):
    state = {"status": "ok", "jobs": {}}
    server = start_health_server(free_port(), lambda: dict(state))
    try:
        host, port = server.server_address
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            assert reply.status == 200 and json.load(reply)["status"] == "ok"
        state["status"] = "alert"
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert failed.value.code == 503
    finally:
        server.shutdown()
        server.server_close()


def test_status_shows_last_run_duration_and_next_run(tmp_path):
    from connector.operations import collect_status, render_status

    config = parse_config(BASE, path=tmp_path / "cessio.toml")
    agent = Agent(config)
    agent.execute(JobSpec("report", None, "cron", lambda store, cfg: {"ok": 1}))
    with Store(tmp_path / "cessio.db") as store:
        session = store.agent_session_started(pid=1, host="h", config_path=None)
        store.publish_schedule([("report", "cron 0 7 * * *", "2026-11-29T06:00:00+00:00")])
        data = collect_status(store, config)
        assert session
    job = next(j for j in data["jobs"] if j["job_id"] == "report")
    assert job["outcome"] == "ok" and job["duration_ms"] is not None
    assert job["next_run"] == "2026-11-29T06:00:00+00:00" and job["trigger"] == "cron 0 7 * * *"
    assert "next 2026-11-29 06:00:00" in render_status(data)


def test_assignment_runs_honour_the_factors_last_cutoff(tmp_path):
    import datetime as dt

    import time_machine

    from connector.agent.jobs import job_assign, parse_cutoffs, past_last_cutoff

    cutoffs = parse_cutoffs(["16:00", "11:30"], key="k")
    assert past_last_cutoff(dt.time(15, 59), cutoffs) is None
    assert past_last_cutoff(dt.time(16, 0), cutoffs) == dt.time(16, 0)
    assert past_last_cutoff(dt.time(23, 0), []) is None
    with pytest.raises(ConfigError, match=r"factors\.sandbox\.cutoff_times"):
        plan_jobs(parse_config(BASE.replace("[factors.sandbox]", '[factors.sandbox]\ncutoff_times = ["4pm"]'),
                               path=tmp_path / "c.toml"))
    config = parse_config(BASE, path=tmp_path / "cessio.toml")  # default cut-off 16:00, Europe/Paris
    with Store(tmp_path / "cessio.db") as store:
        with time_machine.travel(dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC)):  # 16:30 in Paris
            assert "last cut-off 16:00" in job_assign("sandbox")(store, config)["skipped"]
        with time_machine.travel(dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)):  # 09:00 in Paris
            try:
                summary = job_assign("sandbox")(store, config)
            except CessioError:  # before the cut-off it really tries (this config has no factor URL)
                summary = None
            assert summary is None or "skipped" not in summary


def test_a_failing_store_stops_the_agent_but_a_refused_invariant_does_not(tmp_path):
    from connector.errors import InvariantViolation, StoreError

    config = parse_config(BASE, path=tmp_path / "cessio.toml")
    agent = Agent(config)

    def refused(store, cfg):
        raise InvariantViolation("invoice already assigned")

    def disk_full(store, cfg):
        raise StoreError("committing: SQLITE_FULL database or disk is full")

    agent.execute(JobSpec("assign:x", None, "t", refused))
    assert agent.fatal is None and not agent._stop.is_set()
    agent.execute(JobSpec("ledger", None, "t", disk_full))
    assert isinstance(agent.fatal, StoreError) and agent._stop.is_set()


def test_the_inbox_routes_statements_by_content_and_einvoices_to_ingestion(tmp_path):
    """One watched folder: a camt.053 is imported as a statement, an e-invoice is ingested, a broken statement
    is rejected *as a statement*, a young file waits; dropping the same statement again imports nothing."""
    from connector.agent.jobs import job_inbox
    from tests.agent.helpers import write_statement
    from tests.conftest import PROJECT

    folder = tmp_path / "inbox"
    folder.mkdir()
    config = parse_config(BASE.replace('[inbox]\npath = "inbox"', '[inbox]\npath = "inbox"\nmin_age_seconds = 0'),
                          path=tmp_path / "cessio.toml")
    write_statement(folder / "releve-banque.xml", paid=[1, 2])
    (folder / "facture.xml").write_bytes((PROJECT / "tests/fixtures/einvoice/cii-en16931.xml").read_bytes())
    (folder / "truncated-camt.xml").write_bytes(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:'
                                                b'tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>')
    with Store(tmp_path / "cessio.db", actor="test") as store:
        summary = job_inbox(store, config)
        assert summary["statements"]["imported"] == 1 and summary["statements"]["new_lines"] == 3
        assert summary["statements"]["rejected_files"] == ["truncated-camt.xml"]
        assert summary["inbox"]["processed"] == 1 and summary["inbox"]["rejected"] == 0
        assert store.count_statement_lines() == 3 and store.count_invoices() == 1
        assert sorted(p.name for p in (folder / "processed").iterdir()) == ["facture.xml", "releve-banque.xml"]
        error = (folder / "rejected" / "truncated-camt.xml.error.txt").read_text()
        assert "statement" in error and "invoice" not in error
        # the same statement again, as a re-download under another name: taken, nothing imported twice
        write_statement(folder / "releve-banque-bis.xml", paid=[1, 2])
        again = job_inbox(store, config)
        assert again["statements"]["imported"] == 1 and again["statements"]["new_lines"] == 0
        assert store.count_statement_lines() == 3
    young = parse_config(BASE, path=tmp_path / "cessio.toml")  # min_age_seconds 5: a fresh file waits
    write_statement(folder / "fresh.xml", paid=[3])
    with Store(tmp_path / "cessio.db", actor="test") as store:
        summary = job_inbox(store, young)
        assert summary["statements"]["imported"] == 0 and (folder / "fresh.xml").exists()


def test_a_statement_that_crashes_its_reader_is_rejected_and_the_inbox_goes_on(tmp_path, monkeypatch):
    from connector.agent.inbox import import_inbox_statements
    from connector.reconcile import importing
    from tests.agent.helpers import write_statement

    folder = tmp_path / "inbox"
    folder.mkdir()
    write_statement(folder / "a-poison.xml", paid=[1])
    write_statement(folder / "b-good.xml", paid=[2], statement_id="AG-STMT-2")
    real = importing.import_bytes

    def reader(store, data, *, file_name):
        if "poison" in file_name:
            raise ValueError("reader bug")
        return real(store, data, file_name=file_name)

    monkeypatch.setattr(importing, "import_bytes", reader)
    with Store(tmp_path / "cessio.db", actor="test") as store:
        report = import_inbox_statements(store, folder, min_age_seconds=0)
        assert report.rejected == ["a-poison.xml"] and report.imported == ["b-good.xml"]
        assert "ValueError: reader bug" in (folder / "rejected" / "a-poison.xml.error.txt").read_text()
        assert store.count_statement_lines() == 2


def test_a_statement_too_young_for_the_statement_pass_is_not_rejected_by_the_einvoice_pass(tmp_path, monkeypatch):
    """Regression (seen in CI): the statement pass and the e-invoice pass used two clocks, so a statement
    that became old enough while the first pass worked was handed to e-invoice ingestion and rejected as
    "not an invoice". Both passes now judge age at one instant; the slow first pass is simulated."""
    import os
    import time

    from connector.agent import inbox as inbox_module
    from connector.agent.jobs import job_inbox
    from tests.agent.helpers import write_statement

    folder = tmp_path / "inbox"
    folder.mkdir()
    config = parse_config(BASE.replace('[inbox]\npath = "inbox"', '[inbox]\npath = "inbox"\nmin_age_seconds = 1'),
                          path=tmp_path / "cessio.toml")
    write_statement(folder / "releve.xml", paid=[1])
    almost = time.time() - 0.6  # 0.4 s short of the minimum age
    os.utime(folder / "releve.xml", (almost, almost))
    real = inbox_module.import_inbox_statements

    def slow_statement_pass(*args, **kwargs):
        report = real(*args, **kwargs)
        time.sleep(0.8)  # a large statement imported meanwhile: the file is now old enough
        return report

    monkeypatch.setattr(inbox_module, "import_inbox_statements", slow_statement_pass)
    with Store(tmp_path / "cessio.db", actor="test") as store:
        summary = job_inbox(store, config)
    assert summary["inbox"]["rejected"] == 0, summary
    assert (folder / "releve.xml").exists()  # waits for the next run, which imports it as a statement
