"""The sandbox factor: a real HTTP server implementing the Cessio Factor API on loopback, for tests,
benchmarks and ``cessio demo`` (see :mod:`connector.sandbox.server`, :mod:`connector.sandbox.state`)."""

from __future__ import annotations

from connector.sandbox.server import SandboxServer, make_server, serve, start_in_thread

__all__ = ["SandboxServer", "make_server", "serve", "start_in_thread"]
