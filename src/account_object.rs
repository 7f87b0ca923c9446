//! The account's Durable Object: the single owner of one account's state.
//!
//! A thin shell around [`governor_core::account::apply`]:
//! decode → load → core → persist → schedule alarm → encode. The clock is
//! read once per command, here. The state lives in memory and is written
//! through to SQLite-backed storage before the reply leaves (output gates
//! hold the reply until the write is durable), so an eviction or a runtime
//! restart forgets neither spent tokens, held permits nor pending relays.
//!
//! The alarm does the object's own I/O: relay deliveries to clients and
//! reconciliation against Sync's list of active generations. What to do
//! and what it means is still decided by the core.

use std::cell::{Cell, RefCell};

use governor_core::account::{apply, AccountState};
use governor_core::config::{Config, Limits};
use governor_core::contract::{AdmitRequest, Command, LimitKind, Observed, Reply};
use governor_core::queue::{Changes, Job, Queue};
use governor_core::reconcile::ActiveGeneration;
use governor_core::seal::unseal;
use governor_core::secret::Secret;
use governor_core::settle::limit_kind;
use governor_core::Ms;
use worker::{durable_object, Date, DurableObject, Env, ListOptions, Request, Response, Result, State};

use crate::account_client::KEY_HEADER;
use crate::settings;
use crate::upstream::{self, Page};

const STATE_KEY: &str = "account";
/// Queued jobs, one key each (`job:<ticket>`), and the round-robin cursor.
const JOB_PREFIX: &str = "job:";
const CURSOR_KEY: &str = "queue-cursor";
/// At most this many list pages per reconciliation (100 items each).
const MAX_PAGES: usize = 20;
/// At most this many queued jobs submitted per alarm (the alarm re-arms).
const MAX_DISPATCH_PER_ALARM: usize = 50;

#[durable_object]
pub struct AccountObject {
    state: State,
    config: std::result::Result<Config, String>,
    cache: RefCell<Option<AccountState>>,
    /// The alarm time last set, to avoid a storage write per request.
    alarm_at: Cell<Option<Ms>>,
    /// The account's Sync key, in memory only (pass-through mode).
    key: RefCell<Option<Secret>>,
    /// The account state last written (a write that changes nothing is skipped).
    state_written: RefCell<String>,
    /// One dispatch loop at a time: a job is SUBMITTING only while its loop
    /// awaits Sync, so any other SUBMITTING job was cut off by a restart.
    dispatching: Cell<bool>,
}

fn jitter() -> f64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

impl AccountObject {
    async fn ensure_loaded(&self) -> Result<()> {
        if self.cache.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let stored: Option<String> = storage.get(STATE_KEY).await?;
        let cursor: Option<String> = storage.get(CURSOR_KEY).await?;
        let listed = storage.list_with_options(ListOptions::new().prefix(JOB_PREFIX)).await?;
        let mut jobs: Vec<Job> = Vec::new();
        listed.for_each(&mut |value, _| {
            if let Some(job) = value.as_string().and_then(|s| serde_json::from_str(&s).ok()) {
                jobs.push(job);
            }
        });
        let mut loaded =
            stored.as_deref().and_then(|s| serde_json::from_str::<AccountState>(s).ok()).unwrap_or_default();
        loaded.queue = Queue::restore(jobs, cursor);
        let interrupted = loaded.queue.stale_submitting().is_some();
        {
            let mut cache = self.cache.borrow_mut();
            if cache.is_some() {
                return Ok(());
            }
            *cache = Some(loaded);
            *self.state_written.borrow_mut() = stored.unwrap_or_default();
        }
        if interrupted {
            // A submission was cut off by a restart: resume it at once.
            self.state.storage().set_alarm(1).await?;
        }
        Ok(())
    }

