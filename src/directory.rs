//! The deployment's directory of accounts: Durable Objects cannot be
//! listed, so the admin API and the metrics need a list of their own. It is
//! a singleton object (the `ACCOUNTS` class under a reserved name no account
//! can take, like [`crate::deployment`]) with one SQLite table. An account
//! announces itself at most about once a minute (the core decides, see
//! `Admitted::announce`), from `wait_until`: never on a request's path.

use governor_core::wire::error::GovernorError;
use serde::{Deserialize, Serialize};
use worker::{Env, Response, SqlStorage, SqlStorageValue as V};

/// The singleton's object name.
pub const OBJECT_NAME: &str = "__directory__";
/// The path the singleton answers on.
pub const PATH: &str = "/directory";
const URL: &str = "https://account.internal/directory";
/// Accounts kept at most; the least recently seen go first.
const MAX_ACCOUNTS: u64 = 10_000;
/// Entries listed at most by one call.
pub const MAX_LIST: u32 = 1_000;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Announce {
        account: String,
        at: u64,
    },
    List {
        limit: u32,
    },
    /// Accounts by name from `offset` (the scrape's pages), and how many there are.
    Page {
        offset: u32,
        limit: u32,
    },
}

/// One page of the accounts by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Page {
    pub total: u64,
    pub accounts: Vec<String>,
}

/// One account as the directory knows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub account: String,
    pub first_seen: u64,
    pub last_seen: u64,
}

async fn call<T: for<'de> Deserialize<'de>>(env: &Env, body: &Call) -> Result<T, GovernorError> {
    let body = serde_json::to_string(body).map_err(|_| GovernorError::Internal("directory: encode".into()))?;
    let text = crate::account_client::post(env, OBJECT_NAME, URL, &body, None).await?;
    governor_core::wire::json::from_str(&text).map_err(|_| GovernorError::Internal("directory: decode".into()))
}

/// Tell the directory the account was active at `at` (epoch ms).
pub async fn announce(env: &Env, account: &str, at: u64) {
    let r: Result<u64, GovernorError> = call(env, &Call::Announce { account: account.to_owned(), at }).await;
    if let Err(e) = r {
        worker::console_warn!("directory announce failed: {}", e.message());
    }
}

/// The accounts seen, most recently seen first.
pub async fn list(env: &Env, limit: u32) -> Result<Vec<Entry>, GovernorError> {
    call(env, &Call::List { limit: limit.min(MAX_LIST) }).await
}

/// Up to `limit` accounts by name from `offset`, and how many the directory holds.
pub async fn page(env: &Env, offset: u32, limit: u32) -> Result<Page, GovernorError> {
    call(env, &Call::Page { offset, limit: limit.min(MAX_LIST) }).await
}

/// The singleton's side.
pub fn serve(sql: &SqlStorage, body: &str) -> worker::Result<Response> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS directory (account TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, \
         last_seen INTEGER NOT NULL)",
        None,
    )?;
    sql.exec("CREATE INDEX IF NOT EXISTS directory_by_seen ON directory (last_seen)", None)?;
    let Ok(call) = governor_core::wire::json::from_str::<Call>(body) else {
        return Response::error("malformed call", 400);
    };
    match call {
        Call::Announce { account, at } => {
            if !governor_core::wire::path::is_account_name(&account) {
                return Response::error("not an account name", 400);
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
        Call::Page { offset, limit } => {
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
        Call::List { limit } => {
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

fn json_response<T: Serialize>(v: &T) -> worker::Result<Response> {
    Response::ok(serde_json::to_string(v).map_err(|e| worker::Error::RustError(e.to_string()))?)
}
