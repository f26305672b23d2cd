"""Allocations, the review decisions on them, ledger entries and the factor balance-gap journal.

An allocation applies cash of one statement line to one invoice or credit note (``amount_minor`` in the
line's currency, ``invoice_amount_minor`` what it settles in the invoice's currency, ``writeoff_minor`` a
fee or discount written off on that invoice). Rows are never deleted: a superseded proposal is set
inactive, a rejected one keeps ``status = 'rejected'``. Invariants checked inside the writing transaction
(an :class:`~connector.errors.InvariantViolation` rolls everything back): the allocations of a line never
exceed the line, no invoice receives more than it has open. Ledger rows are append-only (triggers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from connector.clock import utc_iso
from connector.errors import InvariantViolation
from connector.model import canonical_json

DECIDED = ("auto", "manual")
APPLIED_SQL = ("CASE WHEN i.kind = 'credit_note' THEN -coalesce(a.invoice_amount_minor, a.amount_minor) "
               "ELSE coalesce(a.invoice_amount_minor, a.amount_minor) END + a.writeoff_minor")


class ReconciliationMixin:
    """Store methods of this area; SQL only lives in connector/store/."""

    # -- what the engine reads -------------------------------------------------------------------------
    def recon_open_items(self) -> list[dict[str, Any]]:
        """Every invoice and credit note not cancelled, with what is applied to it so far (its own
        currency) and the references and IBANs its document carries."""
        return [dict(r) for r in self._all(f"""
            SELECT i.id, i.number, i.kind, i.currency, i.amount_due_minor, i.due_date, i.issue_date, i.buyer_key,
                   i.buyer_name, i.financing_state, i.erp_status, i.source, i.source_id,
                   json_extract(v.data, '$.payment.reference') AS payment_reference,
                   json_extract(v.data, '$.buyer.ibans') AS buyer_ibans,
                   coalesce(ap.applied, 0) AS applied_minor, fr.refs AS factor_refs
            FROM invoices i
            JOIN invoice_versions v ON v.invoice_id = i.id AND v.version = i.current_version
            LEFT JOIN (SELECT a.invoice_id, sum({APPLIED_SQL}) AS applied FROM allocations a
                       JOIN invoices i ON i.id = a.invoice_id
                       WHERE a.active = 1 AND a.status IN ('auto', 'manual') GROUP BY a.invoice_id) ap
              ON ap.invoice_id = i.id
            LEFT JOIN (SELECT invoice_id, group_concat(remote_id, ' ') AS refs FROM assignments
                       WHERE remote_id IS NOT NULL GROUP BY invoice_id) fr ON fr.invoice_id = i.id
            WHERE i.financing_state != 'cancelled'""")]

    def recon_undecided_lines(self, *, accounts_excluded: Iterable[str] = ()) -> list[dict[str, Any]]:
        excluded = list(accounts_excluded)
        marks = ", ".join("?" for _ in excluded)
        extra = f" AND account NOT IN ({marks})" if excluded else ""
        return [dict(r) for r in self._all(
            "SELECT id, account, booking_date, amount_minor, currency, counterparty_name, counterparty_iban, "
            "remittance, structured_reference, end_to_end_id, bank_transaction_code, charges_minor, "
            "charges_currency, instructed_minor, instructed_currency, reversal, "
            "json_extract(data, '$.references') AS refs FROM statement_lines "
            f"WHERE match_status IN ('open', 'suggested'){extra} ORDER BY booking_date, id", excluded)]

    def recon_learned_ibans(self) -> dict[str, set[str]]:
        """Payer IBAN → the debtors it is known to pay for, from decided allocations: a line whose decided
        allocations are all of one debtor teaches its IBAN that debtor (the rule the matcher applies inside a
        run, so that a run's last state and the next run's first state agree; an IBAN seen for two debtors
        is then ambiguous in both)."""
        pairs: dict[str, set[str]] = {}
        for row in self._all(
                "SELECT min(l.counterparty_iban), min(i.buyer_key) FROM allocations a "
                "JOIN statement_lines l ON l.id = a.line_id JOIN invoices i ON i.id = a.invoice_id "
                "WHERE a.active = 1 AND a.status IN ('auto', 'manual') AND l.counterparty_iban IS NOT NULL "
                "GROUP BY a.line_id HAVING count(DISTINCT i.buyer_key) = 1"):
            pairs.setdefault(row[0], set()).add(row[1])
        return pairs

    def recon_rejected_pairs(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for row in self._all("SELECT line_id, invoice_id FROM allocations WHERE status = 'rejected' "
                             "AND invoice_id IS NOT NULL"):
            out.setdefault(row[0], set()).add(row[1])
        return out

    def recon_active_signatures(self) -> dict[int, tuple]:
        """The active allocations of undecided lines, in the form the engine compares its decisions with."""
        rows = self._all(
            "SELECT a.line_id, a.status, a.rule, a.proposal, a.invoice_id, a.amount_minor, a.invoice_amount_minor, "
            "a.writeoff_minor, a.writeoff_kind FROM allocations a JOIN statement_lines l ON l.id = a.line_id "
            "WHERE a.active = 1 AND l.match_status IN ('open', 'suggested') ORDER BY a.line_id, a.proposal, a.id")
        out: dict[int, list] = {}
        for r in rows:
            out.setdefault(r[0], []).append(tuple(r[1:]))
        return {k: tuple(v) for k, v in out.items()}

    def recon_changed_since(self, lines: dict[int, tuple], applied: dict[int, int]) -> list[str]:
        """What changed since a run read its snapshot (call inside the writing transaction): lines no longer
        undecided or whose active allocations differ from ``lines`` (line id -> signature, ``()`` for none),
        invoices whose applied amount differs from ``applied``. Empty when the run may write its decisions."""
        self.require_transaction("recon_changed_since()")
        changed: list[str] = []
        ids = list(lines)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            current: dict[int, list] = {}
            for r in self._all(
                    "SELECT a.line_id, a.status, a.rule, a.proposal, a.invoice_id, a.amount_minor, "
                    "a.invoice_amount_minor, a.writeoff_minor, a.writeoff_kind FROM allocations a "
                    f"WHERE a.active = 1 AND a.line_id IN ({marks}) ORDER BY a.line_id, a.proposal, a.id", chunk):
                current.setdefault(r[0], []).append(tuple(r[1:]))
            undecided = {r[0] for r in self._all(
                f"SELECT id FROM statement_lines WHERE id IN ({marks}) AND match_status IN ('open', 'suggested')",
                chunk)}
            changed += [f"line {line_id}" for line_id in chunk
                        if line_id not in undecided or tuple(current.get(line_id, ())) != lines[line_id]]
        invoice_ids = list(applied)
        for start in range(0, len(invoice_ids), 500):
            chunk = invoice_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            now_applied = {r[0]: r[1] for r in self._all(
                f"SELECT a.invoice_id, sum({APPLIED_SQL}) FROM allocations a JOIN invoices i ON i.id = a.invoice_id "
                f"WHERE a.active = 1 AND a.status IN ('auto', 'manual') AND a.invoice_id IN ({marks}) "
                "GROUP BY a.invoice_id", chunk)}
            changed += [f"invoice {i}" for i in chunk if now_applied.get(i, 0) != applied[i]]
        return changed

    # -- what the engine and the review write --------------------------------------------------------
    def _insert_allocation(self, *, line_id: int, invoice_id: int | None, amount_minor: int, currency: str,
                           status: str, rule: str, confidence: str, evidence: list[str] | tuple[str, ...],
                           proposal: int = 1, invoice_amount_minor: int | None = None,
                           invoice_currency: str | None = None, writeoff_minor: int = 0,
                           writeoff_kind: str | None = None, decided_by: str | None = None,
                           run_id: str | None = None, now: str | None = None) -> int:
        now = now or utc_iso()
        cursor = self._execute(
            "INSERT INTO allocations (line_id, invoice_id, amount_minor, currency, writeoff_minor, writeoff_kind, "
            "status, rule, confidence, evidence, active, decided_by, created_at, decided_at, proposal, "
            "invoice_amount_minor, invoice_currency, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (line_id, invoice_id, amount_minor, currency, writeoff_minor, writeoff_kind, status, rule, confidence,
             json.dumps(list(evidence), ensure_ascii=False), decided_by, now,
             now if status in DECIDED else None, proposal, invoice_amount_minor, invoice_currency, run_id))
        return cursor.lastrowid

    def recon_record_decisions(self, changes: list[tuple[dict[str, Any], Any]], *, run_id: str, now: str,
                               had_allocations: set[int], audit_batch: int = 200) -> None:
        """Replace the pending proposals of these lines with the engine's decisions, in bulk, then check the
        invariants over every line and invoice touched; one audit row per ``audit_batch`` lines lists each
        line's decision (status, rule, confidence, pieces). Inside the caller's transaction."""
        self.require_transaction("recon_record_decisions()")
        evidence_cache: dict[tuple[str, ...], str] = {}

        def evidence(items: tuple[str, ...]) -> str:
            text = evidence_cache.get(items)
            if text is None:
                text = evidence_cache[items] = json.dumps(list(items), ensure_ascii=False)
            return text

        stale = [(line["id"],) for line, _ in changes if line["id"] in had_allocations]
        if stale:
            self.conn.executemany("UPDATE allocations SET active = 0 WHERE line_id = ? AND active = 1 "
                                  "AND status IN ('suggested', 'unmatched')", stale)
        rows, statuses, audit_rows, invoices = [], [], [], []
        for line, decision in changes:
            line_id, currency = line["id"], line["currency"]
            pieces_audit = []
            if decision.status in ("auto", "suggested"):
                status = decision.status
                decided_by = "engine" if status == "auto" else None
                decided_at = now if status == "auto" else None
                for number, proposal in enumerate(decision.proposals, start=1):
                    for piece in proposal.pieces:
                        rows.append((line_id, piece.invoice_id, piece.amount_minor, currency, piece.writeoff_minor,
                                     piece.writeoff_kind, status, proposal.rule, str(proposal.confidence),
                                     evidence(proposal.evidence), decided_by, now, decided_at, number,
                                     piece.invoice_amount_minor, piece.invoice_currency, run_id))
                        pieces_audit.append([number, piece.invoice_id, piece.amount_minor, piece.writeoff_minor])
                        if status == "auto":
                            invoices.append(piece.invoice_id)
                    if status == "auto" and proposal.unapplied_minor > 0:
                        rows.append((line_id, None, proposal.unapplied_minor, currency, 0, None, "unmatched",
                                     "unapplied_cash", str(decision.confidence),
                                     evidence(("the rest of the payment is not applied to any open item",)), None,
                                     now, None, number, None, None, run_id))
                match_status = "matched" if status == "auto" else "suggested"
            else:
                rows.append((line_id, None, line["amount_minor"], currency, 0, None, "unmatched", decision.rule,
                             str(decision.confidence), evidence(decision.evidence), None, now, None, 1, None, None,
                             run_id))
                match_status = "not_receivable" if decision.status == "not_receivable" else "open"
            statuses.append((match_status, line_id))
            audit_rows.append([line_id, decision.status, decision.rule, str(decision.confidence), pieces_audit])
        self.conn.executemany(
            "INSERT INTO allocations (line_id, invoice_id, amount_minor, currency, writeoff_minor, writeoff_kind, "
            "status, rule, confidence, evidence, active, decided_by, created_at, decided_at, proposal, "
            "invoice_amount_minor, invoice_currency, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.conn.executemany("UPDATE statement_lines SET match_status = ? WHERE id = ?", statuses)
        self.recon_check_many([line["id"] for line, _ in changes], invoices)
        for start in range(0, len(audit_rows), audit_batch):
            batch = audit_rows[start:start + audit_batch]
            self.audit("reconcile.decided", f"run:{run_id}",
                       {"run": run_id, "fields": ["line", "status", "rule", "confidence", "pieces"], "lines": batch})

    def recon_check_many(self, line_ids: list[int], invoice_ids: list[int]) -> None:
        """The two invariants over many lines and invoices at once (raises on the first broken one)."""
        self.require_transaction("recon_check_many()")
        for start in range(0, len(line_ids), 500):
            chunk = line_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            row = self._one(
                "SELECT l.id, l.amount_minor, coalesce(sum(a.amount_minor), 0) AS applied FROM statement_lines l "
                "LEFT JOIN allocations a ON a.line_id = l.id AND a.active = 1 AND a.status IN ('auto', 'manual') "
                f"WHERE l.id IN ({marks}) GROUP BY l.id HAVING (l.amount_minor >= 0 AND (applied < 0 OR "
                "applied > l.amount_minor)) OR (l.amount_minor < 0 AND (applied > 0 OR applied < l.amount_minor)) "
                "LIMIT 1", chunk)
            if row is not None:
                raise InvariantViolation(f"statement line {row[0]}: allocations of {row[2]} minor units exceed the "
                                         f"line's {row[1]}")
        unique = sorted(set(invoice_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            row = self._one(
                f"SELECT i.id, i.amount_due_minor, coalesce(sum({APPLIED_SQL}), 0) AS applied FROM invoices i "
                "LEFT JOIN allocations a ON a.invoice_id = i.id AND a.active = 1 AND a.status IN ('auto', 'manual') "
                f"WHERE i.id IN ({marks}) GROUP BY i.id HAVING applied > i.amount_due_minor OR applied < 0 LIMIT 1",
                chunk)
            if row is not None:
                raise InvariantViolation(f"invoice {row[0]}: {row[2]} minor units applied, only {row[1]} due")

    # -- invariants ----------------------------------------------------------------------------------------
    def _check_line(self, line_id: int) -> None:
        """Decided allocations of a line never exceed it (the line's sign: cash in is positive)."""
        row = self._one(
            "SELECT l.amount_minor, coalesce(sum(a.amount_minor), 0) AS applied FROM statement_lines l "
            "LEFT JOIN allocations a ON a.line_id = l.id AND a.active = 1 AND a.status IN ('auto', 'manual') "
            "WHERE l.id = ? GROUP BY l.id", (line_id,))
        if row is None:
            raise InvariantViolation(f"statement line {line_id} does not exist")
        amount, applied = row[0], row[1]
        if (amount >= 0 and not 0 <= applied <= amount) or (amount < 0 and not amount <= applied <= 0):
            raise InvariantViolation(f"statement line {line_id}: allocations of {applied} minor units exceed the "
                                     f"line's {amount}")

    def _check_invoice(self, invoice_id: int) -> None:
        row = self._one(
            f"SELECT i.amount_due_minor, coalesce(sum({APPLIED_SQL}), 0) FROM invoices i "
            "LEFT JOIN allocations a ON a.invoice_id = i.id AND a.active = 1 AND a.status IN ('auto', 'manual') "
            "WHERE i.id = ? GROUP BY i.id", (invoice_id,))
        if row is None:
            raise InvariantViolation(f"invoice {invoice_id} does not exist")
        if row[1] > row[0] or row[1] < 0:
            raise InvariantViolation(f"invoice {invoice_id}: {row[1]} minor units applied, only {row[0]} due")

    def recon_invoice_open_minor(self, invoice_id: int) -> int:
        row = self._one(
            f"SELECT i.amount_due_minor - coalesce(sum({APPLIED_SQL}), 0) FROM invoices i "
            "LEFT JOIN allocations a ON a.invoice_id = i.id AND a.active = 1 AND a.status IN ('auto', 'manual') "
            "WHERE i.id = ? GROUP BY i.id", (invoice_id,))
        if row is None:
            raise InvariantViolation(f"invoice {invoice_id} does not exist")
        return row[0]

    # -- review ----------------------------------------------------------------------------------------
    def recon_allocation(self, allocation_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM allocations WHERE id = ?", (allocation_id,))
        return None if row is None else dict(row)

    def recon_line_allocations(self, line_id: int, *, active_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM allocations WHERE line_id = ?" + (" AND active = 1" if active_only else "")
        return [dict(r) for r in self._all(sql + " ORDER BY proposal, id", (line_id,))]

    def recon_set_allocations(self, ids: list[int], *, status: str | None = None, active: int | None = None,
                              decided_by: str | None = None, superseded_by: int | None = None,
                              clear_superseded: bool = False) -> None:
        self.require_transaction("recon_set_allocations()")
        if not ids:
            return
        sets, params = [], []
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        if active is not None:
            sets.append("active = ?")
            params.append(active)
        if decided_by is not None:
            sets += ["decided_by = ?", "decided_at = ?"]
            params += [decided_by, utc_iso()]
        if superseded_by is not None:
            sets.append("superseded_by = ?")
            params.append(superseded_by)
        if clear_superseded:
            sets.append("superseded_by = NULL")
        marks = ", ".join("?" for _ in ids)
        self._execute(f"UPDATE allocations SET {', '.join(sets)} WHERE id IN ({marks})", [*params, *ids])

    def recon_superseded_by(self, allocation_ids: list[int]) -> list[int]:
        if not allocation_ids:
            return []
        marks = ", ".join("?" for _ in allocation_ids)
        return [r[0] for r in self._all(f"SELECT id FROM allocations WHERE superseded_by IN ({marks})",
                                        allocation_ids)]

    def recon_set_line_status(self, line_id: int, status: str) -> None:
        self.require_transaction("recon_set_line_status()")
        self._execute("UPDATE statement_lines SET match_status = ? WHERE id = ?", (status, line_id))

    def recon_add_allocation(self, **fields: Any) -> int:
        self.require_transaction("recon_add_allocation()")
        return self._insert_allocation(**fields)

    def recon_check(self, line_id: int, invoice_ids: Iterable[int]) -> None:
        self._check_line(line_id)
        for invoice_id in set(invoice_ids):
            if invoice_id is not None:
                self._check_invoice(invoice_id)

    def recon_invoice_by_number(self, number: str, currency: str) -> int | None:
        return self._scalar("SELECT id FROM invoices WHERE number = ? AND currency = ? AND financing_state != "
                            "'cancelled' ORDER BY id DESC LIMIT 1", (number, currency))

    def recon_queue(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT * FROM statement_lines WHERE match_status IN ('open', 'suggested') "
            "ORDER BY booking_date, id LIMIT ? OFFSET ?", (limit, offset))]

    def recon_allocations_of(self, line_ids: list[int]) -> list[dict[str, Any]]:
        if not line_ids:
            return []
        marks = ", ".join("?" for _ in line_ids)
        return [dict(r) for r in self._all(
            "SELECT a.*, i.number AS invoice_number, i.buyer_name, i.kind AS invoice_kind FROM allocations a "
            f"LEFT JOIN invoices i ON i.id = a.invoice_id WHERE a.line_id IN ({marks}) AND a.active = 1 "
            "ORDER BY a.line_id, a.proposal, a.id", line_ids)]

    # -- export ----------------------------------------------------------------------------------------
    def recon_export_rows(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """One row per active allocation with its line and invoice (the reconciliation log)."""
        clauses, params = ["a.active = 1"], []
        for key, sql in (("date_from", "l.booking_date >= ?"), ("date_to", "l.booking_date <= ?"),
                         ("account", "l.account = ?"), ("status", "a.status = ?"), ("rule", "a.rule = ?"),
                         ("currency", "a.currency = ?"), ("amount_min", "a.amount_minor >= ?"),
                         ("amount_max", "a.amount_minor <= ?"), ("line_id", "l.id = ?")):
            if filters.get(key) not in (None, ""):
                clauses.append(sql)
                params.append(filters[key])
        if filters.get("debtor"):
            clauses.append("(i.buyer_name LIKE ? OR i.buyer_key = ? OR l.counterparty_name LIKE ?)")
            params += [f"%{filters['debtor']}%", filters["debtor"], f"%{filters['debtor']}%"]
        return [dict(r) for r in self._all(
            "SELECT a.id AS allocation_id, a.line_id, a.invoice_id, a.amount_minor, a.currency, a.writeoff_minor, "
            "a.writeoff_kind, a.status, a.rule, a.confidence, a.evidence, a.proposal, a.decided_by, a.decided_at, "
            "a.invoice_amount_minor, a.invoice_currency, l.bank_reference, l.identity, l.booking_date, "
            "l.amount_minor AS line_amount_minor, l.currency AS line_currency, l.counterparty_name, l.remittance, "
            "l.account, l.match_status, i.number AS invoice_number, i.kind AS invoice_kind "
            "FROM allocations a JOIN statement_lines l ON l.id = a.line_id "
            f"LEFT JOIN invoices i ON i.id = a.invoice_id WHERE {' AND '.join(clauses)} "
            "ORDER BY l.booking_date, l.id, a.proposal, a.invoice_id IS NULL, a.id", params)]

    def recon_lines_without_allocation(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Lines never run through the engine yet (they show in the log as unmatched)."""
        clauses, params = ["NOT EXISTS (SELECT 1 FROM allocations a WHERE a.line_id = l.id AND a.active = 1)"], []
        for key, sql in (("date_from", "l.booking_date >= ?"), ("date_to", "l.booking_date <= ?"),
                         ("account", "l.account = ?"), ("currency", "l.currency = ?")):
            if filters.get(key) not in (None, ""):
                clauses.append(sql)
                params.append(filters[key])
        return [dict(r) for r in self._all(
            "SELECT l.id AS line_id, l.bank_reference, l.identity, l.booking_date, "
            "l.amount_minor AS line_amount_minor, "
            "l.currency AS line_currency, l.counterparty_name, l.remittance, l.account, l.match_status "
            f"FROM statement_lines l WHERE {' AND '.join(clauses)} ORDER BY l.booking_date, l.id", params)]

    # -- ledger ------------------------------------------------------------------------------------------
    def ledger_piece_exists(self, journal: str, piece_ref: str) -> bool:
        return self._scalar("SELECT 1 FROM ledger_entries WHERE journal = ? AND piece_ref = ? LIMIT 1",
                            (journal, piece_ref)) is not None

    def ledger_post_piece(self, journal: str, piece_ref: str, entry_date: str, currency: str,
                          lines: list[dict[str, Any]], *, reverses: dict[int, int] | None = None) -> list[int]:
        """Insert one balanced piece (journal entry); refuses an unbalanced one. Audited."""
        self.require_transaction("ledger_post_piece()")
        debit = sum(line.get("debit_minor", 0) for line in lines)
        credit = sum(line.get("credit_minor", 0) for line in lines)
        if debit != credit or debit == 0:
            raise InvariantViolation(f"journal entry {journal}/{piece_ref} is not balanced: debit {debit}, "
                                     f"credit {credit}")
        now = utc_iso()
        ids = []
        for number, line in enumerate(lines, start=1):
            cursor = self._execute(
                "INSERT INTO ledger_entries (journal, piece_ref, line_no, entry_date, account, label, debit_minor, "
                "credit_minor, currency, invoice_id, reverses, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (journal, piece_ref, number, entry_date, line["account"], line["label"][:200],
                 line.get("debit_minor", 0), line.get("credit_minor", 0), currency, line.get("invoice_id"),
                 (reverses or {}).get(number), now))
            ids.append(cursor.lastrowid)
        self.audit("ledger.posted", f"ledger:{journal}/{piece_ref}",
                   {"date": entry_date, "currency": currency, "debit_minor": debit, "lines": len(lines),
                    "reverses": bool(reverses)})
        return ids

    def ledger_piece(self, journal: str, piece_ref: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM ledger_entries WHERE journal = ? AND piece_ref = ? "
                                           "ORDER BY line_no", (journal, piece_ref))]

    def ledger_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM ledger_entries ORDER BY id")]

    def writeback_followup_done(self, source: str, reference: str, *, kind: str, invoice_id: int, source_id: str,
                                amount_minor: int, currency: str, date: str, erp_id: str) -> None:
        """Record a write-off or a reversal written back to the ERP (``kind``: ``writeoff`` | ``reversal``).

        Its intent is the ledger piece it follows (append-only, committed before the ERP call) and the
        adapter looks ``reference`` up before creating anything, so the row is written once, already done,
        with the ERP's id: never ``pending``, the state the payment resume (``connector.pull``) replays."""
        self.require_transaction("writeback_followup_done()")
        now = utc_iso()
        cursor = self._execute(
            "INSERT INTO erp_writebacks (source, reference, invoice_id, source_id, amount_minor, currency, "
            "payment_date, state, erp_id, created_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'done', ?, ?, ?) "
            "ON CONFLICT (source, reference) DO NOTHING",
            (source, reference, invoice_id, source_id, amount_minor, currency, date, erp_id, now, now))
        if cursor.rowcount:
            self.audit(f"erp.{kind}_done", f"invoice:{invoice_id}",
                       {"source": source, "reference": reference, "erp_id": erp_id, "amount_minor": amount_minor,
                        "currency": currency, "date": date})

    def ledger_allocations_to_post(self, journal: str) -> list[dict[str, Any]]:
        """Decided allocations and unapplied cash, and any allocation with a posted piece (to reverse it when
        it was taken back), with their line and invoice."""
        return [dict(r) for r in self._all(
            "SELECT a.*, l.booking_date, l.account AS bank_account, l.counterparty_name, l.bank_reference, "
            "l.identity, i.number AS invoice_number, i.kind AS invoice_kind, i.buyer_key, i.buyer_name, "
            "i.source, i.source_id FROM allocations a JOIN statement_lines l ON l.id = a.line_id "
            "LEFT JOIN invoices i ON i.id = a.invoice_id "
            "WHERE a.status IN ('auto', 'manual') OR (a.status = 'unmatched' AND a.rule = 'unapplied_cash') "
            "OR EXISTS (SELECT 1 FROM ledger_entries e WHERE e.journal = ? AND e.piece_ref >= 'A' || a.id || '.' "
            "AND e.piece_ref < 'A' || a.id || '/') ORDER BY a.id", (journal,))]

    def ledger_factor_events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT e.*, i.id AS invoice_id, i.number AS invoice_number FROM factor_events e "
            "LEFT JOIN invoices i ON i.invoice_key = e.invoice_key ORDER BY e.occurred_on, e.id")]

    # -- factor account ----------------------------------------------------------------------------------
    def factor_current_movements(self, factor: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT fl.event_id, fl.amount_minor, fl.currency, fl.invoice_key, fl.occurred_on, e.kind "
            "FROM factor_ledger fl LEFT JOIN factor_events e ON e.factor = fl.factor AND e.event_id = fl.event_id "
            "WHERE fl.factor = ? AND fl.account = 'current' ORDER BY fl.occurred_on, fl.id", (factor,))]

    def recon_payments_of_assigned(self, factor: str) -> list[dict[str, Any]]:
        """Decided allocations of statement lines to invoices assigned to this factor and accepted by it (in
        notified mode the debtor should have paid the factor: an indirect payment)."""
        return [dict(r) for r in self._all(
            "SELECT a.id AS allocation_id, a.line_id, a.amount_minor, a.currency, i.invoice_key, i.number, "
            "l.booking_date, l.bank_reference, l.account FROM allocations a "
            "JOIN statement_lines l ON l.id = a.line_id JOIN invoices i ON i.id = a.invoice_id "
            "WHERE a.active = 1 AND a.status IN ('auto', 'manual') AND i.kind = 'invoice' "
            "AND i.financing_state IN ('accepted', 'funded', 'collected') AND EXISTS (SELECT 1 FROM assignments s "
            "WHERE s.invoice_key = i.invoice_key AND s.factor = ? AND s.kind = 'assignment' "
            "AND s.state NOT IN ('declined', 'cancelled')) ORDER BY l.booking_date, a.id", (factor,))]

    def factor_gap_row(self, factor: str, account: str, day: str, currency: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM factor_balance_gaps WHERE factor = ? AND account = ? AND day = ? "
                        "AND currency = ?", (factor, account, day, currency))
        return None if row is None else dict(row)

    def save_factor_gap(self, row: dict[str, Any]) -> bool:
        """Insert or update one day of the balance-gap journal; audited when it changed."""
        self.require_transaction("save_factor_gap()")
        old = self.factor_gap_row(row["factor"], row["account"], row["day"], row["currency"])
        detail = canonical_json(row["detail"])
        if old and all(old[k] == row[k] for k in ("cessio_minor", "factor_minor", "gap_minor", "explained_minor",
                                                   "status")) and old["detail"] == detail:
            return False
        self._execute(
            "INSERT INTO factor_balance_gaps (factor, account, day, currency, cessio_minor, factor_minor, gap_minor, "
            "explained_minor, status, detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (factor, account, day, currency) DO UPDATE SET cessio_minor = excluded.cessio_minor, "
            "factor_minor = excluded.factor_minor, gap_minor = excluded.gap_minor, "
            "explained_minor = excluded.explained_minor, status = excluded.status, detail = excluded.detail, "
            "updated_at = excluded.updated_at",
            (row["factor"], row["account"], row["day"], row["currency"], row["cessio_minor"], row["factor_minor"],
             row["gap_minor"], row["explained_minor"], row["status"], detail, utc_iso()))
        self.audit("factor.balance_gap", f"factor:{row['factor']}:{row['day']}",
                   {k: row[k] for k in ("account", "day", "currency", "cessio_minor", "factor_minor", "gap_minor",
                                        "explained_minor", "status")} | {"detail": row["detail"]})
        return True

    def factor_gap_rows(self, factor: str | None = None) -> list[dict[str, Any]]:
        if factor:
            rows = self._all("SELECT * FROM factor_balance_gaps WHERE factor = ? ORDER BY day", (factor,))
        else:
            rows = self._all("SELECT * FROM factor_balance_gaps ORDER BY factor, day")
        return [dict(r) for r in rows]
