"""A canary secret never appears in any log line at any level, any error, any report or any file
(scenarios F4, F5).

The canary is set in the environment and referenced from the configuration (``env:``/``file:``), the
way an operator would; then the real code paths run at DEBUG: the CLI in a subprocess, the logging
pipeline in both formats, a real HTTP exchange with a loopback server carrying the canary in headers,
query strings and bodies, errors rendered by the CLI, and the store. Everything produced is grepped.
A logger *without* Cessio's redaction is the negative control: the same grep must find the canary there.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import threading
from pathlib import Path

import pytest
import requests

from connector.config import parse_config
from connector.errors import ConfigError, RetryLater, StopAndAsk
from connector.logs import JsonFormatter, RedactingFilter, redact, setup_logging
from connector.store import Store
from tests.helpers import run_cessio
from tests.reliability.harness import PROJECT, child_env

CANARY = "CANARY-9f3c1e7a-b2d4-4e61-a0f8-5c7d9e2b1a36"


def leaks(text: str | bytes) -> int:
    """How many times the canary shows, raw or in the encodings a log line could carry it."""
    import base64
    import urllib.parse

    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    forms = {CANARY.encode(), urllib.parse.quote(CANARY).encode(), base64.b64encode(CANARY.encode())[:40],
             json.dumps(CANARY).strip('"').encode()}
    return sum(data.count(form) for form in forms)


def files_leaking(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and leaks(p.read_bytes())]


@pytest.fixture
def canary_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CESSIO_CANARY", CANARY)
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(CANARY + "\n")
    secret_file.chmod(0o600)
    config = tmp_path / "cessio.toml"
    config.write_text(f"""
[store]
path = "{tmp_path / 'cessio.db'}"

[log]
level = "DEBUG"

[company]
name = "Canary SAS"

[factors.acme]
channel = "api"
base_url = "http://127.0.0.1:9/v1"
token = "env:CESSIO_CANARY"
client_id = "cessio"
client_secret = "file:{secret_file}"
token_url = "http://127.0.0.1:9/oauth/token"
""")
    return config


# -- the CLI at DEBUG, in a real subprocess ----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["check"], ["status"], ["status", "--format", "json"], ["audit", "verify"],
    ["assign", "--dry-run"],
    ["pull"], ["reconcile"], ["report"],
])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_f4_cli_output_at_debug_never_carries_the_canary(canary_config, tmp_path, args, log_format):
    proc = run_cessio("--config", str(canary_config), "--log-format", log_format, "-vv", *args,
                      cwd=tmp_path, env=child_env(CESSIO_CANARY=CANARY))
    assert leaks(proc.stdout) == 0 and leaks(proc.stderr) == 0, (proc.stdout, proc.stderr)
    assert files_leaking(tmp_path) == [str(tmp_path / "client_secret")]
    # an error is one clear line, never a traceback (tracebacks carry URLs, headers and locals' reprs)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


# -- the logging pipeline itself -----------------------------------------------------------------------------

def capture_logging(fmt: str) -> io.StringIO:
    """Cessio's own logging setup at DEBUG, with its stderr handler pointed at a buffer."""
    setup_logging(fmt=fmt, level="DEBUG")
    handler = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def reveal_canary(canary_config) -> str:
    config = parse_config(canary_config.read_text(), path=canary_config)
    factor = config.factors["acme"]
    assert factor["token"].reveal() == CANARY
    assert factor["client_secret"].reveal() == CANARY
    assert leaks(repr(factor)) == 0 and leaks(str(factor["token"])) == 0
    return CANARY


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_f4_every_level_message_args_and_exceptions_are_redacted(canary_config, fmt):
    buffer = capture_logging(fmt)
    secret = reveal_canary(canary_config)
    log = logging.getLogger("cessio.canary")
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        log.log(level, "token is %s", secret)
        log.log(level, f"inline {secret}")
        log.log(level, "dict %s", {"Authorization": f"Bearer {secret}", "nested": [secret]})
    for error in (RetryLater(f"factor said 503 for token={secret}"), StopAndAsk(f"bad reply {secret}"),
                  ConfigError(f"value {secret} refused", key="factors.acme.token"), ValueError(secret)):
        try:
            raise error
        except Exception:
            log.exception("failed")
            log.debug("failed again", exc_info=True)
    logging.getLogger("urllib3.connectionpool").warning("GET /v1?access_token=%s", secret)
    output = buffer.getvalue()
    assert output.count("\n") >= 20
    assert leaks(output) == 0, output


@pytest.mark.parametrize("field", ["event", "job", "file"])
def test_f4_structured_extras_in_json_logs_are_redacted(canary_config, field):
    """JSON log lines carry ``event``/``job``/``file`` extras; those must be redacted like the message."""
    buffer = capture_logging("json")
    secret = reveal_canary(canary_config)
    logging.getLogger("cessio.canary").info("delivered", extra={field: f"acme token={secret}"})
    assert leaks(buffer.getvalue()) == 0, buffer.getvalue()


def test_f4_cli_renders_errors_redacted(canary_config):
    from click.testing import CliRunner

    from connector.cli import cli

    reveal_canary(canary_config)

    @cli.command("canary-raise", hidden=True)
    def canary_raise() -> None:
        raise StopAndAsk(f"factor answered 401 for Bearer {CANARY}")

    try:
        result = CliRunner().invoke(cli, ["canary-raise"])
    finally:
        cli.commands.pop("canary-raise", None)
    assert result.exit_code == 3
    assert leaks(result.output) == 0 and "401" in result.output


