"""Factor files, ISO 20022 messages, credit-limit requests, reverse factoring (issue 6 fills this in)."""

from __future__ import annotations


class ChannelsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""
