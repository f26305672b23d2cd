"""The contract test suite every source adapter passes (built-ins and third-party plugins alike).

Use it by subclassing :class:`AdapterContract` in a test module and providing three fixtures:

- ``make_adapter``: a callable ``make_adapter(**option_overrides) -> Adapter`` giving a fresh adapter on
  a source that holds at least five records, with option overrides applied (the suite passes the
  adapter's small-batch option, ``batch_option``, to get several checkpoints);
- ``bad_adapter``: an adapter built from a configuration that cannot work (wrong password, wrong path);
- ``change_one_record``: a callable that changes one already-read record in the source (a payment, a new
  amount...) and returns its ``source_id``.

The suite checks, like Airbyte's acceptance tests and singer-sdk's standard tests: check works and a
bad config fails cleanly with a Cessio error; discover describes a stream; a full read stores canonical
records and an incremental read stores nothing new; a changed record is picked up; a crash mid-read
(an exception raised by the stream after a committed checkpoint stands in for the process dying) then a
re-run gives exactly what an uninterrupted read gives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connector.adapter import Adapter, Checkpoint
from connector.errors import CessioError
from connector.model import Invoice
from connector.money import Money
from connector.pull import pull_source


class SimulatedCrash(Exception):
    """Raised inside a read stream to stand in for the process being killed."""


class CrashingAdapter(Adapter):
    """A test double wrapping a real adapter: its stream dies after ``after_checkpoints`` checkpoints
    plus ``extra_items`` more items (those belong to an uncommitted batch and must be rolled back)."""

    def __init__(self, inner: Adapter, *, after_checkpoints: int = 1, extra_items: int = 1) -> None:
        super().__init__(inner.name, inner.options)
        self.inner, self.after_checkpoints, self.extra_items = inner, after_checkpoints, extra_items
        self.type_name = inner.type_name

    def read(self, cursor: Any):
        checkpoints = extra = 0
        stream = self.inner.read(cursor)
        for item in stream:
            if checkpoints >= self.after_checkpoints:
                if extra >= self.extra_items:
                    raise SimulatedCrash("killed mid-read")
                extra += 1
            yield item
            if isinstance(item, Checkpoint):
                checkpoints += 1
        raise AssertionError("the source ended before the simulated crash: give it more records")

    def close(self) -> None:
        self.inner.close()


def snapshot(store: Any, source: str) -> dict[str, tuple[int, str | None, int]]:
    """invoice_key -> (current version, ERP status, amount due in minor units) for one source."""
    return {row["invoice_key"]: (row["current_version"], row["erp_status"], row["amount_due_minor"])
            for row in store.invoice_rows(where="source = ?", params=(source,))}


class AdapterContract:
    """Subclass with the three fixtures described in the module docstring."""

    batch_option: ClassVar[dict[str, Any]] = {}  # options that make the adapter checkpoint every record or two

    @pytest.fixture
    def fresh_store(self, tmp_path: Path) -> Callable[[str], Any]:
        from connector.store import Store

        opened: list[Any] = []

        def make(name: str = "cessio") -> Any:
            store = Store(tmp_path / f"{name}.db", actor="contract")
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()

    def test_check_works(self, make_adapter: Callable[..., Adapter]) -> None:
        detail = make_adapter().check()
        assert isinstance(detail, str) and detail

    def test_check_fails_cleanly_on_bad_config(self, bad_adapter: Adapter) -> None:
        with pytest.raises(CessioError) as caught:
            bad_adapter.check()
        assert str(caught.value)

    def test_discover_describes_a_stream(self, make_adapter: Callable[..., Adapter]) -> None:
        found = make_adapter().discover()
        assert found["streams"] and found["streams"][0]["name"] == "invoices"
        assert found.get("currencies"), "discover() names the currencies the source uses"

    def test_full_read_yields_canonical_records(self, make_adapter: Callable[..., Adapter]) -> None:
        adapter = make_adapter()
        stream = adapter.read(None)
        invoices: list[Invoice] = []
        while True:
            try:
                item = next(stream)
            except StopIteration as stop:
                final = stop.value
                break
            if isinstance(item, Invoice):
                invoices.append(item)
        assert len(invoices) >= 5
        assert final is not None
        for invoice in invoices:
            assert invoice.source == adapter.name and invoice.source_id
            assert isinstance(invoice.total_gross, Money) and not invoice.total_gross.is_negative()
            assert Money.zero(invoice.currency) <= invoice.amount_due <= invoice.total_gross
            assert invoice.buyer.name and invoice.seller.name
            assert invoice.erp_status in ("open", "partially_paid", "paid")

    def test_incremental_read_stores_nothing_new(self, make_adapter, fresh_store) -> None:
        store = fresh_store()
        first = pull_source(store, make_adapter())
        assert first.new >= 5 and first.error is None
        before = snapshot(store, first.source)
        second = pull_source(store, make_adapter())
        assert (second.new, second.changed, second.status_changes) == (0, 0, 0)
        assert snapshot(store, first.source) == before

    def test_changed_record_is_picked_up(self, make_adapter, fresh_store, change_one_record) -> None:
        store = fresh_store()
        first = pull_source(store, make_adapter())
        before = snapshot(store, first.source)
        source_id = change_one_record()
        second = pull_source(store, make_adapter())
        assert second.changed + second.status_changes >= 1
        after = snapshot(store, first.source)
        key = store.invoice_key_by_source_id(first.source, source_id)
        assert key is not None and after[key] != before[key]
        assert set(after) == set(before)

    def test_crash_mid_read_loses_nothing(self, make_adapter, fresh_store) -> None:
        reference = fresh_store("reference")
        pull_source(reference, make_adapter(**self.batch_option))
        store = fresh_store("crashed")
        with pytest.raises(SimulatedCrash):
            pull_source(store, CrashingAdapter(make_adapter(**self.batch_option)))
        partial = snapshot(store, make_adapter().name)
        assert 0 < len(partial) < len(snapshot(reference, make_adapter().name))
        pull_source(store, make_adapter(**self.batch_option))
        assert snapshot(store, make_adapter().name) == snapshot(reference, make_adapter().name)
