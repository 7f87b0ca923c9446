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
use crate::generation::{FilePart, Generation, Outcome, Status};
use crate::limits::Account;
use crate::reqlog::RequestLog;
use crate::webhooks::WebhookLog;

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

/// Everything a new generation needs.
#[derive(Debug, Clone)]
pub struct NewGeneration {
    pub key: String,
    pub model: String,
    pub input: serde_json::Value,
    pub options: serde_json::Value,
    pub segments: serde_json::Value,
    pub webhook_url: Option<String>,
    pub output_file_name: Option<String>,
    pub project_id: Option<String>,
    pub files: Vec<FilePart>,
    pub source: &'static str,
    /// The batch that spawns it: not charged to the generation cap.
    pub batch_id: Option<String>,
    /// Total duration override (split 10% pending / 90% processing).
    pub duration_ms: Option<u64>,
    pub outcome: Outcome,
    /// The media length the estimate endpoints price ([`crate::cost`]).
    pub media_seconds: f64,
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

    fn notify(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Inserts an active generation (the caller checked concurrency and holds
    /// the store lock) and starts its timers. Returns its JSON.
    pub fn insert_locked(self: &Arc<Self>, store: &mut Store, ng: NewGeneration, cfg: &Config) -> Generation {
        let id = self.new_id();
        let seq = store.next_seq;
        store.next_seq += 1;
        let (pending, processing) = match ng.duration_ms {
            Some(total) => (total / 10, total - total / 10),
            None => (cfg.pending_ms, cfg.processing_ms),
        };
        let draw = self.random_upto(2_000_000) as f64 / 1_000_000.0 - 1.0;
        let planned = crate::cost::actual_seconds(ng.media_seconds, cfg.estimate_bias, cfg.estimate_error, draw);
        let g = Generation {
            id: id.clone(),
            key: ng.key.clone(),
            seq,
            created_at: crate::util::now_rfc3339(),
            status: Status::Pending,
            model: ng.model,
            input: ng.input,
            options: ng.options,
            segments: ng.segments,
            webhook_url: ng.webhook_url,
            output_file_name: ng.output_file_name,
            project_id: ng.project_id,
            output_url: None,
            output_duration: None,
            planned_output_seconds: planned,
            error: None,
            error_code: None,
            files: ng.files,
            source: ng.source,
            batch_id: ng.batch_id.clone(),
        };
        if ng.batch_id.is_some() {
            store.account(&ng.key).activate_batch();
        } else {
            store.account(&ng.key).activate();
        }
        store.gens.insert(id.clone(), g.clone());
        crate::lifecycle::spawn(
            self.clone(),
            id,
            Duration::from_millis(pending),
            Duration::from_millis(processing),
            ng.outcome,
        );
        self.notify();
        g
    }

    /// PENDING → PROCESSING. False if the generation is gone.
    pub fn start_processing(&self, id: &str) -> bool {
        let mut store = lock(&self.store);
        let Some(g) = store.gens.get_mut(id) else {
            return false;
        };
        if g.status != Status::Pending {
            return false;
        }
        g.status = Status::Processing;
        drop(store);
        self.notify();
        true
    }

    /// Makes a generation terminal, frees its slot and fires its webhook.
    pub fn finish(self: &Arc<Self>, id: &str, outcome: Outcome) {
        let report = self.cfg().report_output_duration;
        let mut store = lock(&self.store);
        let Some(g) = store.gens.get_mut(id) else {
            return;
        };
        if g.status.is_terminal() {
            return;
        }
        match outcome {
            Outcome::Complete => {
                g.status = Status::Completed;
                let name = g.output_file_name.clone().unwrap_or_else(|| "output".into());
                g.output_url = Some(format!("https://cdn.sync-sim.invalid/generations/{}/{}.mp4", g.id, name));
                g.output_duration = report.then_some(g.planned_output_seconds);
            }
            Outcome::Fail => {
                g.status = Status::Failed;
                g.error = Some("Simulated failure: an input url contains 'fail'".into());
                g.error_code = Some("generation_failed".into());
            }
            Outcome::Reject => {
                g.status = Status::Rejected;
                g.error = Some("Simulated rejection: an input url contains 'reject'".into());
                g.error_code = Some("generation_rejected".into());
            }
        }
        let snapshot = g.clone();
        let acct = store.account(&snapshot.key);
        if snapshot.batch_id.is_some() {
            acct.batch_active = acct.batch_active.saturating_sub(1);
        } else {
            acct.active = acct.active.saturating_sub(1);
        }
        match outcome {
            Outcome::Complete => acct.completed += 1,
            Outcome::Fail => acct.failed += 1,
            Outcome::Reject => acct.rejected += 1,
        }
        if let Some(b) = snapshot.batch_id.as_deref() {
            crate::batch::generation_done(self, &mut store, b, outcome == Outcome::Complete);
        }
        drop(store);
        self.notify();
        if let Some(url) = snapshot.webhook_url.clone() {
            crate::webhooks::dispatch(self, url, &snapshot);
        }
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
