//! The account's Durable Object: the single owner of one account's state,
//! and an executor of the sans-IO core. Every call is
//! decode → load → [`apply`] → write the rows → arm the alarm → encode.
//! The clock is read once per command, here. The rows are written with
//! synchronous SQL before the reply leaves (the output gate holds it until
//! they are durable), so an eviction or a runtime restart forgets neither
//! spent tokens, held permits, queued jobs nor pending relays.
//!
//! The alarm runs the effects the core asks for: relay deliveries, queued
//! submissions and reconciliation against Sync's list of active
//! generations. What they mean is decided by the core when they report back.

use std::cell::{Cell, RefCell};

use governor_core::account::{apply, AccountState, Effect};
use governor_core::config::{Config, Limits};
use governor_core::contract::{Blocked, Command, Reply};
use governor_core::listing::{self, ListStep, ListedPage};
use governor_core::migrate;
use governor_core::relay::Attempt;
use governor_core::seal::unseal;
use governor_core::secret::Secret;
use governor_core::store::StoreError;
use governor_core::Ms;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::account_client::{ACCOUNT_HEADER, KEY_HEADER};
use crate::join::{join_all, Task};
use crate::legacy_kv::LegacyKv;
use crate::settings;
use crate::sql_store::SqlStore;
use crate::upstream;

/// The previous layout's keys (schema 1), migrated on first load.
const LEGACY_STATE_KEY: &str = "account";
const LEGACY_JOB_PREFIX: &str = "job:";
const LEGACY_CURSOR_KEY: &str = "queue-cursor";
/// At most this many queued jobs submitted per alarm (the alarm re-arms).
const MAX_DISPATCH_PER_ALARM: usize = 50;
/// Relay deliveries in flight at once per alarm (each time-boxed by
/// `RELAY_TIMEOUT_MS`), so one hook that never answers holds one slot.
const RELAY_CONCURRENCY: usize = 4;
/// The `meta` row that keeps the account's name (the core ignores it).
const ACCOUNT_META: &str = "object_account";

#[durable_object]
pub struct AccountObject {
    state: State,
    config: std::result::Result<Config, String>,
    store: RefCell<Option<SqlStore>>,
    cache: RefCell<Option<AccountState>>,
    /// The alarm time last set, to avoid a storage call per request.
    alarm_at: Cell<Option<Ms>>,
    /// The account's Sync key, in memory only (pass-through mode).
    key: RefCell<Option<Secret>>,
    /// One dispatch loop at a time: a job is SUBMITTING only while its loop
    /// awaits Sync, so any other SUBMITTING job was cut off by a restart.
    dispatching: Cell<bool>,
    /// The account's name, as the Worker names it with every call and as
    /// kept in the `meta` table (an alarm has no caller to ask, and the
    /// object's id need not carry its name there).
    account: RefCell<Option<String>>,
    /// For the deployment key (see [`crate::deployment`]).
    env: Env,
    /// The previous layout's key-value storage (read once, at migration).
    legacy: LegacyKv,
}

