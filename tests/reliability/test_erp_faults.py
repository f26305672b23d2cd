"""ERP faults: the Tryton server is SIGKILLed in the middle of a paged read, then comes back.

A real trytond on loopback (the fixture machinery of tests/adapters). The pull stops with a retryable
error, having committed only whole checkpoints; after the server restarts, the next pull resumes from
the saved cursor and every invoice is in the store exactly once, with the store and audit chain intact.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from connector.errors import CessioError

pytestmark = pytest.mark.slow


def start_trytond(server) -> subprocess.Popen:
    from tests.adapters.tryton_server import BIN

    log = (server.folder / "trytond-restart.log").open("ab")
    return subprocess.Popen([str(BIN / "trytond"), "-c", str(server.conf), "-d", server.database], stdout=log,
                            stderr=subprocess.STDOUT, cwd=server.folder)


def wait_ready(server, process, seconds: float = 60) -> None:
    import time

    import requests

    from tests.adapters.tryton_server import ADMIN_PASSWORD

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = requests.post(f"{server.url}/{server.database}/rpc/", json={
                "id": 0, "method": "common.db.login", "params": ["admin", {"password": ADMIN_PASSWORD}, "en"]},
                timeout=(1, 10))
            if answer.status_code == 200 and answer.json().get("result"):
                return
        except requests.ConnectionError:
            pass
        assert process.poll() is None, "trytond died on restart"
        time.sleep(0.2)
    raise AssertionError("trytond did not come back")


def test_tryton_killed_mid_read_then_back_every_invoice_once(tmp_path, store):
    tryton_server = pytest.importorskip("tests.adapters.tryton_server")
    if not tryton_server.trytond_available():
        pytest.skip("trytond is not installed")
    from adapters.tryton import TrytonAdapter
    from connector.pull import pull_source

    with tryton_server.running_server(tmp_path / "tryton") as server:
        server.operate({"op": "invoice", "party": "ACME Industrie SA", "lines": [[1, "100.00"]], "count": 8})
        options = server.options(page_size=1)
        seen = 0
        process = server.process

        def kill_after_a_few(count: int) -> None:
            nonlocal seen
            seen += count
            if seen == 3 and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()

        outcome = None
        try:
            outcome = pull_source(store, TrytonAdapter("tryton", options), progress=kill_after_a_few)
        except CessioError as exc:
            outcome = exc
        assert process.poll() is not None, "the server was supposed to be killed mid-read"
        assert isinstance(outcome, CessioError) or outcome.error, outcome
        partial = store.count_invoices()
        assert partial < 8  # it stopped part-way
        assert store.integrity_check() == [] and store.verify_audit().ok

        restarted = start_trytond(server)
        server.process = restarted
        try:
            wait_ready(server, restarted)
            summary = pull_source(store, TrytonAdapter("tryton", options))
            assert summary.error is None, summary
            again = pull_source(store, TrytonAdapter("tryton", options))
        finally:
            restarted.terminate()
            restarted.wait(10)
        rows = store.invoice_rows()
        numbers = [row["number"] for row in rows]
        assert len(numbers) == len(set(numbers)), "an invoice was stored twice"
        assert len(rows) == 8, len(rows)
        assert again.new == 0 and again.changed == 0
        assert store.integrity_check() == [] and store.verify_audit().ok
