"""The matching engine: statement lines against open items, as a cascade of named rules. Pure logic.

Reads: :class:`LineView` (a statement line) and :class:`OpenItem` (an open invoice or credit note, with
what is still open), the payer accounts learned from earlier decisions and :class:`MatchConfig`.
Writes: one :class:`Decision` per line: ``auto`` (applied without a person), ``suggested`` (one or more
:class:`Proposal` for review), ``unmatched`` or ``not_receivable``, each with its rule, a confidence and
the evidence in words. No I/O here: :mod:`connector.reconcile.engine` feeds it from the store.

The cascade (the first rule that decides wins):

1. ``not_receivable.*`` — debits, reversals, internal transfers between the company's own accounts, the
   factor's own movements, interest, card settlements, cash and tax refunds (bank codes and words), unless a
   reference names an open item.
2. ``reference.*`` — the line names open items: an ISO 11649 RF creditor reference or a payment reference
   the invoice carries, the factor's own reference, the invoice number written in any of the forms people
   use (``FA-2024-00123``, ``FA202400123``, ``fact. n° 2024/00123``, ``202400123``, the numeric tail ``123``
   when the payer is known). The amount then decides how: exact (one or several items, credit notes netted),
   an exact subset of the named items, short by a bank fee or an early-payment discount within the
   tolerances (the difference is written off, not allocated), a partial payment of one item, an
   overpayment (the excess stays unapplied cash), a duplicate payment of items already settled (unapplied).
3. ``identity.*`` — no reference: the payer is known by IBAN (invoices and learned payer accounts) or by
   name (exact, or fuzzy with a clear margin); then exactly one open item of that debtor with this amount,
   or exactly one combination of its open items (subset sum, bounded in time), decides.
4. ``amount_only`` — neither: open items of exactly this amount are only ever suggested.

Payer accounts: an IBAN names a debtor when every debtor it is known for is that one: the buyer IBANs
the invoices carry, plus what decided lines taught (a line whose decided allocations are all of one debtor
teaches its IBAN that debtor, in a run as it goes and from the store at the start of the next, by the same
rule, so that a run's result is a fixed point). An IBAN that paid for two debtors names neither.

Ambiguity is never automatic: two items of the same debtor with the same amount and no reference, two
subsets with the right sum, a split of a short payment across several items all go to review.
Confidence: ``auto`` only at or above ``MatchConfig.auto_threshold`` and only on rules that a reference
or an unambiguous identity plus amount prove.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from rapidfuzz import fuzz, process
from stdnum import iso11649

# -- inputs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An invoice or credit note that can still receive cash (``open_minor`` > 0 in ``currency``)."""

    invoice_id: int
    number: str
    kind: str  # "invoice" | "credit_note"
    currency: str
    open_minor: int
    debtor_key: str
    debtor_name: str | None = None
    due_date: dt.date | None = None
    issue_date: dt.date | None = None
    references: tuple[str, ...] = ()  # payment reference (RF...), the factor's assignment ids
    ibans: tuple[str, ...] = ()

    @property
    def sign(self) -> int:
        return -1 if self.kind == "credit_note" else 1


@dataclass(frozen=True, slots=True)
class LineView:
    """What the matcher reads of a statement line (amounts in minor units of ``currency``)."""

    line_id: int
    booking_date: dt.date
    amount_minor: int
    currency: str
    account: str = ""
    name: str | None = None
    iban: str | None = None
    text: str | None = None
    structured_reference: str | None = None
    end_to_end_id: str | None = None
    references: tuple[str, ...] = ()
    bank_code: str | None = None
    charges_minor: int | None = None  # in the line's currency
    instructed_minor: int | None = None
    instructed_currency: str | None = None
    reversal: bool = False


@dataclass(frozen=True)
class MatchConfig:
    auto_threshold: Decimal = Decimal("0.95")
    fee_tolerance: Decimal = Decimal("25")  # in currency units, per payment
    discount_rate_max: Decimal = Decimal("0.03")
    own_ibans: frozenset[str] = frozenset()
    factor_ibans: frozenset[str] = frozenset()
    factor_names: tuple[str, ...] = ()
    subset_max_items: int = 14
    subset_budget: int = 40_000  # search nodes per line: the bound in time of the subset sums
    name_min_score: float = 92.0
    name_margin: float = 5.0


# -- outputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Piece:
    """Cash of the line applied to one item. ``amount_minor`` in the line's currency (negative for a credit
    note netted by the payer), ``invoice_amount_minor`` what it settles in the item's currency, and the
    write-off (bank fee, discount) in the item's currency, booked and not allocated."""

    invoice_id: int
    amount_minor: int
    invoice_amount_minor: int
    invoice_currency: str
    writeoff_minor: int = 0
    writeoff_kind: str | None = None


@dataclass(frozen=True)
class Proposal:
    pieces: tuple[Piece, ...]
    rule: str
    confidence: Decimal
    evidence: tuple[str, ...]
    unapplied_minor: int = 0  # cash of the line left unapplied (overpayment)


@dataclass(frozen=True)
class Decision:
    line_id: int
    status: str  # auto | suggested | unmatched | not_receivable
    rule: str
    confidence: Decimal
    evidence: tuple[str, ...]
    proposals: tuple[Proposal, ...] = ()
    debtor_key: str | None = None

    @property
    def chosen(self) -> Proposal | None:
        return self.proposals[0] if self.status == "auto" and self.proposals else None


# -- normalisation ----------------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9A-Z]+")
_DIGITS = re.compile(r"\d+")
LEGAL_FORMS = frozenset((
    "SA", "SAS", "SASU", "SARL", "EURL", "SCI", "SNC", "SCS", "SELARL", "GMBH", "AG", "KG", "OHG", "UG",
    "EV", "LTD", "LIMITED", "PLC", "LLP", "LLC", "INC", "CORP", "CO", "BV", "NV", "VOF", "SPA", "SRL",
    "SRLS", "SL", "SLU", "AB", "AS", "OY", "APS", "SE", "GIE", "ETS", "STE", "SOC", "SOCIETE", "CIE", "ET",
    "DE", "DU", "LA", "LE", "LES", "THE", "AND", "UND",
))


