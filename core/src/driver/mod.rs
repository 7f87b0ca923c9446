//! The one loop every account runs, in the Durable Object and in the
//! simulation alike: apply a command → write its rows → arm the alarm at
//! its `wake` → run its effects through [`Io`] → feed each result back as
//! the next command. Every rule of that loop is here: unblocking the queue
//! when a key arrives, dispatching when a command frees room, which Sync
//! key is used, one dispatch loop at a time, how many submissions and
//! deliveries per wake, how a listing pages, what runs side by side.
//! After quinn-proto / str0m: the machine ([`crate::account::apply`]) takes
//! events and returns what to do; this drives it; the runtime only executes.

mod effects;
pub mod io;
pub mod join;
mod lane;
pub mod provisional;
mod waits;

use std::cell::{Cell, RefCell};

pub use io::{Io, IoError, IoResult, Observation};
use provisional::Provisional;

use crate::account::{apply, AccountState, Effect};
use crate::auth::seal::unseal;
use crate::auth::secret::Secret;
use crate::config::Config;
use crate::wire::contract::{Command, Reply};
use crate::Ms;

/// At most this many queued jobs submitted per dispatch loop (the alarm re-arms).
pub const MAX_DISPATCH_PER_WAKE: usize = 50;
/// Relay deliveries in flight at once (each time-boxed by the relay
/// timeout), so one hook that never answers holds one slot.
pub const RELAY_CONCURRENCY: usize = 4;

/// One account's driver over `I`.
pub struct Driver<I> {
    io: I,
    config: Config,
    /// The hot state (`None` until loaded, and after a failed write).
    cache: RefCell<Option<AccountState>>,
    /// The alarm time last set, to avoid an alarm call per command.
    alarm_at: Cell<Option<Ms>>,
    /// The last Sync key a client presented (memory only, never stored).
    key: RefCell<Option<Secret>>,
    /// One dispatch loop at a time: a job is SUBMITTING only while its loop
    /// awaits Sync, so any other SUBMITTING job was cut off by a restart.
    dispatching: Cell<bool>,
    /// One batch-lane loop at a time.
    laning: Cell<bool>,
    /// The account's name, as the Worker names it and as stored.
    account: RefCell<Option<String>>,
    /// The tables in memory while Sync has not yet accepted the account's
    /// key (pass-through mode; see [`provisional`]): nothing is durable.
    provisional: RefCell<Option<Provisional>>,
}

impl<I: Io> Driver<I> {
    pub fn new(io: I, config: Config) -> Self {
        Driver {
            io,
            config,
            cache: RefCell::new(None),
            alarm_at: Cell::new(None),
            key: RefCell::new(None),
            dispatching: Cell::new(false),
            laning: Cell::new(false),
            account: RefCell::new(None),
            provisional: RefCell::new(None),
        }
    }

    /// Whether the account's key is still unproven (nothing is stored yet).
    pub fn provisional(&self) -> bool {
        self.provisional.borrow().is_some()
    }

    pub fn io(&self) -> &I {
        &self.io
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Read the hot state, if loaded.
    pub fn with_state<T>(&self, f: impl FnOnce(&AccountState) -> T) -> Option<T> {
        self.cache.borrow().as_ref().map(f)
    }

    /// The hot state, if loaded (tests and read-only probes).
    pub fn state(&self) -> Option<std::cell::Ref<'_, AccountState>> {
        std::cell::Ref::filter_map(self.cache.borrow(), Option::as_ref).ok()
    }

    /// Whether a dispatch loop is running now.
    pub fn dispatching(&self) -> bool {
        self.dispatching.get()
    }

