"""A real Tryton server per test session (per xdist worker), from a cached template database."""

from __future__ import annotations

import pytest

from tests.adapters.tryton_server import running_server, trytond_available


@pytest.fixture(scope="session")
def tryton(tmp_path_factory):
    """A running trytond on 127.0.0.1 with Cessio Demo SAS, its chart, customers and eight posted invoices."""
    if not trytond_available():
        pytest.skip("trytond is not installed (pip install -e '.[dev]')")
    with running_server(tmp_path_factory.mktemp("tryton")) as server:
        server.seeded = server.operate(
            {"op": "invoice", "party": "ACME Industrie SA", "lines": [[2, "500.00"]], "count": 5},
            {"op": "invoice", "party": "Brasserie du Nord SARL", "term": "30/60 days", "lines": [[3, "250.00"]],
             "count": 3})
        yield server