def fold(text: str | None) -> str:
    """Upper case without accents (``Société Générale`` → ``SOCIETE GENERALE``)."""
    if not text:
        return ""
    if text.isascii():  # nearly every bank text: no accent to remove
        return text.upper()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def compact(text: str) -> str:
    """Only letters and digits, upper case: the form invoice numbers are compared in."""
    return _NON_ALNUM.sub("", fold(text))


def digits_of(text: str) -> str:
    return "".join(_DIGITS.findall(text))


_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def loose(parts: Sequence[str]) -> str:
    """Tokens of a number joined without the leading zeros of each digit group (``FA``, ``2026``, ``00123`` →
    ``FA2026123``): the form of ``FA-2026-123`` typed for ``FA-2026-00123``."""
    return "".join(_LEADING_ZEROS.sub("", part) for part in parts)


def _looks_like_date(parts: Sequence[str]) -> bool:
    """Tokens that read as a date (``11 2026``, ``27 11 2026``, ``2026 11 27``), which a window of digits
    would otherwise glue into something that looks like an invoice number."""
    if not all(p.isdigit() for p in parts) or len(parts) not in (2, 3):
        return False
    small = [int(p) for p in parts if len(p) <= 2]
    years = [p for p in parts if len(p) == 4 and p[:2] in ("19", "20")]
    if len(parts) == 2:
        return len(small) == 1 and 1 <= small[0] <= 12 and len(years) == 1 and len(parts[0]) <= 2
    if len(parts[0]) == 4:
        return bool(years) and len(small) == 2 and 1 <= small[0] <= 12 and 1 <= small[1] <= 31
    return len(small) >= 2 and 1 <= small[0] <= 31 and 1 <= small[1] <= 12 and len(parts[2]) in (2, 4)


def numeric_tail(number: str) -> str | None:
    """The last run of digits without leading zeros (``FA-2024-00123`` → ``123``), when 3+ digits long."""
    runs = _DIGITS.findall(number)
    if not runs:
        return None
    tail = runs[-1].lstrip("0")
    return tail if len(tail) >= 3 else None


@functools.lru_cache(maxsize=65536)
def name_key(name: str | None) -> str:
    words = [w for w in _NON_ALNUM.split(fold(name)) if w and w not in LEGAL_FORMS]
    return " ".join(words)


_IBAN_LIKE = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")


def iban_in_text(text: str | None) -> list[str]:
    """Valid IBANs written in free text (with or without the groups of four)."""
    if not text or not any(ch.isdigit() for ch in text):
        return []
    return [compact(m) for m in _IBAN_LIKE.findall(fold(text)) if iban_checksum_ok(compact(m))]


def iban_checksum_ok(value: str) -> bool:
    from stdnum import iban

    return iban.is_valid(value)


def norm_iban(iban: str | None) -> str | None:
    return compact(iban) or None if iban else None


# -- noise -----------------------------------------------------------------------------------------------

NOISE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("interest", r"\b(INTERETS?|INTEREST|ZINSEN|HABENZINS|AGIOS|REMUNERATION (DU )?COMPTE)\b"),
    ("card_settlement", r"\b(REMISE (CB|CARTE)|CARD SETTLEMENT|CARTE BANCAIRE|TPE|ACQUIRING|SETTLEMENT CARD|"
                        r"VISA SETTLEMENT|MASTERCARD SETTLEMENT|CB \d{2}/\d{2})\b"),
    ("internal_transfer", r"\b(VIREMENT INTERNE|VIR(EMENT)? COMPTE A COMPTE|INTERNAL TRANSFER|TRESORERIE INTERNE|"
                          r"UMBUCHUNG|CASH POOLING|CASH POOL)\b"),
    ("cash_deposit", r"\b(VERSEMENT ESPECES|DEPOT ESPECES|CASH DEPOSIT|BAREINZAHLUNG)\b"),
    ("tax_refund", r"\b(REMBOURSEMENT (DE )?(TVA|CREDIT DE TVA|IMPOT)|DGFIP|TAX REFUND|FINANZAMT|STEUERERSTATTUNG)\b"),
    ("bank_refund", r"\b(RETROCESSION|REMBT FRAIS|REMBOURSEMENT FRAIS|FEE REFUND|RISTORNO)\b"),
    ("loan", r"\b(DEBLOCAGE PRET|LOAN DRAWDOWN|DARLEHEN)\b"),
))
NOISE_CODES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("card_settlement", r"/(CCRD|MCRD)/"),
    ("interest", r"/INTR$|^ACMT/"),
    ("internal_transfer", r"^CAMT/|/(BOOK|ICCT)$"),
))


@functools.lru_cache(maxsize=64)
def _factor_keys(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name_key(n) for n in names)


def classify_noise(line: LineView, config: MatchConfig) -> str | None:
    if line.amount_minor < 0:
        return "debit"
    if line.reversal:
        return "reversal"
    if line.amount_minor == 0:
        return "zero"
    iban = norm_iban(line.iban)
    if iban and iban in config.own_ibans:
        return "internal_transfer"
    if iban and iban in config.factor_ibans:
        return "factor_movement"
    name = name_key(line.name)
    if name and name in _factor_keys(config.factor_names):
        return "factor_movement"
    text = fold(" ".join(x for x in (line.text, line.name) if x))
    for kind, pattern in NOISE_WORDS:
        if pattern.search(text):
            return kind
    code = line.bank_code or ""
    for kind, pattern in NOISE_CODES:
        if pattern.search(code):
            return kind
    return None


# -- the index of open items -------------------------------------------------------------------------------

STRUCTURED, FULL, DIGITS, TAIL = 4, 3, 2, 1
STRENGTH_NAME = {STRUCTURED: "structured reference", FULL: "invoice number", DIGITS: "invoice number digits",
                 TAIL: "numeric tail of the invoice number"}
