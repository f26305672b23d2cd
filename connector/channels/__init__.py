"""Factor files and standards channels (issue 6): bordereau files from TOML layouts, ISO 20022 tsin
messages, factor replies, credit-limit requests, reverse factoring and the payee block of notified
invoices. ``make_channel`` is what the assignment engine calls for a ``file`` or ``iso20022`` factor."""

from __future__ import annotations

from typing import Any


def make_channel(profile: Any) -> Any:
    from connector.channels.file_channel import make_channel as make

    return make(profile)
