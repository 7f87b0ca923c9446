//! The account's tables (and the job ledger's), created on first use.

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS admissions (id INTEGER PRIMARY KEY, class TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS admissions_by_class ON admissions (class, at)",
    "CREATE TABLE IF NOT EXISTS permits (id INTEGER PRIMARY KEY, row TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, at INTEGER NOT NULL, \
     in_flight INTEGER NOT NULL, bytes INTEGER NOT NULL, row TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (at)",
    "CREATE INDEX IF NOT EXISTS idempotency_in_flight ON idempotency (in_flight)",
    "CREATE TABLE IF NOT EXISTS jobs (ticket TEXT PRIMARY KEY, waiting INTEGER NOT NULL, client TEXT NOT NULL, \
     client_key TEXT, generation TEXT, updated_at INTEGER NOT NULL, row TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs (waiting, updated_at)",
    "CREATE INDEX IF NOT EXISTS jobs_by_client_key ON jobs (client, client_key)",
    "CREATE INDEX IF NOT EXISTS jobs_by_generation ON jobs (generation)",
    "CREATE TABLE IF NOT EXISTS job_bodies (ticket TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, head TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS relayed (generation TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL, \
     PRIMARY KEY (generation, status))",
    "CREATE INDEX IF NOT EXISTS relayed_by_age ON relayed (at)",
];

pub const LEDGER_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, client TEXT NOT NULL, received INTEGER NOT NULL, \
     open INTEGER NOT NULL, bytes INTEGER NOT NULL, row TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_by_client ON ledger (client, id)",
    "CREATE INDEX IF NOT EXISTS ledger_by_age ON ledger (open, received)",
];
