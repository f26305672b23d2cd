"""TEST DOUBLE — a deliberately naive sender, kept in the tests as a negative control.

It does what rule 2-4 of docs reliability §0 forbid: a fresh Idempotency-Key on every attempt, blind
resend after any failure, no lookup. The exactly-once harness must catch its duplicates.
"""

from __future__ import annotations

import uuid

import requests


class NaiveSender:
    def __init__(self, base_url: str, *, read_timeout: float = 1.0, attempts: int = 10) -> None:
        self.base = base_url.rstrip("/")
        self.read_timeout = read_timeout
        self.attempts = attempts

    def assign(self, item: dict) -> None:
        for _ in range(self.attempts):
            try:
                reply = requests.post(f"{self.base}/assignments", json=item, timeout=(1, self.read_timeout),
                                      headers={"Idempotency-Key": str(uuid.uuid4()), "Authorization": "Bearer t"})
                reply.json()
                if reply.status_code < 300:
                    return
            except (requests.RequestException, ValueError):
                continue
