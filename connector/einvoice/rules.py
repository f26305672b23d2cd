"""Native validation: the EN 16931 rules that matter for financing, implemented as functions of data.

Reads: the raw texts of a document (:class:`~connector.einvoice.mapping.RawFields`) and its normalised
profile. Writes: :class:`~connector.einvoice.findings.Finding` objects. Fast (no XSLT) and exact
(``Decimal``; sums are rounded half-up to the currency's minor unit before comparing, like the CEN rules).
The official rule set runs separately (:mod:`connector.einvoice.official`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from connector.codes import UnknownCode, normalise_country
from connector.einvoice.findings import Finding
from connector.einvoice.mapping import RawFields
from connector.einvoice.profiles import Profile
from connector.errors import Quarantine

Rule = Callable[[RawFields, Profile, int], list[Finding]]


def _dec(raw: RawFields, name: str) -> Decimal | None:
    text = raw.get(name)
    if text is None:
        return None
    try:
        return Decimal(text)
    except ArithmeticError:
        return None


def _decs(raw: RawFields, name: str) -> list[Decimal] | None:
    try:
        return [Decimal(t) for t in raw.all(name)]
    except ArithmeticError:
        return None


def _round(value: Decimal, exponent: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def _check(rule: str, ok: bool, message: str, field: str, level: str) -> list[Finding]:
    return [] if ok else [Finding(level, rule, message, field)]


def arithmetic_level(profile: Profile) -> str:
    """EXTENDED documents may carry sub-line hierarchies the sums do not follow: a warning there."""
    return "warning" if "EXTENDED" in profile.name or profile.is_zugferd1 else "error"


def br_co_10(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    line_total, lines = _dec(raw, "line_total"), _decs(raw, "line_net_amounts")
    if line_total is None or not lines:
        return []
    total = _round(sum(lines, Decimal(0)), exponent)
    return _check("BR-CO-10", total == line_total,
                  f"sum of line net amounts {total} differs from BT-106 {line_total}",
                  raw.label("line_total"), arithmetic_level(profile))


def br_co_11_12(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    out: list[Finding] = []
    for rule, total_name, list_name, bt in (("BR-CO-11", "allowance_total", "allowance_amounts", "BT-107"),
                                            ("BR-CO-12", "charge_total", "charge_amounts", "BT-108")):
        stated, items = _dec(raw, total_name), _decs(raw, list_name)
        if items is None or (stated is None and not items):
            continue
        total = _round(sum(items, Decimal(0)), exponent)
        out += _check(rule, stated is not None and total == stated,
                      f"sum of document-level amounts {total} differs from {bt} {stated}",
                      raw.label(total_name), arithmetic_level(profile))
    return out


def br_co_13(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    net, lines = _dec(raw, "total_net"), _dec(raw, "line_total")
    if net is None or lines is None:
        return []
    expected = lines - (_dec(raw, "allowance_total") or 0) + (_dec(raw, "charge_total") or 0)
    return _check("BR-CO-13", _round(expected, exponent) == net,
                  f"BT-109 {net} is not BT-106 - BT-107 + BT-108 = {expected}", raw.label("total_net"),
                  arithmetic_level(profile))


def br_co_14(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    tax, parts = _dec(raw, "total_tax"), _decs(raw, "vat_breakdown_tax")
    if tax is None or not parts:
        return []
    total = _round(sum(parts, Decimal(0)), exponent)
    return _check("BR-CO-14", total == tax, f"BT-110 {tax} differs from the VAT breakdown sum {total}",
                  raw.label("total_tax"), arithmetic_level(profile))


def br_co_15(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    net, gross = _dec(raw, "total_net"), _dec(raw, "total_gross")
    if net is None or gross is None:
        return []
    expected = net + (_dec(raw, "total_tax") or 0)
    return _check("BR-CO-15", _round(expected, exponent) == gross,
                  f"BT-112 {gross} is not BT-109 + BT-110 = {expected}", raw.label("total_gross"), "error")


def br_co_16(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    gross, due = _dec(raw, "total_gross"), _dec(raw, "amount_due")
    if gross is None or due is None:
        return []
    expected = gross - (_dec(raw, "prepaid") or 0) + (_dec(raw, "rounding") or 0)
    # MINIMUM / BASIC WL cannot state BT-113 or BT-114 everywhere, so a gap there is only a warning
    return _check("BR-CO-16", _round(expected, exponent) == due,
                  f"BT-115 {due} is not BT-112 - BT-113 + BT-114 = {expected}", raw.label("amount_due"),
                  "error" if profile.en16931_complete else "warning")


def br_16(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    if not profile.en16931_complete:
        return []  # MINIMUM and BASIC WL carry no lines by design
    return _check("BR-16", bool(raw.all("line_ids") or raw.all("line_net_amounts")),
                  "an invoice must have at least one line", raw.label("line_ids"), "error")


def br_cl_14(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    out: list[Finding] = []
    for name in ("seller.country", "buyer.country", "payee.country"):
        text = raw.get(name)
        if text is None:
            continue
        try:
            normalise_country(text)
        except UnknownCode:
            out.append(Finding("error", "BR-CL-14", f"country code {text!r} is not ISO 3166-1", raw.label(name)))
    return out


def currency_consistency(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    currency = raw.get("currency")
    other = sorted({c for c in raw.all("amount_currencies") if c != currency})
    if not other:
        return []
    raise Quarantine(f"document totals are stated in {', '.join(other)} but the invoice currency (BT-5) is "
                     f"{currency}", field=raw.label("amount_due"), rule="BR-CL-05")


def line_arithmetic(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    """BT-131 = BT-129 x BT-146 / BT-149 on lines without line allowances or charges (a warning: rounded unit
    prices make strict recalculation a known false-positive source, so only a gap over one minor unit counts)."""
    out: list[Finding] = []
    tolerance = Decimal(1).scaleb(-exponent)
    for number, line in enumerate(raw.lines, start=1):
        if line.get("allowance_or_charge") or line.get("parent"):
            continue
        try:
            quantity, price = Decimal(line["quantity"]), Decimal(line["price"])
            net = Decimal(line["net_amount"])
            base = Decimal(line.get("base_quantity") or 1) or Decimal(1)
        except (TypeError, ArithmeticError):
            continue
        expected = quantity * price / base
        if abs(expected - net) > tolerance:
            out.append(Finding("warning", "CESSIO-LINE-ARITH", f"line {number}: net amount {net} is not quantity "
                               f"{quantity} x price {price} / base quantity {base} = {_round(expected, exponent)}",
                               "BT-131 (line net amount)"))
    return out


NATIVE_RULES: tuple[Rule, ...] = (currency_consistency, line_arithmetic, br_co_10, br_co_11_12, br_co_13, br_co_14,
                                  br_co_15, br_co_16, br_16, br_cl_14)


def run_native_rules(raw: RawFields, profile: Profile, exponent: int) -> list[Finding]:
    """Every native rule over the document; a :class:`Quarantine` raised by a rule is fatal."""
    findings: list[Finding] = []
    for rule in NATIVE_RULES:
        findings += rule(raw, profile, exponent)
    return findings
