"""Fixtures of the assignment-engine tests: a sandbox factor as a real subprocess or thread, a config."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from connector.clock import today
from connector.config import parse_config
from connector.sandbox import start_in_thread
from tests.factories import SELLER, make_invoice

TOKEN_ENV = "CESSIO_TEST_FACTOR_TOKEN"
os.environ.setdefault(TOKEN_ENV, "test-token-not-a-secret")
CESSIO = [sys.executable, "-m", "connector"]


class SandboxProcess:
    """``cessio sandbox-factor`` in its own process on a free port (stdout's first line names the URL)."""

    def __init__(self, data: Path, faults: str = "", seed: int = 0) -> None:
        self.proc = subprocess.Popen([*CESSIO, "sandbox-factor", "--port", "0", "--data", str(data),
                                      "--faults", faults, "--seed", str(seed)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"sandbox did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split("listening on ")[1].split()[0]

    def get(self, path: str) -> dict:
        return requests.get(self.url + path, headers={"Authorization": "Bearer t"}, timeout=(2, 30)).json()

    def holdings(self) -> list[dict]:
        """Every assignment the factor holds, read without faults (admin-free, retried on injected ones)."""
        for _ in range(50):
            try:
                return self.get("/v1/assignments")["assignments"]
            except (requests.RequestException, ValueError, KeyError):
                continue
        raise RuntimeError("could not list the sandbox's assignments")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def sandbox_thread(tmp_path: Path):
    server = start_in_thread(data=tmp_path / "factor.db", start=today())
    yield server
    server.shutdown()
    server.server_close()
    server.book.close()


def write_config(folder: Path, url: str, **factor: object) -> Path:
    options = {"base_url": f'"{url}/v1"', "token": f'"env:{TOKEN_ENV}"', "concentration_limit": '"1"',
               "default_limit_request": '"10000000"', **{k: v for k, v in factor.items()}}
    body = "\n".join(f"{k} = {v}" for k, v in options.items())
    path = folder / "cessio.toml"
    path.write_text(f'[store]\npath = "{folder / "cessio.db"}"\n\n[factors.sandbox]\n{body}\n', encoding="utf-8")
    return path


def load(path: Path):
    return parse_config(path.read_text(encoding="utf-8"), path=path)


def seed_invoices(store, count: int, *, debtors: int = 20, prefix: str = "F") -> None:
    """``count`` invoices of 1,000.00 EUR spread over ``debtors`` identified debtors, due in 30 days."""
    from connector.model import Party

    buyers = [Party(name=f"Debtor {d}", country="FR", vat_id=f"FR{d:02d}123456789") for d in range(debtors)]
    issue = today() - dt.timedelta(days=5)
    with store.transaction():
        for i in range(count):
            store.save_invoice(make_invoice(f"{prefix}-{i:05d}", "1000.00", buyer=buyers[i % debtors], seller=SELLER,
                                            issue=issue, due=issue + dt.timedelta(days=35)))
