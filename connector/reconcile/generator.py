"""A realistic generator of open items and bank statements with ground truth, for tests and benchmarks.

Writes: :class:`~connector.model.Invoice` objects (several currencies and numbering schemes, credit
notes, debtors with IBANs and names), one camt.053 statement (bytes, through :func:`camt053_bytes`) whose
lines pay them in every way the matching engine must handle, and for each line its :class:`Truth`: the
category, whether the line is *truly matchable* (a reference or an unambiguous identity plus amount proves
it) and the allocations a careful person would make (invoice number and cash applied, in the statement's
currency, as the reconciliation export lists them).

Categories (shares are weights): references in every written form (``ref_exact``), several invoices in
one payment (``ref_multi``), an invoice net of a credit note (``ref_credit_note``), ``ref_partial``,
short by a bank fee (``ref_fee``, sometimes with camt charges), by an early-payment discount
(``ref_discount``), ``ref_overpay``, an RF creditor reference (``rf``), the invoice's payment reference echoed as the
end-to-end id with no text (``e2e``), the numeric tail only with a known
payer (``tail_iban``), an FX payment with the instructed amount (``fx``), no reference but a known IBAN and
one open item of that amount (``iban_unique``) or one combination (``iban_subset``), a payer name with a
typo (``name_typo``), two open items of the same amount (``ambiguous``: never auto), a second payment of a
settled invoice (``duplicate``: unapplied), an unknown payer (``unknown``), an unknown payer whose amount
happens to equal an open item (``coincidence``), and noise: interest, card settlements, internal
transfers, the factor's fundings, debits (``noise_*``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape

from schwifty import IBAN
from stdnum.iso7064 import mod_97_10

from connector.model import Invoice, InvoiceKind, Party, PaymentInstructions
from connector.money import Money

SELLER = Party(name="Cessio Demo SAS", country="FR", legal_id="732829320", legal_id_scheme="0002",
               vat_id="FR44732829320")
OWN_IBAN = "FR7630006000011234567890189"
FACTOR_IBAN = "FR7610107001011234567890129"

CATEGORY_WEIGHTS = {
    "ref_exact": 30, "ref_multi": 7, "ref_credit_note": 3, "ref_partial": 4, "ref_fee": 5, "ref_discount": 3,
    "ref_overpay": 2, "rf": 4, "e2e": 3, "tail_iban": 3, "fx": 3, "iban_unique": 9, "iban_subset": 3, "name_typo": 4,
    "ambiguous": 3, "duplicate": 2, "unknown": 2, "coincidence": 2,
    "noise_interest": 1, "noise_card": 2, "noise_internal": 1, "noise_factor": 1, "noise_debit": 6,
}
MATCHABLE = frozenset({"ref_exact", "ref_multi", "ref_credit_note", "ref_partial", "ref_fee", "ref_discount",
                       "ref_overpay", "rf", "e2e", "tail_iban", "fx", "iban_unique", "iban_subset", "name_typo"})
NAME_WORDS = ("Atlas", "Boreal", "Cobalt", "Delta", "Epsilon", "Fjord", "Granite", "Helix", "Iris", "Jasper",
              "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Pioneer", "Quartz", "Radiant", "Sierra",
              "Tundra", "Umbra", "Vertex", "Willow", "Xenon", "Yarrow", "Zephyr", "Alder", "Beacon", "Cedar",
              "Dune", "Ember", "Falcon", "Glacier", "Harbor", "Indigo", "Juniper", "Kodiak", "Lagoon", "Magnet",
              "Nordic", "Oasis", "Prairie", "Quill", "Raven", "Summit", "Timber", "Union", "Valley", "Westwind")
NAME_TRADES = ("Industries", "Logistique", "Services", "Handel", "Distribution", "Consulting", "Bau", "Foods",
               "Textiles", "Energie", "Systems", "Transports", "Medical", "Optique", "Robotics", "Packaging")
LEGAL = ("SAS", "SARL", "GmbH", "SA", "BV", "Ltd", "SpA", "")
FX_CURRENCIES = ("USD", "GBP", "CHF")


@dataclass
class Truth:
    category: str
    matchable: bool
    allocations: list[tuple[str, Decimal]] = field(default_factory=list)  # invoice number, cash applied


@dataclass
class Scenario:
    invoices: list[Invoice]
    statement_lines: list[dict]  # camt entry data, see camt053_bytes
    truth: dict[str, Truth]  # bank reference (AcctSvcrRef) → truth
    account: str = OWN_IBAN
    currency: str = "EUR"
    opening: Decimal = Decimal("100000.00")
    day: dt.date = dt.date(2026, 11, 27)


@dataclass
class _Debtor:
    key: str
    name: str
    iban: str
    iban_on_invoices: bool
    country: str
    vat: str


def _rf(number: str) -> str:
    body = "".join(ch for ch in number.upper() if ch.isalnum())
    return "RF" + mod_97_10.calc_check_digits(body + "RF") + body


def _typo(rng: random.Random, name: str) -> str:
    words = name.split()
    target = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[target]
    if len(word) > 4:
        i = rng.randrange(1, len(word) - 2)
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]  # two letters swapped
    words[target] = word
    return " ".join(words).upper() if rng.random() < 0.5 else " ".join(words)


class Generator:
    """Deterministic for a seed. ``n_invoices`` open items, about ``n_lines`` statement lines."""

    def __init__(self, seed: int = 7, *, n_invoices: int = 1500, n_lines: int = 1300,
                 day: dt.date = dt.date(2026, 11, 27)) -> None:
        self.rng = random.Random(seed)
        self.n_invoices, self.n_lines, self.day = n_invoices, n_lines, day
        self.invoices: list[Invoice] = []
        self.open: dict[str, Decimal] = {}  # number → what the generator still considers open
        self.by_debtor: dict[str, list[Invoice]] = {}
        self.lines: list[dict] = []
        self.truth: dict[str, Truth] = {}
        self.debtors: list[_Debtor] = []
        self.counters: dict[str, int] = {}
        self.used: set[str] = set()

    # -- master data ---------------------------------------------------------------------------------
    def _debtors(self, count: int) -> None:
        seen: set[str] = set()
        n = 0
        while len(self.debtors) < count:
            n += 1
            base = f"{self.rng.choice(NAME_WORDS)} {self.rng.choice(NAME_WORDS)} {self.rng.choice(NAME_TRADES)}"
            if base in seen:
                continue
            seen.add(base)
            legal = self.rng.choice(LEGAL)
            name = f"{base} {legal}".strip()
            country = self.rng.choice(("FR", "DE", "BE", "NL", "ES", "IT"))
            iban = str(IBAN.generate("DE", bank_code=f"{37040044 + n % 97:08d}", account_code=f"{100000 + n:010d}"))
            vat = f"{country}{n:09d}"
            self.debtors.append(_Debtor(f"vat:{vat}", name, iban, self.rng.random() < 0.8, country, vat))

    @property
    def known_payers(self) -> list[_Debtor]:
        """Debtors whose IBAN the invoices carry (computed once)."""
        if not hasattr(self, "_known"):
            self._known = [d for d in self.debtors if d.iban_on_invoices]
        return self._known

    def _number(self, scheme: int, kind: str) -> str:
        key = "credit_note" if kind == "credit_note" else f"{scheme}:{kind}"
        self.counters[key] = self.counters.get(key, 0) + 1
        n = self.counters[key] + 100
        if kind == "credit_note":
            return f"AV-2026-{n:05d}"
        return (f"FA-2026-{n:05d}", f"INV-{n:06d}", f"2026/{n:05d}", f"F26-{n:04d}")[scheme]

    def _invoice(self, debtor: _Debtor, amount: Decimal, currency: str = "EUR", *, kind: str = "invoice",
                 rf: bool = False, reference: str | None = None) -> Invoice:
        scheme = self.rng.randrange(4)
        number = self._number(scheme, kind)
        issue = self.day - dt.timedelta(days=self.rng.randint(10, 120))
        money = Money.of(amount, currency, rounding=ROUND_HALF_UP)
        buyer = Party(name=debtor.name, country=debtor.country, vat_id=debtor.vat,
                      ibans=(debtor.iban,) if debtor.iban_on_invoices else ())
        invoice = Invoice(number=number, kind=InvoiceKind(kind), type_code="381" if kind == "credit_note" else "380",
                          issue_date=issue, due_date=issue + dt.timedelta(days=30), currency=currency,
                          total_gross=money, amount_due=money, seller=SELLER, buyer=buyer, source="generator",
                          source_id=number, payment=PaymentInstructions(reference=_rf(number) if rf else reference))
        self.invoices.append(invoice)
        self.open[number] = money.amount
        self.by_debtor.setdefault(debtor.key, []).append(invoice)
        return invoice

    def _amount(self) -> Decimal:
        return Decimal(self.rng.randint(5_000, 2_500_000)).scaleb(-2)

    # -- text forms of a reference ----------------------------------------------------------------------
    def _written(self, number: str, debtor: _Debtor | None = None) -> str:
        compact = "".join(ch for ch in number if ch.isalnum())
        digits = "".join(ch for ch in number if ch.isdigit())
        spaced = number.replace("-", " ").replace("/", " ")
        forms = [number, number.lower(), f"Facture n° {number}", f"FACT {number}", f"inv {number}", compact,
                 f"Fact.{compact}", spaced, number.replace("-", "/"), f"Invoice {number} thanks",
                 f"REGLEMENT FACTURE {spaced}", f"Rechnung Nr. {number}", f"fact n {digits}",
                 re.sub(r"(?<![0-9])0+(?=[0-9])", "", number)]  # leading zeros dropped: FA-2026-123
        text = self.rng.choice(forms)
        if debtor is not None and self.rng.random() < 0.4:
            text = f"{text} {_typo(self.rng, debtor.name)}"
        return text

    # -- lines ---------------------------------------------------------------------------------------
    def _line(self, category: str, amount: Decimal, *, currency: str = "EUR", name: str | None = None,
              iban: str | None = None, text: str | None = None, sref: str | None = None, e2e: str | None = None,
              charges: Decimal | None = None, instructed: tuple[Decimal, str] | None = None,
              truth: list[tuple[str, Decimal]] | None = None, code: str = "PMNT/RCDT/ESCT") -> None:
        ref = f"GEN{len(self.lines) + 1:07d}"
        self.lines.append({"ref": ref, "amount": amount, "currency": currency, "name": name, "iban": iban,
                           "text": text, "sref": sref, "e2e": e2e, "charges": charges, "instructed": instructed,
                           "code": code,
                           "date": self.day - dt.timedelta(days=self.rng.randint(0, 6))})
        self.truth[ref] = Truth(category, category in MATCHABLE, list(truth or []))

    def _payer(self, debtor: _Debtor, *, iban: bool = True) -> dict:
        return {"name": debtor.name if self.rng.random() < 0.85 else debtor.name.upper(),
                "iban": debtor.iban if iban else None}

    def _take(self, debtor: _Debtor, count: int = 1, currency: str = "EUR") -> list[Invoice] | None:
        """``count`` open invoices of the debtor not used by another line yet."""
        free = [inv for inv in self.by_debtor.get(debtor.key, []) if inv.number not in self.used
                and inv.kind == InvoiceKind.INVOICE and inv.currency == currency]
        if len(free) < count:
            return None
        chosen = self.rng.sample(free, count)
        self.used.update(inv.number for inv in chosen)
        return chosen

    def build(self) -> Scenario:
        n_debtors = max(8, self.n_invoices // 6)
        self._debtors(n_debtors)
        # background open items: most invoices are simply open, not paid by this statement
        for _ in range(self.n_invoices):
            debtor = self.rng.choice(self.debtors)
            currency = "EUR" if self.rng.random() < 0.9 else self.rng.choice(FX_CURRENCIES)
            self._invoice(debtor, self._amount(), currency, rf=self.rng.random() < 0.05)
        categories = list(CATEGORY_WEIGHTS)
        weights = [CATEGORY_WEIGHTS[c] for c in categories]
        attempts = 0
        while len(self.lines) < self.n_lines and attempts < self.n_lines * 20:
            attempts += 1
            getattr(self, f"_make_{self.rng.choices(categories, weights)[0]}")()
        return Scenario(self.invoices, self.lines, self.truth, day=self.day)

    # one method per category ------------------------------------------------------------------------
    def _make_ref_exact(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            self._line("ref_exact", inv.amount_due.amount, text=self._written(inv.number, debtor),
                       **self._payer(debtor, iban=self.rng.random() < 0.7),
                       truth=[(inv.number, inv.amount_due.amount)])

    def _make_ref_multi(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor, self.rng.randint(2, 4))
        if chosen:
            total = sum(inv.amount_due.amount for inv in chosen)
            text = self.rng.choice((" ", ", ", " + ", "/", " et ")).join(inv.number for inv in chosen)
            self._line("ref_multi", total, text=f"Paiement {text}", **self._payer(debtor),
                       truth=[(inv.number, inv.amount_due.amount) for inv in chosen])

    def _make_ref_credit_note(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            credit = (inv.amount_due.amount * Decimal(self.rng.choice(("0.1", "0.2", "0.25")))).quantize(
                Decimal("0.01"))
            note = self._invoice(debtor, credit, kind="credit_note")
            self.used.add(note.number)
            self._line("ref_credit_note", inv.amount_due.amount - credit,
                       text=f"{inv.number} moins avoir {note.number}", **self._payer(debtor),
                       truth=[(inv.number, inv.amount_due.amount), (note.number, -credit)])

    def _make_ref_partial(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            paid = (inv.amount_due.amount * Decimal(self.rng.randint(20, 70)) / 100).quantize(Decimal("0.01"))
            self._line("ref_partial", paid, text=f"Acompte {self._written(inv.number)}", **self._payer(debtor),
                       truth=[(inv.number, paid)])

    def _make_ref_fee(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            fee = Decimal(self.rng.randint(50, 2000)).scaleb(-2)
            if fee >= inv.amount_due.amount:
                return
            paid = inv.amount_due.amount - fee
            self._line("ref_fee", paid, text=self._written(inv.number), **self._payer(debtor),
                       charges=fee if self.rng.random() < 0.4 else None, truth=[(inv.number, paid)])

    def _make_ref_discount(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            rate = Decimal(self.rng.choice(("0.01", "0.02", "0.03")))
            paid = (inv.amount_due.amount * (1 - rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            if inv.amount_due.amount - paid <= Decimal(25):
                return  # indistinguishable from a bank fee: that case is ref_fee
            self._line("ref_discount", paid, text=f"{self._written(inv.number)} escompte {rate * 100:.0f}%",
                       **self._payer(debtor), truth=[(inv.number, paid)])

    def _make_ref_overpay(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            extra = Decimal(self.rng.randint(100, 50000)).scaleb(-2)
            self._line("ref_overpay", inv.amount_due.amount + extra, text=self._written(inv.number),
                       **self._payer(debtor), truth=[(inv.number, inv.amount_due.amount)])

    def _make_rf(self) -> None:
        debtor = self.rng.choice(self.debtors)
        inv = self._invoice(debtor, self._amount(), rf=True)
        self.used.add(inv.number)
        self._line("rf", inv.amount_due.amount, sref=inv.payment.reference, **self._payer(debtor, iban=False),
                   truth=[(inv.number, inv.amount_due.amount)])

    def _make_e2e(self) -> None:
        debtor = self.rng.choice(self.debtors)
        reference = f"PAY{self.rng.randrange(10**9, 10**10)}"
        inv = self._invoice(debtor, self._amount(), reference=reference)
        self.used.add(inv.number)
        self._line("e2e", inv.amount_due.amount, e2e=reference, name=debtor.name if self.rng.random() < 0.5 else None,
                   truth=[(inv.number, inv.amount_due.amount)])

    def _make_tail_iban(self) -> None:
        debtor = self.rng.choice(self.known_payers)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            digits = [run for run in "".join(ch if ch.isdigit() else " " for ch in inv.number).split()]
            tail = digits[-1].lstrip("0")
            mates = [i for i in self.by_debtor[debtor.key]
                     if "".join(ch if ch.isdigit() else " " for ch in i.number).split()[-1].lstrip("0") == tail]
            if len(tail) < 3 or len(mates) != 1:
                self.used.discard(inv.number)
                return
            self._line("tail_iban", inv.amount_due.amount, text=f"facture {tail}", iban=debtor.iban,
                       name=debtor.name, truth=[(inv.number, inv.amount_due.amount)])

    def _make_fx(self) -> None:
        debtor = self.rng.choice(self.debtors)
        currency = self.rng.choice(FX_CURRENCIES)
        inv = self._invoice(debtor, self._amount(), currency)
        self.used.add(inv.number)
        rate = Decimal(self.rng.randint(8000, 12000)) / 10000
        paid = (inv.amount_due.amount * rate).quantize(Decimal("0.01"))
        self._line("fx", paid, text=self._written(inv.number), **self._payer(debtor),
                   instructed=(inv.amount_due.amount, currency), truth=[(inv.number, paid)])

    def _make_iban_unique(self) -> None:
        debtor = self.rng.choice(self.known_payers)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            same = [i for i in self.by_debtor[debtor.key] if i.amount_due == inv.amount_due and i is not inv]
            if same:
                return
            self._line("iban_unique", inv.amount_due.amount, text=self.rng.choice(("Paiement", "VIR SEPA", None)),
                       **self._payer(debtor), truth=[(inv.number, inv.amount_due.amount)])

    def _make_iban_subset(self) -> None:
        debtor = self.rng.choice(self.known_payers)
        free = [i for i in self.by_debtor.get(debtor.key, []) if i.number not in self.used
                and i.kind == InvoiceKind.INVOICE and i.currency == "EUR"]
        if len(free) < 2 or len(free) > 12:
            return
        chosen = self.rng.sample(free, 2)
        total = sum(i.amount_due.amount for i in chosen)
        if any(i.amount_due.amount == total for i in free):
            return
        self.used.update(i.number for i in chosen)
        self._line("iban_subset", total, text="Reglement", **self._payer(debtor),
                   truth=[(i.number, i.amount_due.amount) for i in chosen])

    def _make_name_typo(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            if [i for i in self.by_debtor[debtor.key] if i.amount_due == inv.amount_due and i is not inv]:
                return
            self._line("name_typo", inv.amount_due.amount, name=_typo(self.rng, debtor.name), text="virement",
                       truth=[(inv.number, inv.amount_due.amount)])

    def _make_ambiguous(self) -> None:
        debtor = self.rng.choice(self.known_payers)
        amount = self._amount()
        first = self._invoice(debtor, amount)
        second = self._invoice(debtor, amount)
        self.used.update((first.number, second.number))
        self._line("ambiguous", amount, text="Paiement", **self._payer(debtor), truth=[(first.number, amount)])

    def _make_duplicate(self) -> None:
        debtor = self.rng.choice(self.debtors)
        chosen = self._take(debtor)
        if chosen:
            inv = chosen[0]
            self._line("ref_exact", inv.amount_due.amount, text=self._written(inv.number), **self._payer(debtor),
                       truth=[(inv.number, inv.amount_due.amount)])
            first = self.lines[-1]["date"]
            self._line("duplicate", inv.amount_due.amount, text=self._written(inv.number), **self._payer(debtor))
            self.lines[-1]["date"] = min(first + dt.timedelta(days=self.rng.randint(0, 2)), self.day)

    def _make_unknown(self) -> None:
        name = f"{self.rng.choice(NAME_WORDS)} {self.rng.choice(NAME_WORDS)} Trust"
        self._line("unknown", self._amount(), name=name, text="payment")

    def _make_coincidence(self) -> None:
        debtor = self.rng.choice(self.debtors)
        pool = [i for i in self.by_debtor.get(debtor.key, []) if i.currency == "EUR" and i.kind == InvoiceKind.INVOICE]
        if pool:
            self._line("coincidence", self.rng.choice(pool).amount_due.amount,
                       name=f"{self.rng.choice(NAME_WORDS)} Holding Trust", text="transfer")

    def _make_noise_interest(self) -> None:
        self._line("noise_interest", Decimal(self.rng.randint(100, 90000)).scaleb(-2), name="BANQUE DEMO",
                   text=f"INTERETS CREDITEURS {self.rng.randint(1, 12):02d}/2026", code="ACMT/MDOP/INTR")

    def _make_noise_card(self) -> None:
        self._line("noise_card", self._amount(), name="DEMO ACQUIRING",
                   text=f"REMISE CB {self.rng.randint(1000, 99999)}", code="PMNT/CCRD/POSD")

    def _make_noise_internal(self) -> None:
        self._line("noise_internal", self._amount(), name="Cessio Demo SAS", iban="FR7630006000019876543210145",
                   text="VIREMENT INTERNE TRESORERIE")

    def _make_noise_factor(self) -> None:
        self._line("noise_factor", self._amount(), name="DEMO FACTOR", iban=FACTOR_IBAN,
                   text=f"FINANCEMENT BORDEREAU {self.rng.randint(1, 999)}")

    def _make_noise_debit(self) -> None:
        debtor = self.rng.choice(self.debtors)
        self._line("noise_debit", -self._amount(), name=debtor.name, iban=debtor.iban,
                   text=f"Paiement fournisseur {self.rng.choice(self.invoices).number}", code="PMNT/ICDT/ESCT")


def generate(seed: int = 7, *, n_invoices: int = 1500, n_lines: int = 1300,
             day: dt.date = dt.date(2026, 11, 27)) -> Scenario:
    return Generator(seed, n_invoices=n_invoices, n_lines=n_lines, day=day).build()


# -- camt.053 writer (the generator's and the demo's statements) ----------------------------------------

def camt053_bytes(lines: list[dict], *, account: str, currency: str, opening: Decimal, message_id: str,
                  statement_id: str, created: dt.date) -> bytes:
    """A camt.053.001.08 statement of ``lines`` (dicts as the generator makes them), balances included."""
    def amt(value: Decimal, ccy: str) -> str:
        return f'<Amt Ccy="{ccy}">{abs(value):.{Money.zero(ccy).exponent}f}</Amt>'

    def side(value: Decimal) -> str:
        return "CRDT" if value >= 0 else "DBIT"

    closing = opening + sum((line["amount"] for line in lines), Decimal(0))
    dates = [line["date"] for line in lines] or [created]
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
           f"<BkToCstmrStmt><GrpHdr><MsgId>{escape(message_id)}</MsgId><CreDtTm>{created.isoformat()}T18:00:00"
           f"</CreDtTm></GrpHdr><Stmt><Id>{escape(statement_id)}</Id><CreDtTm>{created.isoformat()}T18:00:00</CreDtTm>"
           f"<FrToDt><FrDtTm>{min(dates).isoformat()}T00:00:00</FrDtTm><ToDtTm>{max(dates).isoformat()}T23:59:59"
           f"</ToDtTm></FrToDt><Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"]
    for code, value, day in (("OPBD", opening, min(dates)), ("CLBD", closing, max(dates))):
        out.append(f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>{amt(value, currency)}"
                   f"<CdtDbtInd>{side(value)}</CdtDbtInd><Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>")
    for line in sorted(lines, key=lambda x: (x["date"], x["ref"])):
        value = line["amount"]
        party, account_tag = ("Dbtr", "DbtrAcct") if value >= 0 else ("Cdtr", "CdtrAcct")
        domain, family, sub = (line.get("code") or "PMNT/RCDT/ESCT").split("/")
        tx = []
        refs = f"<EndToEndId>{escape(line['e2e'])}</EndToEndId>" if line.get("e2e") else ""
        if refs:
            tx.append(f"<Refs>{refs}</Refs>")
        tx.append(f"{amt(value, line['currency'])}<CdtDbtInd>{side(value)}</CdtDbtInd>")
        if line.get("instructed"):
            inst, inst_ccy = line["instructed"]
            tx.append(f"<AmtDtls><InstdAmt>{amt(inst, inst_ccy)}</InstdAmt></AmtDtls>")
        if line.get("charges"):
            tx.append(f"<Chrgs><TtlChrgsAndTaxAmt Ccy=\"{line['currency']}\">{line['charges']:.2f}"
                      "</TtlChrgsAndTaxAmt></Chrgs>")
        parties = ""
        if line.get("name"):
            parties += f"<{party}><Pty><Nm>{escape(line['name'])}</Nm></Pty></{party}>"
        if line.get("iban"):
            parties += f"<{account_tag}><Id><IBAN>{line['iban']}</IBAN></Id></{account_tag}>"
        if parties:
            tx.append(f"<RltdPties>{parties}</RltdPties>")
        remittance = ""
        if line.get("text"):
            remittance += f"<Ustrd>{escape(line['text'])}</Ustrd>"
        if line.get("sref"):
            remittance += (f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
                           f"<Ref>{escape(line['sref'])}</Ref></CdtrRefInf></Strd>")
        if remittance:
            tx.append(f"<RmtInf>{remittance}</RmtInf>")
        out.append(f"<Ntry><NtryRef>{line['ref']}</NtryRef>{amt(value, line['currency'])}<CdtDbtInd>{side(value)}"
                   f"</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{line['date'].isoformat()}</Dt></BookgDt>"
                   f"<ValDt><Dt>{line['date'].isoformat()}</Dt></ValDt><AcctSvcrRef>{line['ref']}</AcctSvcrRef>"
                   f"<BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn>"
                   f"</BkTxCd><NtryDtls><TxDtls>{''.join(tx)}</TxDtls></NtryDtls></Ntry>")
    out.append("</Stmt></BkToCstmrStmt></Document>")
    return "".join(out).encode("utf-8")


def scenario_camt(scenario: Scenario, *, statement_id: str = "GEN-1") -> bytes:
    return camt053_bytes(scenario.statement_lines, account=scenario.account, currency=scenario.currency,
                         opening=scenario.opening, message_id=f"MSG-{statement_id}", statement_id=statement_id,
                         created=scenario.day)


def with_buyer_ibans(invoice: Invoice, ibans: tuple[str, ...]) -> Invoice:
    return dataclasses.replace(invoice, buyer=dataclasses.replace(invoice.buyer, ibans=ibans))
