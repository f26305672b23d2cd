"""Crash at random instants during reconciliation (statement import + matching + ledger posting), with
restart: nothing lost, nothing doubled, integrity check and audit chain valid (issue 9; see ``recon.py``).

The same loop runs at soak counts in ``bench/soak.py --only reconcile``. The negative control runs the
deliberately broken importer with no duplicate protection on statements (``NO_DEDUP=1``): the same checks
must see the doubled lines.
"""

from __future__ import annotations

import pytest

from tests.reliability.recon import recon_crash_loop

pytestmark = pytest.mark.slow


def test_reconciliation_killed_at_random_instants_loses_and_doubles_nothing(tmp_path):
    outcome = recon_crash_loop(tmp_path, kills=6, seed=9, invoices=100, lines=80, deadline_s=900)
    print(outcome.to_dict())
    assert outcome.problems == []
    assert outcome.kills == 6
    assert outcome.lines == outcome.expected_lines
    assert outcome.matched > 0 and outcome.pieces > 0  # the loop really reconciled and posted


def test_negative_control_no_dedup_on_statements_is_caught(tmp_path):
    outcome = recon_crash_loop(tmp_path, kills=2, seed=9, invoices=100, lines=80, broken=True, deadline_s=600)
    print(outcome.to_dict())
    assert any("doubled" in problem for problem in outcome.problems), outcome.to_dict()
