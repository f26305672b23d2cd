"""Run ``cessio run`` as a real subprocess against a temporary folder (no doubles: real store, real files)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.store import Store

BANK_IBAN = "FR7630006000011234567890189"
TOKEN_ENV = "CESSIO_TEST_FACTOR_TOKEN"
os.environ.setdefault(TOKEN_ENV, "test-token-not-a-secret")
# valid SIRENs (Luhn): identified debtors, so the factor can grant limits and take the invoices
SIRENS = ("303265045", "443061841", "542051180", "552100554", "552081317", "542107651", "775670417")

HEADER = ("invoice_number,issue_date,due_date,currency,total,open_amount,net,vat,type,status,customer_id,customer,"
          "customer_vat,customer_siren,customer_country,customer_street,customer_postcode,customer_city,order,"
          "credits_invoice,payment_ref")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_export(path: Path, first: int, count: int) -> list[str]:
    """A generic-mapping CSV export of ``count`` invoices numbered from ``first``; returns the numbers."""
    numbers, rows = [], [HEADER]
    # dates relative to today: the agent decides eligibility on the real clock (not overdue, not too old)
    issued, due = dt.date.today() - dt.timedelta(days=5), dt.date.today() + dt.timedelta(days=55)
    for n in range(first, first + count):
        number = f"AG-{n:06d}"
        numbers.append(number)
        cents = 10_000 + n * 37 % 900_000
        total = f"{cents // 100}.{cents % 100:02d}"
        rows.append(f"{number},{issued},{due},EUR,{total},{total},,,INV,open,C{n % 7},"
                    f"Client {n % 7} SARL,,{SIRENS[n % 7]},FR,,,,,,")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    tmp.rename(path)  # the agent never sees half a file
    return numbers


def invoice_total(n: int) -> Decimal:
    """The total of invoice ``AG-<n>`` as :func:`write_export` writes it."""
    cents = 10_000 + n * 37 % 900_000
    return Decimal(cents).scaleb(-2)


def write_statement(path: Path, paid: list[int], *, unknown: int = 1, day: str = "2026-11-20",
                    statement_id: str = "AG-STMT-1") -> None:
    """A camt.053 of the company's bank account: one payment per invoice number in ``paid`` (named in the
    remittance, for its full amount) plus ``unknown`` payments nobody can place; written then renamed."""
    from connector.reconcile.generator import camt053_bytes

    date = dt.date.fromisoformat(day)
    lines = [{"ref": f"PAY-{n:06d}", "amount": invoice_total(n), "currency": "EUR", "name": f"Client {n % 7} SARL",
              "text": f"Facture AG-{n:06d}", "date": date, "code": "PMNT/RCDT/ESCT"} for n in paid]
    lines += [{"ref": f"UNK-{k:04d}", "amount": Decimal("77.77") + k, "currency": "EUR", "name": "INCONNU SAS",
               "text": "divers", "date": date, "code": "PMNT/RCDT/ESCT"} for k in range(unknown)]
    data = camt053_bytes(lines, account=BANK_IBAN, currency="EUR", opening=Decimal("1000.00"),
                         message_id=statement_id, statement_id=statement_id, created=date)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


def write_config(folder: Path, *, agent: dict[str, Any] | None = None, extra: str = "", factor_url: str | None = None,
                 inbox: bool = False) -> Path:
    """The agent's config in ``folder``; ``factor_url`` adds the sandbox factor, ``inbox`` the watched folder
    (``inbox/``, files taken at once) and the company's bank account for reconciliation."""
    settings = {"interval_unit": "seconds", "pull_every_minutes": 1, "inbox_every_minutes": 1,
                "factor_events_every_minutes": 1, "reconcile_every_minutes": 1, "assign_cron": "* * * * * *",
                "report_cron": "*/2 * * * * *", "stop_timeout_seconds": 5} | (agent or {})
    lines = ['[store]', 'path = "cessio.db"', '[company]', 'name = "Cessio Test SAS"', 'legal_id = "732829320"',
             'vat_id = "FR44732829320"', '[sources.erp]', 'type = "csv"', 'path = "exports"',
             'batch_rows = 100']
    if inbox:
        lines += ['[inbox]', 'path = "inbox"', 'min_age_seconds = 0', '[reconciliation]', f'accounts = ["{BANK_IBAN}"]']
        (folder / "inbox").mkdir(exist_ok=True)
    if factor_url:
        lines += ['[factors.sandbox]', f'base_url = "{factor_url}/v1"', f'token = "env:{TOKEN_ENV}"',
                  'concentration_limit = "1"', 'default_limit_request = "10000000"', 'read_timeout = "5"',
                  'deadline = "20"']
    lines.append('[agent]')
    for key, value in settings.items():
        lines.append(f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {value}")
    (folder / "exports").mkdir(exist_ok=True)
    path = folder / "cessio.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


class AgentProcess:
    """``python -m connector --config cessio.toml run`` in ``folder``, stderr captured to a file."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.log_path = folder / f"agent-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "connector", "--config", "cessio.toml", *args, "run"],
                                     cwd=folder, stdout=subprocess.DEVNULL, stderr=self._log, env=env)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it is truthy; on time-out the error shows the last value it gave."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {value!r})")


def signal_when(agent: AgentProcess, predicate: Callable[[], Any], sig: signal.Signals, timeout: float, what: str,
                run_slice: float = 0.01) -> Any:
    """Send ``sig`` to ``agent`` in a state where ``predicate`` holds, without racing it.

    The agent is frozen (SIGSTOP) while the predicate looks at the store, and the signal is sent before it
    runs on (SIGCONT), so the state it gets the signal in is the state that was looked at; between looks it
    runs for ``run_slice`` seconds only, so a fast machine cannot carry it through the whole window between
    two looks (a 1,500-row pull takes 0.2 s; one look through a fresh Store took 0.36 s: the CI flake of a
    plain poll-then-signal). The predicate must not wait on a lock: the frozen agent may hold one.
    """
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        agent.signal(signal.SIGSTOP)
        try:
            value = predicate()
            if value:
                agent.signal(sig)  # SIGKILL acts on a stopped process; others wait for the SIGCONT below
                if sig == signal.SIGKILL:
                    agent.wait(10)
                return value
        finally:
            if agent.proc.poll() is None:
                agent.signal(signal.SIGCONT)
        if agent.proc.poll() is not None:
            break
        time.sleep(run_slice)
    raise AssertionError(f"gave up after {timeout}s waiting for {what} (last value {value!r}, agent exit "
                         f"{agent.proc.poll()})\n--- agent log (tail) ---\n{agent.log[-4000:]}")


def stored_invoices_now(folder: Path) -> int:
    """How many invoices the agent's store holds, for :func:`signal_when`: read through a read-only
    connection that gives up at once on a lock (the frozen agent may hold one while it creates the store,
    and a Store would wait for it, set the journal mode or migrate); 0 until the schema is there."""
    path = folder / "cessio.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)) as conn:
            return conn.execute("SELECT count(*) FROM invoices").fetchone()[0]
    except sqlite3.OperationalError:  # locked, or no invoices table yet
        return 0


def with_store(folder: Path, fn: Callable[[Store], Any]) -> Any:
    with Store(folder / "cessio.db", actor="test") as store:
        return fn(store)


def runs(folder: Path, job_id: str) -> list[dict[str, Any]]:
    if not (folder / "cessio.db").exists():
        return []
    return with_store(folder, lambda s: s.job_runs_of(job_id))


def invoice_numbers(folder: Path) -> list[str]:
    return with_store(folder, lambda s: [r["number"] for r in s.invoice_rows(limit=100_000)])


def reconciliation(folder: Path) -> list[dict[str, str]]:
    """The reconciliation log as ``cessio export reconciliation`` writes it."""
    from connector.reconcile.export import reconciliation_rows

    if not (folder / "cessio.db").exists():
        return []
    return with_store(folder, reconciliation_rows)
