//! The job ledger's table in the object's SQLite storage: one row per
//! generation job (the row as JSON plus the columns queried), written by
//! the core's `LedgerWrite`s and read by page for the ledger endpoint.

use governor_core::ledger::{LedgerQuery, LedgerRow, LedgerStore, LedgerWrite};
use governor_core::storage::row::StoreResult;
use governor_core::Ms;

use super::store::SqlStore;
use super::values::{col_u64, int, json, text};

/// A time after every row (within JavaScript's safe integers).
const NO_END: Ms = (1 << 53) - 1;

impl SqlStore {
    pub(crate) fn write_ledger(&self, w: &LedgerWrite) -> worker::Result<()> {
        match w {
            LedgerWrite::Put(r) => self.exec(
                "INSERT INTO ledger (id, client, received, open, bytes, row) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET open = excluded.open, bytes = excluded.bytes, row = excluded.row",
                vec![int(r.id), text(&r.client), int(r.received), int(u64::from(r.is_open())), int(r.bytes()), json(r)],
            ),
            LedgerWrite::Delete(ids) => {
                for id in ids {
                    self.exec("DELETE FROM ledger WHERE id = ?", vec![int(*id)])?;
                }
                Ok(())
            }
        }
    }
}

impl LedgerStore for SqlStore {
    fn ledger_open(&self) -> StoreResult<Vec<LedgerRow>> {
        self.records("SELECT row FROM ledger WHERE open = 1", Vec::new())
    }

    fn ledger_page(&self, q: &LedgerQuery) -> StoreResult<Vec<LedgerRow>> {
        let after = q.cursor.map_or(-1, |c| i64::try_from(c).unwrap_or(i64::MAX));
        let mut bind = vec![
            worker::SqlStorageValue::Integer(after),
            int(q.since.unwrap_or(0)),
            int(q.until.unwrap_or(NO_END).min(NO_END)),
        ];
        let by_client = match &q.client {
            Some(c) => {
                bind.push(text(c));
                " AND client = ?"
            }
            None => "",
        };
        bind.push(int(u64::from(q.limit) + 1));
        let query = format!(
            "SELECT row FROM ledger WHERE id > ? AND received >= ? AND received < ?{by_client} ORDER BY id LIMIT ?"
        );
        self.records(&query, bind)
    }

    fn ledger_oldest_ended(&self, before: Option<Ms>, limit: u32) -> StoreResult<Vec<(u64, u64)>> {
        self.rows(
            "SELECT id, bytes FROM ledger WHERE open = 0 AND received < ? ORDER BY received, id LIMIT ?",
            vec![int(before.unwrap_or(NO_END).min(NO_END)), int(u64::from(limit))],
            |r| Some((col_u64(r, 0)?, col_u64(r, 1)?)),
        )
    }
}