# -- a real HTTP exchange on loopback, urllib3 at DEBUG ------------------------------------------------------

class EchoHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Bearer error="invalid_token", token="{CANARY}"')
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"error": "invalid", "echo": body.decode()}).encode())

    def log_message(self, *args: object) -> None:
        pass


def test_f4_http_exchange_logged_at_debug_is_redacted(canary_config):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        buffer = capture_logging("text")
        secret = reveal_canary(canary_config)
        url = f"http://127.0.0.1:{server.server_port}/oauth/token?client_secret={secret}"
        reply = requests.post(url, headers={"Authorization": f"Bearer {secret}"},
                              data={"grant_type": "client_credentials", "client_secret": secret}, timeout=(2, 5))
        log = logging.getLogger("cessio.factor")
        log.debug("reply headers %s", dict(reply.headers))
        log.debug("reply body %s", reply.text)
        log.debug("request headers %s", dict(reply.request.headers))
        try:
            reply.raise_for_status()
        except requests.HTTPError:
            log.exception("token request failed")
    finally:
        server.shutdown()
        server.server_close()
    assert leaks(buffer.getvalue()) == 0, buffer.getvalue()


def test_f4_no_http_client_debuglevel_anywhere():
    """http.client's debuglevel prints raw headers with print(), around logging: it must never be on."""
    offenders = [str(p) for p in (PROJECT / "connector").rglob("*.py")
                 if "debuglevel" in p.read_text(encoding="utf-8")]
    offenders += [str(p) for p in (PROJECT / "adapters").rglob("*.py") if "debuglevel" in p.read_text(encoding="utf-8")]
    assert offenders == []


# -- the store and the audit --------------------------------------------------------------------------------

def test_f4_the_store_never_holds_the_canary(canary_config, tmp_path):
    reveal_canary(canary_config)
    db = tmp_path / "canary.db"
    with Store(db) as store:
        with store.transaction():
            store.audit("factor.auth_failed", "factor:acme", {"detail": redact(f"401 Bearer {CANARY}")})
        assert leaks(json.dumps(store.audit_rows())) == 0
    assert files_leaking(tmp_path) == [str(tmp_path / "client_secret")]


# -- negative control ------------------------------------------------------------------------------------------

def test_f4_negative_control_an_unredacted_logger_is_caught():
    """Same grep, a handler without Cessio's filter: the canary must be found (the detector works)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("cessio.canary.unredacted")
    log.propagate = False
    log.addHandler(handler)
    log.warning("token is %s", CANARY)
    log.removeHandler(handler)
    assert leaks(buffer.getvalue()) >= 1
    assert RedactingFilter().filter(logging.makeLogRecord({"msg": "Bearer " + CANARY}))


# -- F5: a world-readable secret file is refused ----------------------------------------------------------------

def test_f5_world_readable_secret_file_refuses_to_start(canary_config, tmp_path):
    secret_file = tmp_path / "client_secret"
    secret_file.chmod(0o644)
    proc = run_cessio("--config", str(canary_config), "check", cwd=tmp_path, env=child_env(CESSIO_CANARY=CANARY),
                      timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "client_secret" in proc.stderr and "chmod 600" in proc.stderr
    assert leaks(proc.stderr + proc.stdout) == 0
    assert os.stat(secret_file).st_mode & 0o044


# -- the real thing: Cessio's sender talking to Cessio's sandbox factor with the canary as its token -------------

@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_f4_assign_at_debug_against_the_sandbox_never_logs_the_token(tmp_path, monkeypatch, log_format):
    factors = pytest.importorskip("tests.factors.conftest")
    monkeypatch.setenv("CESSIO_SANDBOX_TOKEN", CANARY)  # the sandbox accepts only the canary: proof it was sent
    factor = factors.SandboxProcess(tmp_path / "factor.db", "drop_after=0.2,http_500=0.1,truncated=0.1,"
                                    "retry_after=0", seed=3)
    try:
        config = factors.write_config(tmp_path, factor.url, token='"env:CESSIO_CANARY"', connect_timeout='"0.5"',
                                      read_timeout='"0.5"', deadline='"30"', batch_size=2, lease_seconds=1)
        with Store(tmp_path / "cessio.db") as store:
            factors.seed_invoices(store, 6, debtors=2)
        proc = run_cessio("--config", str(config), "--log-format", log_format, "-vv", "assign", cwd=tmp_path,
                          env=child_env(CESSIO_CANARY=CANARY), timeout=180)
        held = []
        for _ in range(50):  # the listing itself meets the injected faults now and then
            try:
                held = requests.get(f"{factor.url}/v1/assignments", headers={"Authorization": f"Bearer {CANARY}"},
                                    timeout=(2, 10)).json()["assignments"]
                break
            except (requests.RequestException, ValueError, KeyError):
                continue
    finally:
        factor.stop()
    assert held, f"nothing reached the sandbox: {proc.stderr[-1500:]}"
    assert leaks(proc.stdout) == 0 and leaks(proc.stderr) == 0
    assert files_leaking(tmp_path) == []
    assert "DEBUG" in proc.stderr or '"level": "DEBUG"' in proc.stderr
