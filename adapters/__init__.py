"""Built-in adapters: one module per source or format.

``BUILTINS`` maps adapter type names to classes (ERP sources); it is the static fallback used when
the package is not installed with its entry points. The same names are registered under the
``cessio.adapters`` entry points in pyproject.toml, like a third-party adapter package would do.
"""

from __future__ import annotations

from typing import Any

from adapters.csv_export import CsvExportAdapter
from adapters.odoo import OdooAdapter
from adapters.tryton import TrytonAdapter

BUILTINS: dict[str, type[Any]] = {
    "csv": CsvExportAdapter,
    "odoo": OdooAdapter,
    "tryton": TrytonAdapter,
}