BASE_CONFIDENCE = {STRUCTURED: Decimal("0.99"), FULL: Decimal("0.98"), DIGITS: Decimal("0.97"),
                   TAIL: Decimal("0.96")}
MAX_WINDOW = 4
GLUED_PREFIXES = ("FACTURE", "FACT", "FAC", "INVOICE", "INV", "RECHNUNG", "RG", "NR", "NO", "N")


class OpenItems:
    """Open items indexed every way the cascade looks them up; ``open`` is updated as cash is applied."""

    def __init__(self, items: Sequence[OpenItem],
                 learned_ibans: Mapping[str, Iterable[str]] | None = None) -> None:
        self.items = list(items)
        self.open = [item.open_minor for item in self.items]
        self.by_full: dict[str, list[int]] = defaultdict(list)
        self.by_digits: dict[str, list[int]] = defaultdict(list)
        self.by_tail: dict[str, list[int]] = defaultdict(list)
        self.by_loose: dict[str, list[int]] = defaultdict(list)
        self.by_ref: dict[str, list[int]] = defaultdict(list)
        self.by_debtor: dict[str, list[int]] = defaultdict(list)
        self.by_amount: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.iban_debtors: dict[str, set[str]] = defaultdict(set)
        self.debtor_names: dict[str, str] = {}
        self.name_exact: dict[str, set[str]] = defaultdict(set)
        self.name_tokens: dict[str, set[str]] = defaultdict(set)
        self.name_cache: dict[str, tuple[str | None, float, str]] = {}
        for index, item in enumerate(self.items):
            key = compact(item.number)
            if key:
                self.by_full[key].append(index)
                parts = [t for t in _NON_ALNUM.split(fold(item.number)) if t]
                relaxed = loose(parts)
                if relaxed != key and len(relaxed) >= 4:
                    self.by_loose[relaxed].append(index)
                digit_runs = _DIGITS.findall(fold(item.number))
                if len(digit_runs) > 1:  # "2026-123" written for "FA-2026-00123"
                    relaxed_digits = loose(digit_runs)
                    if len(relaxed_digits) >= 5 and relaxed_digits not in (relaxed, key):
                        self.by_loose[relaxed_digits].append(index)
            digits = digits_of(item.number)
            if len(digits) >= 4 and digits != key:
                self.by_digits[digits].append(index)
            tail = numeric_tail(item.number)
            if tail:
                self.by_tail[tail].append(index)
            for ref in item.references:
                ref_key = compact(ref)
                if len(ref_key) >= 4:
                    self.by_ref[ref_key].append(index)
            self.by_debtor[item.debtor_key].append(index)
            if item.kind == "invoice" and item.open_minor > 0:
                self.by_amount[(item.currency, item.open_minor)].append(index)
            for iban in item.ibans:
                normalised = norm_iban(iban)
                if normalised:
                    self.iban_debtors[normalised].add(item.debtor_key)
            if item.debtor_key not in self.debtor_names:
                normalised_name = name_key(item.debtor_name)
                self.debtor_names[item.debtor_key] = normalised_name
                if normalised_name:
                    self.name_exact[normalised_name].add(item.debtor_key)
                    for token in normalised_name.split():
                        if len(token) >= 3:
                            self.name_tokens[token].add(item.debtor_key)
        for iban, debtors in (learned_ibans or {}).items():
            normalised = norm_iban(iban)
            if normalised:
                self.iban_debtors[normalised].update(debtors)

    def settle(self, index: int, amount: int) -> None:
        """Reduce what is open of an item (cash applied in this run), keeping the amount index current."""
        item = self.items[index]
        old = self.open[index]
        self.open[index] = old - amount
        if item.kind == "invoice":
            bucket = self.by_amount.get((item.currency, old))
            if bucket and index in bucket:
                bucket.remove(index)
            if self.open[index] > 0:
                self.by_amount[(item.currency, self.open[index])].append(index)

    def learn(self, iban: str | None, debtor: str) -> bool:
        normalised = norm_iban(iban)
        if not normalised or debtor in self.iban_debtors.get(normalised, ()):
            return False
        self.iban_debtors[normalised].add(debtor)
        return True

    # -- references ------------------------------------------------------------------------------------
    def reference_hits(self, line: LineView) -> list[tuple[int, tuple[int, ...]]]:
        """The references the line gives, as groups ``(strength, item indexes)``: one item of a group is
        meant (a group of several is an ambiguous reference, e.g. ``202600123`` written for
        ``FA-2026-00123`` when ``2026/00123`` also exists).

        Text is cut into tokens; every window of up to four consecutive tokens holding a digit is looked
        up as a whole number (``FA 2026 00123`` → ``FA202600123``), with a leading word such as ``FACT``
        or ``INV`` glued to it, and by its digits. A window inside a longer window that names an item is
        ignored (``2026 00123`` inside ``FA 2026 00123``), so the longest written form wins."""
        groups: list[tuple[int, tuple[int, ...]]] = []
        for ref in (line.structured_reference, line.end_to_end_id, *line.references):
            if not ref:
                continue
            key = compact(ref)
            if key in self.by_ref:
                groups.append((STRUCTURED, tuple(self.by_ref[key])))
            if key.startswith("RF") and iso11649.is_valid(key):
                inner = key[4:]
                found = self.by_ref.get(inner) or self.by_full.get(inner) or self.by_digits.get(inner)
                if found:
                    groups.append((STRUCTURED, tuple(found)))
        text = " ".join(x for x in (line.text, line.structured_reference, line.end_to_end_id, *line.references) if x)
        tokens = [t for t in _NON_ALNUM.split(fold(text)) if t]
        relaxed = [_LEADING_ZEROS.sub("", t) for t in tokens]
        windows: list[tuple[int, int, int, tuple[int, ...]]] = []  # start, end (inclusive), strength, items
        for start in range(len(tokens)):
            joined = ""
            for width in range(MAX_WINDOW):
                end = start + width
                if end >= len(tokens):
                    break
                joined += tokens[end]
                if not any(ch.isdigit() for ch in joined):
                    continue
                if width and _looks_like_date(tokens[start:end + 1]):  # "01/2026", "27.11.2026": not a number
                    continue
                found = self.by_ref.get(joined)
                if found:
                    windows.append((start, end, STRUCTURED, tuple(found)))
                    continue
                found = self.by_full.get(joined)
                if found is None and width == 0:
                    for prefix in GLUED_PREFIXES:
                        if joined.startswith(prefix) and len(joined) - len(prefix) >= 4:
                            found = self.by_full.get(joined[len(prefix):])
                            if found:
                                break
                if found:
                    members = list(found)
                    if joined.isdigit():  # written as bare digits: other numbers with these digits compete
                        members += [i for i in self.by_digits.get(joined, ()) if i not in members]
                    windows.append((start, end, FULL if len(members) == len(found) else DIGITS, tuple(members)))
                    continue
                if width or not joined.isdigit():  # leading zeros dropped by the payer: FA-2026-123 for FA-2026-00123
                    found = self.by_loose.get("".join(relaxed[start:end + 1]))
                    if found:
                        windows.append((start, end, DIGITS, tuple(found)))
                        continue
                digits = digits_of(joined)
                if len(digits) >= 4 and (joined.isdigit() or width == 0):
                    members = [*self.by_digits.get(digits, ()), *self.by_full.get(digits, ())]
                    if members:
                        windows.append((start, end, DIGITS, tuple(dict.fromkeys(members))))
            token = tokens[start]
            if token.isdigit():
                found = self.by_tail.get(token.lstrip("0"))
                if found:
                    windows.append((start, start, TAIL, tuple(found)))
        for start, end, strength, items in windows:
            inside = any(s2 <= start and end <= e2 and (s2, e2) != (start, end) and st2 >= DIGITS
                         for s2, e2, st2, _ in windows)
            same_span_stronger = any((s2, e2) == (start, end) and st2 > strength for s2, e2, st2, _ in windows)
            if not inside and not same_span_stronger:
                groups.append((strength, items))
        return groups

    # -- identity ---------------------------------------------------------------------------------------
    def debtor_by_iban(self, iban: str | None) -> str | None:
        debtors = self.iban_debtors.get(norm_iban(iban) or "", set())
        return next(iter(debtors)) if len(debtors) == 1 else None

    def debtor_by_name(self, name: str | None, config: MatchConfig) -> tuple[str | None, float, str]:
        """(debtor, score, how): exact normalised name, else the best fuzzy score with a clear margin
        (remembered per normalised name for the run: the same payers come back line after line)."""
        key = name_key(name)
        if not key:
            return None, 0.0, ""
        found = self.name_cache.get(key)
        if found is None:
            found = self.name_cache[key] = self._debtor_by_name(key, config)
        return found

    def _debtor_by_name(self, key: str, config: MatchConfig) -> tuple[str | None, float, str]:
        exact = self.name_exact.get(key, set())
        if len(exact) == 1:
            return next(iter(exact)), 100.0, "exact"
        if len(exact) > 1:
            return None, 100.0, "several debtors with this name"
        sets = [self.name_tokens[t] for t in set(key.split()) if len(t) >= 3 and t in self.name_tokens]
        candidates: set[str] = set().union(*sets) if sum(map(len, sets)) <= 400 else set()
        if not candidates and len(sets) >= 2:  # common words: the debtors sharing two words with the name
            for n, first in enumerate(sets):
                for second in sets[n + 1:]:
                    candidates |= first & second
        if not candidates:  # a typo in every word: compare with names sharing a 4-letter prefix
            for token in key.split():
                if len(token) >= 4:
                    for known, debtors in self.name_tokens.items():
                        if known[:4] == token[:4]:
                            candidates |= debtors
        if not candidates or len(candidates) > 400:
            return None, 0.0, ""
        ordered = sorted(candidates)
        names = [self.debtor_names[d] for d in ordered]
        best_score = 0.0
        # the words in their order first (``LAGOON CEDAR`` is not ``CEDAR LAGOON``), then in any order
        for scorer in (fuzz.ratio, fuzz.token_sort_ratio):
            scored = process.extract(key, names, scorer=scorer, limit=2)
            best_score, best = scored[0][1], ordered[scored[0][2]]
            second = scored[1][1] if len(scored) > 1 else 0.0
            if best_score >= config.name_min_score and best_score - second >= config.name_margin:
                return best, best_score, "fuzzy"
        return None, best_score, "fuzzy, no clear winner"