    /// Run one command through the core and make its effects durable.
    async fn run(&self, limits: &Limits, command: Command) -> Result<Reply> {
        self.ensure_loaded().await?;
        let now: Ms = Date::now().as_millis();
        let mutates = !matches!(command, Command::Status);
        let (reply, persisted, queue, wake) = {
            let mut cache = self.cache.borrow_mut();
            let account = cache.get_or_insert_with(AccountState::default);
            let reply = apply(limits, account, now, jitter(), command);
            if mutates {
                account.compact(limits, now);
            }
            let persisted = if mutates { serde_json::to_string(account).ok() } else { None };
            let persisted = persisted.filter(|json| *json != *self.state_written.borrow());
            let queue = account.queue.take_changes();
            (reply, persisted, queue, account.next_wake(limits, now))
        };
        self.persist(persisted.as_deref(), queue).await?;
        if let Some(json) = persisted {
            *self.state_written.borrow_mut() = json;
        }
        self.schedule(wake, now).await?;
        Ok(reply)
    }

    /// One storage write for everything that changed: the account state
    /// (if it did), the queued jobs that changed, the round-robin cursor;
    /// then the deletion of jobs past their retention.
    async fn persist(&self, state: Option<&str>, queue: Changes) -> Result<()> {
        let records = js_sys::Object::new();
        let mut any = false;
        let mut set = |key: &str, value: &str| -> Result<()> {
            any = true;
            js_sys::Reflect::set(&records, &key.into(), &value.into())?;
            Ok(())
        };
        if let Some(json) = state {
            set(STATE_KEY, json)?;
        }
        for job in &queue.upserts {
            let json = serde_json::to_string(job).map_err(|e| worker::Error::RustError(e.to_string()))?;
            set(&format!("{JOB_PREFIX}{}", job.ticket), &json)?;
        }
        if let Some(Some(client)) = &queue.cursor {
            set(CURSOR_KEY, client)?;
        }
        let storage = self.state.storage();
        if any {
            storage.put_multiple_raw(records).await?;
        }
        let mut gone: Vec<String> = queue.removed.iter().map(|t| format!("{JOB_PREFIX}{t}")).collect();
        if let Some(None) = queue.cursor {
            gone.push(CURSOR_KEY.to_owned());
        }
        if !gone.is_empty() {
            storage.delete_multiple(gone).await?;
        }
        Ok(())
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

    /// The account's Sync key: from the configuration (managed), else the
    /// last one a client presented (in memory), else the queue's sealed copy.
    fn upstream_key(&self, config: &Config) -> Option<Secret> {
        let managed = self.state.id().name().and_then(|account| config.keys.upstream_for_account(&account));
        if let Some(k) = managed.or_else(|| self.key.borrow().clone()) {
            return Some(k);
        }
        let master = config.webhooks.key.as_ref()?;
        let sealed = self.cache.borrow().as_ref().and_then(|a| a.sealed_key.clone())?;
        unseal(master.expose().as_bytes(), &sealed)
    }

    /// Submit queued jobs while the account has room for them.
    async fn dispatch(&self, config: &Config) -> Result<()> {
        if self.dispatching.replace(true) {
            return Ok(());
        }
        let result = self.dispatch_loop(config).await;
        self.dispatching.set(false);
        result
    }

    async fn dispatch_loop(&self, config: &Config) -> Result<()> {
        let limits = &config.limits;
        // Without the account's key nothing can be sent: the jobs wait (and
        // spend nothing) until a client of the account brings it.
        let Some(key) = self.upstream_key(config) else { return Ok(()) };
        for _ in 0..MAX_DISPATCH_PER_ALARM {
            let Reply::Dispatch(job) = self.run(limits, Command::Dispatch).await? else { return Ok(()) };
            let outcome = upstream::submit(&config.api_base, &key, &job).await;
            let command = Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome };
            self.run(limits, command).await?;
        }
        Ok(())
    }

    /// Deliver every relay payload that is due.
    async fn relay(&self, limits: &Limits) -> Result<()> {
        let due = self.cache.borrow().as_ref().map(|a| a.outbox.due(Date::now().as_millis())).unwrap_or_default();
        for delivery in due {
            let attempt = upstream::deliver(&delivery).await;
            self.run(limits, Command::Delivered { id: delivery.id, attempt }).await?;
        }
        Ok(())
    }

