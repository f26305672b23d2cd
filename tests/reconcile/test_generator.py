"""The engine on the realistic generator (every case of the issue, with ground truth): at least 95 % of the
truly matchable allocations matched ``auto`` at a precision of at least 99.9 %, and no automatic match on
ambiguous lines, duplicates, unknown payers or noise. Runs through the real camt.053 import and export."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from connector.config import parse_config
from connector.reconcile.engine import run_reconciliation
from connector.reconcile.export import reconciliation_rows
from connector.reconcile.generator import FACTOR_IBAN, MATCHABLE, OWN_IBAN, generate, scenario_camt
from connector.reconcile.importing import import_bytes

CONFIG = f'''
[company]
name = "Cessio Demo SAS"
[reconciliation]
accounts = ["{OWN_IBAN}", "FR7630006000019876543210145"]
factor_payers = ["{FACTOR_IBAN}"]
'''


def evaluate(scenario, rows):
    by_line = defaultdict(list)
    for row in rows:
        by_line[row["statement_line_id"]].append(row)
    matchable = auto_right = auto_total = 0
    wrong: Counter[str] = Counter()
    for ref, truth in scenario.truth.items():
        autos = {(r["invoice_number"], Decimal(r["allocated_amount"])) for r in by_line[ref]
                 if r["status"] == "auto" and r["invoice_number"]}
        wanted = set(truth.allocations)
        auto_total += len(autos)
        for allocation in autos:
            if not truth.matchable or allocation not in wanted:
                wrong[truth.category] += 1
        if truth.matchable:
            matchable += len(wanted)
            auto_right += len(autos & wanted)
    return matchable, auto_right, auto_total, wrong


@pytest.mark.parametrize("seed", [11, 12])
def test_generator_targets(store, seed):
    scenario = generate(seed, n_invoices=2000, n_lines=1800)
    assert set(MATCHABLE) <= {t.category for t in scenario.truth.values()} | {"ref_credit_note"}
    with store.transaction():
        for invoice in scenario.invoices:
            store.save_invoice(invoice)
    result = import_bytes(store, scenario_camt(scenario), file_name=f"generated-{seed}.xml")
    assert result.new == len(scenario.truth) and result.statements[0]["balance_check"] == "ok"
    config = parse_config(CONFIG)
    summary = run_reconciliation(store, config)
    rows = reconciliation_rows(store)
    matchable, auto_right, auto_total, wrong = evaluate(scenario, rows)
    recall, precision = auto_right / matchable, (auto_total - sum(wrong.values())) / auto_total
    print(f"seed {seed}: {summary.lines} lines, recall {recall:.4f}, precision {precision:.5f}, wrong {dict(wrong)}")
    assert recall >= 0.95
    assert precision >= 0.999
    for category in ("ambiguous", "duplicate", "unknown", "coincidence"):
        assert wrong[category] == 0, category
    assert not any(wrong[c] for c in wrong if c.startswith("noise"))
    # the allocations of a line never exceed it, and every line has a row in the export
    per_line = defaultdict(Decimal)
    for row in rows:
        if row["status"] in ("auto", "manual"):
            per_line[row["statement_line_id"]] += Decimal(row["allocated_amount"])
    amounts = {r["statement_line_id"]: Decimal(r["line_amount"]) for r in rows}
    assert all(total <= amounts[ref] for ref, total in per_line.items())
    assert set(amounts) == set(scenario.truth)
    # re-running changes nothing
    again = run_reconciliation(store, config)
    assert again.written == 0 and reconciliation_rows(store) == rows
