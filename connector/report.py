"""KPIs for finance staff, computed from the store, and their renderings (text, JSON, one HTML file).

Reads: invoices with the cash allocated to them, factor events (fundings, fees, interest, reserve movements,
collections, declines), assignments, debtor limits, eligibility decisions, statement lines and allocations.
Writes: nothing in the store; :func:`write_report` writes one file atomically (temp file + rename).

:func:`compute_kpis` is pure arithmetic over the store's rows (integer minor units, ``Decimal`` ratios): the
review desk reuses it for its dashboard. The HTML report is a single self-contained file (inline CSS and
SVG, no script, no external resource) that a finance person reads at a glance.

Definitions (also printed in the report's footer):
- an invoice is *paid* when the cash allocated to it (auto or manual, write-offs included) covers its
  amount due (date: the last booking date), when the factor reported its collection, or when the ERP or
  the financing state says so; cancelled and credited invoices are left out;
- DSO at a date = receivables open at that date / invoiced gross over the 90 days before × 90;
- payment delay = paid date − due date, in days (negative: paid early), averaged over invoices paid that month;
- debtor segments rank debtors by invoiced volume over the last 12 months: the top 20 % are *key accounts*,
  the next 30 % *regular*, the rest *occasional* (independent of currency and company size);
- amounts are in the report currency (the most used invoice currency); other currencies are counted and
  listed apart, never converted.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import tempfile
from collections import Counter, defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from connector.errors import ConfigError
from connector.money import Money

CLOSED_STATES = ("cancelled",)
CLOSED_ERP = ("cancelled", "credited")
PAID_ERP = ("paid",)
PAID_STATES = ("collected", "released")
LIVE_LIMIT_REFUSED = ("declined", "refused", "revoked", "expired", "pending", "requested", "cancelled")
# factor event kinds as the factor API names them ("funding.paid", "fee.charged"...) or their bare family
FUNDING_KINDS = ("funding", "funded", "advance", "advance_paid")
FEE_KINDS = ("fee", "fees", "commission")
INTEREST_KINDS = ("interest", "financing_charge")
DECLINE_KINDS = ("declined", "decline", "rejected", "assignment.declined", "assignment.rejected")
COVER_KINDS = ("guarantee", "guarantee_paid", "indemnity", "insurance", "insurance_paid")
AGEING_BUCKETS = (("not due", None, 0), ("1–30 days", 1, 30), ("31–60 days", 31, 60), ("61–90 days", 61, 90),
                  ("over 90 days", 91, None))
UNPAID_AFTER_DAYS = 60
DSO_WINDOW_DAYS = 90
TREND_MONTHS = 12


# -- small exact helpers ------------------------------------------------------------------------------

def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    return dt.date.fromisoformat(str(text)[:10])


def _money(minor: int, currency: str) -> str:
    return str(Money.from_minor(int(minor), currency).amount)


def _ratio(numerator: int | Decimal, denominator: int | Decimal, places: str = "0.0001") -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


def _days(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else str((value * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _month_ends(as_of: dt.date, count: int) -> list[dt.date]:
    """The last ``count`` month-ends before ``as_of``, then ``as_of`` itself (the current month so far)."""
    ends = [as_of]
    first = as_of.replace(day=1)
    for _ in range(count - 1):
        previous_end = first - dt.timedelta(days=1)
        ends.append(previous_end)
        first = previous_end.replace(day=1)
    return list(reversed(ends))


# -- the invoice view the KPIs share ----------------------------------------------------------------------

def _invoices(rows: list[dict[str, Any]], config: Any, currency: str) -> list[dict[str, Any]]:
    default_days = (config.section("company") or {}).get("default_payment_days") or 30
    out = []
    for row in rows:
        if row["currency"] != currency or row["kind"] != "invoice":
            continue
        if row["financing_state"] in CLOSED_STATES or (row["erp_status"] or "") in CLOSED_ERP:
            continue
        issue = _date(row["issue_date"])
        due = _date(row["due_date"]) or issue + dt.timedelta(days=default_days)
        paid_on = None
        if row["amount_due_minor"] > 0 and row["allocated_minor"] >= row["amount_due_minor"]:
            paid_on = _date(row["last_booking_date"])
        elif row["collected_on"]:
            paid_on = _date(row["collected_on"])
        elif (row["erp_status"] or "") in PAID_ERP or row["financing_state"] in PAID_STATES:
            paid_on = _date(row["updated_at"])
        out.append({**row, "issue": issue, "due": due, "paid_on": paid_on,
                    "open_minor": max(0, row["amount_due_minor"] - (row["allocated_minor"] or 0))})
    return out


def _open_at(inv: dict[str, Any], day: dt.date) -> bool:
    return inv["issue"] <= day and (inv["paid_on"] is None or inv["paid_on"] > day)


def _dso(invoices: list[dict[str, Any]], day: dt.date) -> Decimal | None:
    receivables = sum(inv["amount_due_minor"] for inv in invoices if _open_at(inv, day))
    start = day - dt.timedelta(days=DSO_WINDOW_DAYS)
    sales = sum(inv["total_gross_minor"] for inv in invoices if start < inv["issue"] <= day)
    if not sales:
        return None
    return Decimal(receivables) * DSO_WINDOW_DAYS / Decimal(sales)


def _delay(invoices: list[dict[str, Any]], start: dt.date, end: dt.date) -> Decimal | None:
    delays = [(inv["paid_on"] - inv["due"]).days for inv in invoices
              if inv["paid_on"] is not None and start <= inv["paid_on"] <= end]
    return Decimal(sum(delays)) / len(delays) if delays else None


def _trend(invoices: list[dict[str, Any]], ends: list[dt.date]) -> list[dict[str, Any]]:
    points = []
    for end in ends:
        points.append({"month": end.strftime("%Y-%m"), "date": end.isoformat(),
                       "dso": _days(_dso(invoices, end)),
                       "payment_delay": _days(_delay(invoices, end.replace(day=1), end))})
    return points


def _segments(invoices: list[dict[str, Any]], as_of: dt.date) -> dict[str, str]:
    start = as_of - dt.timedelta(days=365)
    volume: Counter[str] = Counter()
    for inv in invoices:
        volume[inv["buyer_key"]] += inv["total_gross_minor"] if inv["issue"] > start else 0
    ranked = sorted(volume, key=lambda key: (-volume[key], key))
    segment = {}
    for index, key in enumerate(ranked):
        share = Decimal(index) / Decimal(len(ranked))
        segment[key] = "key accounts" if share < Decimal("0.2") else "regular" if share < Decimal("0.5") \
            else "occasional"
    return segment


def _main_currency(rows: list[dict[str, Any]], config: Any) -> str:
    counts = Counter(row["currency"] for row in rows)
    if counts:
        return counts.most_common(1)[0][0]
    for factor in (config.factors or {}).values():
        if factor.get("currencies"):
            return factor["currencies"][0]
    return "EUR"


# -- the KPIs -----------------------------------------------------------------------------------------

def compute_kpis(store: Any, config: Any, as_of: dt.date) -> dict[str, Any]:
    """Every KPI of the report as plain JSON data (amounts as exact decimal strings, rates as percents)."""
    with store.snapshot():
        all_rows = store.kpi_invoices()
        events = store.kpi_factor_events()
        assignments = store.kpi_assignments()
        limits = store.kpi_debtor_limits()
        refusals = store.kpi_refusals()
        lines = store.kpi_statement_lines()
    events = [{**e, "kind": _family(e["kind"])} for e in events]
    currency = _main_currency(all_rows, config)
    invoices = _invoices(all_rows, config, currency)
    ends = _month_ends(as_of, TREND_MONTHS)
    other = Counter(r["currency"] for r in all_rows if r["currency"] != currency)

    # DSO and payment delay, overall, per country, per segment
    by_country: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_segment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    segment_of = _segments(invoices, as_of)
    for inv in invoices:
        by_country[inv["buyer_country"] or "??"].append(inv)
        by_segment[segment_of.get(inv["buyer_key"], "occasional")].append(inv)
    year_ago = as_of - dt.timedelta(days=365)

    def summary(group: list[dict[str, Any]]) -> dict[str, Any]:
        return {"invoices": len(group), "dso": _days(_dso(group, as_of)),
                "payment_delay_12m": _days(_delay(group, year_ago, as_of)), "trend": _trend(group, ends)}

    # ageing of what is open today
    open_now = [inv for inv in invoices if _open_at(inv, as_of)]
    ageing = []
    for label, low, high in AGEING_BUCKETS:
        members = [inv for inv in open_now
                   if (low is None and (as_of - inv["due"]).days <= 0)
                   or (low is not None and (as_of - inv["due"]).days >= low
                       and (high is None or (as_of - inv["due"]).days <= high))]
        ageing.append({"bucket": label, "count": len(members),
                       "amount": _money(sum(inv["open_minor"] for inv in members), currency)})

    paid_keys = {inv["invoice_key"] for inv in invoices if inv["paid_on"] is not None and inv["paid_on"] <= as_of}
    open_keys = {inv["invoice_key"] for inv in open_now}

    # funding per factor: limits, outstanding assigned, available, advances received
    factors: list[dict[str, Any]] = []
    names = sorted(set(config.factors or {}) | {a["factor"] for a in assignments} | {lim["factor"] for lim in limits})
    for name in names:
        options = (config.factors or {}).get(name, {})
        advance_rate = Decimal(options.get("advance_rate") or Decimal("0.90"))
        reserve_rate = Decimal(options.get("reserve_rate") or Decimal("0.10"))
        limit_by_debtor: dict[str, int] = {}
        for lim in limits:
            if lim["factor"] != name or lim["currency"] != currency or lim["status"] in LIVE_LIMIT_REFUSED:
                continue
            if lim["valid_to"] and _date(lim["valid_to"]) < as_of:
                continue
            limit_by_debtor[lim["debtor_key"]] = lim["amount_minor"]
        used_by_debtor: Counter[str] = Counter()
        for a in assignments:
            if (a["factor"] == name and a["kind"] == "assignment" and a["currency"] == currency
                    and a["state"] not in ("declined", "cancelled") and a["invoice_key"] in open_keys):
                used_by_debtor[a["buyer_key"]] += a["amount_minor"]
        headroom = sum(max(0, limit - used_by_debtor.get(debtor, 0)) for debtor, limit in limit_by_debtor.items())
        available = Money.of(Money.from_minor(headroom, currency).amount * advance_rate, currency,
                             rounding=ROUND_HALF_EVEN)
        funded = sum(e["amount_minor"] or 0 for e in events
                     if e["factor"] == name and e["kind"] in FUNDING_KINDS and e["currency"] == currency)
        used = sum(used_by_debtor.values())
        factors.append({
            "name": name, "limits": _money(sum(limit_by_debtor.values()), currency),
            "outstanding_assigned": _money(used, currency), "available_funding": str(available.amount),
            "advances_received": _money(funded, currency),
            "limit_use": _pct(_ratio(used, sum(limit_by_debtor.values()))),
            "expected_reserve": str(Money.of(Money.from_minor(used, currency).amount * reserve_rate, currency,
                                             rounding=ROUND_HALF_EVEN).amount),
        })

    # reserve held and released (factor events)
    held = released = 0
    for e in events:
        if "reserve" not in e["kind"] or e["currency"] != currency or e["amount_minor"] is None:
            continue
        if "releas" in e["kind"] or e["amount_minor"] < 0:
            released += abs(e["amount_minor"])
        else:
            held += e["amount_minor"]

    # factoring cost per month, and as a rate of financed volume
    cost: dict[str, Counter[str]] = {end.strftime("%Y-%m"): Counter() for end in ends}
    for e in events:
        month = (e["occurred_on"] or "")[:7]
        if month not in cost or e["currency"] != currency:
            continue
        amount = e["amount_minor"] or 0
        if e["kind"] in FEE_KINDS:
            cost[month]["fees"] += amount
            cost[month]["vat"] += e["vat_minor"] or 0
        elif e["kind"] in INTEREST_KINDS:
            cost[month]["interest"] += amount
            cost[month]["vat"] += e["vat_minor"] or 0
        elif e["kind"] in FUNDING_KINDS:
            cost[month]["financed"] += amount
    if not any(c["financed"] for c in cost.values()):  # no funding events yet: financed = assigned volume
        for a in assignments:
            month = (a["created_at"] or "")[:7]
            if month in cost and a["kind"] == "assignment" and a["currency"] == currency \
                    and a["state"] not in ("declined", "cancelled"):
                cost[month]["financed"] += a["amount_minor"]
    cost_months = []
    for month, c in cost.items():
        charges = c["fees"] + c["interest"]
        cost_months.append({"month": month, "fees": _money(c["fees"], currency),
                            "interest": _money(c["interest"], currency), "vat": _money(c["vat"], currency),
                            "financed": _money(c["financed"], currency), "rate": _pct(_ratio(charges, c["financed"]))})
    total_charges = sum(c["fees"] + c["interest"] for c in cost.values())
    total_financed = sum(c["financed"] for c in cost.values())

    # unpaid covered by insurance / guarantee (an approved, valid debtor limit is the cover)
    cover_by_debtor: Counter[str] = Counter()
    for lim in limits:
        if lim["currency"] == currency and lim["status"] not in LIVE_LIMIT_REFUSED \
                and not (lim["valid_to"] and _date(lim["valid_to"]) < as_of):
            cover_by_debtor[lim["debtor_key"]] = max(cover_by_debtor[lim["debtor_key"]], lim["amount_minor"])
    unpaid_by_debtor: Counter[str] = Counter()
    for inv in open_now:
        if (as_of - inv["due"]).days > UNPAID_AFTER_DAYS or inv["financing_state"] == "charged_back":
            unpaid_by_debtor[inv["buyer_key"]] += inv["open_minor"]
    unpaid = sum(unpaid_by_debtor.values())
    covered = sum(min(amount, cover_by_debtor.get(debtor, 0)) for debtor, amount in unpaid_by_debtor.items())
    indemnities = sum(e["amount_minor"] or 0 for e in events if e["kind"] in COVER_KINDS and e["currency"] == currency)

    # declines by reason (the factor's), and the eligibility engine's own refusals
    declines: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "amount_minor": 0})
    declined_keys = set()
    for e in events:
        if e["kind"] in DECLINE_KINDS:
            reason = e["reason_code"] or "unspecified"
            declines[reason]["count"] += 1
            declines[reason]["amount_minor"] += (e["amount_minor"] or 0) if e["currency"] == currency else 0
            declined_keys.add(e["invoice_key"])
    for a in assignments:
        if a["state"] == "declined" and a["invoice_key"] not in declined_keys:
            reason = (a["last_error"] or "unspecified").split(":")[0][:60]
            declines[reason]["count"] += 1
            declines[reason]["amount_minor"] += a["amount_minor"] if a["currency"] == currency else 0
    refusal_reasons: Counter[str] = Counter()
    for r in refusals:
        for reason in _reasons(r["reasons"]):
            refusal_reasons[reason] += 1

    # reconciliation: auto-match rate and exceptions, per month
    recon_months: dict[str, Counter[str]] = {end.strftime("%Y-%m"): Counter() for end in ends}
    totals: Counter[str] = Counter()
    for line in lines:
        statuses = set((line["statuses"] or "").split(",")) - {""}
        kind = ("auto" if "auto" in statuses else "manual" if "manual" in statuses
                else "suggested" if "suggested" in statuses or line["match_status"] == "suggested" else "unmatched")
        if line["match_status"] in ("ignored", "not_receivable"):
            kind = "ignored"
        totals[kind] += 1
        month = (line["booking_date"] or "")[:7]
        if month in recon_months:
            recon_months[month][kind] += 1
    relevant = sum(totals[k] for k in ("auto", "manual", "suggested", "unmatched"))

    return {
        "as_of": as_of.isoformat(),
        "currency": currency,
        "other_currencies": dict(sorted(other.items())),
        "portfolio": {"invoices": len(invoices), "open": len(open_now),
                      "open_amount": _money(sum(inv["open_minor"] for inv in open_now), currency),
                      "paid": len(paid_keys)},
        "dso": {"current": _days(_dso(invoices, as_of)), "payment_delay_12m": _days(_delay(invoices, year_ago, as_of)),
                "trend": _trend(invoices, ends),
                "by_country": {k: summary(v) for k, v in sorted(by_country.items())},
                "by_segment": {k: summary(v) for k, v in sorted(by_segment.items())}},
        "ageing": ageing,
        "funding": {"factors": factors,
                    "available_total": _money(sum(Money.parse(f["available_funding"], currency).minor_units
                                                  for f in factors), currency)},
        "reserve": {"held": _money(held, currency), "released": _money(released, currency),
                    "balance": _money(held - released, currency)},
        "cost": {"months": cost_months, "total": _money(total_charges, currency),
                 "vat_total": _money(sum(c["vat"] for c in cost.values()), currency),
                 "financed_total": _money(total_financed, currency),
                 "rate": _pct(_ratio(total_charges, total_financed))},
        "unpaid_cover": {"unpaid": _money(unpaid, currency), "covered": _money(covered, currency),
                         "rate": _pct(_ratio(covered, unpaid)), "indemnities_received": _money(indemnities, currency),
                         "unpaid_after_days": UNPAID_AFTER_DAYS},
        "declines": {"by_reason": sorted(({"reason": k, "count": v["count"],
                                           "amount": _money(v["amount_minor"], currency)}
                                          for k, v in declines.items()), key=lambda d: (-d["count"], d["reason"])),
                     "eligibility_refusals": [{"reason": k, "count": n} for k, n in refusal_reasons.most_common(12)]},
        "reconciliation": {"lines": sum(totals.values()), **{k: totals[k] for k in
                                                              ("auto", "manual", "suggested", "unmatched", "ignored")},
                           "auto_match_rate": _pct(_ratio(totals["auto"], relevant)),
                           "exceptions": totals["suggested"] + totals["unmatched"],
                           "months": [{"month": m, "lines": sum(c.values()), "auto": c["auto"],
                                       "exceptions": c["suggested"] + c["unmatched"],
                                       "auto_match_rate": _pct(_ratio(c["auto"], sum(c[k] for k in (
                                           "auto", "manual", "suggested", "unmatched"))))}
                                      for m, c in recon_months.items()]},
    }


def _family(kind: str) -> str:
    """``funding.paid`` → ``funding``, ``fee.charged`` → ``fee``; declines and reserve moves keep their verb."""
    if kind in DECLINE_KINDS or "." not in kind:
        return kind
    family, _, verb = kind.partition(".")
    if family == "reserve":
        return "reserve_released" if verb.startswith("releas") else "reserve_held"
    return family


def _reasons(raw: str | None) -> list[str]:
    """Reason codes of a stored decision, whatever shape the eligibility engine wrote them in."""
    try:
        data = json.loads(raw or "[]")
    except ValueError:
        return [str(raw)[:60]]
    items = data if isinstance(data, list) else data.get("reasons", [data]) if isinstance(data, dict) else [data]
    out = []
    for item in items:
        if isinstance(item, dict):
            if item.get("ok") is True or item.get("passed") is True:
                continue
            out.append(str(item.get("code") or item.get("rule") or item.get("reason") or "unspecified"))
        else:
            out.append(str(item))
    return out


# -- renderings ---------------------------------------------------------------------------------------

def render_text(k: dict[str, Any]) -> str:
    cur = k["currency"]
    out = [f"Cessio report as of {k['as_of']} (amounts in {cur})"]
    if k["other_currencies"]:
        out.append("  not converted: " + ", ".join(f"{n} invoices in {c}" for c, n in k["other_currencies"].items()))
    p = k["portfolio"]
    out.append(f"portfolio: {p['invoices']} invoices, {p['open']} open for {p['open_amount']}, {p['paid']} paid")
    out.append(f"DSO: {k['dso']['current'] or '-'} days; payment delay (12 months): "
               f"{k['dso']['payment_delay_12m'] or '-'} days")
    for group in ("by_country", "by_segment"):
        for name, g in k["dso"][group].items():
            out.append(f"  {name}: DSO {g['dso'] or '-'} d, delay {g['payment_delay_12m'] or '-'} d, "
                       f"{g['invoices']} invoices")
    out.append("ageing: " + "; ".join(f"{a['bucket']} {a['amount']} ({a['count']})" for a in k["ageing"]))
    for f in k["funding"]["factors"]:
        out.append(f"factor {f['name']}: limits {f['limits']}, assigned outstanding {f['outstanding_assigned']} "
                   f"({f['limit_use'] or '-'} % of limits), available funding {f['available_funding']}, "
                   f"advances received {f['advances_received']}")
    r = k["reserve"]
    out.append(f"reserve: held {r['held']}, released {r['released']}, balance {r['balance']}")
    c = k["cost"]
    out.append(f"factoring cost (12 months): {c['total']} + VAT {c['vat_total']} on {c['financed_total']} financed "
               f"= {c['rate'] or '-'} %")
    u = k["unpaid_cover"]
    out.append(f"unpaid (> {u['unpaid_after_days']} days past due): {u['unpaid']}, covered {u['covered']} "
               f"({u['rate'] or '-'} %)")
    declined = ", ".join(f"{d['reason']} {d['count']}" for d in k["declines"]["by_reason"])
    out.append("declined by the factor: " + (declined or "none"))
    out.append("not eligible: " + (", ".join(f"{d['reason']} {d['count']}"
                                             for d in k["declines"]["eligibility_refusals"]) or "none"))
    rec = k["reconciliation"]
    out.append(f"reconciliation: {rec['lines']} lines, auto-matched {rec['auto_match_rate'] or '-'} %, "
               f"{rec['exceptions']} exceptions to review")
    return "\n".join(out) + "\n"


def render_json(k: dict[str, Any]) -> str:
    return json.dumps(k, indent=2, ensure_ascii=False) + "\n"


def render_report(store: Any, config: Any, as_of: dt.date, *, fmt: str = "text") -> str:
    kpis = compute_kpis(store, config, as_of)
    if fmt == "json":
        return render_json(kpis)
    if fmt == "html":
        return render_html(kpis)
    if fmt == "text":
        return render_text(kpis)
    raise ConfigError(f"unknown report format {fmt!r} (text, json, html)")


def write_report(store: Any, config: Any, as_of: dt.date, path: Path, *, fmt: str = "html") -> Path:
    """Write the report atomically: a reader never sees half a file."""
    text = render_report(store, config, as_of, fmt=fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is read like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def demo_stage(ctx: Any) -> None:
    """Demo stage "report": writes ``report.html`` into the demo folder and prints its path.

    Sets ``ctx.state["report_path"]`` (the demo keeps its folder when a report was written).
    """
    from connector.clock import today
    from connector.config import empty_config

    config = ctx.state.get("config") or empty_config(Path(ctx.store.path))
    path = write_report(ctx.store, config, today(), Path(ctx.folder) / "report.html", fmt="html")
    kpis = compute_kpis(ctx.store, config, today())
    ctx.state["report_path"] = str(path)
    rec = kpis["reconciliation"]
    ctx.echo(f"  DSO {kpis['dso']['current'] or '-'} days, {kpis['portfolio']['open']} open invoices for "
             f"{kpis['portfolio']['open_amount']} {kpis['currency']}, auto-match {rec['auto_match_rate'] or '-'} %")
    for line in end_to_end_summary(ctx.store, kpis):
        ctx.echo(f"  {line}")
    ctx.echo(f"  HTML report: {path}")


def end_to_end_summary(store: Any, kpis: dict[str, Any]) -> list[str]:
    """The demo's closing lines: what went in, what was assigned and funded, what was reconciled and posted."""
    invoices = store.invoice_rows(limit=1_000_000)
    states = Counter(r["financing_state"] for r in invoices if r["financing_state"] not in ("new", "ineligible"))
    ledger = store.ledger_rows()
    debit, credit = sum(r["debit_minor"] for r in ledger), sum(r["credit_minor"] for r in ledger)
    rec, funding, backlog = kpis["reconciliation"], kpis["funding"], store.backlog()
    refusals = ", ".join(f"{r['reason']} {r['count']}" for r in kpis["declines"]["eligibility_refusals"]) or "none"
    return [
        "end-to-end summary:",
        f"  invoices and credit notes stored: {len(invoices)}; quarantined documents: "
        f"{backlog['quarantined_documents']}",
        f"  financing states: {', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'none'}; "
        f"not eligible: {refusals}",
        f"  funding: advances received {sum(Decimal(f['advances_received']) for f in funding['factors'])} "
        f"{kpis['currency']}, available {funding['available_total']} {kpis['currency']}, reserve held "
        f"{kpis['reserve']['balance']} {kpis['currency']}",
        f"  statement lines: {rec['lines']} ({rec['auto']} matched automatically, {rec['manual']} by a person, "
        f"{rec['ignored']} not customer payments, {backlog['statement_lines_unmatched']} waiting for review)",
        f"  ledger: {len(ledger)} lines, debits {debit} = credits {credit} minor units"
        f"{'' if debit == credit else ' NOT BALANCED'}",
    ]


