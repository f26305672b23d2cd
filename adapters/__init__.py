"""Built-in adapters: one module per source or format.

``BUILTINS`` maps adapter type names to classes (ERP sources); it is the static fallback used when
the package is not installed with its entry points.
"""

from __future__ import annotations

from typing import Any

BUILTINS: dict[str, type[Any]] = {}
