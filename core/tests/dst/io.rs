//! The simulation's [`Io`]: the shipped [`Driver`] runs over it. Storage is
//! the in-memory store, the clock and the alarm are the world's, and every
//! call to Sync or to a client's hook becomes a request the world sends
//! through its faulty network; the driver's future waits until the world
//! answers it (or forever, when a restart dropped the driver).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use governor_core::account::AccountState;
use governor_core::auth::secret::Secret;
use governor_core::driver::{Io, IoResult, Observation};
use governor_core::ids::{GenerationId, PermitId};
use governor_core::lifecycle::pages::{ListStep, ListedPage};
use governor_core::lifecycle::permits::Holder;
use governor_core::lifecycle::status::Observed;
use governor_core::queue::job::{DispatchJob, DispatchOutcome};
use governor_core::relay::delivery::{Attempt, Delivery};
use governor_core::storage::mem::MemStore;
use governor_core::storage::store::{Store, Write};
use governor_core::wire::contract::{Command, Reply};
use governor_core::Ms;

use crate::rng::Rng;
use crate::world::Stats;

/// The master key sealed copies open with.
pub const MASTER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A call the driver made, for the world to carry out.
#[derive(Clone, Debug)]
pub enum Call {
    Submit(DispatchJob),
    Page { cursor: Option<String>, limit: u32 },
    Lookup(Vec<GenerationId>),
    Deliver(Delivery),
}

/// The world's answer to a [`Call`].
#[derive(Clone, Debug)]
pub enum Answer {
    Submitted(DispatchOutcome),
    Page(ListedPage),
    LookedUp(Vec<Observed>),
    Delivered(Attempt),
}

/// A reconciliation run the driver is in (watched through `observe`).
#[derive(Clone, Debug)]
pub struct Recon {
    pub started: Ms,
    /// The schedule's finished runs when it began: more at its end means it completed.
    pub runs: u64,
    /// What stopped it early, if an injected fault did: a Sync 5xx, timeout
    /// or 429 on a page, or the `other` backoff such a 429 set.
    pub fault: bool,
    /// Pages fetched so far.
    pub pages: u32,
}

/// What the world and the driver's I/O share.
pub struct Shared {
    pub now: Ms,
    pub rng: Rng,
    pub store: MemStore,
    pub account: Option<String>,
    /// The armed alarm (durable: it survives a restart).
    pub alarm: Option<Ms>,
    /// Calls made since the world last looked, with their slot.
    pub calls: Vec<(u64, Call)>,
    pub answers: BTreeMap<u64, Answer>,
    pub next_slot: u64,
    pub recon: Option<Recon>,
    /// Reconciliation runs an injected fault (or, unless
    /// `starvable_listing`, a starved listing) stopped: (began, retried at).
    pub faulted_runs: Vec<(Ms, Ms)>,
    pub starvable_listing: bool,
    pub lease_ttl_ms: Ms,
    /// Report accepted deliveries as failed (see `Params::lying_relay`).
    pub lying_relay: bool,
    /// The driver's last `Dispatch` handed out a job: a dispatch loop that
    /// is not running now stopped at its per-wake bound (or was cut off by a
    /// restart), not because nothing could go (see `World::work_conserving`).
    pub loop_found_work: bool,
    /// The last command the driver applied (its variant), for reports.
    pub last_command: String,
    /// What the driver's steps counted.
    pub stats: Stats,
    /// Permits held before the command being applied (id, adopted).
    held_before: BTreeMap<PermitId, bool>,
    /// The command being applied is a webhook / part of a listing.
    webhook: bool,
    observe: bool,
    listing: bool,
    dispatch: bool,
    trace: bool,
}

