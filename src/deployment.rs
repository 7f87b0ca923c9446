//! The deployment key: what signs callback tokens and seals queued
//! pass-through keys when `GOVERNOR_WEBHOOK_KEY` is not set, so that a fresh
//! `wrangler deploy` with no secrets has the relay, callbacks and the queue.
//!
//! It is 32 random bytes drawn once, on first use, by a singleton Durable
//! Object (the `ACCOUNTS` class under a reserved name no account can take:
//! account objects are named `k-…` or `a-…`) and kept in its SQLite storage.
//! Its contract is one RPC method of its own, `deploymentKey()`, whose reply
//! is the key's hex (`src/object_rpc.rs`); Workers and account objects ask it
//! once per isolate and cache the answer.

use std::cell::RefCell;
use std::rc::Rc;

use governor_core::auth::secret::Secret;
use governor_core::config::Config;
use governor_core::wire::error::GovernorError;
use worker::{Env, SqlStorage, SqlStorageValue};

/// The singleton's object name.
pub const OBJECT_NAME: &str = "__deployment__";

thread_local! {
    static KEY: RefCell<Option<Secret>> = const { RefCell::new(None) };
    static KEYED: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The deployment key (hex of 32 bytes), cached per isolate.
pub async fn key(env: &Env) -> Result<Secret, GovernorError> {
    if let Some(k) = KEY.with(|k| k.borrow().clone()) {
        return Ok(k);
    }
    let unavailable = |what: &str| GovernorError::Unavailable(format!("deployment key: {what}"));
    let hex = crate::account_client::deployment_key(env, OBJECT_NAME).await?;
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unavailable("malformed"));
    }
    let key = Secret::new(hex);
    KEY.with(|k| *k.borrow_mut() = Some(key.clone()));
    Ok(key)
}

/// The configuration with a webhook key: `GOVERNOR_WEBHOOK_KEY` when set,
/// else the deployment key. Built once per isolate.
pub async fn keyed(env: &Env, config: &Config) -> Result<Rc<Config>, GovernorError> {
    if let Some(c) = KEYED.with(|k| k.borrow().clone()) {
        return Ok(c);
    }
    let mut keyed = config.clone();
    if keyed.webhooks.key.is_none() {
        keyed.webhooks.key = Some(key(env).await?);
    }
    let keyed = Rc::new(keyed);
    KEYED.with(|k| *k.borrow_mut() = Some(keyed.clone()));
    Ok(keyed)
}

/// The master key an account object unseals with: the configured one, else
/// the deployment key (`None` only when the singleton cannot be reached).
pub async fn master(env: &Env, config: &Config) -> Option<Secret> {
    match &config.webhooks.key {
        Some(k) => Some(k.clone()),
        None => key(env).await.ok(),
    }
}

/// The singleton's side: draw the key on the first call, keep it, return it.
/// SQL calls are synchronous, so two first calls cannot both insert.
pub fn draw(sql: &SqlStorage) -> worker::Result<String> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS deployment_key (id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL)",
        None,
    )?;
    for row in sql.exec("SELECT key FROM deployment_key WHERE id = 1", None)?.raw() {
        if let Some(SqlStorageValue::String(key)) = row?.into_iter().next() {
            return Ok(key);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| worker::Error::RustError("no randomness".into()))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    sql.exec("INSERT INTO deployment_key (id, key) VALUES (1, ?)", vec![SqlStorageValue::String(key.clone())])?;
    Ok(key)
}

/// A seed from the runtime's randomness (the clock if it fails: jitter
/// only needs to differ between objects).
pub fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => worker::Date::now().as_millis(),
    }
}
