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

@migrations(name="0010_einvoice_documents")
def m0010_einvoice_documents(db: Database) -> None:
    _script(db, """
-- one row per distinct e-invoice document read (by SHA-256 of its bytes): what it was and where it went
CREATE TABLE einvoice_documents (
  content_sha256 TEXT PRIMARY KEY REFERENCES documents (sha256),
  location       TEXT NOT NULL,
  syntax         TEXT NOT NULL CHECK (syntax IN ('ubl', 'cii', 'zugferd1')),
  container      TEXT NOT NULL CHECK (container IN ('xml', 'pdf')),
  profile        TEXT,
  attachment     TEXT,
  invoice_id     INTEGER NOT NULL REFERENCES invoices (id),
  version        INTEGER NOT NULL,
  official_rules TEXT NOT NULL DEFAULT 'not_run' CHECK (official_rules IN ('run', 'not_run')),
  ingested_at    TEXT NOT NULL
);
CREATE INDEX einvoice_documents_invoice ON einvoice_documents (invoice_id, version);

-- validation findings of each document, per rule (native EN 16931 subset, official rules, Cessio checks)
CREATE TABLE einvoice_findings (
  id             INTEGER PRIMARY KEY,
  content_sha256 TEXT NOT NULL REFERENCES einvoice_documents (content_sha256),
  level          TEXT NOT NULL CHECK (level IN ('fatal', 'error', 'warning', 'info')),
  rule           TEXT NOT NULL,
  message        TEXT NOT NULL,
  field          TEXT
);
CREATE INDEX einvoice_findings_document ON einvoice_findings (content_sha256)
""")


# == ERP source adapters (issue 4: 0020-0029) ======================================================

@migrations(name="0020_erp_writebacks")
def m0020_erp_writebacks(db: Database) -> None:
    # one row per payment written back to an ERP: intent first, ERP id after (idempotent by reference)
    _script(db, """
CREATE TABLE erp_writebacks (
  id            INTEGER PRIMARY KEY,
  source        TEXT NOT NULL,
  reference     TEXT NOT NULL,
  invoice_id    INTEGER NOT NULL REFERENCES invoices (id),
  source_id     TEXT NOT NULL,
  amount_minor  INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency      TEXT NOT NULL CHECK (length(currency) = 3),
  payment_date  TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  erp_id        TEXT,
  created_at    TEXT NOT NULL,
  done_at       TEXT,
  UNIQUE (source, reference)
)
""")


# == assignment engine and factor API (issue 5: 0030-0039) =========================================

@migrations(name="0030_factor_ledger")
def m0030_factor_ledger(db: Database) -> None:
    # the factor's running accounts as its events tell them (current account, reserve, fees, funded,
    # outstanding assigned); one signed row per (event, account), so replaying an event changes nothing.
    # Batches get the idempotency key they are sent under and a lease of their own.
    _script(db, """
CREATE TABLE factor_ledger (
  id            INTEGER PRIMARY KEY,
  factor        TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  account       TEXT NOT NULL CHECK (account IN ('current', 'reserve', 'fees', 'fees_vat', 'funded',
                                                 'outstanding', 'collected', 'charged_back')),
  amount_minor  INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer'),
  currency      TEXT NOT NULL CHECK (length(currency) = 3),
  invoice_key   TEXT,
  occurred_on   TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  UNIQUE (factor, event_id, account)
);
CREATE TRIGGER factor_ledger_no_update BEFORE UPDATE ON factor_ledger
  BEGIN SELECT RAISE(ABORT, 'factor ledger rows are never edited'); END;
CREATE TRIGGER factor_ledger_no_delete BEFORE DELETE ON factor_ledger
  BEGIN SELECT RAISE(ABORT, 'factor ledger rows are never deleted'); END;
ALTER TABLE batches ADD COLUMN idempotency_key TEXT;
ALTER TABLE batches ADD COLUMN lease_until TEXT;
ALTER TABLE batches ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX batches_idempotency_key ON batches (idempotency_key);
CREATE INDEX assignments_batch ON assignments (batch_id)
""")


# == factor files, ISO 20022, limits, reverse factoring (issue 6: 0040-0049) =======================

