//! The deployment's directory of accounts: Durable Objects cannot be
//! listed, so the admin API and the metrics need a list of their own. It is
//! a singleton object (the `ACCOUNTS` class under a reserved name no account
//! can take, like [`crate::deployment`]) with one SQLite table, called over
//! its own RPC method with its own typed contract ([`contract`]). An account
//! announces itself at most about once a minute (the core decides, see
//! `Admitted::announce`), from `wait_until`: never on a request's path.
//!
//! | file | what |
//! | --- | --- |
//! | [`contract`] | the calls and their reply types |
//! | [`table`] | the singleton's side: the table, bounded |

pub mod contract;
pub mod table;

use governor_core::wire::error::GovernorError;
use worker::Env;

pub use contract::MAX_LIST;
use contract::{Announce, DirectoryCall, List, PageOf};
pub use contract::{Entry, Page};

/// The singleton's object name.
pub const OBJECT_NAME: &str = "__directory__";

async fn call<C: DirectoryCall>(env: &Env, call: &C) -> Result<C::Reply, GovernorError> {
    let body =
        serde_json::to_string(&call.request()).map_err(|_| GovernorError::Internal("directory: encode".into()))?;
    let text = crate::account_client::directory(env, OBJECT_NAME, &body).await?;
    governor_core::wire::json::from_str(&text).map_err(|_| GovernorError::Internal("directory: decode".into()))
}

/// Tell the directory the account was active at `at` (epoch ms).
pub async fn announce(env: &Env, account: &str, at: u64) {
    if let Err(e) = call(env, &Announce { account: account.to_owned(), at }).await {
        worker::console_warn!("directory announce failed: {}", e.message());
    }
}

/// The accounts seen, most recently seen first.
pub async fn list(env: &Env, limit: u32) -> Result<Vec<Entry>, GovernorError> {
    call(env, &List { limit: limit.min(MAX_LIST) }).await
}

/// Up to `limit` accounts by name from `offset`, and how many the directory holds.
pub async fn page(env: &Env, offset: u32, limit: u32) -> Result<Page, GovernorError> {
    call(env, &PageOf { offset, limit: limit.min(MAX_LIST) }).await
}