# -- HTML: one self-contained file, inline SVG charts (coordinates computed in Decimal too) -------------

PALETTE = ("#1f5f8b", "#e07b39", "#3a9d5d", "#b8405e", "#7b61a8", "#c9a227", "#4aa3b5", "#6b6b6b")
GOOD, WARN, BAD, MUTED = "#3a9d5d", "#e0a339", "#c0392b", "#9aa5b1"
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 230, 56, 24, 16, 34


def _d(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _nice(top: Decimal) -> Decimal:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return Decimal(1)
    exponent = top.adjusted()
    base = Decimal(10) ** exponent
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if top <= base * step:
            return base * step
    return base * 10


def _fmt(value: Decimal | None, places: int = 0) -> str:
    if value is None:
        return "–"
    q = Decimal(1).scaleb(-places)
    return f"{value.quantize(q, rounding=ROUND_HALF_EVEN):,}"


def _px(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _frame(inner: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>' + "".join(inner) + "</svg>")


def _ticks(lo: Decimal, hi: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Round axis bounds and a round step (1, 2, 2.5 or 5 × 10ⁿ) giving about four intervals."""
    step = _nice((hi - lo) / 4 if hi > lo else Decimal(1))
    low = (lo / step).to_integral_value(rounding="ROUND_FLOOR") * step
    high = (hi / step).to_integral_value(rounding="ROUND_CEILING") * step
    return low, max(high, low + step), step


def _axes(lo: Decimal, hi: Decimal, unit: str) -> tuple[list[str], Any]:
    lo, hi, step = _ticks(lo, hi)
    plot_h = Decimal(H - PAD_T - PAD_B)

    def y(value: Decimal) -> Decimal:
        return Decimal(PAD_T) + plot_h - (value - lo) / (hi - lo) * plot_h

    parts = []
    value = lo
    places = max(0, -step.normalize().as_tuple().exponent)
    while value <= hi:
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{_px(y(value))}" y2="{_px(y(value))}" '
                     f'stroke="{"#56606b" if value == 0 else "#e3e7eb"}" stroke-width="1"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{_px(y(value) + 4)}" text-anchor="end" font-size="11" '
                     f'fill="#56606b">{_fmt(value, places)}{unit}</text>')
        value += step
    return parts, y


def _month_label(month: str) -> str:
    """``2026-01`` → ``Jan 26``."""
    return dt.date.fromisoformat(month + "-01").strftime("%b %y")


def line_chart(title: str, labels: list[str], series: list[tuple[str, list[Decimal | None]]], unit: str = "") -> str:
    values = [v for _, vals in series for v in vals if v is not None]
    if not values:
        return _empty(title)
    parts, y = _axes(min(Decimal(0), min(values)), max(max(values), Decimal(1)), unit)
    n = max(1, len(labels) - 1)
    plot_w = Decimal(W - PAD_L - PAD_R)

    def x(i: int) -> Decimal:
        return Decimal(PAD_L) + plot_w * i / n

    for i, label in enumerate(labels):
        if len(labels) <= 12 or i % 2 == 0:
            parts.append(f'<text x="{_px(x(i))}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="10" '
                         f'fill="#56606b">{_esc(label)}</text>')
    for index, (_name, vals) in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        width = 3 if index == 0 else 2
        segment: list[str] = []
        for i, v in enumerate([*vals, None]):
            if v is not None:
                segment.append(f"{_px(x(i))},{_px(y(v))}")
                parts.append(f'<circle cx="{_px(x(i))}" cy="{_px(y(v))}" r="{width}" fill="{color}"/>')
            elif segment:
                parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{color}" '
                             f'stroke-width="{width}"/>')
                segment = []
    parts.append(_legend([(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)]))
    return _frame(parts, title)


def bar_chart(title: str, items: list[tuple[str, Decimal, str]], unit: str = "",
              stacked: list[tuple[str, list[Decimal], str]] | None = None) -> str:
    """Vertical bars; with ``stacked`` each bar is the sum of the named layers."""
    layers = stacked or [("", [v for _, v, _ in items], "")]
    totals = [sum((layer[1][i] for layer in layers), Decimal(0)) for i in range(len(items))]
    if not items or not any(totals):
        return _empty(title)
    parts, y = _axes(Decimal(0), max(totals), unit)
    slot = Decimal(W - PAD_L - PAD_R) / len(items)
    bar = slot * Decimal("0.64")
    for i, (label, _value, color) in enumerate(items):
        left = Decimal(PAD_L) + slot * i + (slot - bar) / 2
        base = Decimal(0)
        for name, vals, layer_color in layers:
            top = base + vals[i]
            if vals[i] > 0:
                parts.append(f'<rect x="{_px(left)}" y="{_px(y(top))}" width="{_px(bar)}" '
                             f'height="{_px(y(base) - y(top))}" fill="{layer_color or color}">'
                             f'<title>{_esc(label)} {_esc(name)} {_fmt(vals[i], 2)}</title></rect>')
            base = top
        if not stacked:
            parts.append(f'<text x="{_px(left + bar / 2)}" y="{_px(y(totals[i]) - 4)}" text-anchor="middle" '
                         f'font-size="11" fill="#2b3138">{_fmt(totals[i])}</text>')
        parts.append(f'<text x="{_px(left + bar / 2)}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="10" '
                     f'fill="#56606b">{_esc(label)}</text>')
    if stacked:
        parts.append(_legend([(name, color) for name, _vals, color in stacked]))
    return _frame(parts, title)


def _legend(entries: list[tuple[str, str]]) -> str:
    """Colour keys in one row above the plot, each as wide as its name."""
    parts, x = [], PAD_L + 8
    for name, color in entries:
        label = name[:16]
        parts.append(f'<rect x="{x}" y="{PAD_T}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{PAD_T + 9}" font-size="11" fill="#2b3138">{_esc(label)}</text>')
        x += 14 + 7 * len(label) + 14
    return "".join(parts)


def hbar_chart(title: str, rows: list[tuple[str, Decimal, Decimal | None, str]], unit: str = "") -> str:
    """Horizontal bars ``(label, value, out_of, colour)``; ``out_of`` draws a grey track (a limit)."""
    if not rows:
        return _empty(title)
    hi = _nice(max(max(v, o or Decimal(0)) for _, v, o, _ in rows))
    left, right = Decimal(150), Decimal(W - 130)
    row_h = min(Decimal(34), Decimal(H - 20) / len(rows))
    parts = []
    for i, (label, value, out_of, color) in enumerate(rows):
        top = Decimal(10) + row_h * i
        height = row_h * Decimal("0.6")
        if out_of is not None:
            parts.append(f'<rect x="{left}" y="{_px(top)}" width="{_px((right - left) * out_of / hi)}" '
                         f'height="{_px(height)}" fill="#e3e7eb"/>')
        parts.append(f'<rect x="{left}" y="{_px(top)}" width="{_px((right - left) * value / hi)}" '
                     f'height="{_px(height)}" fill="{color}"/>')
        parts.append(f'<text x="{left - 6}" y="{_px(top + height - 3)}" text-anchor="end" font-size="11" '
                     f'fill="#2b3138">{_esc(label[:22])}</text>')
        suffix = f" / {_fmt(out_of)}" if out_of is not None else ""
        parts.append(f'<text x="{_px(left + (right - left) * max(value, out_of or 0) / hi + 4)}" '
                     f'y="{_px(top + height - 3)}" font-size="11" fill="#2b3138">{_fmt(value)}{suffix}{unit}</text>')
    return _frame(parts, title)


def _empty(title: str) -> str:
    return _frame([f'<text x="{W // 2}" y="{H // 2}" text-anchor="middle" font-size="13" fill="{MUTED}">'
                   "no data yet</text>"], title)


def _tile(label: str, value: str, note: str = "", tone: str = "") -> str:
    return (f'<div class="tile {tone}"><div class="label">{_esc(label)}</div><div class="value">{_esc(value)}</div>'
            f'<div class="note">{_esc(note)}</div></div>')


def _card(title: str, body: str, wide: bool = False) -> str:
    return f'<section class="card{" wide" if wide else ""}"><h2>{_esc(title)}</h2>{body}</section>'


def render_html(k: dict[str, Any]) -> str:
    cur = k["currency"]
    months = [_month_label(p["month"]) for p in k["dso"]["trend"]]
    countries = sorted(k["dso"]["by_country"].items(), key=lambda kv: -kv[1]["invoices"])[:5]

    def trend(metric: str) -> list[tuple[str, list[Decimal | None]]]:
        series = [("all", [_d(p[metric]) for p in k["dso"]["trend"]])]
        series += [(name, [_d(p[metric]) for p in g["trend"]]) for name, g in countries]
        return series

    seg_rows = "".join(f"<tr><td>{_esc(name)}</td><td>{g['invoices']}</td><td>{_esc(g['dso'] or '–')}</td>"
                       f"<td>{_esc(g['payment_delay_12m'] or '–')}</td></tr>"
                       for name, g in k["dso"]["by_segment"].items())
    country_rows = "".join(f"<tr><td>{_esc(name)}</td><td>{g['invoices']}</td><td>{_esc(g['dso'] or '–')}</td>"
                           f"<td>{_esc(g['payment_delay_12m'] or '–')}</td></tr>"
                           for name, g in k["dso"]["by_country"].items())
    table_head = "<tr><th></th><th>invoices</th><th>DSO (days)</th><th>payment delay (days, 12 m)</th></tr>"
    ageing_colors = (GOOD, "#8fbf5a", WARN, "#e07b39", BAD)
    ageing = bar_chart("Ageing of open receivables", [(a["bucket"], Decimal(a["amount"]), ageing_colors[i])
                                                      for i, a in enumerate(k["ageing"])])
    funding_rows = []
    for f in k["funding"]["factors"]:
        funding_rows.append((f"{f['name']} used", Decimal(f["outstanding_assigned"]), Decimal(f["limits"]),
                             PALETTE[0]))
        funding_rows.append((f"{f['name']} available", Decimal(f["available_funding"]), None, GOOD))
    funding = hbar_chart(f"Funding used against limits ({cur})", funding_rows)
    cm = k["cost"]["months"]
    cost = bar_chart(f"Factoring cost per month ({cur})", [(_month_label(m["month"]), Decimal(0), "") for m in cm],
                     stacked=[("fees", [Decimal(m["fees"]) for m in cm], PALETTE[0]),
                              ("interest", [Decimal(m["interest"]) for m in cm], PALETTE[1]),
                              ("VAT", [Decimal(m["vat"]) for m in cm], MUTED)])
    cost_rate = line_chart("Cost as % of financed volume", [_month_label(m["month"]) for m in cm],
                           [("cost rate", [_d(m["rate"]) for m in cm])], "%")
    declines = hbar_chart("Assignments declined by the factor, by reason",
                          [(d["reason"], Decimal(d["count"]), None, BAD) for d in k["declines"]["by_reason"][:6]])
    refusals = hbar_chart("Not eligible, by reason",
                          [(d["reason"], Decimal(d["count"]), None, WARN)
                           for d in k["declines"]["eligibility_refusals"][:6]])
    rm = k["reconciliation"]["months"]
    recon = line_chart("Auto-match rate per month", [_month_label(m["month"]) for m in rm],
                       [("auto-match", [_d(m["auto_match_rate"]) for m in rm])], "%")
    exceptions = bar_chart("Reconciliation exceptions per month",
                           [(_month_label(m["month"]), Decimal(m["exceptions"]), WARN) for m in rm])
    rec = k["reconciliation"]
    u = k["unpaid_cover"]
    r = k["reserve"]
    p = k["portfolio"]
    cover_rate = _d(u["rate"])
    tiles = "".join([
        _tile("DSO", f"{k['dso']['current'] or '–'} days", "receivables ÷ last 90 days of sales × 90"),
        _tile("Payment delay", f"{k['dso']['payment_delay_12m'] or '–'} days", "after due date, last 12 months",
              "warn" if (_d(k["dso"]["payment_delay_12m"]) or 0) > 15 else ""),
        _tile("Open receivables", f"{_fmt(Decimal(p['open_amount']))} {cur}", f"{p['open']} invoices"),
        _tile("Available funding", f"{_fmt(Decimal(k['funding']['available_total']))} {cur}",
              "headroom under limits × advance rate", "good"),
        _tile("Reserve held", f"{_fmt(Decimal(r['balance']))} {cur}",
              f"held {_fmt(Decimal(r['held']))}, released {_fmt(Decimal(r['released']))}"),
        _tile("Factoring cost", f"{k['cost']['rate'] or '–'} %",
              f"{_fmt(Decimal(k['cost']['total']))} {cur} + VAT on {_fmt(Decimal(k['cost']['financed_total']))}"),
        _tile("Unpaid covered", f"{u['rate'] or '–'} %", f"of {_fmt(Decimal(u['unpaid']))} {cur} unpaid",
              "bad" if cover_rate is not None and cover_rate < 50 else ""),
        _tile("Auto-match rate", f"{rec['auto_match_rate'] or '–'} %", f"{rec['exceptions']} exceptions to review",
              "warn" if rec["exceptions"] else "good"),
    ])
    other = ""
    if k["other_currencies"]:
        other = ("<p class='muted'>Not converted (listed apart): " +
                 ", ".join(f"{n} invoices in {_esc(c)}" for c, n in k["other_currencies"].items()) + "</p>")
    segments = [(name, [_d(p["dso"]) for p in g["trend"]]) for name, g in k["dso"]["by_segment"].items()]
    unpaid, covered = Decimal(u["unpaid"]), Decimal(u["covered"])
    cover = hbar_chart(f"Unpaid receivables and their cover ({cur})",
                       [("unpaid", unpaid, None, BAD), ("covered", covered, unpaid if unpaid else None, GOOD),
                        ("indemnities received", Decimal(u["indemnities_received"]), None, PALETTE[0])])
    cards = [
        _card("DSO trend (days)", line_chart("DSO trend", months, trend("dso"), "")),
        _card("Payment delay trend (days after due date)", line_chart("Payment delay", months,
                                                                      trend("payment_delay"), "")),
        _card("Ageing", ageing),
        _card("Funding", funding),
        _card("Factoring cost", cost),
        _card("Cost rate", cost_rate),
        _card("Declines", declines),
        _card("Eligibility refusals", refusals),
        _card("Reconciliation", recon),
        _card("Exceptions", exceptions),
        _card("DSO trend by debtor segment (days)", line_chart("DSO by segment", months, segments, "")),
        _card(f"Unpaid (> {u['unpaid_after_days']} days past due) covered by insurance or guarantee", cover),
        _card("By country", f"<table>{table_head}{country_rows}</table>"),
        _card("By debtor segment", f"<table>{table_head}{seg_rows}</table>"),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cessio report {_esc(k['as_of'])}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f6f8;
       color: #2b3138; }}
header {{ background: #1f3b57; color: white; padding: 14px 24px; }}
header h1 {{ margin: 0; font-size: 20px; font-weight: 600; }} header p {{ margin: 2px 0 0; opacity: .8; }}
main {{ padding: 16px 24px; max-width: 1200px; }}
.tiles {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin-bottom: 14px; }}
.tile {{ background: white; border-radius: 6px; padding: 10px 12px; border-left: 4px solid #1f5f8b; }}
.tile.good {{ border-left-color: {GOOD}; }} .tile.warn {{ border-left-color: {WARN}; }}
.tile.bad {{ border-left-color: {BAD}; }}
.label {{ font-size: 12px; color: #56606b; text-transform: uppercase; letter-spacing: .04em; }}
.value {{ font-size: 22px; font-weight: 600; margin: 2px 0; }} .note {{ font-size: 11px; color: #56606b; }}
.grid {{ display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }}
.card {{ background: white; border-radius: 6px; padding: 10px 12px; }}
.card h2 {{ font-size: 14px; margin: 0 0 6px; }} svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
th, td {{ text-align: right; padding: 4px 8px; border-bottom: 1px solid #e3e7eb; }}
th:first-child, td:first-child {{ text-align: left; }}
.muted, footer {{ color: #56606b; font-size: 12px; }} footer {{ padding: 0 24px 24px; max-width: 1200px; }}
</style></head>
<body><header><h1>Cessio — receivables and factoring report</h1>
<p>as of {_esc(k['as_of'])} · amounts in {_esc(cur)} · {p['invoices']} invoices</p></header>
<main><div class="tiles">{tiles}</div>{other}<div class="grid">{"".join(cards)}</div></main>
<footer><p>DSO = receivables open at the date ÷ gross invoiced over the 90 previous days × 90. Payment delay =
paid date − due date. Paid = cash allocated covers the amount due, or the factor reported the collection. Unpaid =
more than {u['unpaid_after_days']} days past due or charged back; covered = within an approved debtor limit
(credit insurance / guarantee). Available funding = headroom under debtor limits × advance rate. Segments rank
debtors by 12-month volume (top 20 % key accounts, next 30 % regular, rest occasional).</p></footer>
</body></html>
"""
