"""A busy ERP (or the proxy in front of it) answering 429/503 with Retry-After: both JSON-RPC clients turn it into
RetryLater with the server's hint, clamped, since the header is an untrusted value."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.jsonrpc import MAX_RETRY_AFTER, JsonRpcClient
from adapters.odoo import OdooClient
from connector.errors import RetryLater, parse_retry_after


@pytest.fixture
def busy_erp() -> Iterator[tuple[str, dict]]:
    """Test double at the HTTP edge: a loopback server that answers every POST with the status and
    Retry-After header the test sets in ``reply``."""
    reply = {"status": 429, "retry_after": "30"}

    class Busy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(reply["status"])
            if reply["retry_after"] is not None:
                self.send_header("Retry-After", reply["retry_after"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/db/", reply
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("client_class", [JsonRpcClient, OdooClient], ids=["tryton", "odoo"])
@pytest.mark.parametrize(("status", "header", "hint"), [
    (429, "30", 30.0), (503, "7", 7.0), (429, None, None), (503, "99999", MAX_RETRY_AFTER),
    (429, "inf", None), (429, "soon", None), (503, "Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_a_busy_erp_is_retried_later_with_its_clamped_hint(busy_erp, client_class, status, header, hint):
    url, reply = busy_erp
    reply.update(status=status, retry_after=header)
    client = client_class(url, timeout=(2.0, 5.0))
    with pytest.raises(RetryLater) as raised:
        client.post({"method": "common.version", "params": []})
    client.close()
    assert f"HTTP {status}" in str(raised.value)
    assert raised.value.retry_after == hint


@pytest.mark.parametrize("value", ["-5", "1e999", "nan", "\u0663", "3.5", "", "Fri, 31 Dec 9999 23:59:59 GMT x"])
def test_hostile_retry_after_values_never_mean_a_long_or_negative_wait(value):
    hint = parse_retry_after(value, cap=900)
    assert hint is None or 0 <= hint <= 900


def test_a_far_future_date_is_capped():
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", cap=900) == 900
