"""Statements and statement lines with duplicate protection.

A line is stored once by its ``identity`` (``statement_lines.identity`` is UNIQUE): the account and the
bank's own reference, or a content hash with an occurrence counter where the bank gives none. The same
file, an overlapping file or a re-download therefore adds only the lines not seen before; a statement is
recorded once per (account, statement id, file hash). Each import and its audit row commit together.
"""

from __future__ import annotations

from typing import Any

from connector.clock import utc_iso
from connector.model import Statement, StatementLine, canonical_json


def _minor(money: Any) -> int | None:
    return None if money is None else money.minor_units


def _currency(money: Any) -> str | None:
    return None if money is None else money.currency


class StatementsMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    def statement_seen(self, account: str, statement_id: str | None, content_sha256: str) -> int | None:
        """The id of this very statement of this very file when it was imported before (checked under the
        import's write lock, so two imports of one file cannot both pass)."""
        return self._scalar("SELECT id FROM statements WHERE account = ? AND coalesce(statement_id, '') = ? "
                            "AND content_sha256 = ?", (account, statement_id or "", content_sha256))

    def previous_statement(self, account: str, currency: str, before: str | None) -> dict[str, Any] | None:
        """The latest earlier statement of this account with a closing balance (for chaining)."""
        if before is None:
            return None
        row = self._one("SELECT * FROM statements WHERE account = ? AND currency = ? AND closing_minor IS NOT NULL "
                        "AND to_date <= ? ORDER BY to_date DESC, id DESC LIMIT 1", (account, currency, before))
        return None if row is None else dict(row)

    def known_identities(self, identities: list[str]) -> int:
        """How many of these line identities are stored already (an overlapping or repeated download)."""
        known = 0
        for start in range(0, len(identities), 500):
            chunk = identities[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            known += self._scalar(f"SELECT count(*) FROM statement_lines WHERE identity IN ({marks})", chunk)
        return known

    def save_statement(self, statement: Statement, lines: list[tuple[str, StatementLine]], *, file_name: str,
                       message_id: str | None, balance_check: str, chain_check: str,
                       chain_detail: str | None) -> dict[str, Any]:
        """Insert the statement and those of its lines whose identity is new; returns counts. Audited."""
        self.require_transaction("save_statement()")
        now = utc_iso()
        cursor = self._execute(
            "INSERT INTO statements (account, statement_id, format, currency, opening_minor, closing_minor, "
            "from_date, to_date, content_sha256, imported_at, message_id, file_name, lines_total, balance_check, "
            "chain_check, chain_detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (statement.account, statement.statement_id, statement.format or "?", statement.currency,
             _minor(statement.opening_balance), _minor(statement.closing_balance),
             statement.from_date.isoformat() if statement.from_date else None,
             statement.to_date.isoformat() if statement.to_date else None, statement.content_hash or "",
             now, message_id, file_name, len(lines), balance_check, chain_check, chain_detail))
        statement_row = cursor.lastrowid
        new = 0
        for line_no, (identity, line) in enumerate(lines, start=1):
            inserted = self._execute(
                "INSERT OR IGNORE INTO statement_lines (identity, statement_id, account, bank_reference, booking_date, "
                "value_date, amount_minor, currency, counterparty_name, counterparty_iban, remittance, "
                "structured_reference, end_to_end_id, data, match_status, imported_at, uetr, bank_transaction_code, "
                "charges_minor, charges_currency, instructed_minor, instructed_currency, reversal, line_no) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (identity, statement_row, line.account, line.bank_reference, line.booking_date.isoformat(),
                 line.value_date.isoformat() if line.value_date else None, line.amount.minor_units,
                 line.amount.currency, line.counterparty_name, line.counterparty_iban, line.remittance,
                 line.structured_reference, line.end_to_end_id, canonical_json(line.to_dict()), now, line.uetr,
                 line.bank_transaction_code, _minor(line.charges), _currency(line.charges),
                 _minor(line.instructed_amount), _currency(line.instructed_amount), int(line.reversal), line_no))
            new += inserted.rowcount
        self._execute("UPDATE statements SET lines_new = ? WHERE id = ?", (new, statement_row))
        summary = {"statement": statement_row, "account": statement.account, "statement_id": statement.statement_id,
                   "format": statement.format, "lines": len(lines), "new": new, "duplicates": len(lines) - new,
                   "balance_check": balance_check, "chain_check": chain_check, "chain_detail": chain_detail,
                   "file": file_name, "sha256": statement.content_hash}
        self.audit("statement.imported", f"statement:{statement_row}", summary)
        if chain_check in ("gap", "overlap"):
            self.audit("statement.balance_gap", f"statement:{statement_row}",
                       {"account": statement.account, "check": chain_check, "detail": chain_detail})
        return summary

    def statement_rows(self, *, account: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if account:
            rows = self._all("SELECT * FROM statements WHERE account = ? ORDER BY to_date, id LIMIT ?",
                             (account, limit))
        else:
            rows = self._all("SELECT * FROM statements ORDER BY account, to_date, id LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def statement_line_rows(self, *, statement: int | None = None, account: str | None = None,
                            statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        clauses, params = ["1 = 1"], []
        if statement is not None:
            clauses.append("statement_id = ?")
            params.append(statement)
        if account is not None:
            clauses.append("account = ?")
            params.append(account)
        if statuses:
            clauses.append(f"match_status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        return [dict(r) for r in self._all(
            f"SELECT * FROM statement_lines WHERE {' AND '.join(clauses)} ORDER BY booking_date, id", params)]

    def count_statement_lines(self) -> int:
        return self._scalar("SELECT count(*) FROM statement_lines")

    def statement_line(self, line_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM statement_lines WHERE id = ?", (line_id,))
        return None if row is None else dict(row)
