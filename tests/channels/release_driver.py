"""Run the file channel's release for every pending batch of a store, as the agent would (fault tests)."""

from __future__ import annotations

import sys
from pathlib import Path

from connector.channels.bordereau import release_pending
from connector.store import Store
from tests.channels.sample import params_for


def main(db: str, outbox: str, factor: str, layout: str) -> None:
    store = Store(db, actor="agent")
    try:
        release_pending(store, factor, layout_name=layout, outbox=Path(outbox), params=params_for(layout))
    finally:
        store.close()




def engine_main(db: str, outbox: str) -> None:
    """The assignment engine's sender with the file channel: lease the batch, deliver it, record it."""
    from types import SimpleNamespace

    from connector.channels import make_channel
    from connector.factors.outbox import deliver_batch

    store = Store(db, actor="agent")
    try:
        profile = SimpleNamespace(name="bpce", channel="file", client_number="123456", outbox_dir=outbox,
                                  layout="bpce", layout_params=params_for("bpce"))
        channel = make_channel(profile)
        while (batch := store.claim_batch("bpce", "file", batch_size=2, lease_seconds=0)) is not None:
            deliver_batch(store, channel, batch)
    finally:
        store.close()


if __name__ == "__main__":
    if sys.argv[1] == "engine":
        engine_main(*sys.argv[2:4])
    else:
        main(*sys.argv[1:5])