impl Shared {
    pub fn new(now: Ms, seed: u64, starvable_listing: bool, lease_ttl_ms: Ms) -> Self {
        Shared {
            now,
            rng: Rng::new(seed ^ 0x005E_ED0F_D21E),
            store: MemStore::default(),
            account: None,
            alarm: None,
            calls: Vec::new(),
            answers: BTreeMap::new(),
            next_slot: 0,
            recon: None,
            faulted_runs: Vec::new(),
            starvable_listing,
            lease_ttl_ms,
            lying_relay: false,
            loop_found_work: false,
            last_command: String::new(),
            stats: Stats::default(),
            held_before: BTreeMap::new(),
            webhook: false,
            observe: false,
            listing: false,
            dispatch: false,
            trace: std::env::var("DST_TRACE").is_ok(),
        }
    }

    fn held(state: &AccountState) -> BTreeMap<PermitId, bool> {
        state.permits.held().iter().map(|p| (p.id, matches!(p.holder, Holder::Adopted(_)))).collect()
    }

    fn before(&mut self, state: &AccountState, c: &Command) {
        self.stats.commands += 1;
        if self.trace {
            let c = format!("{c:?}");
            eprint!("{} {} -> ", self.now - 1_700_000_000_000, &c[..c.len().min(160)]);
        }
        self.webhook = matches!(c, Command::Webhook { .. });
        self.observe = matches!(c, Command::Observe { .. });
        self.dispatch = matches!(c, Command::Dispatch);
        let name = format!("{c:?}");
        self.last_command = name.split([' ', '(', '{']).next().unwrap_or_default().to_owned();
        self.listing = matches!(c, Command::ListStart | Command::Listed { .. } | Command::LookedUp { .. });
        if self.listing {
            self.held_before = Self::held(state);
        }
        match c {
            Command::ListStart => {
                let runs = state.reconciliation.schedule.runs;
                self.recon = Some(Recon { started: self.now, runs, fault: false, pages: 0 });
            }
            Command::Listed { page } => {
                if let Some(r) = self.recon.as_mut() {
                    match page {
                        ListedPage::Items { .. } => r.pages += 1,
                        _ => r.fault = true,
                    }
                }
            }
            _ => {}
        }
    }

    fn after(&mut self, state: &AccountState, reply: &Reply) {
        if self.trace {
            let r = format!("{reply:?}");
            eprintln!("{}", &r[..r.len().min(120)]);
        }
        if self.dispatch {
            self.loop_found_work = matches!(reply, Reply::Dispatch(_));
        }
        if let (true, Reply::Ack { released }) = (self.webhook, reply) {
            self.stats.released_by_webhook += u64::from(*released);
        }
        if let (true, Reply::Ack { released }) = (self.observe, reply) {
            self.stats.released_by_observe += u64::from(*released);
        }
        if !self.listing {
            return;
        }
        let after = Self::held(state);
        let before = &self.held_before;
        self.stats.released_by_reconcile += before.keys().filter(|id| !after.contains_key(*id)).count() as u64;
        self.stats.adoptions +=
            after.iter().filter(|(id, adopted)| **adopted && !before.contains_key(*id)).count() as u64;
        if reply != &Reply::List(ListStep::Done) {
            return;
        }
        let Some(r) = self.recon.take() else { return };
        if state.reconciliation.schedule.runs > r.runs {
            self.stats.reconciliations += 1;
            return;
        }
        self.stats.reconcile_failed += 1;
        // Refused for budget while a Sync 429's backoff holds `other`: the fault's doing.
        let backoff =
            state.rates.backoff.get(&governor_core::rates::class::RateClass::Other).is_some_and(|b| b.until > self.now);
        // Refused for budget after its first page: a starved listing.
        let starved = r.pages > 0 && !self.starvable_listing;
        if starved && !(r.fault || backoff) {
            self.stats.listings_starved += 1;
        }
        if r.fault || backoff || starved {
            let retry = state.reconciliation.schedule.next_at.unwrap_or(self.now).max(self.now);
            // Older ones can no longer matter to a permit's bound.
            let horizon = self.now.saturating_sub(self.lease_ttl_ms);
            self.faulted_runs.retain(|(_, retry)| *retry > horizon);
            self.faulted_runs.push((r.started, retry));
        }
    }
}

