"""Concurrency: a manual ``cessio reconcile`` while the agent's scheduler reconciles never double-allocates
(issue 9, "the CLI run while the agent runs").

The real agent (``cessio run``) imports statement files from its inbox and reconciles and posts the ledger every
second; at the same time, after every file dropped, an operator runs ``cessio reconcile`` (twice, 0.3 s apart)
and ``cessio statements import`` of the very file the agent is importing. All processes share one store.
Afterwards (one last ``cessio reconcile`` and ``cessio reconcile ledger``) the checks of ``recon.check_store``
hold: every line stored once, no line or invoice over-allocated, no line carrying two live decisions, every
ledger piece balanced and every matched line's cash on the bank account exactly once.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.reliability.harness import child_env
from tests.reliability.recon import build_scenario, check_store, seed_store

pytestmark = pytest.mark.slow

AGENT = {"interval_unit": "seconds", "pull_every_minutes": 1, "inbox_every_minutes": 1,
         "factor_events_every_minutes": 1, "reconcile_every_minutes": 1, "report_cron": "0 0 1 1 *",
         "stop_timeout_seconds": 10}


def write_config(folder):
    lines = ['[store]', 'path = "cessio.db"', '[company]', 'name = "Cessio Demo SAS"', '[inbox]', 'path = "inbox"',
             'min_age_seconds = 0', '[reconciliation]', 'accounts = ["FR7630006000011234567890189"]', '[ledger]',
             'write_back = false', '[agent]']
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in AGENT.items()]
    (folder / "cessio.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "inbox").mkdir(exist_ok=True)


def cessio(folder, *args, wait=True):
    command = [sys.executable, "-m", "connector", "--config", "cessio.toml", "-q", *args]
    if wait:
        return subprocess.run(command, cwd=folder, env=child_env(), capture_output=True, text=True, timeout=300)
    return subprocess.Popen(command, cwd=folder, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def test_manual_reconcile_while_the_agent_reconciles_never_double_allocates(tmp_path):
    built = build_scenario(tmp_path, seed=31, invoices=120, lines=90, files=3)
    seed_store(tmp_path / "cessio.db", built["invoices"])
    write_config(tmp_path)
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen([sys.executable, "-m", "connector", "--config", "cessio.toml", "run"], cwd=tmp_path,
                             env=child_env(PYTHONUNBUFFERED="1"), stdout=subprocess.DEVNULL, stderr=log)
    failures = []
    try:
        for name in built["files"]:
            staged = tmp_path / "in" / name
            (tmp_path / "inbox" / f".{name}.part").write_bytes(staged.read_bytes())
            (tmp_path / "inbox" / f".{name}.part").rename(tmp_path / "inbox" / name)  # the agent sees whole files
            operators = [cessio(tmp_path, "reconcile", wait=False),
                         cessio(tmp_path, "statements", "import", str(staged), wait=False)]
            time.sleep(0.3)
            operators.append(cessio(tmp_path, "reconcile", wait=False))
            for proc in operators:
                _, err = proc.communicate(timeout=300)
                if proc.returncode != 0:
                    failures.append((proc.args[-2:], proc.returncode, err.strip()[-400:]))
        deadline = time.monotonic() + 120
        while any(p.is_file() for p in (tmp_path / "inbox").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # one more scheduled reconcile and ledger run with every file imported
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(60)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(10)
        log.close()
    agent_log = (tmp_path / "agent.log").read_text(errors="replace")
    assert agent.returncode == 0, agent_log[-2000:]
    settle = [cessio(tmp_path, "reconcile"), cessio(tmp_path, "reconcile", "ledger")]
    assert all(done.returncode == 0 for done in settle), [d.stderr for d in settle]
    assert not [p for p in (tmp_path / "inbox").iterdir() if p.is_file()], "the agent left files in its inbox"
    assert not (tmp_path / "inbox" / "rejected").exists() or not any((tmp_path / "inbox" / "rejected").iterdir())
    problems = check_store(tmp_path / "cessio.db", acked_files=set(), acked_runs=set(),
                           expected_lines=built["expected_lines"])
    assert problems == []
    # the one failure allowed is the open bug pinned below (OVERLAP_BUG): a run that lost the race is refused by
    # the store's invariant check ("exceed the line"), which is what keeps the money from being double-allocated
    lost_races = [f for f in failures if f[1] == 3 and "exceed the line" in f[2]]
    import sqlite3

    with sqlite3.connect(tmp_path / "cessio.db") as conn:
        jobs = conn.execute("SELECT job_id, outcome, count(*) FROM job_runs GROUP BY 1, 2").fetchall()
    print(f"agent job runs: {jobs}; {len(lost_races)} manual run(s) lost a race with the agent and were refused "
          "by the invariant check")
    assert [f for f in failures if f not in lost_races] == [], "manual commands failed while the agent worked"
    assert "Traceback" not in agent_log, agent_log[-3000:]
    shutil.rmtree(tmp_path / "in")


# -- two reconcile runs whose read-match-write windows overlap, made certain by a delay after matching ------

RACER = r"""
import json, sys, time
from pathlib import Path
from connector.config import parse_config
from connector.errors import CessioError
from connector.store import Store
import connector.reconcile.engine as engine
matching = engine.run_matching
def slow_matching(*args, **kwargs):  # fault injection: widen the window between the snapshot and the write
    out = matching(*args, **kwargs)
    time.sleep(0.8)
    return out
