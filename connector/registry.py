"""Adapter discovery through the ``cessio.adapters`` entry points, with the built-ins always present."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Any

GROUP = "cessio.adapters"


def load_adapters() -> dict[str, type[Any]]:
    """Adapter classes by type name; built-ins first, plugins may add but not shadow them.

    Set ``CESSIO_DISABLE_PLUGINS=1`` to load the built-ins only (support cases).
    """
    from adapters import BUILTINS

    found: dict[str, type[Any]] = dict(BUILTINS)
    if os.environ.get("CESSIO_DISABLE_PLUGINS") == "1":
        return found
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        found[ep.name] = ep.load()
    return found


def adapter_class(type_name: str) -> type[Any]:
    adapters = load_adapters()
    if type_name not in adapters:
        raise KeyError(f"unknown adapter type {type_name!r} (known: {', '.join(sorted(adapters)) or 'none'})")
    return adapters[type_name]