/// The driver's I/O in the simulated world.
pub struct SimIo(pub Rc<RefCell<Shared>>);

/// Waits for the world's answer in `slot`.
struct Wait(Rc<RefCell<Shared>>, u64);

impl Future for Wait {
    type Output = Answer;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer> {
        match self.0.borrow_mut().answers.remove(&self.1) {
            Some(a) => Poll::Ready(a),
            None => Poll::Pending,
        }
    }
}

impl SimIo {
    async fn ask(&self, call: Call) -> Answer {
        let slot = {
            let mut sh = self.0.borrow_mut();
            sh.next_slot += 1;
            let slot = sh.next_slot;
            sh.calls.push((slot, call));
            slot
        };
        Wait(self.0.clone(), slot).await
    }
}

impl Io for SimIo {
    async fn open(&self) -> IoResult<()> {
        Ok(())
    }

    fn with_store<T>(&self, f: impl FnOnce(&dyn Store) -> T) -> IoResult<T> {
        Ok(f(&self.0.borrow().store))
    }

    fn write(&self, writes: &[Write]) -> IoResult<()> {
        self.0.borrow_mut().store.write(writes);
        Ok(())
    }

    fn stored_account(&self) -> Option<String> {
        self.0.borrow().account.clone()
    }

    fn store_account(&self, name: &str) -> IoResult<()> {
        self.0.borrow_mut().account = Some(name.to_owned());
        Ok(())
    }

    async fn set_alarm(&self, in_ms: Ms) -> IoResult<()> {
        let mut sh = self.0.borrow_mut();
        sh.alarm = Some(sh.now + in_ms.max(1));
        Ok(())
    }

    fn now(&self) -> Ms {
        self.0.borrow().now
    }

    fn jitter(&self) -> f64 {
        self.0.borrow_mut().rng.unit()
    }

    async fn master_key(&self) -> Option<Secret> {
        Some(Secret::new(MASTER.to_owned()))
    }

    async fn submit(&self, _key: &Secret, job: &DispatchJob, _timeout_ms: Ms) -> DispatchOutcome {
        match self.ask(Call::Submit(job.clone())).await {
            Answer::Submitted(o) => o,
            _ => DispatchOutcome::Transient,
        }
    }

    async fn list_batches(&self, _key: &Secret, _limit: u32, _timeout_ms: Ms) -> ListedPage {
        // The simulated world has no batches: a batch listing never proves anything.
        ListedPage::Failed
    }

    async fn list_page(&self, _key: &Secret, limit: u32, cursor: Option<&str>, _timeout_ms: Ms) -> ListedPage {
        match self.ask(Call::Page { cursor: cursor.map(str::to_owned), limit }).await {
            Answer::Page(p) => p,
            _ => ListedPage::Failed,
        }
    }

    async fn lookup(&self, _key: &Secret, ids: &[GenerationId], _timeout_ms: Ms) -> Vec<Observed> {
        match self.ask(Call::Lookup(ids.to_vec())).await {
            Answer::LookedUp(o) => o,
            _ => Vec::new(),
        }
    }

    async fn deliver(&self, delivery: &Delivery, _local_mode: bool, _timeout_ms: Ms) -> Attempt {
        match self.ask(Call::Deliver(delivery.clone())).await {
            Answer::Delivered(Attempt::Status(200)) if self.0.borrow().lying_relay => Attempt::Status(503),
            Answer::Delivered(a) => a,
            _ => Attempt::Unreachable,
        }
    }

    fn observe(&self, step: Observation<'_>) {
        let mut sh = self.0.borrow_mut();
        match step {
            Observation::Before(state, c) => sh.before(state, c),
            Observation::After(state, r) => sh.after(state, r),
        }
    }
}