engine.run_matching = slow_matching
folder = Path(sys.argv[1])
with Store(folder / "cessio.db", actor=sys.argv[2]) as store:
    try:
        summary = engine.run_reconciliation(store, parse_config((folder / "cessio.toml").read_text()))
        print(json.dumps({"ok": True, "written": summary.written, "auto": summary.auto}))
    except CessioError as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}))
"""


_RACES: dict = {}


def overlapping_runs(folder, categories):
    """Two reconcile processes over the same undecided lines at once; returns their outcomes and the checks
    (computed once per category and process: both tests below read the same race)."""
    if categories not in _RACES:
        _RACES[categories] = _race(folder, categories)
    return _RACES[categories]


def _race(folder, categories):
    import json
    from decimal import Decimal

    from connector.reconcile.generator import camt053_bytes, generate
    from connector.reconcile.importing import import_bytes
    from connector.store import Store

    scenario = generate(31, n_invoices=100, n_lines=80)
    lines = [x for x in scenario.statement_lines if categories is None or scenario.truth[x["ref"]].category
             in categories]
    seed_store(folder / "cessio.db", scenario.invoices)
    build_scenario(folder, seed=31, invoices=10, lines=10, files=1)  # writes cessio.toml
    with Store(folder / "cessio.db") as store:
        data = camt053_bytes(lines, account=scenario.account, currency="EUR", opening=Decimal(0), message_id="M1",
                             statement_id="S1", created=scenario.day)
        assert import_bytes(store, data, file_name="s1.xml").error is None
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), f"racer-{n}"], env=child_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err[-1500:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes, check_store(folder / "cessio.db", acked_files=set(), acked_runs=set(), expected_lines=None)


# Fixed: run_reconciliation() used to write decisions taken on a stale snapshot (a false "allocations exceed the
# line" alarm, or a second live set of suggestions). It now checks, under the write lock, that the lines and
# invoices it decided on are as it read them, and matches again from a new snapshot when they are not.


@pytest.mark.parametrize("categories", [None, ("ambiguous", "unknown", "coincidence")], ids=["auto", "suggestions"])
def test_overlapping_reconcile_runs_never_double_allocate(tmp_path, categories):
    _outcomes, problems = overlapping_runs(tmp_path, categories)
    assert [p for p in problems if "allocat" in p or "ledger" in p or "integrity" in p or "audit" in p] == []


@pytest.mark.parametrize("categories", [None, ("ambiguous", "unknown", "coincidence")], ids=["auto", "suggestions"])
def test_overlapping_reconcile_runs_both_finish_without_false_alarm_or_duplicate_suggestions(tmp_path, categories):
    outcomes, problems = overlapping_runs(tmp_path, categories)
    assert all(o["ok"] for o in outcomes), outcomes
    assert problems == []
