//! The job ledger: one row per generation job, per account, in the
//! object's SQL storage (table `ledger`), bounded in rows and bytes and
//! kept `LEDGER_RETENTION_DAYS`. Rows still open (the job has not ended)
//! are also in memory: they hold the job's budget reservation, and a
//! restart reloads them, so no reservation leaks across restarts.
//!
//! | file | one concept |
//! |---|---|
//! | [`row`] | `LedgerRow` and `FinalStatus` |
//! | [`query`] | the endpoint's query: strict parsing, a client sees its own rows |
//! | [`encode`] | a page as JSON, NDJSON or CSV |
//!
//! Past its bounds the ledger drops its oldest ended rows (counted in
//! `dropped`): recording never refuses or wedges an account.

pub mod encode;
pub mod query;
pub mod row;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use query::{Format, LedgerQuery, QueryError};
pub use row::{FinalStatus, LedgerRow};

pub use encode::LedgerPage;

use crate::ids::GenerationId;
use crate::lifecycle::permits::PermitId;
use crate::storage::row::StoreResult;
use crate::Ms;

/// Rows kept at most, and their bytes.
pub const MAX_ROWS: u64 = 100_000;
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Open rows at most (each is a permit or a queued job; past it the
/// oldest open row is closed as `UNKNOWN`).
pub const MAX_OPEN: usize = 20_000;
/// Rows deleted per sweep.
pub const SWEEP_BATCH: u32 = 256;

/// A change to the `ledger` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerWrite {
    Put(Box<LedgerRow>),
    Delete(Vec<u64>),
}

/// The ledger's reads.
pub trait LedgerStore {
    /// Rows not ended (loaded at start).
    fn ledger_open(&self) -> StoreResult<Vec<LedgerRow>>;
    /// Up to `q.limit + 1` rows matching `q`, by id ascending.
    fn ledger_page(&self, q: &LedgerQuery) -> StoreResult<Vec<LedgerRow>>;
    /// Up to `limit` ended rows (id, bytes), oldest first, received before
    /// `before` when given.
    fn ledger_oldest_ended(&self, before: Option<Ms>, limit: u32) -> StoreResult<Vec<(u64, u64)>>;
}

/// Counters persisted in meta.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    pub next_id: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Rows dropped past the bounds before their retention.
    pub dropped: u64,
}

/// The ledger part: open rows, totals, and the writes not yet flushed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    open: BTreeMap<u64, LedgerRow>,
    pub totals: LedgerTotals,
    journal: Vec<LedgerWrite>,
}

impl Ledger {
    pub fn restore(open: Vec<LedgerRow>, totals: LedgerTotals) -> Ledger {
        let open: BTreeMap<u64, LedgerRow> = open.into_iter().filter(LedgerRow::is_open).map(|r| (r.id, r)).collect();
        let next_id = open.keys().next_back().map_or(0, |id| id + 1).max(totals.next_id);
        Ledger { open, totals: LedgerTotals { next_id, ..totals }, journal: Vec::new() }
    }

    /// A job arrives: its row opens.
    pub fn open(&mut self, client: &str, received: Ms, key: Option<String>, model: Option<String>) -> u64 {
        let id = self.totals.next_id;
        self.totals.next_id += 1;
        let mut row = LedgerRow::new(id, client, received);
        row.key = key;
        row.model = model;
        self.totals.rows += 1;
        self.totals.bytes += row.bytes();
        if self.open.len() >= MAX_OPEN {
            if let Some(oldest) = self.open.keys().next().copied() {
                self.close(oldest, received, |r| r.status = Some(FinalStatus::Unknown));
            }
        }
        self.put(row.clone());
        self.open.insert(id, row);
        id
    }

    fn put(&mut self, row: LedgerRow) {
        self.journal.push(LedgerWrite::Put(Box::new(row)));
    }

    pub fn get(&self, id: u64) -> Option<&LedgerRow> {
        self.open.get(&id)
    }

    /// Changes an open row (and writes it).
    pub fn update(&mut self, id: u64, f: impl FnOnce(&mut LedgerRow)) {
        if let Some(row) = self.open.get_mut(&id) {
            let before = row.bytes();
            f(row);
            let after = row.bytes();
            let row = row.clone();
            self.totals.bytes = (self.totals.bytes + after).saturating_sub(before);
            self.put(row);
        }
    }

    /// Ends an open row (`f` fills in how it ended) and returns it.
    pub fn close(&mut self, id: u64, now: Ms, f: impl FnOnce(&mut LedgerRow)) -> Option<LedgerRow> {
        self.update(id, |r| {
            f(r);
            r.ended = Some(now);
            r.permit = None;
        });
        self.open.remove(&id)
    }

    pub fn by_permit(&self, permit: PermitId) -> Option<u64> {
        self.open.values().find(|r| r.permit == Some(permit)).map(|r| r.id)
    }

    pub fn by_generation(&self, generation: &GenerationId) -> Option<u64> {
        self.open.values().find(|r| r.generation.as_ref() == Some(generation)).map(|r| r.id)
    }

    pub fn by_key(&self, key: &str) -> Option<u64> {
        self.open.values().find(|r| r.key.as_deref() == Some(key)).map(|r| r.id)
    }

    pub fn open_rows(&self) -> impl Iterator<Item = &LedgerRow> {
        self.open.values()
    }

