"""The file and ISO 20022 channels plugged into the assignment engine's outbox (issue 5's Channel
protocol): same batch → same file name and bytes; a sender that died after writing is resolved by lookup,
never by a second file; a batch whose totals disagree is refused, not written."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from connector.channels import iso20022, make_channel
from connector.channels.file_channel import FileChannel
from connector.factors.engine import idempotency_key, item_payload
from connector.factors.outbox import deliver_batch
from tests.channels.sample import params_for, sample_invoices


def _claim_all(store, factor: str) -> None:
    with store.transaction():
        for invoice in sample_invoices():
            result = store.save_invoice(invoice)
            kind = "credit_note" if invoice.is_credit_note else "assignment"
            key = idempotency_key(factor, invoice.seller.key, kind, invoice.number, result.version)
            store.create_assignment(invoice_id=result.invoice_id, invoice_key=invoice.invoice_key,
                                    version=result.version, factor=factor, kind=kind, idempotency_key=key,
                                    amount_minor=invoice.amount_due.minor_units, currency=invoice.currency,
                                    payload=item_payload(invoice, invoice.amount_due, key))


def _profile(channel: str, outbox, layout: str = "bpce"):
    return SimpleNamespace(name="bpce", channel=channel, client_number="123456", outbox_dir=outbox, layout=layout,
                           layout_params=params_for(layout))


def test_file_channel_through_the_outbox(store, tmp_path):
    _claim_all(store, "bpce")
    channel = make_channel(_profile("file", tmp_path / "out"))
    assert isinstance(channel, FileChannel)
    batch = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)
    first = channel.deliver(batch)  # the sender writes the file ... and dies before recording it
    files = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file())
    assert len(files) == 1 and files[0].startswith("BPCE_123456_0001_")
    again = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)  # the lease ran out
    assert again["id"] == batch["id"] and again["previous_attempts"] == 1
    assert deliver_batch(store, channel, again) == "found"  # looked up, not written again
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file()) == files
    rows = store.assignment_rows("bpce")
    assert {r["state"] for r in rows} == {"sent"} and {r["remote_id"] for r in rows} == {first.remote_batch_id}
    assert store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0) is None


def test_batch_with_disagreeing_totals_is_refused_and_nothing_written(store, tmp_path):
    _claim_all(store, "bpce")
    channel = make_channel(_profile("file", tmp_path / "out"))
    batch = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=30)
    batch["control_sum_minor"] += 1  # the batch row no longer matches its items
    assert deliver_batch(store, channel, batch) == "hold"
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").iterdir())


def test_iso20022_channel_writes_a_valid_tsin006_once(store, tmp_path):
    _claim_all(store, "bpce")
    channel = make_channel(_profile("iso20022", tmp_path / "iso"))
    batch = store.claim_batch("bpce", "iso20022", batch_size=50, lease_seconds=0)
    assert deliver_batch(store, channel, batch) == "sent"
    (written,) = list((tmp_path / "iso").iterdir())
    assert iso20022.validation_problems(written.read_bytes(), "tsin.006.001.01") == []
    assert b"<CdtDbtInd>CRDT</CdtDbtInd>" in written.read_bytes()
    assert channel.lookup(batch) is not None


@pytest.mark.parametrize("layout", ["factofrance", "generic_csv"])
def test_other_layouts_through_the_outbox(store, tmp_path, layout):
    _claim_all(store, "bpce")
    channel = make_channel(_profile("file", tmp_path / "out", layout))
    batch = store.claim_batch("bpce", "file", batch_size=50, lease_seconds=0)
    assert deliver_batch(store, channel, batch) == "sent"
    assert len([p for p in (tmp_path / "out").iterdir() if p.is_file()]) == 1


def test_file_channel_without_layout_or_outbox_is_a_config_error(tmp_path):
    from connector.errors import ConfigError

    with pytest.raises(ConfigError, match="layout"):
        make_channel(SimpleNamespace(name="f", channel="file", client_number="1", outbox_dir=tmp_path))
    with pytest.raises(ConfigError, match="outbox_dir"):
        make_channel(SimpleNamespace(name="f", channel="iso20022", client_number="1"))