/// A call's body as text: one `text()` on the runtime's request (the
/// `worker` crate's reader does more than the object needs).
async fn body_text(req: &Request) -> String {
    match req.inner().text() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|v| v.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn jitter() -> f64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

fn store_error(e: StoreError) -> worker::Error {
    worker::Error::RustError(format!("account storage: {}", e.0))
}

impl AccountObject {
    /// Open the tables, migrate the previous layout if it is there, and
    /// load the hot state (once per object instance).
    async fn ensure_loaded(&self, limits: &Limits) -> Result<()> {
        if self.cache.borrow().is_some() {
            return Ok(());
        }
        if self.store.borrow().is_none() {
            *self.store.borrow_mut() = Some(SqlStore::open(self.state.storage().sql())?);
        }
        let fresh = self.with_store(|s| s.schema_version().map_err(store_error))??.is_none();
        if fresh {
            self.migrate_legacy().await?;
        }
        if self.load_state(limits)? {
            // A submission was cut off by a restart: resume it at once.
            self.state.storage().set_alarm(1).await?;
        }
        Ok(())
    }

    /// Load the hot state from the tables (the synchronous part of
    /// [`Self::ensure_loaded`]); true when a submission was cut off.
    #[inline(never)]
    fn load_state(&self, limits: &Limits) -> Result<bool> {
        let loaded = self.with_store(|s| AccountState::load(s, limits).map_err(store_error))??;
        let interrupted = loaded.queue.stale_submitting().is_some();
        if self.cache.borrow().is_none() {
            *self.cache.borrow_mut() = Some(loaded);
        }
        Ok(interrupted)
    }

    fn with_store<T>(&self, f: impl FnOnce(&SqlStore) -> T) -> Result<T> {
        let store = self.store.borrow();
        let store = store.as_ref().ok_or_else(|| worker::Error::RustError("account storage not open".into()))?;
        Ok(f(store))
    }

    /// An account written by the previous release (one JSON value plus
    /// `job:*` keys) becomes rows; the old keys go in the same breath.
    async fn migrate_legacy(&self) -> Result<()> {
        let kv = &self.legacy;
        let stored = kv.get(LEGACY_STATE_KEY).await.unwrap_or(None);
        let cursor = kv.get(LEGACY_CURSOR_KEY).await.unwrap_or(None);
        let listed = kv.list(LEGACY_JOB_PREFIX).await?;
        let jobs: Vec<String> = listed.iter().filter_map(|(_, v)| v.clone()).collect();
        let mut keys: Vec<String> = listed.into_iter().map(|(k, _)| k).collect();
        let migrated = migrate::from_legacy(stored.as_deref(), &jobs, cursor);
        if migrated.skipped > 0 {
            worker::console_warn!("legacy account state: {} unreadable parts skipped", migrated.skipped);
        }
        self.with_store(|s| s.write(&migrated.writes))??;
        if stored.is_some() || !keys.is_empty() {
            keys.push(LEGACY_STATE_KEY.to_owned());
            keys.push(LEGACY_CURSOR_KEY.to_owned());
            kv.delete(&keys).await?;
        }
        Ok(())
    }

    /// Run one command through the core and make its writes durable.
    /// Returns the reply and the effects to run.
    async fn run(&self, limits: &Limits, command: Command) -> Result<(Reply, Vec<Effect>)> {
        self.ensure_loaded(limits).await?;
        let now: Ms = Date::now().as_millis();
        let (reply, effects, wake) = self.apply_now(limits, command, now)?;
        self.schedule(wake, now).await?;
        Ok((reply, effects))
    }

    /// The synchronous part of [`Self::run`]: apply and write the rows (one
    /// copy of it, whatever awaits around it).
    #[inline(never)]
    fn apply_now(&self, limits: &Limits, command: Command, now: Ms) -> Result<(Reply, Vec<Effect>, Option<Ms>)> {
        let mut cache = self.cache.borrow_mut();
        let account = cache.get_or_insert_with(AccountState::default);
        let store = self.store.borrow();
        let store = store.as_ref().ok_or_else(|| worker::Error::RustError("account storage not open".into()))?;
        let out = apply(limits, account, store, now, jitter(), command);
        if let Err(e) = store.write(&out.writes) {
            // The memory is ahead of the tables: forget it, reload on the next call.
            *cache = None;
            return Err(e);
        }
        Ok((out.reply, out.effects, out.wake))
    }

    async fn reply(&self, limits: &Limits, command: Command) -> Result<Reply> {
        Ok(self.run(limits, command).await?.0)
    }

    async fn schedule(&self, wake: Option<Ms>, now: Ms) -> Result<()> {
        let Some(at) = wake else { return Ok(()) };
        let current = self.alarm_at.get();
        if current.is_some_and(|c| c <= at && c > now) {
            return Ok(());
        }
        self.state.storage().set_alarm(at.saturating_sub(now).max(1) as i64).await?;
        self.alarm_at.set(Some(at.max(now + 1)));
        Ok(())
    }

    /// The account's name: as last told by the Worker, else as stored.
    fn account_name(&self) -> Option<String> {
        if let Some(name) = self.account.borrow().clone() {
            return Some(name);
        }
        let stored = self.with_store(|s| s.object_meta(ACCOUNT_META)).ok().flatten();
        self.account.borrow_mut().clone_from(&stored);
        stored
    }

    /// Keep the account's name the Worker sent (written once, when new).
    fn remember_account(&self, name: &str) -> Result<()> {
        if self.account_name().as_deref() == Some(name) {
            return Ok(());
        }
        self.with_store(|s| s.set_object_meta(ACCOUNT_META, name))??;
        *self.account.borrow_mut() = Some(name.to_owned());
        Ok(())
    }

    /// The account's Sync key: from the configuration (managed), else the
    /// last one a client presented (in memory), else the queue's sealed copy.
    async fn upstream_key(&self, config: &Config) -> Option<Secret> {
        let managed = self.account_name().and_then(|account| config.keys.upstream_for_account(&account));
        if let Some(k) = managed.or_else(|| self.key.borrow().clone()) {
            return Some(k);
        }
        let sealed = self.cache.borrow().as_ref().and_then(|a| a.sealed_key.clone())?;
        let master = crate::deployment::master(&self.env, config).await?;
        unseal(master.expose().as_bytes(), &sealed)
    }

    /// Submit queued jobs while the account has room for them.
    async fn dispatch(&self, config: &Config) -> Result<()> {
        if self.dispatching.replace(true) {
            return Ok(());
        }
        let result = self.dispatch_loop(config).await;
        self.dispatching.set(false);
        if result.is_err() {
            // A job may be marked as being sent while nothing sends it: reload
            // the state, and a SUBMITTING job is resumed as a cut-off one.
            *self.cache.borrow_mut() = None;
        }
        result
    }

    async fn dispatch_loop(&self, config: &Config) -> Result<()> {
        let limits = &config.limits;
        // Without the account's key nothing can be sent: the jobs wait (and
        // spend nothing) until a client of the account brings it, and the
        // queue backs off rather than waking the alarm at once.
        let Some(key) = self.upstream_key(config).await else {
            self.run(limits, Command::DispatchBlocked { reason: Blocked::NoSyncKey }).await?;
            return Ok(());
        };
        for _ in 0..MAX_DISPATCH_PER_ALARM {
            let Reply::Dispatch(job) = self.reply(limits, Command::Dispatch).await? else { return Ok(()) };
            let outcome = upstream::submit(&config.api_base, &key, &job, config.timeouts.create_ms).await;
            let command = Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome };
            self.run(limits, command).await?;
        }
        Ok(())
    }

    /// Reconcile: the core asks for each page and lookup (and has spent the
    /// budget for it); this only fetches and reports back.
    async fn reconcile(&self, config: &Config) -> Result<()> {
        let limits = &config.limits;
        let key = self.upstream_key(config).await;
        let mut step = self.reply(limits, Command::ListStart).await?;
        // The core bounds a run (pages, one lookup); this bounds the loop too.
        for _ in 0..=listing::MAX_PAGES + 1 {
            let command = match step {
                Reply::List(ListStep::Page { cursor, limit }) => {
                    let page = match &key {
                        None => ListedPage::NoKey,
                        Some(k) => {
                            let timeout = config.timeouts.list_ms;
                            upstream::list_active(&config.api_base, k, limit, cursor.as_deref(), timeout).await
                        }
                    };
                    Command::Listed { page }
                }
                Reply::List(ListStep::Lookup { ids }) => {
                    let ended = match &key {
                        Some(k) => upstream::statuses(&config.api_base, k, &ids, config.timeouts.list_ms).await,
                        None => Vec::new(),
                    };
                    Command::LookedUp { ended }
                }
                _ => return Ok(()),
            };
            step = self.reply(limits, command).await?;
        }
        Ok(())
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let config = settings::load(&env).map_err(|e| e.to_string());
        let raw = state._inner();
        let legacy = LegacyKv::of(&raw);
        Self {
            state: State::from(raw),
            legacy,
            config,
            store: RefCell::new(None),
            cache: RefCell::new(None),
            alarm_at: Cell::new(None),
            key: RefCell::new(None),
            dispatching: Cell::new(false),
            account: RefCell::new(None),
            env,
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if req.path() == crate::deployment::PATH {
            return crate::deployment::serve(&self.state.storage().sql());
        }
        if req.path() == crate::directory::PATH {
            let body = body_text(&req).await;
            return crate::directory::serve(&self.state.storage().sql(), &body);
        }
        let config = match &self.config {
            Ok(c) => c,
            Err(e) => return Response::error(e.clone(), 500),
        };
        let brought_key = match req.headers().get(KEY_HEADER) {
            Ok(Some(key)) => {
                *self.key.borrow_mut() = Some(Secret::new(key));
                true
            }
            _ => false,
        };
        let command: Option<Command> = governor_core::json::from_str(&body_text(&req).await).ok();
        let Some(command) = command else { return Response::error("malformed command", 400) };
        self.ensure_loaded(&config.limits).await?;
        if let Ok(Some(account)) = req.headers().get(ACCOUNT_HEADER) {
            self.remember_account(&account)?;
        }
        let blocked = self.cache.borrow().as_ref().is_some_and(|a| a.dispatch_block.is_some());
        if blocked && (brought_key || self.upstream_key(config).await.is_some()) {
            // The key is back: queued work may go at once.
            self.run(&config.limits, Command::DispatchUnblocked).await?;
        }
        let freeing = matches!(command, Command::Webhook { .. });
        let reply = self.reply(&config.limits, command).await?;
        if freeing && matches!(reply, Reply::Ack { released } if released > 0) {
            // A permit just freed: hand it to the next queued job now rather
            // than on the next alarm (Sync waits a moment longer for its 200).
            self.dispatch(config).await?;
        }
        Response::ok(serde_json::to_string(&reply).map_err(|e| worker::Error::RustError(e.to_string()))?)
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let Ok(config) = &self.config else { return Response::ok("") };
        let limits = &config.limits;
        let (_, effects) = self.run(limits, Command::Tick).await?;
        let (mut dispatch, mut reconcile, mut deliveries) = (false, false, Vec::new());
        for effect in effects {
            match effect {
                Effect::Dispatch => dispatch = true,
                Effect::Deliver(delivery) => deliveries.push(delivery),
                Effect::Reconcile => reconcile = true,
            }
        }
        // Side by side: a slow hook (or a slow Sync) delays none of the
        // others. Deliveries go a few at a time, each time-boxed.
        let relay_ms = config.timeouts.relay_ms;
        // Deliveries in rounds of RELAY_CONCURRENCY, each time-boxed.
        let relays = async move {
            let mut results = Vec::new();
            let mut deliveries = deliveries.into_iter().peekable();
            while deliveries.peek().is_some() {
                let round: Vec<Task<'_, Result<()>>> = deliveries
                    .by_ref()
                    .take(RELAY_CONCURRENCY)
                    .map(|delivery| -> Task<'_, Result<()>> {
                        Box::pin(async move {
                            let attempt = if upstream::deliverable(&delivery, config.webhooks.local_mode) {
                                upstream::deliver(&delivery, relay_ms).await
                            } else {
                                Attempt::Refused
                            };
                            self.run(limits, Command::Delivered { id: delivery.id, attempt }).await.map(|_| ())
                        })
                    })
                    .collect();
                results.extend(join_all(round).await);
            }
            results
        };
        let reconciling = async {
            if reconcile {
                self.reconcile(config).await
            } else {
                Ok(())
            }
        };
        let dispatching = async {
            if dispatch {
                self.dispatch(config).await
            } else {
                Ok(())
            }
        };
        let relaying = async move { relays.await.into_iter().collect::<Result<Vec<()>>>().map(|_| ()) };
        let tasks: Vec<Task<'_, Result<()>>> = vec![Box::pin(reconciling), Box::pin(dispatching), Box::pin(relaying)];
        for result in join_all(tasks).await {
            result?;
        }
        let now = Date::now().as_millis();
        let wake = self.cache.borrow().as_ref().and_then(|a| a.next_wake(limits, now));
        self.schedule(wake, now).await?;
        Response::ok("")
    }
}