# -- amounts ----------------------------------------------------------------------------------------------

def subset_sums(values: Sequence[int], target: int, *, limit: int = 2,
                budget: int = 40_000) -> list[tuple[int, ...]] | None:
    """Index sets of ``values`` (signed ints) summing exactly to ``target``; at most ``limit`` of them.
    None when the search budget ran out before the answer was certain (then nothing is proven)."""
    order = sorted(range(len(values)), key=lambda i: -abs(values[i]))
    vals = [values[i] for i in order]
    pos_suffix = [0] * (len(vals) + 1)
    neg_suffix = [0] * (len(vals) + 1)
    for i in range(len(vals) - 1, -1, -1):
        pos_suffix[i] = pos_suffix[i + 1] + max(vals[i], 0)
        neg_suffix[i] = neg_suffix[i + 1] + min(vals[i], 0)
    found: list[tuple[int, ...]] = []
    nodes = 0
    chosen: list[int] = []

    def walk(i: int, remaining: int, fresh: bool = False) -> bool:
        nonlocal nodes
        nodes += 1
        if nodes > budget:
            return False
        if remaining == 0 and fresh:  # only right after taking an item: skipping one gives the same set
            found.append(tuple(sorted(order[c] for c in chosen)))
            if len(found) >= limit:
                return True
        if i == len(vals):
            return True
        if remaining > pos_suffix[i] or remaining < neg_suffix[i]:
            return True
        chosen.append(i)
        if not walk(i + 1, remaining - vals[i], True):
            return False
        chosen.pop()
        if len(found) >= limit:
            return True
        return walk(i + 1, remaining)

    complete = walk(0, target)
    if not complete and len(found) < limit:
        return None
    return found


