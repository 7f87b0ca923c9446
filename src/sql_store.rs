//! The account's tables in the Durable Object's SQLite storage: the
//! [`Store`] the core reads, and the executor of the [`Write`]s it returns.
//! Each record kind has its own table; rows carry the record as JSON plus
//! the columns that are queried. SQL calls are synchronous, so a command's
//! writes run without yielding and commit together.
//!
//! Stored rows are read as hostile: a row that does not decode is skipped
//! (and counted in `skipped`), never a reason to wedge the account.

use std::cell::Cell;

use governor_core::lifecycle::permits::Permit;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::Job;
use governor_core::rates::class::RateClass;
use governor_core::relay::delivery::Delivery;
use governor_core::storage::row::{StoreError, StoreResult};
use governor_core::storage::store::{IdempotencyRecord, IdempotencyState, Store, Write};
use governor_core::Ms;
use serde::de::DeserializeOwned;
use worker::{SqlStorage, SqlStorageValue as V};

const SCHEMA: &[&str] = &[
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

pub struct SqlStore {
    pub(crate) sql: SqlStorage,
    /// Rows skipped because they did not decode (since the object started).
    pub skipped: Cell<u32>,
    /// `state.storage`, whose `transactionSync` makes one command's writes
    /// atomic (none without it: native helpers, the directory).
    storage: Option<wasm_bindgen::JsValue>,
}

/// One column of a raw row.
pub(crate) fn col_str(row: &mut [V], i: usize) -> Option<String> {
    match row.get_mut(i) {
        Some(V::String(s)) => Some(std::mem::take(s)),
        _ => None,
    }
}

pub(crate) fn col_u64(row: &[V], i: usize) -> Option<u64> {
    match row.get(i) {
        Some(V::Integer(n)) => u64::try_from(*n).ok(),
        Some(V::Float(f)) if *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

pub(crate) fn err(e: worker::Error) -> StoreError {
    StoreError(e.to_string())
}

pub(crate) fn int(v: u64) -> V {
    V::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

pub(crate) fn text(s: &str) -> V {
    V::String(s.to_owned())
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> V {
    V::String(serde_json::to_string(v).unwrap_or_default())
}

/// A prune of admission rows: it deletes only rows that every span has
/// left (a reload would drop them anyway), so it is safe on its own, whatever
/// happens to the rest of its command's writes.
fn is_prune(w: &Write) -> bool {
    matches!(w, Write::PruneAdmissions { .. })
}

/// `Some(the one other write)` (or `Some(None)`: prunes only) when a
/// command's writes need no transaction: prunes, plus at most one write that
/// is one statement. `None`: several rows change together.
fn lone_statement(writes: &[Write]) -> Option<Option<&Write>> {
    let mut others = writes.iter().filter(|w| !is_prune(w));
    let one = others.next();
    let single = one.is_none_or(|w| {
        matches!(w, Write::Admission { .. } | Write::Meta { .. } | Write::PutPermit(_) | Write::DeletePermit(_))
    });
    (single && others.next().is_none()).then_some(one)
}

/// The `meta` row that keeps the account's name (the core ignores it).
const ACCOUNT_META: &str = "object_account";

impl SqlStore {
    /// Open the tables (creating them on first use).
    pub fn open(sql: SqlStorage) -> worker::Result<Self> {
        for ddl in SCHEMA.iter().chain(crate::sql_ledger::SCHEMA) {
            sql.exec(ddl, None)?;
        }
        Ok(SqlStore { sql, skipped: Cell::new(0), storage: None })
    }

    /// Every [`SqlStore::write`] in one `transactionSync` of `storage` (the
    /// object's `state.storage`): a write that fails (a value past SQLite's
    /// limit) leaves none of its command's rows behind.
    pub fn atomic(mut self, storage: wasm_bindgen::JsValue) -> Self {
        self.storage = Some(storage);
        self
    }

    fn skip(&self) {
        self.skipped.set(self.skipped.get() + 1);
    }

    /// Rows as raw column values, each mapped by `f`; a row `f` rejects is
    /// skipped and counted.
    pub(crate) fn rows<T>(
        &self,
        query: &str,
        bindings: Vec<V>,
        mut f: impl FnMut(&mut [V]) -> Option<T>,
    ) -> StoreResult<Vec<T>> {
        let cursor = self.sql.exec(query, bindings).map_err(err)?;
        let mut out = Vec::new();
        for row in cursor.raw() {
            match row.ok().as_deref_mut().and_then(&mut f) {
                Some(v) => out.push(v),
                None => self.skip(),
            }
        }
        Ok(out)
    }

    /// Decode the JSON of the first column, skipping what does not decode.
    pub(crate) fn records<T: DeserializeOwned>(&self, query: &str, bindings: Vec<V>) -> StoreResult<Vec<T>> {
        self.rows(query, bindings, |r| governor_core::wire::json::from_str(&col_str(r, 0)?).ok())
    }

    pub(crate) fn exec(&self, query: &str, bindings: Vec<V>) -> worker::Result<()> {
        self.sql.exec(query, bindings).map(|_| ())
    }

    /// Apply a command's writes, in order, all or none (see [`SqlStore::atomic`]).
    pub fn write(&self, writes: &[Write]) -> worker::Result<()> {
        use js_sys::{Function, Reflect};
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::{JsCast, JsValue};
        let Some(storage) = self.storage.as_ref().filter(|_| !writes.is_empty()) else {
            return self.write_rows(writes);
        };
        if let Some(last) = lone_statement(writes) {
            // No transaction needed (the common admission: one row in, the
            // rows that left the span out): the prunes go first, each safe
            // alone, then the one statement, atomic by itself.
            for w in writes.iter().filter(|w| is_prune(w)) {
                self.write_rows(std::slice::from_ref(w))?;
            }
            return last.map_or(Ok(()), |w| self.write_rows(std::slice::from_ref(w)));
        }
        let transaction: Option<Function> =
            Reflect::get(storage, &JsValue::from_str("transactionSync")).ok().and_then(|f| f.dyn_into().ok());
        let Some(transaction) = transaction else { return self.write_rows(writes) };
        let inner = SqlStore { sql: self.sql.clone(), skipped: Cell::new(0), storage: None };
        let rows = writes.to_vec();
        // Throwing inside the callback rolls the transaction back.
        let body = Closure::once(move || -> Result<JsValue, JsValue> {
            inner.write_rows(&rows).map(|()| JsValue::UNDEFINED).map_err(|e| JsValue::from_str(&e.to_string()))
        });
        let f: &Function = body.as_ref().unchecked_ref();
        transaction.call1(storage, f).map(|_| ()).map_err(|e| {
            worker::Error::RustError(format!(
                "account storage: {}",
                e.as_string().unwrap_or_else(|| "write failed".into())
            ))
        })
    }

    fn write_rows(&self, writes: &[Write]) -> worker::Result<()> {
        for w in writes {
            match w {
                Write::Meta { key, value } => self.exec(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    vec![text(key), text(value)],
                )?,
                Write::Admission { class, at } => {
                    self.exec("INSERT INTO admissions (class, at) VALUES (?, ?)", vec![text(class.as_str()), int(*at)])?
                }
                Write::TrimAdmissions { class, keep } => self.exec(
                    "DELETE FROM admissions WHERE class = ? AND id NOT IN \
                     (SELECT id FROM admissions WHERE class = ? ORDER BY at DESC, id DESC LIMIT ?)",
                    vec![text(class.as_str()), text(class.as_str()), V::Integer(i64::from(*keep))],
                )?,
                Write::MoveAdmissions { class, from, to } => self.exec(
                    "UPDATE admissions SET at = ? WHERE class = ? AND at = ?",
                    vec![int(*to), text(class.as_str()), int(*from)],
                )?,
                Write::PruneAdmissions { class, before } => {
                    self.exec("DELETE FROM admissions WHERE class = ? AND at < ?", vec![text(class.as_str()), int(*before)])?
                }
                Write::PutPermit(p) => {
                    self.exec("INSERT OR REPLACE INTO permits (id, row) VALUES (?, ?)", vec![int(p.id), json(p)])?
                }
                Write::DeletePermit(id) => self.exec("DELETE FROM permits WHERE id = ?", vec![int(*id)])?,
                Write::PutIdempotency(r) => {
                    let in_flight = matches!(r.state, IdempotencyState::InFlight { .. });
                    self.exec(
                        "INSERT OR REPLACE INTO idempotency (key, at, in_flight, bytes, row) VALUES (?, ?, ?, ?, ?)",
                        vec![text(&r.key), int(r.at), V::Integer(i64::from(in_flight)), int(r.bytes()), json(r)],
                    )?
                }
                Write::DeleteIdempotency(key) => {
                    self.exec("DELETE FROM idempotency WHERE key = ?", vec![text(key)])?
                }
                Write::PutJob(j) => {
                    let generation = match &j.state {
                        governor_core::queue::job::JobState::Submitted { generation } => text(generation),
                        _ => V::Null,
                    };
                    let client_key = j.spec.idempotency_key.as_deref().map_or(V::Null, text);
                    self.exec(
                        "INSERT OR REPLACE INTO jobs (ticket, waiting, client, client_key, generation, updated_at, row) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                        vec![
                            text(&j.ticket),
                            V::Integer(i64::from(j.is_waiting())),
                            text(&j.spec.client),
                            client_key,
                            generation,
                            int(j.updated_at),
                            json(j),
                        ],
                    )?
                }
                Write::PutJobBody { ticket, body } => self.exec(
                    "INSERT OR REPLACE INTO job_bodies (ticket, body) VALUES (?, ?)",
                    vec![text(ticket), text(body)],
                )?,
                Write::DeleteJobBody(ticket) => {
                    self.exec("DELETE FROM job_bodies WHERE ticket = ?", vec![text(ticket)])?
                }
                Write::DeleteJob(ticket) => {
                    self.exec("DELETE FROM jobs WHERE ticket = ?", vec![text(ticket)])?;
                    self.exec("DELETE FROM job_bodies WHERE ticket = ?", vec![text(ticket)])?
                }
                Write::PutDelivery(d) => self.exec(
                    "INSERT OR REPLACE INTO outbox (id, head, body) VALUES (?, ?, ?)",
                    vec![int(d.id), json(&d.without_body()), text(&d.body)],
                )?,
                Write::RescheduleDelivery { id, attempts, next_at } => {
                    // The head is small: read, change, write it back.
                    let heads: Vec<Delivery> = self
                        .records("SELECT head FROM outbox WHERE id = ?", vec![int(*id)])
                        .map_err(|e| worker::Error::RustError(e.0))?;
                    if let Some(mut d) = heads.into_iter().next() {
                        d.attempts = *attempts;
                        d.next_at = *next_at;
                        self.exec("UPDATE outbox SET head = ? WHERE id = ?", vec![json(&d), int(*id)])?;
                    }
                }
                Write::DeleteDelivery(id) => self.exec("DELETE FROM outbox WHERE id = ?", vec![int(*id)])?,
                Write::PutRelayed { generation, status, at } => self.exec(
                    "INSERT OR REPLACE INTO relayed (generation, status, at) VALUES (?, ?, ?)",
                    vec![text(generation), text(status.as_str()), int(*at)],
                )?,
                Write::DeleteRelayed { generation, status } => self.exec(
                    "DELETE FROM relayed WHERE generation = ? AND status = ?",
                    vec![text(generation), text(status.as_str())],
                )?,
                Write::Ledger(w) => self.write_ledger(w)?,
            }
        }
        Ok(())
    }

    /// A `meta` row of the object's own (the core ignores keys it does not know).
    pub fn object_meta(&self, key: &str) -> Option<String> {
        let rows = self.rows("SELECT value FROM meta WHERE key = ?", vec![text(key)], |r| col_str(r, 0)).ok()?;
        rows.into_iter().next()
    }

    pub fn set_object_meta(&self, key: &str, value: &str) -> worker::Result<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(key), text(value)],
        )
    }

    /// The account's name as the Worker named it (an alarm has no caller to ask).
    pub fn account_name(&self) -> Option<String> {
        self.object_meta(ACCOUNT_META)
    }

    pub fn set_account_name(&self, name: &str) -> worker::Result<()> {
        self.set_object_meta(ACCOUNT_META, name)
    }

    /// Whether the tables hold an account already.
    pub fn schema_version(&self) -> StoreResult<Option<u32>> {
        let rows = self.rows("SELECT value FROM meta WHERE key = 'schema_version'", Vec::new(), |r| col_str(r, 0))?;
        Ok(rows.first().and_then(|v| v.parse().ok()))
    }

    /// Bytes of the whole database (SQLite's own count).
    pub fn database_bytes(&self) -> usize {
        self.sql.database_size()
    }
}

impl Store for SqlStore {
    fn meta(&self) -> StoreResult<Vec<(String, String)>> {
        self.rows("SELECT key, value FROM meta", Vec::new(), |r| Some((col_str(r, 0)?, col_str(r, 1)?)))
    }

    fn admissions(&self) -> StoreResult<Vec<(RateClass, Ms)>> {
        self.rows("SELECT class, at FROM admissions ORDER BY at", Vec::new(), |r| {
            Some((RateClass::from(col_str(r, 0)?), col_u64(r, 1)?))
        })
    }

    fn permits(&self) -> StoreResult<Vec<Permit>> {
        self.records("SELECT row FROM permits", Vec::new())
    }

    fn waiting_jobs(&self) -> StoreResult<Vec<Job>> {
        self.records("SELECT row FROM jobs WHERE waiting = 1", Vec::new())
    }

    fn outbox_schedule(&self) -> StoreResult<Vec<Delivery>> {
        self.rows("SELECT head, length(body) FROM outbox", Vec::new(), |r| {
            let mut d: Delivery = governor_core::wire::json::from_str(&col_str(r, 0)?).ok()?;
            d.body_bytes = col_u64(r, 1)?;
            Some(d)
        })
    }

    fn in_flight_idempotency(&self) -> StoreResult<Vec<IdempotencyRecord>> {
        self.records("SELECT row FROM idempotency WHERE in_flight = 1", Vec::new())
    }

    fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self.records("SELECT row FROM idempotency WHERE key = ?", vec![text(key)])?.into_iter().next())
    }

    fn idempotency_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<IdempotencyRecord>> {
        self.records(
            "SELECT row FROM idempotency WHERE at < ? ORDER BY at LIMIT ?",
            vec![int(before), int(u64::from(limit))],
        )
    }

    fn job(&self, ticket: &str) -> StoreResult<Option<Job>> {
        Ok(self.records("SELECT row FROM jobs WHERE ticket = ?", vec![text(ticket)])?.into_iter().next())
    }

    fn job_body(&self, ticket: &str) -> StoreResult<Option<String>> {
        let rows = self.rows("SELECT body FROM job_bodies WHERE ticket = ?", vec![text(ticket)], |r| col_str(r, 0))?;
        Ok(rows.into_iter().next())
    }

    fn job_by_client_key(&self, client: &str, key: &str) -> StoreResult<Option<Job>> {
        Ok(self
            .records("SELECT row FROM jobs WHERE client = ? AND client_key = ? LIMIT 1", vec![text(client), text(key)])?
            .into_iter()
            .next())
    }

    fn jobs_by_generation(&self, generation: &str) -> StoreResult<Vec<Job>> {
        self.records("SELECT row FROM jobs WHERE generation = ?", vec![text(generation)])
    }

    fn finished_jobs_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<String>> {
        self.rows(
            "SELECT ticket FROM jobs WHERE waiting = 0 AND updated_at < ? LIMIT ?",
            vec![int(before), int(u64::from(limit))],
            |r| col_str(r, 0),
        )
    }

    fn relayed(&self, generation: &str, status: &GenerationStatus) -> StoreResult<Option<Ms>> {
        let rows = self.rows(
            "SELECT at FROM relayed WHERE generation = ? AND status = ?",
            vec![text(generation), text(status.as_str())],
            |r| col_u64(r, 0),
        )?;
        Ok(rows.into_iter().next())
    }

    fn relayed_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<(String, GenerationStatus)>> {
        self.rows(
            "SELECT generation, status FROM relayed WHERE at < ? ORDER BY at, generation, status LIMIT ?",
            vec![int(before), int(u64::from(limit))],
            |r| Some((col_str(r, 0)?, GenerationStatus::parse(&col_str(r, 1)?))),
        )
    }

    fn delivery(&self, id: u64) -> StoreResult<Option<Delivery>> {
        let rows = self.rows("SELECT head, body FROM outbox WHERE id = ?", vec![int(id)], |r| {
            let mut d: Delivery = governor_core::wire::json::from_str(&col_str(r, 0)?).ok()?;
            d.body = col_str(r, 1)?;
            Some(d)
        })?;
        Ok(rows.into_iter().next())
    }

    fn ledger(&self) -> &dyn governor_core::ledger::LedgerStore {
        self
    }
}