    /// Deletes rows past the retention, then the oldest ended rows while
    /// over a bound (one bounded batch; the next sweep continues).
    pub fn sweep(&mut self, store: &dyn LedgerStore, now: Ms, retention_days: u32) -> StoreResult<()> {
        let before = now.saturating_sub(u64::from(retention_days) * 86_400_000);
        let mut gone = store.ledger_oldest_ended(Some(before), SWEEP_BATCH)?;
        let over = self.totals.rows > MAX_ROWS || self.totals.bytes > MAX_BYTES;
        if gone.is_empty() && over {
            let mut rows = self.totals.rows;
            let mut bytes = self.totals.bytes;
            for (id, b) in store.ledger_oldest_ended(None, SWEEP_BATCH)? {
                if rows <= MAX_ROWS && bytes <= MAX_BYTES {
                    break;
                }
                rows = rows.saturating_sub(1);
                bytes = bytes.saturating_sub(b);
                gone.push((id, b));
                self.totals.dropped += 1;
            }
        }
        if !gone.is_empty() {
            self.totals.rows = self.totals.rows.saturating_sub(gone.len() as u64);
            self.totals.bytes = self.totals.bytes.saturating_sub(gone.iter().map(|(_, b)| b).sum());
            self.journal.push(LedgerWrite::Delete(gone.into_iter().map(|(id, _)| id).collect()));
        }
        Ok(())
    }

    /// The writes since the last flush.
    pub fn take_writes(&mut self) -> Vec<LedgerWrite> {
        std::mem::take(&mut self.journal)
    }
}

/// One page: its rows and the next cursor.
pub fn read_page(store: &dyn LedgerStore, q: &LedgerQuery) -> StoreResult<(Vec<LedgerRow>, Option<u64>)> {
    let mut rows = store.ledger_page(q)?;
    let next = if rows.len() > q.limit as usize {
        rows.truncate(q.limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// The ledger table in memory (native tests, the simulation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemLedger(pub BTreeMap<u64, LedgerRow>);

impl MemLedger {
    pub fn write(&mut self, writes: &[LedgerWrite]) {
        for w in writes {
            match w {
                LedgerWrite::Put(r) => {
                    self.0.insert(r.id, (**r).clone());
                }
                LedgerWrite::Delete(ids) => ids.iter().for_each(|id| {
                    self.0.remove(id);
                }),
            }
        }
    }
}

impl LedgerStore for MemLedger {
    fn ledger_open(&self) -> StoreResult<Vec<LedgerRow>> {
        Ok(self.0.values().filter(|r| r.is_open()).cloned().collect())
    }

    fn ledger_page(&self, q: &LedgerQuery) -> StoreResult<Vec<LedgerRow>> {
        Ok(self.0.values().filter(|r| q.matches(r)).take(q.limit as usize + 1).cloned().collect())
    }

    fn ledger_oldest_ended(&self, before: Option<Ms>, limit: u32) -> StoreResult<Vec<(u64, u64)>> {
        let mut ended: Vec<&LedgerRow> =
            self.0.values().filter(|r| !r.is_open() && before.is_none_or(|b| r.received < b)).collect();
        ended.sort_by_key(|r| (r.received, r.id));
        Ok(ended.into_iter().take(limit as usize).map(|r| (r.id, r.bytes())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_open_close_page_and_sweep() {
        let mut l = Ledger::default();
        let mut t = MemLedger::default();
        let day = 86_400_000;
        for i in 0..5u64 {
            let id = l.open(if i % 2 == 0 { "a" } else { "b" }, i * day, Some(format!("k{i}")), None);
            l.update(id, |r| r.permit = Some(PermitId::from(i)));
        }
        let id = l.by_permit(PermitId::from(3u64)).unwrap();
        l.update(id, |r| r.generation = Some("g3".into()));
        assert_eq!(l.by_generation(&"g3".into()), Some(id));
        for i in 0..4u64 {
            l.close(i, i * day + 1, |r| r.status = Some(FinalStatus::Refused));
        }
        t.write(&l.take_writes());
        assert_eq!(t.ledger_open().unwrap().len(), 1);
        let q = LedgerQuery { limit: 2, ..LedgerQuery::default() };
        let (rows, next) = read_page(&t, &q).unwrap();
        assert_eq!((rows.len(), next), (2, Some(1)));
        let (rows, next) = read_page(&t, &LedgerQuery { cursor: next, limit: 2, ..q.clone() }).unwrap();
        assert_eq!((rows[0].id, next), (2, Some(3)));
        let mine = LedgerQuery { client: Some("b".into()), ..LedgerQuery::default() };
        assert!(read_page(&t, &mine).unwrap().0.iter().all(|r| r.client == "b"));
        // Retention: 2 days kept at day 4.5; the open row stays.
        l.sweep(&t, 4 * day + day / 2, 2).unwrap();
        t.write(&l.take_writes());
        assert_eq!(t.0.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(l.totals.rows, 2);
        // A restart keeps the open row and the numbering.
        let back = Ledger::restore(t.ledger_open().unwrap(), l.totals);
        assert_eq!(back.get(4).map(|r| r.permit), Some(Some(PermitId::from(4u64))));
        assert_eq!(back.totals.next_id, 5);
    }
}
