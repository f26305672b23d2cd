"""A real Tryton server for tests: template database built once and cached, one server per test session.

The template (modules activated by ``trytond-admin``, company, chart, fiscal year, customers seeded by
``tryton_seed.py`` with proteus) takes about 40 s to build; it is cached under ``CESSIO_TRYTON_CACHE``
(default ``~/.cache/cessio-tryton``) keyed by the trytond version, the seed script and the month (the
fiscal year is built around today), with a file lock so parallel pytest workers build it once. Each
server gets a copy of the template in its own folder and listens on a free loopback port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
SEED = HERE / "tryton_seed.py"
ADMIN_PASSWORD = "cessio-admin-pass"  # a throwaway test server's admin password, never a real secret
BIN = Path(sys.executable).parent


def trytond_available() -> bool:
    return (BIN / "trytond").exists() and (BIN / "trytond-admin").exists()


def cache_root() -> Path:
    return Path(os.environ.get("CESSIO_TRYTON_CACHE", Path.home() / ".cache" / "cessio-tryton"))


def _conf(folder: Path, port: int = 0) -> Path:
    conf = folder / "trytond.conf"
    conf.write_text(f"[database]\nuri = sqlite://\npath = {folder}\n\n[web]\nlisten = 127.0.0.1:{port}\n"
                    "\n[session]\nmax_attempt = 1000\n")
    return conf


def template_db() -> Path:
    """The cached template SQLite file, built under a lock when missing."""
    import trytond

    from tests.adapters import tryton_seed

    recipe = inspect.getsource(tryton_seed.seed) + inspect.getsource(_conf)
    key = hashlib.sha256(f"{trytond.__version__}|{recipe}|{time.strftime('%Y-%m')}".encode()).hexdigest()[:16]
    folder = cache_root() / key
    target = folder / "template.sqlite"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        work = folder / "build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        conf = _conf(work)
        (work / "template.sqlite").touch()
        password_file = work / "admin-password"
        password_file.write_text(ADMIN_PASSWORD)
        env = {**os.environ, "TRYTONPASSFILE": str(password_file)}
        subprocess.run([str(BIN / "trytond-admin"), "-c", str(conf), "-d", "template", "--all",
                        "-u", "account_invoice", "--activate-dependencies", "--email", "admin@example.com"],
                       check=True, env=env, capture_output=True, timeout=600)
        subprocess.run([sys.executable, str(SEED), str(conf), "template"], check=True, capture_output=True,
                       timeout=600, cwd=work)
        os.replace(work / "template.sqlite", target)
        shutil.rmtree(work, ignore_errors=True)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TrytonServer:
    folder: Path
    database: str
    port: int
    conf: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self, **extra: Any) -> dict[str, Any]:
        """``[sources.NAME]`` options for the adapter (password from the environment, as in production)."""
        os.environ["CESSIO_TEST_TRYTON_PASSWORD"] = ADMIN_PASSWORD
        return {"type": "tryton", "url": self.url, "database": self.database, "login": "admin",
                "password": "env:CESSIO_TEST_TRYTON_PASSWORD", "payment_method": "Bank", **extra}

    worker: subprocess.Popen[str] | None = None
    answers: queue.Queue[str | None] | None = None

    def operate(self, *operations: dict[str, Any], timeout: float = 300) -> list[dict[str, Any]]:
        """Create/credit/pay invoices in Tryton with proteus, as a user would (see tryton_seed.operate),
        through one long-lived proteus process per server (started at the first call)."""
        from tests.adapters.tryton_seed import ANSWER

        if self.worker is None or self.worker.poll() is not None:
            self.worker = subprocess.Popen(
                [sys.executable, str(SEED), "serve", str(self.conf), self.database], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=(self.folder / "proteus.log").open("ab"), cwd=self.folder, text=True)
            self.answers = queue.Queue()
            threading.Thread(target=_pump, args=(self.worker.stdout, self.answers), daemon=True).start()
        assert self.worker.stdin is not None
        self.worker.stdin.write(json.dumps(list(operations)) + "\n")
        self.worker.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.answers.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop_worker()
                raise RuntimeError(f"proteus did not answer within {timeout}s") from None
            if text is None:
                self.worker = None
                raise RuntimeError("proteus died: " + (self.folder / "proteus.log").read_text()[-3000:])
            if text.startswith(ANSWER):
                answer = json.loads(text[len(ANSWER):])
                if "error" in answer:
                    raise RuntimeError(answer["error"])
                return answer["result"]

    def stop_worker(self) -> None:
        if self.worker is not None:
            if self.worker.stdin is not None:
                self.worker.stdin.close()
            try:
                self.worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker = None


def _pump(stream: Any, answers: queue.Queue[str | None]) -> None:
    """Copy a worker's stdout lines into ``answers``; ``None`` when it ends."""
    for text in stream:
        answers.put(text)
    answers.put(None)


@contextlib.contextmanager
def running_server(folder: Path, database: str = "erp", template: Path | None = None) -> Iterator[TrytonServer]:
    """A trytond serving a copy of ``template`` (default: the cached seeded template) on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template or template_db(), folder / f"{database}.sqlite")
    port = free_port()
    conf = _conf(folder, port)
    log = (folder / "trytond.log").open("wb")
    process = subprocess.Popen([str(BIN / "trytond"), "-c", str(conf), "-d", database], stdout=log,
                               stderr=subprocess.STDOUT, cwd=folder)
    server = TrytonServer(folder, database, port, conf, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.post(f"{server.url}/{database}/rpc/", json={
                    "id": 0, "method": "common.db.login", "params": ["admin", {"password": ADMIN_PASSWORD}, "en"]},
                    timeout=(1, 10))
                if answer.status_code == 200 and answer.json().get("result"):
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("trytond did not start: " + (folder / "trytond.log").read_text()[-2000:])
            time.sleep(0.2)
        yield server
    finally:
        server.stop_worker()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
