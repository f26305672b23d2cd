"""The assignment engine: factor profiles, eligibility, the outbox sender and the factor API client.

Modules: :mod:`~connector.factors.profile` (``[factors.NAME]`` → FactorProfile),
:mod:`~connector.factors.eligibility` (pure decisions with reason codes), :mod:`~connector.factors.engine`
(``cessio assign``: decide, claim, notify credit notes, send), :mod:`~connector.factors.outbox` (leased
batches, lookup before resend), :mod:`~connector.factors.channel` (the ``Channel`` protocol other channels
implement), :mod:`~connector.factors.api` (HTTP client, retries, classification, circuit breaker),
:mod:`~connector.factors.events` (events feed → states and factor ledgers), :mod:`~connector.factors.demo`.
"""

from __future__ import annotations

from typing import Any

from connector.money import Money


def probe_factor(name: str, factor_config: dict[str, Any]) -> str:
    """``cessio check``: reach the factor without side effects (a GET of its health endpoint)."""
    from connector.factors.channel import ApiChannel
    from connector.factors.profile import profile_from_config

    profile = profile_from_config(name, dict(factor_config))
    if profile.channel != "api":
        from connector.factors.channel import make_channel

        return make_channel(profile).probe()  # file channels: folders checked, nothing written
    return ApiChannel(profile).probe()


def _fmt(minor: int, currency: str) -> str:
    return f"{Money.from_minor(minor, currency).amount} {currency}"


def factor_positions(store: Any, config: Any) -> list[dict[str, Any]]:
    """``cessio status``: per factor, what its events say we stand at, each debtor's limit use, limits about
    to expire (ask for a prolongation in time) and invoices changed in the ERP after the factor got them."""
    from connector.channels.limits import expiring_limits

    names = list(config.factors) if config is not None else []
    names += [n for n in store.factor_names() if n not in names] if hasattr(store, "factor_names") else []
    positions = []
    for name in names:
        totals = store.factor_ledger_totals(name)
        currencies = sorted({c for _, c in totals}) or ["EUR"]
        exposure = store.factor_exposure_rows(name)
        entry: dict[str, Any] = {"name": name}
        for label, account in (("assigned outstanding", "outstanding"), ("funded", "funded"),
                               ("available funding", "current"), ("reserve", "reserve"), ("fees to date", "fees"),
                               ("fee VAT to date", "fees_vat"), ("collected", "collected"),
                               ("charged back", "charged_back")):
            entry[label] = ", ".join(_fmt(totals.get((account, c), 0), c) for c in currencies)
            if account == "current" and any(totals.get((account, c), 0) < 0 for c in currencies):
                # a credit note or a chargeback after funding: the factor advanced more than the book now
                # carries; it recovers the difference from the next funding
                entry[label] += " (negative: owed to the factor, deducted from the next funding)"
        entry["outbox"] = store.outbox_counts(name)
        used = {(r["buyer_key"], r["currency"]): r["amount_minor"] for r in exposure}
        limits = []
        for row in store.debtor_limit_rows(name):
            use = used.get((row["debtor_key"], row["currency"]), 0)
            share = f"{(100 * use / row['amount_minor']):.0f}%" if row["amount_minor"] else "-"
            limits.append(f"{row['debtor_key']}: {_fmt(use, row['currency'])} of "
                          f"{_fmt(row['amount_minor'], row['currency'])} ({share}, {row['status']})")
        entry["debtor limits"] = limits
        entry["limits expiring within 30 days"] = [
            f"{x.debtor_key}: {x.amount} {x.status} until {x.valid_to.isoformat()} "
            f"({'expired' if x.days_left < 0 else f'{x.days_left} days left'})"
            for x in expiring_limits(store, within_days=30) if x.factor == name]
        entry["changed after sent"] = [
            f"{r['number']}: sent as version {r['invoice_version']}, now version {r['current_version']} "
            "(credit, cancel or re-assign it at the factor)" for r in store.changed_after_sent(name)]
        entry["settled in the ERP after assignment"] = _settled_lines(store, config, name)
        positions.append(entry)
    return positions


def configured_mode(config: Any, name: str) -> str:
    """The factoring mode of factor ``name`` in ``config`` (a profile or its raw table); a factor no longer
    configured (its assignments remain) is taken as notified."""
    profile = (config.factors or {}).get(name) if config is not None else None
    mode = getattr(profile, "mode", None) or (profile.get("mode") if isinstance(profile, dict) else None)
    return mode or "notified"


def settled_after_assignment(store: Any, config: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Invoices a factor holds that the ERP now reports paid, partly paid or cancelled (read only: the
    assignment run records them in the audit log), each row with ``action``: what to tell the factor."""
    from connector.factors.engine import erp_settled_action

    if not hasattr(store, "erp_settled_assignments"):
        return []
    rows = store.erp_settled_assignments(name)
    for row in rows:
        row["action"] = erp_settled_action(row["erp_status"], configured_mode(config, row["factor"]))
    return rows


def _settled_lines(store: Any, config: Any, name: str) -> list[str]:
    return [f"{r['number']} ({r['erp_status']}, assignment {r['state']}): {r['action']}"
            for r in settled_after_assignment(store, config, name)]


__all__ = ["configured_mode", "factor_positions", "probe_factor", "settled_after_assignment"]
