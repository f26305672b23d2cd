"""Statement files into the store, each line once, statements chained by their balances.

Reads: statement files (any format :mod:`adapters.statements` detects). Writes: ``statements`` and
``statement_lines`` rows, the original bytes (``documents``), quarantine entries for refused files, and
audit rows (``statement.imported``, ``statement.balance_gap``), one transaction per file so a file is
never half-imported.

Duplicate protection (docs/payments.md §6): a line's identity is the account plus the bank's own
reference when that reference is given once in the statement; otherwise (no reference, or a reference
the bank repeats) a SHA-256 of the line's content (date, amount, counterparty, texts, references) with
an occurrence counter, so that two genuine identical transfers on one day stay two while the same line
read again from an overlapping file or a re-download is recognised.

Balance checks: the opening balance plus the lines must give the closing balance (``balance_check``),
and the opening balance must equal the closing balance of the account's previous statement
(``chain_check``: ``first``, ``continuous``, ``gap`` or ``overlap``, with the difference in words).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.statements import read_statement_with_info
from connector.errors import Quarantine
from connector.model import Statement, StatementLine, canonical_json
from connector.money import Money

QUARANTINE_SOURCE = "statements"


@dataclass
class FileImport:
    """The outcome of importing one file (``cessio statements import`` prints one per file)."""

    file: str
    format: str = ""
    statements: list[dict[str, Any]] = field(default_factory=list)
    already_imported: int = 0
    not_booked: int = 0
    error: str | None = None

    @property
    def new(self) -> int:
        return sum(s["new"] for s in self.statements)

    @property
    def duplicates(self) -> int:
        return sum(s["duplicates"] for s in self.statements)

    def line(self) -> str:
        if self.error:
            return f"{self.file}: quarantined: {self.error}"
        checks = sorted({f"{s['balance_check']}/{s['chain_check']}" for s in self.statements})
        text = (f"{self.file}: {self.format}, {len(self.statements)} statement(s), {self.new} new line(s), "
                f"{self.duplicates} duplicate(s) skipped")
        if self.already_imported:
            text += f", {self.already_imported} statement(s) already imported"
        if self.not_booked:
            text += f", {self.not_booked} pending/information entr(y/ies) not imported"
        if checks:
            text += f"; balance/chain: {', '.join(checks)}"
        gaps = [s["chain_detail"] for s in self.statements if s["chain_check"] in ("gap", "overlap")]
        gaps += [s["balance_detail"] for s in self.statements if s.get("balance_detail")]
        return text + "".join(f"\n  {g}" for g in gaps if g)


# -- identities ------------------------------------------------------------------------------------------

def content_digest(line: StatementLine) -> str:
    basis = canonical_json({
        "date": line.booking_date.isoformat(), "amount": str(line.amount.amount), "currency": line.amount.currency,
        "name": line.counterparty_name, "iban": line.counterparty_iban, "text": line.remittance,
        "ref": line.bank_reference, "e2e": line.end_to_end_id, "sref": line.structured_reference,
        "refs": list(line.references)})
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def line_identities(statement: Statement) -> list[tuple[str, StatementLine]]:
    """(identity, line) for each line, with occurrence counters set on lines identified by content."""
    repeated = Counter(line.bank_reference for line in statement.lines if line.bank_reference)
    seen: Counter[str] = Counter()
    out = []
    for line in statement.lines:
        if line.bank_reference and repeated[line.bank_reference] == 1:
            out.append((f"{line.account}|ref|{line.bank_reference}", line))
            continue
        digest = content_digest(line)
        seen[digest] += 1
        occurrence = seen[digest]
        if occurrence != line.occurrence:
            line = dataclasses.replace(line, occurrence=occurrence)
        out.append((f"{line.account}|hash|{digest}|{occurrence}", line))
    return out


# -- checks ---------------------------------------------------------------------------------------------

def balance_check(statement: Statement) -> tuple[str, str | None]:
    if statement.opening_balance is None or statement.closing_balance is None:
        return "unchecked", None
    if any(line.amount.currency != statement.currency for line in statement.lines):
        return "unchecked", f"{statement.account}: lines in another currency than the account's"
    moved = sum((line.amount.amount for line in statement.lines), statement.opening_balance.amount * 0)
    expected = statement.opening_balance.amount + moved
    if expected == statement.closing_balance.amount:
        return "ok", None
    return "mismatch", (f"{statement.account} {statement.statement_id}: opening {statement.opening_balance} plus "
                        f"the lines ({moved} {statement.currency}) gives {expected}, the bank says "
                        f"{statement.closing_balance}")


def chain_check(store: Any, statement: Statement) -> tuple[str, str | None]:
    if statement.opening_balance is None:
        return "unchecked", None
    before = statement.from_date.isoformat() if statement.from_date else None
    previous = store.previous_statement(statement.account, statement.currency, before)
    if previous is None:
        return "first", None
    closing = Money.from_minor(previous["closing_minor"], statement.currency)
    if closing == statement.opening_balance:
        return "continuous", None
    difference = statement.opening_balance - closing
    what = "overlap" if previous["to_date"] and before and previous["to_date"] > before else "gap"
    return what, (f"{statement.account}: the previous statement ({previous['statement_id']}, to "
                  f"{previous['to_date']}) closed at {closing}, this one ({statement.statement_id}, from "
                  f"{before}) opens at {statement.opening_balance}: {difference} unexplained "
                  f"(a missing statement or a re-dated one)")


# -- import ---------------------------------------------------------------------------------------------

def import_bytes(store: Any, data: bytes, *, file_name: str) -> FileImport:
    """Import one file's statements in one transaction, or quarantine the file whole."""
    result = FileImport(file=file_name)
    try:
        statements, info = read_statement_with_info(data, file_name)
    except Quarantine as exc:
        error = exc.located(file_name)
        with store.transaction():
            store.quarantine(error, source=QUARANTINE_SOURCE, location=file_name, content=data)
        result.error = str(error)
        return result
    result.format, result.not_booked = info.format, info.not_booked
    with store.transaction():
        store.keep_document(data, file_name=Path(file_name).name)
        for statement in statements:
            if store.statement_seen(statement.account, statement.statement_id, statement.content_hash or ""):
                result.already_imported += 1
                continue
            balance, balance_detail = balance_check(statement)
            chain, chain_detail = chain_check(store, statement)
            identified = line_identities(statement)
            known = store.known_identities([identity for identity, _ in identified])
            if chain == "gap" and known:  # a re-download that starts inside the previous statement
                chain, chain_detail = "overlap", (f"{statement.account} {statement.statement_id}: overlaps an "
                                                  f"imported statement ({known} line(s) already imported, skipped)")
            summary = store.save_statement(statement, identified, file_name=file_name,
                                           message_id=info.message_id, balance_check=balance, chain_check=chain,
                                           chain_detail=chain_detail)
            summary["balance_detail"] = balance_detail
            result.statements.append(summary)
        store.resolve_quarantine(source=QUARANTINE_SOURCE, location=file_name)
    return result


def import_files(store: Any, paths: list[Path] | tuple[Path, ...]) -> list[FileImport]:
    """Each file on its own (a refused file does not stop the others)."""
    results = []
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            results.append(FileImport(file=str(path), error=f"cannot read: {exc.strerror}"))
            continue
        results.append(import_bytes(store, data, file_name=str(path)))
    return results
