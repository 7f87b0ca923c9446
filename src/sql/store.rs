//! The account's tables in the Durable Object's SQLite storage: the
//! [`Store`] the core reads, and the executor of the [`Write`]s it returns.
//! Each record kind has its own table; rows carry the record as JSON plus
//! the columns that are queried. SQL calls are synchronous, so a command's
//! writes run without yielding and commit together.
//!
//! Stored rows are read as hostile: a row that does not decode is skipped
//! (and counted in `skipped`), never a reason to wedge the account.

use std::cell::{Cell, RefCell};

use governor_core::rates::class::RateClass;
use governor_core::storage::row::StoreResult;
use governor_core::Ms;
use serde::de::DeserializeOwned;
use worker::{SqlStorage, SqlStorageValue as V};

use super::schema::{LEDGER_SCHEMA, SCHEMA};
use super::values::{col_str, err, text};

pub struct SqlStore {
    pub(crate) sql: SqlStorage,
    /// Rows skipped because they did not decode (since the object started).
    pub skipped: Cell<u32>,
    /// `state.storage`, whose `transactionSync` makes one command's writes
    /// atomic (none without it: native helpers, the directory).
    pub(super) storage: Option<wasm_bindgen::JsValue>,
    /// Prunes not yet run (see `write.rs`, `PRUNE_EVERY`): per class, the
    /// latest `before`, and how many admissions deferred them.
    pub(super) prunes: RefCell<(Vec<(RateClass, Ms)>, u32)>,
}

/// The `meta` row that keeps the account's name (the core ignores it).
const ACCOUNT_META: &str = "object_account";

impl SqlStore {
    /// Open the tables (creating them on first use).
    pub fn open(sql: SqlStorage) -> worker::Result<Self> {
        for ddl in SCHEMA.iter().chain(LEDGER_SCHEMA) {
            sql.exec(ddl, None)?;
        }
        Ok(SqlStore { sql, skipped: Cell::new(0), storage: None, prunes: RefCell::default() })
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
