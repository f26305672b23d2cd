"""The optional health endpoint: ``GET /health`` on 127.0.0.1 only, JSON, for monitors.

It answers from the agent's memory (never from the store), so a busy store cannot make it hang:
200 when every job's last outcome is fine, 503 when a job has reached the alert threshold.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("cessio.agent.health")

LOOPBACK = "127.0.0.1"


def start_health_server(port: int, snapshot: Callable[[], dict[str, Any]]) -> ThreadingHTTPServer:
    """Serve in a daemon thread; the caller calls ``shutdown()`` and ``server_close()`` when stopping."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/health", "/"):
                self.send_error(404)
                return
            data = snapshot()
            body = json.dumps(data, default=str).encode()
            self.send_response(200 if data["status"] == "ok" else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:  # monitors poll often: keep it at debug
            log.debug("health: " + fmt, *args)

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cessio-health", daemon=True).start()
    log.info("health endpoint on http://%s:%d/health", LOOPBACK, server.server_address[1])
    return server
