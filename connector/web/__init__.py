"""The review desk for finance staff: a small local web application over the Cessio store.

``create_app(store_path)`` builds the Flask application; ``serve(...)`` runs it on loopback (werkzeug's
threaded server, one store connection per request). Users and roles live in the store (``auth``).
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from connector.errors import ConfigError

log = logging.getLogger("cessio.web")


def serve(store_path: str | Path, *, host: str = "127.0.0.1", port: int = 8600, config: Any = None,
          echo: Any = print) -> None:
    """Serve the desk until interrupted. Only a loopback address is accepted (no TLS here: put a proxy in front)."""
    from werkzeug.serving import make_server

    from connector.web.app import create_app

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(f"serve: {host} is not a loopback address; the desk has no TLS of its own, "
                          "so it binds to 127.0.0.1 and a TLS reverse proxy publishes it")
    app = create_app(store_path, config=config, warm_dashboard=True)
    server = make_server(host, port, app, threaded=True)
    echo(f"http://{host}:{server.server_port}/")
    log.info("review desk listening", extra={"host": host, "port": server.server_port})
    try:
        server.serve_forever()
    finally:
        server.server_close()