    /// A call from the Worker: `account` names the account, `key` is the
    /// Sync key its client presented (pass-through mode).
    pub async fn call(&self, mut command: Command, account: Option<&str>, key: Option<Secret>) -> IoResult<Reply> {
        let brought_key = key.is_some();
        if key.is_some() {
            *self.key.borrow_mut() = key;
        }
        self.load().await?;
        if let Some(name) = account {
            self.remember_account(name)?;
        }
        if matches!(command, Command::KeyAccepted) {
            return self.key_accepted().await;
        }
        if self.provisional() && provisional::makes_real(&command) {
            self.key_accepted().await?;
        }
        if self.provisional() && self.alarm_at.get().is_some_and(|at| at <= self.io.now()) {
            // No alarm while provisional: a wake that is due (a listing
            // that ends an unknown create, a relay retry) runs now.
            self.alarm().await?;
        }
        let blocked = self.with_state(|a| a.sending.block.is_some()).unwrap_or(false);
        if blocked && (brought_key || self.upstream_key().await.is_some()) {
            // The key is back: queued work may go at once.
            self.run(Command::DispatchUnblocked).await?;
        }
        let client_waits = waits::client_waits(&command);
        if let (true, Command::Admit(req)) = (self.provisional(), &mut command) {
            req.key_unproven = true;
        }
        let (mut reply, effects) = self.run(command).await?;
        if let (true, Reply::Admitted(a)) = (self.provisional(), &mut reply) {
            a.provisional = true;
        }
        self.perform(effects).await?;
        // (`mutant-skip-freed-dispatch`: a test-only mutant breaks this rule, scripts/dst-mutants.sh.)
        let changed = !client_waits && !matches!(reply, Reply::Refused(_));
        if changed && !cfg!(feature = "mutant-skip-freed-dispatch") {
            // Room this command made (a webhook, a callback or a settle
            // freeing a permit) goes to the next queued job now rather than
            // on the next alarm (Sync waits a moment longer for its 200).
            self.dispatch_due().await?;
        }
        Ok(reply)
    }

    /// The alarm fired: tick, and run what the tick asks for.
    pub async fn alarm(&self) -> IoResult<()> {
        self.alarm_at.set(None);
        let (_, effects) = self.run(Command::Tick).await?;
        self.perform(effects).await?;
        // What became due while the handler ran (the runtime runs one alarm at a time).
        self.dispatch_due().await
    }

    /// Open the tables and load the hot state (once per instance, and again
    /// after a failed write).
    pub async fn load(&self) -> IoResult<()> {
        if self.cache.borrow().is_some() {
            return Ok(());
        }
        if !self.config.keys.is_managed() && !self.provisional() && self.io.stores_nothing()? {
            *self.provisional.borrow_mut() = Some(Provisional::default());
        }
        let held = self.provisional.borrow().as_ref().map(|p| AccountState::load(p.store(), &self.config.limits));
        let loaded = match held {
            Some(loaded) => loaded?,
            None => {
                self.io.open().await?;
                self.io.with_store(|s| AccountState::load(s, &self.config.limits))??
            }
        };
        // A submission cut off by a restart, or work the restart let go (the
        // held requests ahead of it died with the old instance): at once.
        let due = loaded.submission_due(&self.config.limits, self.io.now());
        if self.cache.borrow().is_none() {
            *self.cache.borrow_mut() = Some(loaded);
        }
        if due {
            self.io.set_alarm(1).await?;
        }
        Ok(())
    }

    /// One command through the core, its rows written, the alarm armed.
    async fn run(&self, command: Command) -> IoResult<(Reply, Vec<Effect>)> {
        self.load().await?;
        let now = self.io.now();
        let (reply, effects, wake) = self.apply_now(command, now)?;
        self.schedule(wake, now).await?;
        Ok((reply, effects))
    }

    async fn reply(&self, command: Command) -> IoResult<Reply> {
        Ok(self.run(command).await?.0)
    }

