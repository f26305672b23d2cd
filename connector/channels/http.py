"""What the factor-side JSON APIs of the channels share: one ``requests`` session per API, with the bearer
token and the explicit (connect, read) timeouts every call passes (:mod:`connector.channels.limits`,
:mod:`connector.channels.reverse`)."""

from __future__ import annotations

import requests


class BearerApi:
    """Base of an HTTP API client: ``base_url`` without its trailing slash, so that paths join with ``/``."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: tuple[float, float] = (5.0, 30.0)):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
