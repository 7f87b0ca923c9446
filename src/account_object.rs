//! The account's Durable Object: the single owner of one account's state.
//!
//! A thin shell around [`governor_core::account::apply`]:
//! decode → load → core → persist → schedule alarm → encode. The clock is
//! read once per call, here. State is cached in memory and written through
//! to SQLite-backed storage before the reply leaves, so an eviction or a
//! runtime restart forgets neither spent tokens nor held permits.

use std::cell::RefCell;

use governor_core::account::{apply, AccountState};
use governor_core::config::Limits;
use governor_core::contract::{Command, Reply};
use governor_core::Ms;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::settings;

const STATE_KEY: &str = "account";

#[durable_object]
pub struct AccountObject {
    state: State,
    limits: std::result::Result<Limits, String>,
    cache: RefCell<Option<AccountState>>,
}

fn jitter() -> f64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

impl AccountObject {
    async fn load(&self) -> Result<AccountState> {
        if let Some(s) = self.cache.borrow().as_ref() {
            return Ok(s.clone());
        }
        let loaded: Option<AccountState> = self.state.storage().get(STATE_KEY).await?;
        Ok(loaded.unwrap_or_default())
    }

    /// Run one command through the core and make its effects durable.
    async fn run(&self, limits: &Limits, command: Command) -> Result<Reply> {
        let now: Ms = Date::now().as_millis();
        let mut account = self.load().await?;
        let mutates = !matches!(command, Command::Status);
        let reply = apply(limits, &mut account, now, jitter(), command);
        if mutates {
            account.compact(limits, now);
            self.state.storage().put(STATE_KEY, &account).await?;
            self.schedule(&account, now).await?;
        }
        *self.cache.borrow_mut() = Some(account);
        Ok(reply)
    }

    async fn schedule(&self, account: &AccountState, now: Ms) -> Result<()> {
        let storage = self.state.storage();
        match account.next_wake() {
            Some(at) => storage.set_alarm(at.saturating_sub(now).max(1) as i64).await,
            None => Ok(()),
        }
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let limits = settings::load(&env).map(|c| c.limits).map_err(|e| e.to_string());
        Self { state, limits, cache: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let limits = match &self.limits {
            Ok(l) => l,
            Err(e) => return Response::error(e.clone(), 500),
        };
        let command: Command = match req.json().await {
            Ok(c) => c,
            Err(_) => return Response::error("malformed command", 400),
        };
        let reply = self.run(limits, command).await?;
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        if let Ok(limits) = &self.limits {
            self.run(limits, Command::Tick).await?;
        }
        Response::ok("")
    }
}