@migrations(name="0040_channel_files")
def m0040_channel_files(db: Database) -> None:
    # one row per file produced for a batch (bordereau or ISO 20022 message): the bytes are kept before
    # anything is written to the outbox, so a crash between the two replays the same file, never a new one
    _script(db, """
CREATE TABLE channel_files (
  id                 INTEGER PRIMARY KEY,
  batch_id           INTEGER NOT NULL REFERENCES batches (id),
  part               TEXT NOT NULL DEFAULT '',
  factor             TEXT NOT NULL,
  layout             TEXT NOT NULL,
  file_number        INTEGER NOT NULL,
  file_name          TEXT NOT NULL,
  sha256             TEXT NOT NULL,
  content            BLOB NOT NULL,
  html               TEXT,
  item_count         INTEGER NOT NULL,
  total_signed_minor INTEGER NOT NULL CHECK (typeof(total_signed_minor) = 'integer'),
  currency           TEXT NOT NULL CHECK (length(currency) = 3),
  state              TEXT NOT NULL CHECK (state IN ('prepared', 'released')),
  created_at         TEXT NOT NULL,
  released_at        TEXT,
  UNIQUE (batch_id, part, layout),
  UNIQUE (factor, layout, file_number, part),
  UNIQUE (factor, file_name)
);
CREATE INDEX channel_files_state ON channel_files (state);

-- credit-limit requests (RECECO vocabulary); the decision is copied into debtor_limits
CREATE TABLE limit_requests (
  id               INTEGER PRIMARY KEY,
  factor           TEXT NOT NULL,
  debtor_key       TEXT NOT NULL,
  debtor_name      TEXT,
  request_type     TEXT NOT NULL
                   CHECK (request_type IN ('preliminary', 'new', 'increase', 'reduce', 'cancel', 'prolong')),
  receco_code      TEXT NOT NULL,
  amount_minor     INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor >= 0),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  idempotency_key  TEXT NOT NULL UNIQUE,
  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'decided')),
  remote_id        TEXT,
  response_code    TEXT,
  status           TEXT,
  granted_minor    INTEGER CHECK (granted_minor IS NULL OR typeof(granted_minor) = 'integer'),
  valid_from       TEXT,
  valid_to         TEXT,
  reason_code      TEXT,
  created_at       TEXT NOT NULL,
  decided_at       TEXT
);
CREATE INDEX limit_requests_open ON limit_requests (factor, state);

-- reverse factoring at the buyer: each approved supplier invoice submitted once as a confirmed payable
CREATE TABLE reverse_payables (
  id                INTEGER PRIMARY KEY,
  platform          TEXT NOT NULL,
  invoice_id        INTEGER NOT NULL REFERENCES invoices (id),
  invoice_key       TEXT NOT NULL,
  supplier_key      TEXT NOT NULL,
  number            TEXT NOT NULL,
  amount_minor      INTEGER NOT NULL CHECK (typeof(amount_minor) = 'integer' AND amount_minor > 0),
  currency          TEXT NOT NULL CHECK (length(currency) = 3),
  due_date          TEXT NOT NULL,
  idempotency_key   TEXT NOT NULL UNIQUE,
  state             TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'unknown', 'confirmed', 'rejected', 'early_paid', 'settled')),
  remote_id         TEXT,
  attempts          INTEGER NOT NULL DEFAULT 0,
  last_error        TEXT,
  early_paid_minor  INTEGER CHECK (early_paid_minor IS NULL OR typeof(early_paid_minor) = 'integer'),
  early_paid_on     TEXT,
  settled_line_id   INTEGER REFERENCES statement_lines (id),
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  UNIQUE (platform, invoice_key)
);
CREATE INDEX reverse_payables_state ON reverse_payables (platform, state)
""")


# == reconciliation and ledger (issue 7: 0050-0059) ================================================

