"""The outbox sender: drains claimed assignments to a factor through a :class:`Channel`, exactly once.

Reads and writes the store's ``assignments``/``batches`` (through Store methods) and talks to the factor
only through the channel. The loop (docs reliability §1.3):

1. lease a batch under ``BEGIN IMMEDIATE``; the attempt is counted before any I/O;
2. if the batch was attempted before (a crash, an ambiguous failure), **look it up at the factor first**;
   found → record it, never resend;
3. otherwise send it under its own, unchanged, Idempotency-Key;
4. record the outcome: sent / unknown (ambiguous: lookup next time) / retry (not sent) / hold / rejected.

A circuit breaker sits in the channel's client: while it is open nothing is sent, claims simply wait in
the outbox (the outbox *is* the queue); when its cool-down ends one safe GET probes the factor.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from typing import Any

from connector.factors.api import Ambiguous, Definitive, DeliveryError, NotSent
from connector.factors.channel import Channel
from connector.factors.profile import FactorProfile

log = logging.getLogger("cessio.outbox")


def _backoff(attempt: int) -> float:
    return min(5.0, 0.05 * 2 ** min(attempt, 8)) * (0.5 + random.random())


def deliver_batch(store: Any, channel: Channel, batch: dict[str, Any]) -> str:
    """One leased batch through lookup-then-send; returns the outcome recorded."""
    batch_id = batch["id"]
    try:
        if batch["previous_attempts"] > 0 or any(item["state"] == "unknown" for item in batch["items"]):
            if not channel.can_lookup:
                store.finish_batch(batch_id, "hold", error="ambiguous earlier attempt and no lookup at the factor")
                return "hold"
            found = channel.lookup(batch)
            if found is not None:
                store.finish_batch(batch_id, "sent", remote_ids=found.remote_ids,
                                   remote_batch_id=found.remote_batch_id)
                return "found"
        delivery = channel.deliver(batch)
        store.finish_batch(batch_id, "sent", remote_ids=delivery.remote_ids, remote_batch_id=delivery.remote_batch_id)
        return "sent"
    except Ambiguous as exc:
        store.finish_batch(batch_id, "unknown", error=str(exc), retry_in=_backoff(batch["attempts"]))
        return "unknown"
    except NotSent as exc:
        wait = exc.retry_after if exc.retry_after is not None else _backoff(batch["attempts"])
        store.finish_batch(batch_id, "retry", error=str(exc), retry_in=wait)
        return "retry"
    except Definitive as exc:
        outcome = "hold" if exc.status in (0, 409, 422) else "rejected"
        store.finish_batch(batch_id, outcome, error=str(exc))
        log.error("batch %s %s: %s", batch["number"], outcome, exc)
        return outcome


def drain(store: Any, profile: FactorProfile, channel: Channel, *, max_seconds: float = 60.0,
          wait_when_idle: bool = True, worker: str = "sender") -> Counter:
    """Send until the outbox is empty (or ``max_seconds`` pass); returns outcome counts."""
    counts: Counter = Counter()
    breaker = getattr(channel, "breaker", None)
    stop_at = time.monotonic() + max_seconds
    while time.monotonic() < stop_at:
        if breaker is not None and breaker.state != "closed":
            if breaker.state == "open":
                counts["breaker_waits"] += 1
                time.sleep(max(0.01, min(breaker.seconds_until_probe(), stop_at - time.monotonic())))
                continue
            try:
                channel.probe()
                counts["probe_ok"] += 1
            except DeliveryError:
                counts["probe_failed"] += 1
                continue
        batch = store.claim_batch(profile.name, channel.name, batch_size=profile.batch_size,
                                  lease_seconds=profile.lease_seconds, worker=worker)
        if batch is None:
            due = store.next_outbox_due(profile.name)
            if due is None or not wait_when_idle:
                break
            time.sleep(0.05)
            continue
        counts[deliver_batch(store, channel, batch)] += 1
    return counts