STANDARD_DISCOUNTS = tuple(Decimal(n) / 1000 for n in range(5, 51, 5))  # 0.5 % .. 5 %


def _discount_rate(total: int, paid: int, config: MatchConfig) -> Decimal | None:
    """The standard early-payment rate that turns ``total`` into ``paid`` (to the minor unit), if any."""
    if paid >= total or total <= 0:
        return None
    for rate in STANDARD_DISCOUNTS:
        if rate > config.discount_rate_max:
            break
        expected = (Decimal(total) * (1 - rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if expected == paid:
            return rate
    return None


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize()} %"


def _money(minor: int, currency: str, exponent: int) -> str:
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f} {currency}"


# -- the cascade ------------------------------------------------------------------------------------------

@dataclass
class Matcher:
    """Runs the cascade over lines; ``exponents`` gives each currency's minor unit (for tolerances)."""

    index: OpenItems
    config: MatchConfig
    exponents: dict[str, int]
    rejected: dict[int, set[int]] = field(default_factory=dict)  # line id → invoice ids a person rejected

    def tolerance_minor(self, currency: str, total: int | None = None) -> int:
        """The fee tolerance in minor units; never more than a tenth of what is paid for (on a small invoice
        a large shortfall is a partial payment, not a bank fee)."""
        fixed = int(self.config.fee_tolerance.scaleb(self.exponents.get(currency, 2)))
        return fixed if total is None else min(fixed, total // 10)

    def fmt(self, minor: int, currency: str) -> str:
        return _money(minor, currency, self.exponents.get(currency, 2))

    # -- entry points -------------------------------------------------------------------------------
    def decide_all(self, lines: Sequence[LineView]) -> list[Decision]:
        """Reference lines first (they claim their items before any guess can), then the others, in
        date order; repeated until no new automatic decision appears (learned payer accounts and the
        cash applied may make a later line provable). The result is a fixpoint: deciding again over the
        lines left undecided gives the same decisions."""
        ordered = sorted(lines, key=lambda line: (line.booking_date, line.line_id))
        hits = {line.line_id: self.index.reference_hits(line) for line in ordered}
        strong = [line for line in ordered if any(s >= DIGITS for s, _ in hits[line.line_id])]
        strong_ids = {line.line_id for line in strong}
        weak = [line for line in ordered if line.line_id not in strong_ids]
        decisions: dict[int, Decision] = {}
        pending = strong + weak
        for _ in range(6):
            changed = False
            for line in pending:
                decision = self.decide(line, hits[line.line_id])
                decisions[line.line_id] = decision
                if decision.status == "auto":
                    self.apply(line, decision)
                    changed = True
            pending = [line for line in pending if decisions[line.line_id].status != "auto"]
            if not changed or not pending:
                break
        return [decisions[line.line_id] for line in ordered]

    def apply(self, line: LineView, decision: Decision) -> None:
        chosen = decision.chosen
        if chosen is None:
            return
        debtors = set()
        for piece in chosen.pieces:
            index = self.position[piece.invoice_id]
            item = self.index.items[index]
            self.index.settle(index, item.sign * piece.invoice_amount_minor + piece.writeoff_minor)
            debtors.add(item.debtor_key)
        if len(debtors) == 1 and line.iban:
            self.index.learn(line.iban, next(iter(debtors)))

    def __post_init__(self) -> None:
        self.position = {item.invoice_id: i for i, item in enumerate(self.index.items)}

    # -- one line ----------------------------------------------------------------------------------
    def decide(self, line: LineView, hits: list[tuple[int, tuple[int, ...]]] | None = None) -> Decision:
        hits = self.index.reference_hits(line) if hits is None else hits
        excluded = self.rejected.get(line.line_id, set())
        if excluded:
            hits = [(s, tuple(i for i in g if self.index.items[i].invoice_id not in excluded)) for s, g in hits]
            hits = [(s, g) for s, g in hits if g]
        strongest = max((s for s, _ in hits), default=0)
        noise = classify_noise(line, self.config)
        if noise in ("debit", "reversal", "zero") or (noise and strongest < FULL):  # digits alone never beat noise
            return Decision(line.line_id, "not_receivable", f"not_receivable.{noise}", Decimal("0.99"),
                            (f"{noise.replace('_', ' ')}: not a payment of receivables",))
        if hits:
            identity, identity_how = self.identify(line, fuzzy=False)
            decision = self.by_reference(line, hits, identity, identity_how)
            if decision is not None:
                return decision
        identity, identity_how = self.identify(line)
        return self.by_identity(line, identity, identity_how, excluded)

    def identify(self, line: LineView, *, fuzzy: bool = True) -> tuple[str | None, str]:
        debtor = self.index.debtor_by_iban(line.iban)
        if debtor:
            return debtor, "iban"
        if not line.iban:  # banks that only write the payer's account in the text (MT940 :86:, CFONB labels)
            for candidate in iban_in_text(line.text):
                debtor = self.index.debtor_by_iban(candidate)
                if debtor:
                    return debtor, "iban in the text"
        if not fuzzy:
            exact = self.index.name_exact.get(name_key(line.name), set()) if line.name else set()
            return (next(iter(exact)), "name_exact") if len(exact) == 1 else (None, "")
        debtor, score, how = self.index.debtor_by_name(line.name, self.config)
        if debtor:
            return debtor, f"name_{how}" if how == "exact" else f"name_fuzzy:{score:.0f}"
        return None, how

    # -- rule 2: references ------------------------------------------------------------------------
    def by_reference(self, line: LineView, groups: list[tuple[int, tuple[int, ...]]], identity: str | None,
                     identity_how: str) -> Decision | None:
        items, opens = self.index.items, self.index.open
        strong = [(s, g) for s, g in groups if s >= DIGITS]
        anchors = {items[i].debtor_key for _, g in strong for i in g} | ({identity} if identity else set())
        # a bare numeric tail counts only for the payer we know, or a debtor the line already names
        tails = [(s, tuple(i for i in g if items[i].debtor_key in anchors)) for s, g in groups if s == TAIL]
        groups = strong + [(s, g) for s, g in tails if g]
        if not groups:
            return None
        if identity:  # among the members of an ambiguous reference, the payer's own items first
            groups = [(s, tuple(i for i in g if items[i].debtor_key == identity) or g) if len(g) > 1 else (s, g)
                      for s, g in groups]
        unique: dict[tuple[int, ...], int] = {}
        for strength, members in groups:
            key = tuple(sorted(members))
            unique[key] = max(unique.get(key, 0), strength)
        groups = [(strength, members) for members, strength in unique.items()]
        strength_of: dict[int, int] = {}
        for strength, members in groups:
            for i in members:
                strength_of[i] = max(strength_of.get(i, 0), strength)
        # the currency of the payment: the instructed one for an FX payment, else the line's
        currencies = {items[i].currency for i in strength_of}
        if len(currencies) > 1:
            currency = line.instructed_currency if line.instructed_currency in currencies else line.currency
            if currency in currencies:
                groups = [(s, tuple(i for i in g if items[i].currency == currency)) for s, g in groups]
                groups = [(s, g) for s, g in groups if g]
                strength_of = {i: st for i, st in strength_of.items() if items[i].currency == currency}
        every = sorted(strength_of, key=self._due_order)
        open_every = [i for i in every if opens[i] > 0]
        evidence = [f"{STRENGTH_NAME[strength_of[i]]} {items[i].number}"
                    for i in sorted(strength_of, key=lambda i: items[i].number)]
        if not open_every:
            numbers = ", ".join(items[i].number for i in every)
            return Decision(line.line_id, "unmatched", "reference.duplicate_payment", Decimal("0.9"),
                            (*evidence, f"{numbers} already settled: duplicate payment, the cash stays unapplied"),
                            debtor_key=items[every[0]].debtor_key)
        # one item per reference: the one still open, the strongest, the payer's, the oldest
        primary: list[int] = []
        ambiguous = False
        for _, members in groups:
            candidates = [i for i in members if opens[i] > 0]
            if not candidates:
                continue
            if len(candidates) > 1:
                ambiguous = True
            best = max(candidates, key=lambda i: (strength_of[i], items[i].debtor_key == identity,
                                                  -self._due_order(i)[1].toordinal()))
            if best not in primary:
                primary.append(best)
        primary.sort(key=self._due_order)
        weakest = min(strength_of[i] for i in primary)
        confidence = BASE_CONFIDENCE[weakest]
        debtors = {items[i].debtor_key for i in primary}
        if identity and identity not in debtors:
            confidence -= Decimal("0.03")
            evidence.append(f"the payer ({identity_how}) is another debtor than the invoice's")
        elif identity:
            evidence.append(f"payer identified by {identity_how}")
        if weakest == TAIL and not identity:
            confidence = Decimal("0.85")
        alternatives = [i for i in open_every if i not in primary]
        return self.fit_amount(line, primary, confidence, evidence, rule_prefix="reference",
                               alternatives=alternatives if ambiguous else [])

    def _due_order(self, index: int) -> tuple:
        item = self.index.items[index]
        return (item.kind != "credit_note", item.due_date or dt.date.max, item.invoice_id)

    def line_target(self, line: LineView, currency: str) -> tuple[int, bool] | None:
        """The line's amount in the items' currency: itself, or the instructed amount of an FX payment."""
        if currency == line.currency:
            return line.amount_minor, False
        if line.instructed_currency == currency and line.instructed_minor:
            return abs(line.instructed_minor), True
        return None

    def fit_amount(self, line: LineView, chosen: list[int], confidence: Decimal, evidence: list[str], *,
                   rule_prefix: str, alternatives: list[int] | None = None) -> Decision:
        """Decide how the line's amount settles the named items. With ``alternatives`` (the other
        candidates of an ambiguous reference) only an exact amount over a unique set of them is automatic;
        anything approximate goes to review."""
        items, opens = self.index.items, self.index.open
        if alternatives:
            pool = sorted(set(chosen) | set(alternatives), key=self._due_order)
            pool = [i for i in pool if items[i].currency == items[chosen[0]].currency]
            target = self.line_target(line, items[chosen[0]].currency)
            if target is not None and len(pool) <= self.config.subset_max_items:
                signed = [items[i].sign * opens[i] for i in pool]
                subsets = subset_sums(signed, target[0], limit=2, budget=self.config.subset_budget)
                if subsets is not None and len(subsets) == 1:
                    subset = [pool[k] for k in subsets[0]]
                    return self.auto_or_suggest(line, subset, [], min(confidence, BASE_CONFIDENCE[DIGITS])
                                                - Decimal("0.01"), f"{rule_prefix}.exact_among_similar", [
                        *evidence, "the reference fits several numbers; exactly one set of them has this amount: "
                                   + ", ".join(items[i].number for i in subset)], fx=target[1])
            confidence = min(confidence, Decimal("0.9"))
            evidence = [*evidence, "the reference fits several open items: a person confirms which"]
        currency = items[chosen[0]].currency
        target = self.line_target(line, currency)
        if target is None:
            pieces = self._pieces(line, [(i, opens[i]) for i in chosen], fx=True)
            return self.suggestion(line, [Proposal(pieces, f"{rule_prefix}.fx_unverified", Decimal("0.7"), (
                *evidence, f"paid in {line.currency} for items in {currency}: no instructed amount to check"))])
        amount, fx = target
        if fx:
            evidence.append(f"FX: {self.fmt(line.amount_minor, line.currency)} paid for "
                            f"{self.fmt(amount, currency)} instructed")
        signed = [items[i].sign * opens[i] for i in chosen]
        total = sum(signed)
        show = self.fmt
        # exact
        if total == amount:
            return self.auto_or_suggest(line, chosen, [], confidence, f"{rule_prefix}.exact", [
                *evidence, f"amount {show(amount, currency)} equals what is open"], fx=fx)
        # an exact subset of the named items
        if len(chosen) > 1 and len(chosen) <= self.config.subset_max_items:
            subsets = subset_sums(signed, amount, limit=2, budget=self.config.subset_budget)
            if subsets and len(subsets) == 1:
                subset = [chosen[k] for k in subsets[0]]
                return self.auto_or_suggest(line, subset, [], confidence - Decimal("0.02"),
                                            f"{rule_prefix}.subset", [
                    *evidence, f"{len(subset)} of the {len(chosen)} named items make exactly {show(amount, currency)}"],
                    fx=fx)
        difference = total - amount
        # short by a bank fee (explicit charges first, then the tolerance)
        charged = difference == (line.charges_minor or -1)
        if difference > 0 and (charged or difference <= self.tolerance_minor(currency, total)):
            why = "the bank's charges" if charged else "within the fee tolerance"
            return self.auto_or_suggest(line, chosen, [(chosen[-1], difference, "bank_fee")],
                                        confidence - Decimal("0.01"), f"{rule_prefix}.bank_fee", [
                *evidence, f"short by {show(difference, currency)}, {why}: written off as a bank fee"], fx=fx)
        # short by an early-payment discount
        rate = _discount_rate(total, amount, self.config) if not fx else None
        if rate is not None:
            writeoffs = self._spread_discount(chosen, difference, rate)
            return self.auto_or_suggest(line, chosen, writeoffs, confidence - Decimal("0.01"),
                                        f"{rule_prefix}.discount", [
                *evidence, f"short by {show(difference, currency)} = {_pct(rate)} early-payment discount: written off"],
                fx=fx)
        # overpayment: every named item settled, the excess stays unapplied
        if difference < 0 and total > 0:
            return self.auto_or_suggest(line, chosen, [], confidence - Decimal("0.01"), f"{rule_prefix}.overpayment", [
                *evidence, f"overpaid by {show(-difference, currency)}: the excess stays unapplied cash"],
                unapplied=-difference, fx=fx)
        # partial payment of one item
        if difference > 0 and len(chosen) == 1:
            return self.auto_or_suggest(line, chosen, [], confidence - Decimal("0.01"), f"{rule_prefix}.partial", [
                *evidence, f"partial payment: {show(amount, currency)} of {show(total, currency)} open"],
                partial=amount, fx=fx)
        # a short payment spread over several items: which is short is a person's call
        pieces, left = [], amount
        for i in chosen:
            take = min(opens[i], left) if items[i].sign > 0 else opens[i]
            if items[i].sign > 0 and take <= 0:
                continue
            pieces.append((i, take))
            left -= items[i].sign * take
        proposal = Proposal(self._pieces(line, pieces, fx=fx), f"{rule_prefix}.split", Decimal("0.7"), (
            *evidence, f"{show(amount, currency)} for {show(total, currency)} open over {len(chosen)} items: "
                       "applied oldest first, to be confirmed"))
        return self.suggestion(line, [proposal])

    def _spread_discount(self, chosen: list[int], difference: int, rate: Decimal) -> list[tuple[int, int, str]]:
        items, opens = self.index.items, self.index.open
        out, left = [], difference
        for n, i in enumerate(chosen):
            share = left if n == len(chosen) - 1 else int(
                (Decimal(items[i].sign * opens[i]) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            if share:
                out.append((i, share, "discount"))
                left -= share
        return out

    def _pieces(self, line: LineView, amounts: list[tuple[int, int]], *, fx: bool,
                writeoffs: dict[int, tuple[int, str]] | None = None) -> tuple[Piece, ...]:
        """Pieces from (item, amount settled in the item's currency). For an FX payment the line's cash is
        split in the ratio of the instructed amount (the last piece takes the rounding when the instructed
        amount is used up, so the pieces never exceed the line)."""
        items = self.index.items
        writeoffs = writeoffs or {}
        settled = [items[i].sign * amount for i, amount in amounts]
        basis = abs(line.instructed_minor or 0) if fx and line.instructed_minor else sum(settled)
        pieces = []
        left = line.amount_minor
        for n, (i, amount) in enumerate(amounts):
            signed = items[i].sign * amount
            if not fx:
                cash = signed
            elif n == len(amounts) - 1 and sum(settled) >= basis:
                cash = left
            else:
                cash = int((Decimal(line.amount_minor) * signed / basis).quantize(Decimal(1), ROUND_HALF_UP)) \
                    if basis else 0
                cash = min(cash, left) if cash > 0 else cash
            left -= cash
            writeoff, kind = writeoffs.get(i, (0, None))
            pieces.append(Piece(items[i].invoice_id, cash, signed, items[i].currency, writeoff, kind))
        return tuple(pieces)

    def auto_or_suggest(self, line: LineView, chosen: list[int], writeoffs: list[tuple[int, int, str]],
                        confidence: Decimal, rule: str, evidence: list[str], *, unapplied: int = 0,
                        partial: int | None = None, fx: bool = False) -> Decision:
        opens = self.index.open
        amounts = [(i, partial if partial is not None else opens[i] - sum(w for j, w, _ in writeoffs if j == i))
                   for i in chosen]
        pieces = self._pieces(line, amounts, fx=fx, writeoffs={i: (w, k) for i, w, k in writeoffs})
        if unapplied:
            unapplied = line.amount_minor - sum(p.amount_minor for p in pieces)
        proposal = Proposal(pieces, rule, confidence, tuple(evidence), unapplied)
        debtor = self.index.items[chosen[0]].debtor_key
        if confidence >= self.config.auto_threshold:
            return Decision(line.line_id, "auto", rule, confidence, tuple(evidence), (proposal,), debtor)
        return Decision(line.line_id, "suggested", rule, confidence, tuple(evidence), (proposal,), debtor)

    def suggestion(self, line: LineView, proposals: list[Proposal]) -> Decision:
        best = proposals[0]
        return Decision(line.line_id, "suggested", best.rule, best.confidence, best.evidence, tuple(proposals))

    def suggest_items(self, line: LineView, indexes: list[int], rule: str, confidence: Decimal,
                      evidence: list[str]) -> Decision:
        """One alternative per item, each taking what the line can pay of it."""
        proposals = []
        for i in indexes[:5]:
            item = self.index.items[i]
            target = self.line_target(line, item.currency)
            if target is None:
                continue
            take = min(self.index.open[i], target[0])
            if take <= 0:
                continue
            pieces = self._pieces(line, [(i, take)], fx=target[1])
            unapplied = line.amount_minor - sum(p.amount_minor for p in pieces)
            proposals.append(Proposal(pieces, rule, confidence, (*evidence, f"candidate {item.number}"), unapplied))
        if not proposals:
            return Decision(line.line_id, "unmatched", "no_candidate", Decimal(0), tuple(evidence))
        return self.suggestion(line, proposals)

    # -- rule 3: identity, rule 4: amount only ------------------------------------------------------
    def by_identity(self, line: LineView, identity: str | None, how: str, excluded: set[int]) -> Decision:
        items, opens = self.index.items, self.index.open
        if identity is None:
            return self.by_amount_only(line, excluded, how)
        own = [i for i in self.index.by_debtor.get(identity, ()) if opens[i] > 0
               and items[i].invoice_id not in excluded and items[i].currency == line.currency
               and (items[i].issue_date is None or items[i].issue_date <= line.booking_date)]
        base = [f"payer identified by {how}"]
        if not own:
            return Decision(line.line_id, "unmatched", "identity.no_open_item", Decimal("0.3"),
                            (*base, "this debtor has nothing open in this currency"), debtor_key=identity)
        invoices = [i for i in own if items[i].kind == "invoice"]
        exact = [i for i in invoices if opens[i] == line.amount_minor]
        if len(exact) == 1:
            confidence = Decimal("0.96") if how == "iban" else Decimal("0.95")
            return self.auto_or_suggest(line, exact, [], confidence, "identity.exact_amount", [
                *base, f"the only open item of this debtor for {self.fmt(line.amount_minor, line.currency)}: "
                       f"{items[exact[0]].number}"])
        if len(exact) > 1:
            return self.suggest_items(line, sorted(exact, key=self._due_order), "identity.ambiguous_amount",
                                      Decimal("0.5"), [*base, f"{len(exact)} open items of this debtor have this "
                                                              "amount and the line names none: a person decides"])
        ordered = sorted(own, key=self._due_order)
        if 1 < len(ordered) <= self.config.subset_max_items:
            signed = [items[i].sign * opens[i] for i in ordered]
            subsets = subset_sums(signed, line.amount_minor, limit=2, budget=self.config.subset_budget)
            if subsets is not None and len(subsets) == 1:
                chosen = [ordered[k] for k in subsets[0]]
                confidence = Decimal("0.95") if how == "iban" else Decimal("0.85")
                return self.auto_or_suggest(line, chosen, [], confidence, "identity.subset_sum", [
                    *base, f"exactly one combination of its open items makes the amount: "
                           f"{', '.join(items[i].number for i in chosen)}"])
            if subsets:
                proposals = []
                for subset in subsets:
                    chosen = [ordered[k] for k in subset]
                    proposals.append(Proposal(self._pieces(line, [(i, opens[i]) for i in chosen], fx=False),
                                              "identity.subset_ambiguous", Decimal("0.5"), (
                                                  *base, "several combinations of open items make the amount")))
                return self.suggestion(line, proposals)
        short = [i for i in invoices
                 if 0 < opens[i] - line.amount_minor <= self.tolerance_minor(line.currency, opens[i])]
        if len(short) == 1:
            difference = opens[short[0]] - line.amount_minor
            confidence = Decimal("0.95") if (how == "iban" and difference == line.charges_minor) else Decimal("0.8")
            return self.auto_or_suggest(line, short, [(short[0], difference, "bank_fee")], confidence,
                                        "identity.bank_fee", [*base, f"{items[short[0]].number} short by "
                                                                     f"{self.fmt(difference, line.currency)}"])
        return self.suggest_items(line, ordered, "identity.debtor_only", Decimal("0.4"),
                                  [*base, "no open item or combination of this debtor has this amount"])

    def by_amount_only(self, line: LineView, excluded: set[int], how: str) -> Decision:
        same = [i for i in self.index.by_amount.get((line.currency, line.amount_minor), ())
                if self.index.open[i] == line.amount_minor and self.index.items[i].invoice_id not in excluded]
        why = ["payer unknown" + (f" ({how})" if how else "")]
        if 1 <= len(same) <= 5:
            return self.suggest_items(line, sorted(same, key=self._due_order), "amount_only", Decimal("0.4"), [
                *why, f"{len(same)} open item(s) of exactly this amount, nothing else links them"])
        return Decision(line.line_id, "unmatched", "no_candidate", Decimal(0),
                        (*why, "no reference, no known payer, no open item of this amount"))


def run_matching(lines: Sequence[LineView], items: Sequence[OpenItem], config: MatchConfig, *,
                 exponents: dict[str, int], learned_ibans: Mapping[str, Iterable[str]] | None = None,
                 rejected: dict[int, set[int]] | None = None) -> tuple[list[Decision], dict[str, float]]:
    """Decide every line; returns the decisions and timings (index build and matching, in seconds)."""
    started = time.perf_counter()
    index = OpenItems(items, learned_ibans)
    built = time.perf_counter()
    matcher = Matcher(index, config, exponents, rejected or {})
    decisions = matcher.decide_all(lines)
    return decisions, {"index_seconds": built - started, "match_seconds": time.perf_counter() - built}