    /// The synchronous part of [`Self::run`] (one copy of it, whatever awaits around it).
    #[inline(never)]
    fn apply_now(&self, command: Command, now: Ms) -> IoResult<(Reply, Vec<Effect>, Option<Ms>)> {
        let mut cache = self.cache.borrow_mut();
        let account = cache.get_or_insert_with(AccountState::default);
        self.io.observe(Observation::Before(account, &command));
        let jitter = self.io.jitter();
        if let Some(p) = self.provisional.borrow_mut().as_mut() {
            let out = apply(&self.config.limits, account, p.store(), now, jitter, command);
            self.io.observe(Observation::After(account, &out.reply));
            p.write(&out.writes);
            return Ok((out.reply, out.effects, out.wake));
        }
        let out = self.io.with_store(|store| apply(&self.config.limits, account, store, now, jitter, command))?;
        self.io.observe(Observation::After(account, &out.reply));
        if let Err(e) = self.io.write(&out.writes) {
            // The memory is ahead of the tables: forget it, reload on the next call.
            *cache = None;
            return Err(e);
        }
        Ok((out.reply, out.effects, out.wake))
    }

    /// Arm the alarm at `wake` unless one as early is already armed.
    async fn schedule(&self, wake: Option<Ms>, now: Ms) -> IoResult<()> {
        let Some(at) = wake else { return Ok(()) };
        if self.provisional() {
            // An alarm is durable state: armed once the key is accepted.
            // Until then the wake is kept in memory and runs at the next
            // call due after it (see `call`).
            if self.alarm_at.get().is_none_or(|c| at < c) {
                self.alarm_at.set(Some(at));
            }
            return Ok(());
        }
        if self.alarm_at.get().is_some_and(|c| c <= at && c > now) {
            return Ok(());
        }
        self.io.set_alarm(at.saturating_sub(now).max(1)).await?;
        self.alarm_at.set(Some(at.max(now + 1)));
        Ok(())
    }

    /// The account's name: as last told by the Worker, else as stored.
    fn account_name(&self) -> Option<String> {
        if let Some(name) = self.account.borrow().clone() {
            return Some(name);
        }
        let stored = self.io.stored_account();
        self.account.borrow_mut().clone_from(&stored);
        stored
    }

    /// Keep the account's name the Worker sent (written once, when new).
    fn remember_account(&self, name: &str) -> IoResult<()> {
        if self.account_name().as_deref() == Some(name) {
            return Ok(());
        }
        if !self.provisional() {
            self.io.store_account(name)?;
        }
        *self.account.borrow_mut() = Some(name.to_owned());
        Ok(())
    }

    /// Sync accepted the account's key: write out the tables held in memory
    /// (one transaction), keep the account's name, and run a tick, which
    /// arms the alarm for whatever is due. Nothing to do for a real account.
    async fn key_accepted(&self) -> IoResult<Reply> {
        let Some(p) = self.provisional.borrow_mut().take() else { return Ok(Reply::Ack { released: 0 }) };
        let stored = async {
            self.io.open().await?;
            self.io.write(&p.replay())?;
            match self.account.borrow().clone() {
                Some(name) => self.io.store_account(&name),
                None => Ok(()),
            }
        };
        if let Err(e) = stored.await {
            // Still nothing durable for sure: stay provisional, try again on the next acceptance.
            *self.provisional.borrow_mut() = Some(p);
            return Err(e);
        }
        self.alarm_at.set(None);
        let (_, effects) = self.run(Command::Tick).await?;
        self.perform(effects).await?;
        Ok(Reply::Ack { released: 0 })
    }

    /// The account's Sync key: from the configuration (managed), else the
    /// last one a client presented (in memory), else the queue's sealed copy.
    async fn upstream_key(&self) -> Option<Secret> {
        let managed = self.account_name().and_then(|account| self.config.keys.upstream_for_account(&account));
        if let Some(k) = managed.or_else(|| self.key.borrow().clone()) {
            return Some(k);
        }
        let sealed = self.with_state(|a| a.sending.sealed_key.clone()).flatten()?;
        let master = self.io.master_key().await?;
        unseal(master.expose().as_bytes(), &sealed)
    }
}
