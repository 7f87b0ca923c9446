//! The directory singleton's side: one SQLite table of accounts, bounded
//! ([`MAX_ACCOUNTS`]; the least recently seen go first), answering the calls
//! of [`super::contract`].

use serde::Serialize;
use worker::{SqlStorage, SqlStorageValue as V};

use super::contract::{Announce, Entry, List, Page, PageOf, Request, MAX_LIST};

/// Accounts kept at most; the least recently seen go first.
const MAX_ACCOUNTS: u64 = 10_000;

/// Why the singleton did not answer a call (a fixed text, never a caller's value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    NotAnAccount,
    Storage,
}

impl Refused {
    pub fn status_and_text(self) -> (u16, &'static str) {
        match self {
            Refused::Malformed => (400, "malformed call"),
            Refused::NotAnAccount => (400, "not an account name"),
            Refused::Storage => (500, "directory storage failed"),
        }
    }
}

impl From<worker::Error> for Refused {
    fn from(_: worker::Error) -> Self {
        Refused::Storage
    }
}

/// The singleton's side.
pub fn serve(sql: &SqlStorage, body: &str) -> Result<String, Refused> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS directory (account TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, \
         last_seen INTEGER NOT NULL)",
        None,
    )?;
    sql.exec("CREATE INDEX IF NOT EXISTS directory_by_seen ON directory (last_seen)", None)?;
    let Ok(call) = governor_core::wire::json::from_str::<Request>(body) else {
        return Err(Refused::Malformed);
    };
    match call {
        Request::Announce(Announce { account, at }) => {
            if !governor_core::wire::path::is_account_name(&account) {
                return Err(Refused::NotAnAccount);
            }
            let at = V::Integer(i64::try_from(at).unwrap_or(i64::MAX));
            let known = sql
                .exec("SELECT 1 FROM directory WHERE account = ?", vec![V::String(account.clone())])?
                .raw()
                .next()
                .is_some();
            if known {
                sql.exec(
                    "UPDATE directory SET last_seen = MAX(last_seen, ?) WHERE account = ?",
                    vec![at, V::String(account)],
                )?;
                return json_response(&1u64);
            }
            sql.exec(
                "INSERT INTO directory (account, first_seen, last_seen) VALUES (?, ?, ?)",
                vec![V::String(account), at.clone(), at],
            )?;
            // Bounded (checked when an account is new): the least recently
            // seen beyond the bound are forgotten.
            sql.exec(
                "DELETE FROM directory WHERE account IN (SELECT account FROM directory ORDER BY last_seen DESC \
                 LIMIT -1 OFFSET ?)",
                vec![V::Integer(MAX_ACCOUNTS as i64)],
            )?;
            json_response(&1u64)
        }
        Request::Page(PageOf { offset, limit }) => {
            let total = sql
                .exec("SELECT count(*) FROM directory", None)?
                .raw()
                .next()
                .and_then(|r| r.ok())
                .and_then(|r| match r.first() {
                    Some(V::Integer(n)) => u64::try_from(*n).ok(),
                    _ => None,
                })
                .unwrap_or(0);
            let cursor = sql.exec(
                "SELECT account FROM directory ORDER BY account LIMIT ? OFFSET ?",
                vec![V::Integer(i64::from(limit.min(MAX_LIST))), V::Integer(i64::from(offset))],
            )?;
            let mut accounts = Vec::new();
            for row in cursor.raw() {
                if let Some(V::String(a)) = row?.first() {
                    accounts.push(a.clone());
                }
            }
            json_response(&Page { total, accounts })
        }
        Request::List(List { limit }) => {
            let cursor = sql.exec(
                "SELECT account, first_seen, last_seen FROM directory ORDER BY last_seen DESC LIMIT ?",
                vec![V::Integer(i64::from(limit.min(MAX_LIST)))],
            )?;
            let int = |v: Option<&V>| match v {
                Some(V::Integer(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            };
            let mut rows: Vec<Entry> = Vec::new();
            for row in cursor.raw() {
                let row = row?;
                if let Some(V::String(account)) = row.first() {
                    rows.push(Entry {
                        account: account.clone(),
                        first_seen: int(row.get(1)),
                        last_seen: int(row.get(2)),
                    });
                }
            }
            json_response(&rows)
        }
    }
}

fn json_response<T: Serialize>(v: &T) -> Result<String, Refused> {
    serde_json::to_string(v).map_err(|_| Refused::Storage)
}
