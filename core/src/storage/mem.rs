//! An account over the in-memory store: what native tests and the
//! simulation drive. `apply` runs the core and applies its writes, as the
//! Durable Object does; `restart` drops the hot state and reloads it from
//! the tables, as a runtime restart does.

use crate::account::{apply, AccountState, Output};
use crate::config::limits::Limits;
use crate::storage::store::MemStore;
use crate::wire::contract::{Command, Reply};
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct MemAccount {
    pub state: AccountState,
    pub store: MemStore,
}

impl MemAccount {
    /// Run one command; its writes reach the store before the reply returns.
    pub fn run(&mut self, limits: &Limits, now: Ms, jitter: f64, command: Command) -> Output {
        let out = apply(limits, &mut self.state, &self.store, now, jitter, command);
        self.store.write(&out.writes);
        out
    }

    pub fn apply(&mut self, limits: &Limits, now: Ms, jitter: f64, command: Command) -> Reply {
        self.run(limits, now, jitter, command).reply
    }

    /// Forget everything in memory and load from the tables.
    pub fn restart(&mut self, limits: &Limits) {
        // The in-memory store cannot fail to read.
        if let Ok(state) = AccountState::load(&self.store, limits) {
            self.state = state;
        }
    }
}
