"""Review desk: users, roles and sessions, and the read-only, paginated queries behind the desk's pages.

Writes here are the desk's own (users, sessions); every decision on a statement line goes through the
reconciliation library, never through SQL of this module. Page queries are bounded (``LIMIT``/``OFFSET``
on indexed orderings, see migration ``0070_desk``) so a page costs the same with 100 or 100,000 lines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from connector.clock import utc_iso, utcnow
from connector.errors import InvariantViolation

ROLES = ("viewer", "reviewer", "admin")
ALLOCATION_STATUSES = ("auto", "suggested", "manual", "rejected", "unmatched")  # the CHECK of allocations.status
WAITING_STATUSES = ("open", "suggested")  # statement lines that still need a human (as `cessio status` counts)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


class DeskMixin:
    """Store methods of the review desk; SQL only lives in connector/store/."""

    # -- users ------------------------------------------------------------------------------------
    def desk_save_user(self, username: str, password_hash: str, role: str) -> int:
        """Create the user, or reset its password hash and role. Audited (never the hash itself)."""
        self.require_transaction("desk_save_user()")
        if role not in ROLES:
            raise InvariantViolation(f"unknown desk role {role!r} (one of {', '.join(ROLES)})")
        now = utc_iso()
        existed = self._scalar("SELECT id FROM desk_users WHERE username = ?", (username,))
        self._execute(
            "INSERT INTO desk_users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, "
            "active = 1, updated_at = excluded.updated_at", (username, password_hash, role, now, now))
        user_id = self._scalar("SELECT id FROM desk_users WHERE username = ?", (username,))
        if existed:  # a password reset ends every open session of that user
            self._execute("DELETE FROM desk_sessions WHERE user_id = ?", (user_id,))
        self.audit("desk.user_updated" if existed else "desk.user_created", f"desk_user:{username}",
                   {"username": username, "role": role})
        return user_id

    def desk_user(self, username: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM desk_users WHERE username = ? AND active = 1", (username,))
        return None if row is None else dict(row)

    def desk_users(self) -> list[dict[str, Any]]:
        return _dicts(self._all("SELECT id, username, role, active, created_at, updated_at FROM desk_users "
                                "ORDER BY username"))

    def desk_set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Re-hash on login when the hasher's parameters changed (not a user-visible change: not audited)."""
        self.require_transaction("desk_set_password_hash()")
        self._execute("UPDATE desk_users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    # -- sessions ---------------------------------------------------------------------------------
    def desk_open_session(self, user_id: int, token: str, csrf_token: str, lifetime: dt.timedelta) -> None:
        self.require_transaction("desk_open_session()")
        now = utcnow()
        self._execute("DELETE FROM desk_sessions WHERE expires_at < ?", (utc_iso(now),))
        self._execute("INSERT INTO desk_sessions (token_sha256, user_id, csrf_token, created_at, expires_at) "
                      "VALUES (?, ?, ?, ?, ?)", (token_digest(token), user_id, csrf_token, utc_iso(now),
                                                 utc_iso(now + lifetime)))

    def desk_session(self, token: str) -> dict[str, Any] | None:
        """The live session of this cookie token with its user, or None (unknown, expired or user disabled)."""
        row = self._one(
            "SELECT s.csrf_token, s.expires_at, u.id AS user_id, u.username, u.role FROM desk_sessions s "
            "JOIN desk_users u ON u.id = s.user_id WHERE s.token_sha256 = ? AND s.expires_at > ? AND u.active = 1",
            (token_digest(token), utc_iso()))
        return None if row is None else dict(row)

    def desk_close_session(self, token: str) -> None:
        self.require_transaction("desk_close_session()")
        self._execute("DELETE FROM desk_sessions WHERE token_sha256 = ?", (token_digest(token),))

    # -- reconciliation queue -------------------------------------------------------------------------
    def desk_queue_count(self) -> int:
        return self._scalar("SELECT count(*) FROM statement_lines INDEXED BY desk_lines_waiting "
                            "WHERE match_status IN ('open', 'suggested')")

    def desk_queue_lines(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """Statement lines waiting for a decision, oldest first, one page (partial index, no sort)."""
        return _dicts(self._all(
            "SELECT id, account, bank_reference, booking_date, value_date, amount_minor, currency, "
            "counterparty_name, counterparty_iban, remittance, structured_reference, end_to_end_id, match_status "
            "FROM statement_lines INDEXED BY desk_lines_waiting WHERE match_status IN ('open', 'suggested') "
            "ORDER BY booking_date, id LIMIT ? OFFSET ?", (limit, offset)))

    def desk_line(self, line_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM statement_lines WHERE id = ?", (line_id,))
        return None if row is None else dict(row)

    def desk_line_allocations(self, line_ids: list[int]) -> list[dict[str, Any]]:
        """Active allocations (candidates and decided ones) of these lines, with their invoices; the pieces of
        one proposal (same ``proposal`` number) are adjacent, the engine's best proposal first."""
        if not line_ids:
            return []
        marks = ", ".join("?" for _ in line_ids)
        return _dicts(self._all(
            "SELECT a.*, i.number AS invoice_number, i.buyer_name, i.buyer_key, i.due_date, i.issue_date, "
            "i.amount_due_minor, i.currency AS invoice_currency, i.financing_state "
            f"FROM allocations a LEFT JOIN invoices i ON i.id = a.invoice_id WHERE a.line_id IN ({marks}) "
            "AND a.active = 1 ORDER BY a.line_id, a.status = 'suggested' DESC, a.proposal, a.confidence DESC, a.id",
            line_ids))

    def desk_allocation(self, allocation_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM allocations WHERE id = ?", (allocation_id,))
        return None if row is None else dict(row)

    def desk_open_invoices(self, currency: str, *, search: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """Open invoices a payment may be allocated to by hand (number or debtor name contains ``search``)."""
        like = f"%{search}%"
        return _dicts(self._all(
            "SELECT id, number, buyer_name, buyer_key, due_date, amount_due_minor, currency FROM invoices "
            "WHERE kind = 'invoice' AND currency = ? AND financing_state NOT IN ('cancelled', 'released', "
            "'collected') AND (? = '' OR number LIKE ? OR buyer_name LIKE ?) ORDER BY due_date, id LIMIT ?",
            (currency, search, like, like, limit)))

    def desk_invoice_by_number(self, number: str, currency: str) -> dict[str, Any] | None:
        row = self._one("SELECT id, number, currency FROM invoices WHERE number = ? AND currency = ? "
                        "ORDER BY id DESC LIMIT 1", (number, currency))
        return None if row is None else dict(row)

    # -- reconciliation log ---------------------------------------------------------------------------
    def _without_vacuous_dates(self, filters: dict[str, Any]) -> dict[str, Any]:
        """The filters without a date bound that every statement line meets (the log opens on "the last 31
        days": when the store holds less than that, the bound selects everything, and joining every line to
        check it costs a scan). Exact: min/max come from the booking-date index."""
        if not filters.get("date_from") and not filters.get("date_to"):
            return filters
        # two queries: SQLite answers min() or max() alone from the index, both together by a scan
        first = self._scalar("SELECT min(booking_date) FROM statement_lines")
        last = self._scalar("SELECT max(booking_date) FROM statement_lines")
        if first is None:
            return filters
        out = dict(filters)
        if out.get("date_from") and out["date_from"] <= first:
            out["date_from"] = ""
        if out.get("date_to") and out["date_to"] >= last:
            out["date_to"] = ""
        return out

    def _log_where(self, filters: dict[str, Any]) -> tuple[str, str, list[Any]]:
        """(from, where, params): statement lines and invoices are joined only when a filter needs them."""
        filters = self._without_vacuous_dates(filters)
        dated = bool(filters.get("date_from") or filters.get("date_to"))
        # with a date range, lines drive the loop and "+a.status"/"+a.rule" (the unary plus) keep SQLite from
        # driving it from the status or rule index instead (a scan per line); without one, allocations drive
        # and those indexes are what narrows the loop
        plus = "+" if dated else ""
        clauses, params, need_line, need_invoice = ["1 = 1"], [], False, False
        for key, sql in (("date_from", "l.booking_date >= ?"), ("date_to", "l.booking_date <= ?"),
                         ("account", "l.account = ?"), ("status", f"{plus}a.status = ?"), ("rule", f"{plus}a.rule = ?"),
                         ("amount_min", "a.amount_minor >= ?"), ("amount_max", "a.amount_minor <= ?"),
                         ("currency", "a.currency = ?")):
            if filters.get(key) not in (None, ""):
                clauses.append(sql)
                params.append(filters[key])
                need_line = need_line or sql.startswith("l.")
        if filters.get("debtor"):
            clauses.append("(i.buyer_name LIKE ? OR i.buyer_key = ? OR l.counterparty_name LIKE ?)")
            params += [f"%{filters['debtor']}%", filters["debtor"], f"%{filters['debtor']}%"]
            need_line = need_invoice = True
        # with a line filter, statement lines drive the loop (date range on desk_lines_booking, then each line's
        # allocations): SQLite's own choice, a scan of every allocation, is 300 times slower at 100,000 lines
        if need_line and dated:
            source = "statement_lines l CROSS JOIN allocations a ON a.line_id = l.id "
        elif need_line:
            source = "allocations a CROSS JOIN statement_lines l ON l.id = a.line_id "
        else:
            source = "allocations a "
        source += "LEFT JOIN invoices i ON i.id = a.invoice_id " if need_invoice else ""
        return source, " AND ".join(clauses), params

    def desk_log_page_and_totals(self, filters: dict[str, Any], *, limit: int,
                                 offset: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(one page, totals per currency) of the filtered log. When the filters need joins (debtor, a date
        range, an account), one pass over the matching allocations gives both — the joins are the cost, so
        they are paid once; otherwise the page stops at its rows and the totals read the covering index."""
        joins, where, params = self._log_where(filters)
        if "JOIN" not in joins:
            return self.desk_log_page(filters, limit=limit, offset=offset), self.desk_log_totals(filters)
        rows = self._all(f"SELECT a.id, a.currency, a.amount_minor, a.writeoff_minor FROM {joins}WHERE {where} "
                         "ORDER BY a.id DESC", params)
        totals: dict[str, dict[str, Any]] = {}
        for _id, currency, amount, writeoff in rows:
            total = totals.setdefault(currency, {"currency": currency, "n": 0, "amount_minor": 0,
                                                 "writeoff_minor": 0})
            total["n"] += 1
            total["amount_minor"] += amount
            total["writeoff_minor"] += writeoff
        page = self._log_rows([r[0] for r in rows[offset:offset + limit]])
        return page, [totals[c] for c in sorted(totals)]

    def desk_log_page(self, filters: dict[str, Any], *, limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of the log, newest allocation first (the rowid order: no sort, stops at the page)."""
        joins, where, params = self._log_where(filters)
        ids = [r[0] for r in self._all(f"SELECT a.id FROM {joins}WHERE {where} "
                                       "ORDER BY a.id DESC LIMIT ? OFFSET ?", [*params, limit, offset])]
        return self._log_rows(ids)

    def _log_rows(self, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return _dicts(self._all(
            "SELECT a.id, a.line_id, a.invoice_id, a.amount_minor, a.currency, a.writeoff_minor, a.writeoff_kind, "
            "a.status, a.rule, a.confidence, a.active, a.decided_by, a.decided_at, a.created_at, "
            "l.booking_date, l.account, l.counterparty_name, i.number AS invoice_number, i.buyer_name "
            "FROM allocations a JOIN statement_lines l ON l.id = a.line_id "
            f"LEFT JOIN invoices i ON i.id = a.invoice_id WHERE a.id IN ({marks}) ORDER BY a.id DESC", ids))

    def desk_log_totals(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Count and sums per currency of the filtered log (minor units)."""
        joins, where, params = self._log_where(filters)
        return _dicts(self._all(
            "SELECT a.currency, count(*) AS n, sum(a.amount_minor) AS amount_minor, "
            f"sum(a.writeoff_minor) AS writeoff_minor FROM {joins}WHERE {where} "
            "GROUP BY a.currency ORDER BY a.currency", params))

    def desk_last_booking_date(self) -> str | None:
        return self._scalar("SELECT max(booking_date) FROM statement_lines")

    def desk_log_choices(self) -> dict[str, list[str]]:
        """Values offered in the log's filter lists (accounts from statements, rules via desk_allocations_rule)."""
        return {
            "account": [r[0] for r in self._all("SELECT DISTINCT account FROM statements ORDER BY 1")],
            "status": list(ALLOCATION_STATUSES),
            "rule": [r[0] for r in self._all("SELECT DISTINCT rule FROM allocations WHERE rule IS NOT NULL "
                                             "ORDER BY 1")],
        }

    # -- assignments -----------------------------------------------------------------------------------
    def desk_assignment_count(self) -> int:
        return self._scalar("SELECT count(*) FROM invoices WHERE kind = 'invoice'")

    def desk_assignment_page(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """Invoices, newest first, with their last eligibility decision and their live assignment."""
        return _dicts(self._all(
            "SELECT i.id, i.invoice_key, i.number, i.buyer_name, i.buyer_key, i.buyer_country, i.currency, "
            "i.amount_due_minor, i.due_date, i.financing_state, "
            "d.factor AS decision_factor, d.eligible, d.reasons, d.decided_at, "
            "a.factor, a.state AS assignment_state, a.remote_id, a.amount_minor AS assigned_minor, a.updated_at "
            "FROM (SELECT * FROM invoices WHERE kind = 'invoice' ORDER BY id DESC LIMIT ? OFFSET ?) i "
            "LEFT JOIN decisions d ON d.id = (SELECT max(id) FROM decisions WHERE invoice_id = i.id) "
            "LEFT JOIN assignments a ON a.id = (SELECT max(id) FROM assignments WHERE invoice_id = i.id "
            "AND kind = 'assignment') ORDER BY i.id DESC", (limit, offset)))

    def desk_limit_use(self) -> list[dict[str, Any]]:
        """Per factor and debtor: the limit the factor granted and what is assigned and still outstanding."""
        return _dicts(self._all(
            "SELECT dl.factor, dl.debtor_key, dl.status, dl.amount_minor AS limit_minor, dl.currency, dl.valid_to, "
            "(SELECT max(buyer_name) FROM invoices WHERE buyer_key = dl.debtor_key) AS debtor_name, "
            "coalesce((SELECT sum(a.amount_minor) FROM assignments a JOIN invoices i ON i.id = a.invoice_id "
            "  WHERE a.factor = dl.factor AND i.buyer_key = dl.debtor_key AND a.currency = dl.currency "
            "  AND a.kind = 'assignment' AND a.state NOT IN ('declined', 'cancelled', 'rejected', 'hold') "
            "  AND i.financing_state NOT IN ('collected', 'released', 'cancelled', 'charged_back')), 0) "
            "  AS used_minor FROM debtor_limits dl ORDER BY dl.factor, dl.debtor_key"))

    def desk_factor_accounts(self) -> list[dict[str, Any]]:
        """Balance of each factor ledger account (current account, reserve, fees...) per currency."""
        return _dicts(self._all(
            "SELECT factor, account, currency, sum(amount_minor) AS amount_minor, count(*) AS n "
            "FROM factor_ledger GROUP BY factor, account, currency ORDER BY factor, account, currency"))

    # -- quarantine, audit -------------------------------------------------------------------------
    def desk_quarantine_count(self, status: str) -> int:
        return self._scalar("SELECT count(*) FROM quarantine WHERE status = ?", (status,))

    def desk_quarantine_page(self, status: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        return _dicts(self._all("SELECT * FROM quarantine WHERE status = ? ORDER BY last_seen_at DESC, id DESC "
                                "LIMIT ? OFFSET ?", (status, limit, offset)))

    def desk_quarantine_entry(self, entry_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM quarantine WHERE id = ?", (entry_id,))
        return None if row is None else dict(row)

    def desk_audit_page(self, *, actor: str = "", limit: int, offset: int) -> list[dict[str, Any]]:
        if actor:
            return _dicts(self._all("SELECT * FROM audit WHERE actor = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                                    (actor, limit, offset)))
        return _dicts(self._all("SELECT * FROM audit ORDER BY seq DESC LIMIT ? OFFSET ?", (limit, offset)))