@migrations(name="0050_reconciliation")
def m0050_reconciliation(db: Database) -> None:
    # statements: what each import found (new lines, duplicates skipped, balance and chain checks); lines:
    # the typed fields the matcher reads without decoding JSON; allocations: the pieces of one proposal are
    # grouped (accepting one accepts the group; NULL: a proposal of its own), the amount applied in the
    # invoice's currency (FX), and the
    # alternative an acceptance set aside (a reject restores it); balance gaps of factor current accounts.
    _script(db, """
ALTER TABLE statements ADD COLUMN message_id TEXT;
ALTER TABLE statements ADD COLUMN file_name TEXT;
ALTER TABLE statements ADD COLUMN lines_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE statements ADD COLUMN lines_new INTEGER NOT NULL DEFAULT 0;
ALTER TABLE statements ADD COLUMN balance_check TEXT;
ALTER TABLE statements ADD COLUMN chain_check TEXT;
ALTER TABLE statements ADD COLUMN chain_detail TEXT;
CREATE INDEX statements_file ON statements (account, statement_id, content_sha256);
ALTER TABLE statement_lines ADD COLUMN uetr TEXT;
ALTER TABLE statement_lines ADD COLUMN bank_transaction_code TEXT;
ALTER TABLE statement_lines ADD COLUMN charges_minor INTEGER
  CHECK (charges_minor IS NULL OR typeof(charges_minor) = 'integer');
ALTER TABLE statement_lines ADD COLUMN charges_currency TEXT;
ALTER TABLE statement_lines ADD COLUMN instructed_minor INTEGER
  CHECK (instructed_minor IS NULL OR typeof(instructed_minor) = 'integer');
ALTER TABLE statement_lines ADD COLUMN instructed_currency TEXT;
ALTER TABLE statement_lines ADD COLUMN reversal INTEGER NOT NULL DEFAULT 0 CHECK (reversal IN (0, 1));
ALTER TABLE statement_lines ADD COLUMN line_no INTEGER NOT NULL DEFAULT 0;
CREATE INDEX statement_lines_statement ON statement_lines (statement_id, line_no);
ALTER TABLE allocations ADD COLUMN proposal INTEGER;
ALTER TABLE allocations ADD COLUMN invoice_amount_minor INTEGER
  CHECK (invoice_amount_minor IS NULL OR typeof(invoice_amount_minor) = 'integer');
ALTER TABLE allocations ADD COLUMN invoice_currency TEXT;
ALTER TABLE allocations ADD COLUMN superseded_by INTEGER REFERENCES allocations (id);
ALTER TABLE allocations ADD COLUMN run_id TEXT;
CREATE INDEX allocations_status ON allocations (status, active);
CREATE TABLE factor_balance_gaps (
  factor          TEXT NOT NULL,
  account         TEXT NOT NULL,
  day             TEXT NOT NULL,
  currency        TEXT NOT NULL,
  cessio_minor    INTEGER NOT NULL CHECK (typeof(cessio_minor) = 'integer'),
  factor_minor    INTEGER NOT NULL CHECK (typeof(factor_minor) = 'integer'),
  gap_minor       INTEGER NOT NULL CHECK (typeof(gap_minor) = 'integer'),
  explained_minor INTEGER NOT NULL CHECK (typeof(explained_minor) = 'integer'),
  status          TEXT NOT NULL CHECK (status IN ('agreed', 'explained', 'flagged')),
  detail          TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (factor, account, day, currency)
)
""")


# == agent, review desk (issues 8 and 10: 0060-0079) ===============================================

@migrations(name="0060_agent")
def m0060_agent(db: Database) -> None:
    # the agent's schedule as it last built it (next run per job, for `cessio status` in another process),
    # and one row per agent process so restarts and crashes are visible
    _script(db, """
CREATE TABLE agent_jobs (
  job_id       TEXT PRIMARY KEY,
  trigger      TEXT NOT NULL,
  next_run_at  TEXT,
  updated_at   TEXT NOT NULL
);
CREATE TABLE agent_sessions (
  id           INTEGER PRIMARY KEY,
  pid          INTEGER NOT NULL,
  host         TEXT NOT NULL,
  config_path  TEXT,
  started_at   TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  stopped_at   TEXT,
  outcome      TEXT
);
ALTER TABLE job_runs ADD COLUMN duration_ms INTEGER
""")


# -- review desk (issue 10: 0070-0079) --

@migrations(name="0070_desk")
def m0070_desk(db: Database) -> None:
    # desk users (argon2id hashes, never the password) and server-side sessions: the cookie carries a random
    # token whose SHA-256 is the key here, so a leaked store copy holds no usable session. The partial and
    # covering indexes keep the queue and the log fast with 100,000 statement lines.
    _script(db, """
CREATE TABLE desk_users (
  id             INTEGER PRIMARY KEY,
  username       TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash  TEXT NOT NULL,
  role           TEXT NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin')),
  active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
CREATE TABLE desk_sessions (
  token_sha256   TEXT PRIMARY KEY,
  user_id        INTEGER NOT NULL REFERENCES desk_users (id),
  csrf_token     TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  expires_at     TEXT NOT NULL
);
CREATE INDEX desk_sessions_user ON desk_sessions (user_id);
CREATE INDEX desk_lines_waiting ON statement_lines (booking_date, id)
  WHERE match_status IN ('open', 'suggested');
CREATE INDEX desk_lines_booking ON statement_lines (booking_date, id);
CREATE INDEX desk_allocations_totals ON allocations (currency, amount_minor, writeoff_minor);
CREATE INDEX desk_allocations_rule ON allocations (rule)
""")
