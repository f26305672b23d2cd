"""Delivery to a factor under faults and kills: D(inv) = 1 for every invoice (scenarios A1, A2, A4, A9).

The factor is :mod:`tests.reliability.fake_factor` (a test double at the edge: a real HTTP server on
127.0.0.1 with seeded faults, its per-reference dedupe *off* so only the sender's discipline prevents
double financing). The subject is a sender process killed at random instants and restarted. The
``reference`` sender (docs rules 1-4) must converge with zero duplicates and zero losses; the ``naive``
sender (new key per attempt, no look-up) is the negative control the same count must catch.
"""

from __future__ import annotations

import pytest

from tests.reliability.delivery import run_delivery
from tests.reliability.fake_factor import ALL_FAULTS


@pytest.mark.slow
def test_a1_every_fault_kind_on_each_invoice_is_held_exactly_once(tmp_path):
    outcome = run_delivery(tmp_path, sender="reference", count=150, faults=ALL_FAULTS, seed=11)
    assert outcome.ok, outcome.row()
    assert outcome.held == 150
    assert set(outcome.faults) >= {"drop_before", "drop_after", "slow_after", "truncated", "http_429", "http_503",
                                   "http_500_after"}, outcome.faults


@pytest.mark.slow
def test_a9_negative_control_the_naive_sender_is_caught_financing_twice(tmp_path):
    outcome = run_delivery(tmp_path, sender="naive", count=150, faults=ALL_FAULTS, seed=11)
    assert outcome.duplicates > 0, "the harness could not see double financing"
    assert not outcome.ok


def test_a2_drop_after_on_every_first_attempt_is_resolved_by_a_lookup(tmp_path):
    outcome = run_delivery(tmp_path, sender="reference", count=40, faults="drop_after=1.0", seed=3)
    assert outcome.ok, outcome.row()
    # each invoice: one POST (stored, reply lost), then a GET that finds it; never a second POST
    assert outcome.posts == 40 and outcome.gets >= 40


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_post", "after_post", "after_commit"])
def test_a4_sigkill_at_each_kill_point_converges(tmp_path, point):
    outcome = run_delivery(tmp_path, sender="reference", count=40, faults=ALL_FAULTS, seed=5,
                           env={"CESSIO_KILL_AT": point, "CESSIO_KILL_RATE": "0.3"})
    assert outcome.kills >= 2, outcome.row()
    assert outcome.ok, outcome.row()


@pytest.mark.slow
def test_a4_sigkill_at_random_instants_converges(tmp_path):
    outcome = run_delivery(tmp_path, sender="reference", count=120, faults=ALL_FAULTS, seed=9, kills=12)
    assert outcome.kills == 12
    assert outcome.ok, outcome.row()
