//! The shared simulator state: the generation store, accounts, and the
//! transitions of the generation lifecycle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::config::Config;
use crate::generation::Generation;
use crate::limits::Account;
use crate::reqlog::RequestLog;
use crate::webhook_log::WebhookLog;

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Generations, accounts and idempotency records.
#[derive(Debug, Default)]
pub struct Store {
    pub gens: HashMap<String, Generation>,
    pub batches: HashMap<String, crate::batch::Batch>,
    pub accounts: HashMap<String, Account>,
    /// `(api key, Idempotency-Key)` → generation id.
    pub idempotency: HashMap<(String, String), String>,
    pub next_seq: u64,
    /// Requests refused for a missing or unknown key.
    pub unauthorized: u64,
    /// Requests held by a `stall_*` knob.
    pub stalled: u64,
}

impl Store {
    pub fn account(&mut self, key: &str) -> &mut Account {
        self.accounts.entry(key.to_string()).or_default()
    }
}

/// The simulator.
pub struct Sim {
    pub config: RwLock<Config>,
    pub store: Mutex<Store>,
    pub rng: Mutex<StdRng>,
    /// Bumped on every status change; long-polls wait on it.
    pub changes: watch::Sender<u64>,
    pub reqlog: Mutex<RequestLog>,
    pub webhooks: Mutex<WebhookLog>,
    pub http: reqwest::Client,
    /// Bumped by reset, so that late timers and deliveries of an older epoch
    /// leave no trace.
    pub epoch: AtomicU64,
}

impl Sim {
    pub fn new(config: Config) -> Arc<Sim> {
        let rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Arc::new(Sim {
            config: RwLock::new(config),
            store: Mutex::new(Store::default()),
            rng: Mutex::new(rng),
            changes: watch::channel(0).0,
            reqlog: Mutex::new(RequestLog::default()),
            webhooks: Mutex::new(WebhookLog::default()),
            http,
            epoch: AtomicU64::new(0),
        })
    }

    /// A snapshot of the configuration.
    pub fn cfg(&self) -> Config {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rolls the simulator's dice: true with probability `p`.
    pub fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        lock(&self.rng).gen_bool(p)
    }

    /// A uniformly random value in `0..=max`.
    pub fn random_upto(&self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            lock(&self.rng).gen_range(0..=max)
        }
    }

    pub fn new_id(&self) -> String {
        crate::util::uuid(&mut *lock(&self.rng))
    }

    pub fn is_known_key(&self, key: &str) -> bool {
        self.key_index(key).is_some()
    }

    /// Position of `key` among the configured keys.
    pub fn key_index(&self, key: &str) -> Option<usize> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).keys.iter().position(|k| k == key)
    }

    pub(crate) fn notify(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Clears generations, stats and logs; keeps the configuration.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        *lock(&self.store) = Store::default();
        *lock(&self.reqlog) = RequestLog::default();
        *lock(&self.webhooks) = WebhookLog::default();
        self.notify();
    }

    pub fn current_epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

/// A held concurrency slot; released on drop unless turned into a generation.
pub struct Reservation {
    sim: Arc<Sim>,
    key: String,
    epoch: u64,
    held: bool,
}

impl Reservation {
    /// Tries to hold a slot for `key`; counts a concurrency refusal if none.
    pub fn try_new(sim: &Arc<Sim>, key: &str, limit: u32) -> Option<Reservation> {
        let mut store = lock(&sim.store);
        let acct = store.account(key);
        if acct.try_reserve(limit) {
            Some(Reservation { sim: sim.clone(), key: key.to_string(), epoch: sim.current_epoch(), held: true })
        } else {
            acct.concurrency_limited += 1;
            None
        }
    }

    /// Gives the slot back while the caller holds the store lock.
    pub fn release_locked(mut self, store: &mut Store) {
        if self.held && self.epoch == self.sim.current_epoch() {
            store.account(&self.key).release();
        }
        self.held = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held && self.epoch == self.sim.current_epoch() {
            lock(&self.sim.store).account(&self.key).release();
        }
    }
}