    /// List Sync's active generations and converge the permits to them.
    async fn reconcile(&self, config: &Config) -> Result<()> {
        let limits = &config.limits;
        let now = Date::now().as_millis();
        let due = self.cache.borrow().as_ref().is_some_and(|a| a.reconcile.due(now));
        if !due {
            return Ok(());
        }
        let Some(key) = self.upstream_key(config) else {
            // Pass-through key not seen since the runtime started: the next
            // request brings it; leases and status reads cover until then.
            self.run(limits, Command::ReconcileFailed { retry_at: now + limits.reconcile.max_ms }).await?;
            return Ok(());
        };
        let listed_from = now;
        let mut active = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let admit = Command::Admit(AdmitRequest { class: "other".into(), ..AdmitRequest::default() });
            if let Reply::Rejected(r) = self.run(limits, admit).await? {
                self.run(limits, Command::ReconcileFailed { retry_at: r.retry_at_ms }).await?;
                return Ok(());
            }
            match upstream::list_active(&config.api_base, &key, limits.reconcile.page_size, cursor.as_deref()).await {
                Page::Items(items, n) => {
                    cursor = items.last().map(|g| g.id.clone());
                    active.extend(items);
                    if n < limits.reconcile.page_size as usize || cursor.is_none() {
                        let ended = self.final_statuses(config, &key, &active, listed_from).await?;
                        self.run(limits, Command::Reconciled { listed_from, active, complete: true, ended }).await?;
                        return Ok(());
                    }
                }
                Page::Limited(body) => {
                    let kind = limit_kind(&body);
                    let class = if kind == LimitKind::Rate { "other" } else { "generate" };
                    self.run(
                        limits,
                        Command::UpstreamLimited { class: class.into(), kind, permit: None, retry_after_ms: None },
                    )
                    .await?;
                    self.run(limits, Command::ReconcileFailed { retry_at: now + limits.reconcile.min_ms }).await?;
                    return Ok(());
                }
                Page::Failed => {
                    self.run(limits, Command::ReconcileFailed { retry_at: now + limits.reconcile.min_ms }).await?;
                    return Ok(());
                }
            }
        }
        self.run(limits, Command::Reconciled { listed_from, active, complete: false, ended: Vec::new() }).await?;
        Ok(())
    }

    /// The final status of generations that ended without the governor
    /// seeing it (a lost webhook), so their queue tickets show it. One more
    /// `other` request, only when there are any and budget allows.
    async fn final_statuses(
        &self,
        config: &Config,
        key: &Secret,
        active: &[ActiveGeneration],
        listed_from: Ms,
    ) -> Result<Vec<Observed>> {
        let ids: Vec<String> = active.iter().map(|a| a.id.clone()).collect();
        let gone = self.cache.borrow().as_ref().map(|a| a.presumed_ended(&ids, listed_from)).unwrap_or_default();
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        let admit = Command::Admit(AdmitRequest { class: "other".into(), ..AdmitRequest::default() });
        if !matches!(self.run(&config.limits, admit).await?, Reply::Admitted(_)) {
            return Ok(Vec::new());
        }
        Ok(upstream::statuses(&config.api_base, key, &gone).await)
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let config = settings::load(&env).map_err(|e| e.to_string());
        Self {
            state,
            config,
            cache: RefCell::new(None),
            alarm_at: Cell::new(None),
            key: RefCell::new(None),
            dispatching: Cell::new(false),
            state_written: RefCell::new(String::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let config = match &self.config {
            Ok(c) => c,
            Err(e) => return Response::error(e.clone(), 500),
        };
        if let Ok(Some(key)) = req.headers().get(KEY_HEADER) {
            *self.key.borrow_mut() = Some(Secret::new(key));
        }
        let command: Command = match req.json().await {
            Ok(c) => c,
            Err(_) => return Response::error("malformed command", 400),
        };
        let freeing = matches!(command, Command::Webhook { .. });
        let reply = self.run(&config.limits, command).await?;
        if freeing && matches!(reply, Reply::Ack { released } if released > 0) {
            // A permit just freed: hand it to the next queued job now rather
            // than on the next alarm (Sync waits a moment longer for its 200).
            self.dispatch(config).await?;
        }
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let Ok(config) = &self.config else { return Response::ok("") };
        self.run(&config.limits, Command::Tick).await?;
        self.dispatch(config).await?;
        self.relay(&config.limits).await?;
        self.reconcile(config).await?;
        let now = Date::now().as_millis();
        let wake = self.cache.borrow().as_ref().and_then(|a| a.next_wake(&config.limits, now));
        self.schedule(wake, now).await?;
        Response::ok("")
    }
}
