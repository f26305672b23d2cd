"""Every schema change of the store, as numbered migrations in one place.

Migrations are applied in the order they are registered here, each in its own transaction with its
record in ``_sqlite_migrations`` (sqlite-utils ``Migrations``), under ``BEGIN IMMEDIATE`` so that two
processes starting at once do not race. They are explicit DDL: inserts never alter state tables.

Conventions for every table:
- money is ``*_minor INTEGER`` (minor units) next to a ``currency`` column, with CHECKs on the type;
- timestamps are ISO 8601 UTC text, dates ``YYYY-MM-DD``;
- ``audit`` and ``ledger_entries`` are append-only (triggers refuse UPDATE and DELETE).

Areas add their migrations below their own heading, numbered in their own range, so that work on
one area never renumbers another's.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("cessio")


def _script(db: Database, sql: str) -> None:
    for statement in sql.split(";\n"):
        if statement.strip():
            db.execute(statement)


# == core (foundation, 0001-0009) ==================================================================

@migrations(name="0001_core")
def m0001_core(db: Database) -> None:
    _script(db, """
CREATE TABLE audit (
  seq        INTEGER PRIMARY KEY,
  ts         TEXT NOT NULL,
  actor      TEXT NOT NULL,
  event      TEXT NOT NULL,
  entity     TEXT,
  payload    TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE sources (
  name        TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE TABLE sync_cursors (
  source      TEXT NOT NULL,
  stream      TEXT NOT NULL,
  cursor      TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (source, stream)
);

-- original inbound bytes, immutable, by SHA-256 (GoBD / piste d'audit fiable)
CREATE TABLE documents (
  sha256       TEXT PRIMARY KEY,
  size         INTEGER NOT NULL,
  media_type   TEXT,
  file_name    TEXT,
  received_at  TEXT NOT NULL,
  content      BLOB NOT NULL
);
CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents
  BEGIN SELECT RAISE(ABORT, 'documents are immutable'); END;

CREATE TABLE invoices (
  id                INTEGER PRIMARY KEY,
  invoice_key       TEXT NOT NULL UNIQUE,
  source            TEXT NOT NULL,
  source_id         TEXT,
  number            TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  type_code         TEXT NOT NULL,
  seller_key        TEXT NOT NULL,
  buyer_key         TEXT NOT NULL,
  buyer_name        TEXT,
  buyer_country     TEXT,
  currency          TEXT NOT NULL CHECK (length(currency) = 3),
  issue_date        TEXT NOT NULL,
  due_date          TEXT,
  total_gross_minor INTEGER NOT NULL CHECK (typeof(total_gross_minor) = 'integer'),
  amount_due_minor  INTEGER NOT NULL CHECK (typeof(amount_due_minor) = 'integer'),
  current_version   INTEGER NOT NULL DEFAULT 1,
  financing_state   TEXT NOT NULL DEFAULT 'new',
  erp_status        TEXT,
  disputed          INTEGER NOT NULL DEFAULT 0 CHECK (disputed IN (0, 1)),
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE INDEX invoices_source ON invoices (source, source_id);
CREATE INDEX invoices_buyer ON invoices (buyer_key);
CREATE INDEX invoices_state ON invoices (financing_state);
CREATE INDEX invoices_number ON invoices (number);

CREATE TABLE invoice_versions (
  invoice_id    INTEGER NOT NULL REFERENCES invoices (id),
  version       INTEGER NOT NULL,
  fingerprint   TEXT NOT NULL,
  content_hash  TEXT REFERENCES documents (sha256),
  data          TEXT NOT NULL,
  diff          TEXT,
  created_at    TEXT NOT NULL,
  PRIMARY KEY (invoice_id, version)
);

CREATE TABLE quarantine (
  id             INTEGER PRIMARY KEY,
  source         TEXT NOT NULL,
  location       TEXT NOT NULL,
  content_sha256 TEXT NOT NULL,
  field          TEXT,
  rule           TEXT,
  reason         TEXT NOT NULL,
  status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  seen_count     INTEGER NOT NULL DEFAULT 1,
  created_at     TEXT NOT NULL,
  last_seen_at   TEXT NOT NULL,
  resolved_at    TEXT,
  UNIQUE (source, location, content_sha256)
);
CREATE INDEX quarantine_open ON quarantine (status);

-- eligibility decisions: every reason kept so finance staff can see why
CREATE TABLE decisions (
  id          INTEGER PRIMARY KEY,
  invoice_id  INTEGER NOT NULL REFERENCES invoices (id),
  version     INTEGER NOT NULL,
  factor      TEXT NOT NULL,
  eligible    INTEGER NOT NULL CHECK (eligible IN (0, 1)),
  reasons     TEXT NOT NULL,
  decided_at  TEXT NOT NULL
);
CREATE INDEX decisions_invoice ON decisions (invoice_id, factor);

CREATE TABLE batches (
  id                INTEGER PRIMARY KEY,
  factor            TEXT NOT NULL,
  channel           TEXT NOT NULL,
  number            INTEGER NOT NULL,
  state             TEXT NOT NULL DEFAULT 'open',
  item_count        INTEGER NOT NULL DEFAULT 0,
  control_sum_minor INTEGER NOT NULL DEFAULT 0 CHECK (typeof(control_sum_minor) = 'integer'),
  currency          TEXT,
  file_name         TEXT,
  remote_id         TEXT,
  created_at        TEXT NOT NULL,
  released_at       TEXT,
  UNIQUE (factor, number)
);

-- the outbox: an assignment row is the claim; the UNIQUE keys stop double financing
CREATE TABLE assignments (
  id               INTEGER PRIMARY KEY,
  invoice_id       INTEGER NOT NULL REFERENCES invoices (id),
  invoice_key      TEXT NOT NULL,
  invoice_version  INTEGER NOT NULL,
  factor           TEXT NOT NULL,
  kind             TEXT NOT NULL DEFAULT 'assignment'
                   CHECK (kind IN ('assignment', 'credit_note', 'cancellation', 'collection_report')),
  idempotency_key  TEXT NOT NULL UNIQUE,
  amount_minor     INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency         TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'pending',
  batch_id         INTEGER REFERENCES batches (id),
  remote_id        TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT NOT NULL,
  lease_until      TEXT,
  last_error       TEXT,
  payload          TEXT NOT NULL,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX one_live_assignment_per_invoice ON assignments (invoice_key)
  WHERE kind = 'assignment' AND state NOT IN ('declined', 'cancelled');
CREATE INDEX assignments_due ON assignments (state, next_attempt_at);
CREATE INDEX assignments_factor ON assignments (factor, state);

CREATE TABLE factor_events (
  id            INTEGER PRIMARY KEY,
  factor        TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  kind          TEXT NOT NULL,
  invoice_key   TEXT,
  amount_minor  INTEGER CHECK (amount_minor IS NULL OR typeof(amount_minor) = 'integer'),
  vat_minor     INTEGER CHECK (vat_minor IS NULL OR typeof(vat_minor) = 'integer'),
  currency      TEXT,
  reason_code   TEXT,
  occurred_on   TEXT NOT NULL,
  detail        TEXT NOT NULL DEFAULT '{}',
  received_at   TEXT NOT NULL,
  UNIQUE (factor, event_id)
);
CREATE INDEX factor_events_invoice ON factor_events (invoice_key);

CREATE TABLE debtor_limits (
  factor        TEXT NOT NULL,
  debtor_key    TEXT NOT NULL,
  status        TEXT NOT NULL,
  amount_minor  INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency      TEXT NOT NULL,
  valid_from    TEXT,
  valid_to      TEXT,
  decided_at    TEXT NOT NULL,
  PRIMARY KEY (factor, debtor_key)
);

CREATE TABLE statements (
  id              INTEGER PRIMARY KEY,
  account         TEXT NOT NULL,
  statement_id    TEXT,
  format          TEXT NOT NULL,
  currency        TEXT NOT NULL,
  opening_minor   INTEGER,
  closing_minor   INTEGER,
  from_date       TEXT,
  to_date         TEXT,
  content_sha256  TEXT NOT NULL,
  imported_at     TEXT NOT NULL
);
CREATE INDEX statements_account ON statements (account, to_date);

CREATE TABLE statement_lines (
  id                   INTEGER PRIMARY KEY,
  identity             TEXT NOT NULL UNIQUE,
  statement_id         INTEGER NOT NULL REFERENCES statements (id),
  account              TEXT NOT NULL,
  bank_reference       TEXT,
  booking_date         TEXT NOT NULL,
  value_date           TEXT,
  amount_minor         INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency             TEXT NOT NULL,
  counterparty_name    TEXT,
  counterparty_iban    TEXT,
  remittance           TEXT,
  structured_reference TEXT,
  end_to_end_id        TEXT,
  data                 TEXT NOT NULL,
  match_status         TEXT NOT NULL DEFAULT 'open',
  imported_at          TEXT NOT NULL
);
CREATE INDEX statement_lines_status ON statement_lines (match_status, booking_date);

CREATE TABLE allocations (
  id               INTEGER PRIMARY KEY,
  line_id          INTEGER NOT NULL REFERENCES statement_lines (id),
  invoice_id       INTEGER REFERENCES invoices (id),
  amount_minor     INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency         TEXT NOT NULL,
  writeoff_minor   INTEGER NOT NULL DEFAULT 0 CHECK (typeof(writeoff_minor) = 'integer'),
  writeoff_kind    TEXT,
  status           TEXT NOT NULL CHECK (status IN ('auto', 'suggested', 'manual', 'rejected', 'unmatched')),
  rule             TEXT,
  confidence       TEXT,
  evidence         TEXT NOT NULL DEFAULT '[]',
  active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  decided_by       TEXT,
  created_at       TEXT NOT NULL,
  decided_at       TEXT
);
CREATE INDEX allocations_line ON allocations (line_id, active);
CREATE INDEX allocations_invoice ON allocations (invoice_id, active);

CREATE TABLE ledger_entries (
  id            INTEGER PRIMARY KEY,
  journal       TEXT NOT NULL,
  piece_ref     TEXT NOT NULL,
  line_no       INTEGER NOT NULL,
  entry_date    TEXT NOT NULL,
  account       TEXT NOT NULL,
  label         TEXT NOT NULL,
  debit_minor   INTEGER NOT NULL DEFAULT 0 CHECK (typeof(debit_minor) = 'integer' AND debit_minor >= 0),
  credit_minor  INTEGER NOT NULL DEFAULT 0 CHECK (typeof(credit_minor) = 'integer' AND credit_minor >= 0),
  currency      TEXT NOT NULL,
  invoice_id    INTEGER REFERENCES invoices (id),
  reverses      INTEGER REFERENCES ledger_entries (id),
  posted_at     TEXT NOT NULL,
  UNIQUE (journal, piece_ref, line_no)
);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are never edited: post a reversal'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted: post a reversal'); END;

CREATE TABLE job_runs (
  id           INTEGER PRIMARY KEY,
  job_id       TEXT NOT NULL,
  run_id       TEXT NOT NULL UNIQUE,
  started_at   TEXT NOT NULL,
  finished_at  TEXT,
  outcome      TEXT,
  error        TEXT,
  summary      TEXT
);
CREATE INDEX job_runs_job ON job_runs (job_id, started_at)
""")


# == e-invoice ingestion (issue 3: 0010-0019) ======================================================

# == ERP source adapters (issue 4: 0020-0029) ======================================================

# == assignment engine and factor API (issue 5: 0030-0039) =========================================

# == factor files, ISO 20022, limits, reverse factoring (issue 6: 0040-0049) =======================

# == reconciliation and ledger (issue 7: 0050-0059) ================================================

# == agent, review desk (issues 8 and 10: 0060-0079) ===============================================
