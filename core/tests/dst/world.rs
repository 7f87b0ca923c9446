//! The simulated world around one account: clients and the Worker's request
//! handling, the account object (its alarm, dispatch loop, relay deliveries
//! and reconciliation, restarts), the network between them and Sync, and
//! the invariants checked after every step.
//!
//! A history is a list of [`Step`]s drawn from a seed; each step carries its
//! own random word, so dropping steps (shrinking) leaves the others
//! meaningful. Everything that happens between steps (Sync answering,
//! generations ending, webhooks arriving, the alarm firing) is an event in
//! one time-ordered queue, drawn from the world's own seeded generator.

use std::cell::{Ref, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use governor_core::account::{apply, AccountState};
use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::{AdmitRequest, Hold};
use governor_core::config::limits::Limits;
use governor_core::config::Config;
use governor_core::driver::{Driver, IoResult};
use governor_core::ids::{GenerationId, PermitId, TicketId};
use governor_core::lifecycle::answer;
use governor_core::lifecycle::limited::LimitKind;
use governor_core::lifecycle::pages::ListedPage;
use governor_core::lifecycle::permits::Holder;
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::lifecycle::settle;
use governor_core::lifecycle::status::Observed;
use governor_core::queue::job::{DispatchJob, DispatchOutcome};
use governor_core::queue::job::{JobSpec, JobState};
use governor_core::relay::delivery::Attempt;
use governor_core::relay::delivery::RelayRequest;
use governor_core::storage::store::IdempotencyState;
use governor_core::wire::contract::{Command, Refusal, Reply};
use governor_core::Ms;

use crate::io::{Answer as IoAnswer, Call, Shared, SimIo};
#[path = "faults.rs"]
mod faults;

use crate::rng::Rng;
use crate::sync::{Processed, Sync};

/// The account the Worker names (managed keys: its Sync key is configured).
const ACCOUNT: &str = "a-sim";

/// A running piece of the object's work (a call, the alarm handler).
type Task = Pin<Box<dyn Future<Output = IoResult<()>>>>;

/// The deployment's configuration around the drawn limits: managed keys,
/// so the object always holds the account's Sync key.
fn config(p: &Params) -> Config {
    let vars = |name: &str| match name {
        "GOVERNOR_CLIENT_KEYS" => Some(r#"{"client-key-0123456789":"sim"}"#.to_owned()),
        "SYNC_API_KEYS" => Some(r#"{"sim":"sk-sim-0123456789"}"#.to_owned()),
        _ => None,
    };
    let mut c = Config::from_vars(&vars).expect("the simulation's configuration");
    c.limits = if p.raised_override { World::lowered(&p.limits) } else { p.limits.clone() };
    c.timeouts.create_ms = p.timeout_ms;
    c.timeouts.list_ms = p.timeout_ms;
    c
}
const MODELS: [Option<&str>; 3] = [None, Some("lipsync-2"), Some("sync-3")];

/// Everything a seed fixes besides the steps: the account's limits and how
/// hostile the world is.
#[derive(Clone, Debug)]
pub struct Params {
    pub limits: Limits,
    pub clients: u8,
    pub gen_max: Ms,
    pub timeout_ms: Ms,
    pub p_lost: f64,
    pub p_dup: f64,
    pub p_late: f64,
    pub p_5xx: f64,
    pub p_timeout: f64,
    pub p_noid: f64,
    pub p_neterr: f64,
    pub p_fail_gen: f64,
    /// Let outcomes the governor cannot see be ones where Sync did create the
    /// generation: a 5xx or connection error after the create, and (for
    /// queued jobs) a timeout or a 2xx without an id. Strict only: the core
    /// once released the permit on those (fixed, core/tests/dst_findings.rs).
    pub ambiguous: bool,
    /// Restart the object while a queued job's submission is on the wire.
    /// Strict only: the resumed submission once spent no rate budget (fixed);
    /// one answered 429 still frees its permit and can be canceled although
    /// the first send may have created it (an ignored test in dst_findings.rs).
    pub restart_mid_submit: bool,
    /// Hold the idempotency table to `max_records` exactly. Strict only: a
    /// keyed `respond-async` create admitted at once once took a record
    /// without the bound check (fixed).
    pub exact_idempotency_bound: bool,
    /// Hold a reconciliation run that needs more pages than the budget lets
    /// it have in a row to the liveness bound. Off by default: the core
    /// abandons a run when a later page is refused its budget and lists again
    /// from the first page, so while clients spend the rest of `other`, a
    /// listing longer than the reserved share can starve (see
    /// core/tests/dst_findings.rs); the bound then counts those runs' delay
    /// like a fault's.
    pub starvable_listing: bool,
    /// A broken executor, to show the invariants catch one: the object's
    /// relay reports a delivery the client's hook accepted as failed (as a
    /// driver that dropped its `Delivered` report would). Never drawn.
    pub lying_relay: bool,
    /// The vars are below Sync's real limit and an operator override brings
    /// them up (issue 19 finding 1: restarts with the override in force).
    pub raised_override: bool,
}

impl Params {
    pub fn from_seed(seed: u64, strict: bool) -> Self {
        let ambiguous = strict;
        let mut r = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        let window = r.range(1_000, 4_000);
        let margin = r.range(20, 200);
        let mut l =
            Limits::for_window(r.range(2, 6) as u32, r.range(5, 15) as u32, r.range(1, 4) as u32, window, margin);
        l.extra[0].rate.limit = r.range(2, 5) as u32;
        l.extra[0].rate.burst = l.extra[0].rate.limit;
        if r.chance(0.2) {
            // Paced generate bucket (GCRA on top of the log).
            l.generate.burst = r.range(1, u64::from(l.generate.limit)) as u32;
        }
        l.reconcile.min_ms = r.range(300, 1_000);
        l.reconcile.max_ms = l.reconcile.min_ms * r.range(2, 8);
        l.reconcile.page_size = r.range(1, 4) as u32;
        l.concurrency.reservation_ttl_ms = 3 * l.reconcile.max_ms + r.range(0, 10_000);
        l.concurrency.lease_ttl_ms = 600_000;
        l.backoff.base_ms = r.range(100, 500);
        l.backoff.cap_ms = r.range(1_000, 8_000);
        l.relay.base_ms = r.range(50, 200);
        l.relay.cap_ms = r.range(500, 3_000);
        l.relay.max_age_ms = r.range(3_000, 20_000);
        l.relay.max_pending = r.range(3, 10) as u32;
        l.relay.max_bytes = r.range(1_000, 4_000);
        l.queue.max_depth = r.range(3, 10) as u32;
        l.queue.max_bytes = r.range(2_000, 20_000);
        l.queue.retry_ms = r.range(50, 300);
        l.queue.retention_ms = r.range(20_000, 90_000);
        l.idempotency.ttl_ms = if strict {
            r.range(10_000, 60_000)
        } else {
            // A key's TTL shorter than its reservation's lets a retry in while
            // the first request is in flight (see the report): not by default.
            l.concurrency.reservation_ttl_ms + r.range(0, 30_000)
        };
        l.idempotency.max_records = r.range(4, 12) as u32;
        l.idempotency.max_bytes = r.range(2_000, 8_000);
        l.idempotency.max_body_bytes = r.range(40, 200);
        Params {
            limits: l,
            clients: r.range(2, 4) as u8,
            gen_max: r.range(1_000, 20_000),
            timeout_ms: 1_500,
            p_lost: r.unit() * 0.3,
            p_dup: r.unit() * 0.3,
            p_late: r.unit() * 0.2,
            p_5xx: r.unit() * 0.08,
            p_timeout: r.unit() * 0.08,
            p_noid: r.unit() * 0.05,
            p_neterr: r.unit() * 0.05,
            p_fail_gen: r.unit() * 0.3,
            ambiguous,
            restart_mid_submit: strict,
            exact_idempotency_bound: strict,
            starvable_listing: strict,
            lying_relay: false,
            raised_override: r.chance(0.3),
        }
    }
}

/// One step of a history.
#[derive(Clone, Debug)]
pub enum Op {
    /// A request of another class (`upload` spends `other` too), maybe held.
    Other {
        client: u8,
        upload: bool,
        hold: bool,
    },
    /// `POST /v2/generate`: maybe keyed, maybe held (`Prefer: wait`), maybe
    /// with the client's own `webhookUrl` (relayed).
    Create {
        client: u8,
        key: Option<u8>,
        hold: bool,
        hook: bool,
        model: u8,
    },
    /// `Prefer: respond-async`: queue the job when it cannot go now.
    Enqueue {
        client: u8,
        key: Option<u8>,
        hook: bool,
        prio: i8,
        size: u16,
        model: u8,
    },
    /// A status read of one generation (or a list), seen passing through.
    Read {
        pick: u16,
        list: bool,
    },
    Cancel {
        pick: u16,
    },
    Ticket {
        pick: u16,
    },
    Status,
    /// Traffic on the same Sync key that bypasses the governor.
    Outside {
        read: bool,
    },
    /// A signed webhook of an ended generation posted again.
    ReplayWebhook {
        pick: u16,
    },
    /// The object's runtime restarts: memory gone, tables kept.
    Restart,
    Idle,
    /// A callback URL posts another generation's id (signatures off).
    ForgedCallback {
        pick: u16,
    },
    /// A `respond-async` create past the queued-body cap.
    OversizedEnqueue {
        client: u8,
    },
    /// Rows with times in 2100, then a restart.
    HostileTimes,
    /// Shadow mode for `n` admissions, then enforce (each a redeployment).
    ShadowSpell {
        n: u8,
    },
}

#[derive(Clone, Debug)]
pub struct Step {
    pub gap: Ms,
    pub op: Op,
    pub r: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}ms {:?}", self.gap, self.op)
    }
}

pub fn history(seed: u64, steps: usize, p: &Params) -> Vec<Step> {
    let mut r = Rng::new(seed);
    let clients = u64::from(p.clients);
    (0..steps)
        .map(|_| {
            let gap = match r.weighted(&[80, 15, 5]) {
                0 => r.range(0, 200),
                1 => r.range(200, 2_000),
                _ => r.range(2_000, 15_000),
            };
            let client = r.below(clients) as u8;
            let key = if r.chance(0.5) { Some(r.below(6) as u8) } else { None };
            let op = match r.weighted(&[14, 18, 10, 6, 3, 3, 2, 5, 2, 2, 5, 2, 1, 1, 1]) {
                0 => Op::Other { client, upload: r.chance(0.2), hold: r.chance(0.3) },
                1 => Op::Create { client, key, hold: r.chance(0.3), hook: r.chance(0.4), model: r.below(3) as u8 },
                2 => Op::Enqueue {
                    client,
                    key,
                    hook: r.chance(0.4),
                    prio: r.range(0, 2) as i8 - 1,
                    size: r.range(10, 3_000) as u16,
                    model: r.below(3) as u8,
                },
                3 => Op::Read { pick: r.below(1_000) as u16, list: r.chance(0.3) },
                4 => Op::Cancel { pick: r.below(1_000) as u16 },
                5 => Op::Ticket { pick: r.below(1_000) as u16 },
                6 => Op::Status,
                7 => Op::Outside { read: r.chance(0.4) },
                8 => Op::ReplayWebhook { pick: r.below(1_000) as u16 },
                9 => Op::Restart,
                10 => Op::Idle,
                11 => Op::ForgedCallback { pick: r.below(1_000) as u16 },
                12 => Op::OversizedEnqueue { client },
                13 => Op::HostileTimes,
                _ => Op::ShadowSpell { n: r.range(1, 30) as u8 },
            };
            Step { gap, op, r: r.next() }
        })
        .collect()
}

/// What a history did, summed over runs.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub histories: u64,
    pub steps: u64,
    pub events: u64,
    pub commands: u64,
    pub sim_ms: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub held: u64,
    pub in_progress: u64,
    pub replays: u64,
    pub queued: u64,
    pub canceled: u64,
    pub creates: u64,
    pub created_outside: u64,
    pub deduplicated: u64,
    /// Creates whose key replayed a generation that had already ended.
    pub deduplicated_ended: u64,
    pub dispatched: u64,
    pub upstream_429_rate: u64,
    pub upstream_429_concurrency: u64,
    pub upstream_5xx: u64,
    pub timeouts: u64,
    pub no_id: u64,
    pub net_errors: u64,
    pub webhooks_sent: u64,
    pub webhooks_lost: u64,
    pub webhooks_duplicated: u64,
    pub webhooks_late: u64,
    pub webhooks_replayed: u64,
    pub reads: u64,
    pub released_by_webhook: u64,
    pub released_by_observe: u64,
    pub released_by_reconcile: u64,
    pub reconciliations: u64,
    pub reconcile_failed: u64,
    /// Runs abandoned when a later page was refused its budget.
    pub listings_starved: u64,
    pub adoptions: u64,
    pub restarts: u64,
    pub restarts_deferred: u64,
    pub relays: u64,
    pub relayed_twice: u64,
    pub alarms: u64,
    pub peak_permits: u64,
    /// Issue 19's faults injected (forged callbacks, oversized bodies,
    /// hostile stored times, shadow spells).
    pub hostile: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        macro_rules! sum { ($($f:ident),*) => { $( self.$f += o.$f; )* } }
        sum!(
            histories,
            steps,
            events,
            commands,
            sim_ms,
            admitted,
            rejected,
            held,
            in_progress,
            replays,
            queued,
            canceled,
            creates,
            created_outside,
            deduplicated,
            deduplicated_ended,
            dispatched,
            upstream_429_rate,
            upstream_429_concurrency,
            upstream_5xx,
            timeouts,
            no_id,
            net_errors,
            webhooks_sent,
            webhooks_lost,
            webhooks_duplicated,
            webhooks_late,
            webhooks_replayed,
            reads,
            released_by_webhook,
            released_by_observe,
            released_by_reconcile,
            reconciliations,
            reconcile_failed,
            listings_starved,
            adoptions,
            restarts,
            restarts_deferred,
            relays,
            relayed_twice,
            alarms,
            hostile
        );
        self.peak_permits = self.peak_permits.max(o.peak_permits);
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "histories {}  steps {}  events {}  commands {}  simulated {:.1} h",
            self.histories,
            self.steps,
            self.events,
            self.commands,
            self.sim_ms as f64 / 3_600_000.0
        )?;
        writeln!(
            f,
            "clients: admitted {}  refused by the governor {}  held polls {}  409 in progress {}  replays {}  queued {}  canceled {}  reads {}",
            self.admitted, self.rejected, self.held, self.in_progress, self.replays, self.queued, self.canceled, self.reads
        )?;
        writeln!(
            f,
            "sync: created {} (queued jobs {})  outside {}  deduplicated {} (of ended generations {})  429 rate {}  429 concurrency {}  5xx {}  timeouts {}  2xx without id {}  connection errors {}",
            self.creates,
            self.dispatched,
            self.created_outside,
            self.deduplicated,
            self.deduplicated_ended,
            self.upstream_429_rate,
            self.upstream_429_concurrency,
            self.upstream_5xx,
            self.timeouts,
            self.no_id,
            self.net_errors
        )?;
        writeln!(
            f,
            "webhooks: sent {}  lost {}  duplicated {}  late {}  replayed {}  relayed deliveries {}  ends relayed more than once {}",
            self.webhooks_sent,
            self.webhooks_lost,
            self.webhooks_duplicated,
            self.webhooks_late,
            self.webhooks_replayed,
            self.relays,
            self.relayed_twice
        )?;
        write!(
            f,
            "permits freed by webhook {}  by status read {}  by reconciliation {}  reconciliations {} (failed {}, starved mid-listing {})  adoptions {}  restarts {} (deferred mid-submit {})  alarms {}  peak permits {}  issue-19 faults {}",
            self.released_by_webhook,
            self.released_by_observe,
            self.released_by_reconcile,
            self.reconciliations,
            self.reconcile_failed,
            self.listings_starved,
            self.adoptions,
            self.restarts,
            self.restarts_deferred,
            self.alarms,
            self.peak_permits,
            self.hostile
        )
    }
}

/// How a request's trip goes, decided when it is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Normal,
    NoId,
    /// No answer in time; `reached`: Sync got (and processed) it anyway.
    Timeout {
        reached: bool,
    },
    NetErr {
        reached: bool,
    },
    ServerError {
        processed: bool,
    },
}

#[derive(Clone, Debug)]
enum Answer {
    /// A generation and the status Sync's answer gives it: `PENDING` when
    /// new, its current status when a key replays it (an ended one's final).
    Created(String, &'static str),
    NoId,
    Limited(LimitKind),
    ServerError,
    Ok,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A client request the Worker forwards (generate with a permit, or any other class).
    Client {
        class: String,
        permit: Option<PermitId>,
        key: Option<IdempotencyKey>,
        hook: bool,
        model: Option<String>,
    },
    Read {
        in_flight: Vec<GenerationId>,
        ids: Vec<String>,
    },
    Refetch,
    Submit {
        job: DispatchJob,
        epoch: u64,
        slot: u64,
    },
    Page {
        epoch: u64,
        slot: u64,
        cursor: Option<String>,
        limit: u32,
    },
    Lookup {
        epoch: u64,
        slot: u64,
        ids: Vec<GenerationId>,
    },
    Outside {
        create: bool,
    },
}

#[derive(Clone, Debug)]
struct Req {
    kind: Kind,
    fate: Fate,
    answer: Option<Answer>,
    body: String,
}

#[derive(Clone, Debug)]
enum Event {
    Arrive(u64),
    Respond(u64),
    GenEnd(String),
    Webhook { gen: String, status: String, relay: bool },
    HoldRetry(u64),
    Delivered { epoch: u64, slot: u64, id: u64, attempt: Attempt },
}

#[derive(Clone, Debug)]
struct Holding {
    admit: AdmitRequest,
    deadline: Ms,
    hook: bool,
    /// For a status read: the generations it reads.
    read: Vec<String>,
}

#[derive(Clone, Debug)]
struct TicketInfo {
    id: TicketId,
    /// Client and key, when the job was keyed.
    key: Option<(String, String)>,
    canceled: bool,
}

pub struct World {
    p: Params,
    l: Limits,
    config: Config,
    /// What the object's I/O shares with the world (the store, the alarm, the calls).
    sh: Rc<RefCell<Shared>>,
    driver: Rc<Driver<SimIo>>,
    /// The alarm handler, while it runs.
    alarm_task: Option<Task>,
    /// Calls into the object still running (a webhook's dispatch).
    tasks: Vec<Task>,
    /// A violation seen while the object ran (reported after the event).
    fault: Option<String>,
    /// Relay deliveries the client's hook accepted (200) while their object lived.
    accepted: BTreeSet<u64>,
    sync: Sync,
    now: Ms,
    rng: Rng,
    events: BTreeMap<(Ms, u64), Event>,
    seq: u64,
    epoch: u64,
    reqs: BTreeMap<u64, Req>,
    holds: BTreeMap<u64, Holding>,
    tickets: Vec<TicketInfo>,
    /// Scoped client key → the generation its client was told about.
    told: BTreeMap<String, String>,
    /// Scoped client key → the permit of its admitted request.
    keyed_permits: BTreeMap<String, PermitId>,
    /// Keys of `respond-async` creates admitted at once (they skip the bound).
    async_keys: BTreeSet<String>,
    /// Ticket → the generations its submissions were answered with.
    job_gens: BTreeMap<TicketId, BTreeSet<String>>,
    /// Generations whose end was put in the relay outbox.
    relayed: BTreeSet<String>,
    pub stats: Stats,
    slack: Ms,
    /// When the object last restarted (its interrupted alarm is retried at once).
    restarted_at: Option<Ms>,
}

pub type Check = Result<(), String>;

fn scoped(k: &IdempotencyKey) -> String {
    format!("{}\u{1f}{}", k.client, k.key)
}

fn job_key(ticket: &str) -> String {
    format!("sync-governor-{ticket}")
}

/// Sync's 429 body for a limit of `kind`.
fn limited_body(kind: LimitKind) -> String {
    match kind {
        LimitKind::Rate => r#"{"statusCode":429,"errorCode":"rate_limit_exceeded"}"#.to_owned(),
        LimitKind::Concurrency => {
            r#"{"statusCode":429,"errorCode":"concurrency_limit_exceeded","message":"Concurrency limit reached"}"#
                .to_owned()
        }
    }
}

fn id_in(body: &str) -> Option<GenerationId> {
    answer::created_id(body.as_bytes())
}

impl World {
    pub fn new(p: Params, seed: u64) -> Self {
        let l = p.limits.clone();
        let other_span = l.other.span_ms();
        // How late a lost end may be noticed beyond one reconciliation period
        // when no fault stops a run (faulted runs add their own delay, see
        // `fault_delay`): the listing may wait for an upstream backoff
        // (`backoff.cap_ms`) and for budget (a refused page postpones the run
        // until a unit frees: up to a span, twice), a run is retried
        // `reconcile.min_ms` after a failure, its pages and lookup take up to
        // a timeout each, and the alarm runs relay deliveries (up to 300 ms
        // each in this model) and a dispatch loop before it.
        let slack = l.backoff.cap_ms
            + 2 * other_span
            + l.reconcile.min_ms
            + 6 * p.timeout_ms
            + u64::from(l.relay.max_pending) * 300
            + 2_000;
        let now = 1_700_000_000_000;
        let sh = Rc::new(RefCell::new(Shared::new(now, seed, p.starvable_listing, l.concurrency.lease_ttl_ms)));
        sh.borrow_mut().lying_relay = p.lying_relay;
        let config = config(&p);
        let driver = Rc::new(Driver::new(SimIo(sh.clone()), config.clone()));
        let mut w = World {
            sync: Sync::new(&l),
            l,
            p,
            config,
            sh,
            driver,
            alarm_task: None,
            tasks: Vec::new(),
            fault: None,
            accepted: BTreeSet::new(),
            now,
            rng: Rng::new(seed ^ 0x0123_4567_89AB_CDEF),
            events: BTreeMap::new(),
            seq: 0,
            epoch: 0,
            reqs: BTreeMap::new(),
            holds: BTreeMap::new(),
            tickets: Vec::new(),
            told: BTreeMap::new(),
            keyed_permits: BTreeMap::new(),
            async_keys: BTreeSet::new(),
            job_gens: BTreeMap::new(),
            relayed: BTreeSet::new(),
            stats: Stats::default(),
            slack,
            restarted_at: None,
        };
        w.boot();
        if w.p.raised_override {
            w.set_override();
        }
        w
    }

    fn at(&mut self, t: Ms, e: Event) {
        self.seq += 1;
        self.events.insert((t.max(self.now), self.seq), e);
    }

    // ---- the account object: the shipped driver over the simulated I/O ------

    /// Keep `fut` running as one of the object's tasks, and run everything
    /// that can run now.
    fn spawn(&mut self, fut: impl Future<Output = IoResult<()>> + 'static) {
        self.tasks.push(Box::pin(fut));
        self.pump();
    }

    /// Poll every task of the object (each runs until it waits for the
    /// world), then carry out the calls they made.
    fn pump(&mut self) {
        self.sh.borrow_mut().now = self.now;
        let mut cx = Context::from_waker(Waker::noop());
        let mut failed = Vec::new();
        if let Some(t) = self.alarm_task.as_mut() {
            if let Poll::Ready(r) = t.as_mut().poll(&mut cx) {
                self.alarm_task = None;
                failed.extend(r.err());
            }
        }
        self.tasks.retain_mut(|t| match t.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                failed.extend(r.err());
                false
            }
            Poll::Pending => true,
        });
        for e in failed {
            self.fault.get_or_insert(format!("driver: the object failed: {}", e.0));
        }
        let calls = std::mem::take(&mut self.sh.borrow_mut().calls);
        for (slot, call) in calls {
            self.carry(slot, call);
        }
    }

    /// The world's answer to the driver's call in `slot` (dropped when the
    /// object that made it is gone).
    fn answer(&mut self, epoch: u64, slot: u64, a: IoAnswer) {
        if epoch == self.epoch {
            self.sh.borrow_mut().answers.insert(slot, a);
            self.pump();
        }
    }

    /// Carry out one call of the driver through the network.
    fn carry(&mut self, slot: u64, call: Call) {
        let epoch = self.epoch;
        match call {
            Call::Submit(job) => {
                if self.tickets.iter().any(|t| t.id == job.ticket && t.canceled) {
                    let why = format!("queue: canceled ticket {} handed out for submission", job.ticket);
                    self.fault.get_or_insert(why);
                }
                let fate = self.create_fate(true);
                self.send(Kind::Submit { job, epoch, slot }, fate);
            }
            Call::Page { cursor, limit } => {
                let fate = self.get_fate();
                self.send(Kind::Page { epoch, slot, cursor, limit }, fate);
            }
            Call::Lookup(ids) => {
                let fate = self.get_fate();
                self.send(Kind::Lookup { epoch, slot, ids }, fate);
            }
            Call::Deliver(d) => {
                if self.accepted.contains(&d.id) {
                    let why = format!("relay: delivery {} sent again after the client's hook accepted it", d.id);
                    self.fault.get_or_insert(why);
                }
                let id = d.id;
                let attempt = match self.rng.weighted(&[70, 15, 5, 10]) {
                    0 => Attempt::Status(200),
                    1 => Attempt::Status(503),
                    2 => Attempt::Status(410),
                    _ => Attempt::Unreachable,
                };
                let t = self.now + self.rng.range(5, 300);
                self.at(t, Event::Delivered { epoch, slot, id, attempt });
            }
        }
    }

    /// One call from the Worker into the object; its reply, unless the call
    /// is still running (a webhook's dispatch waits for Sync).
    fn call(&mut self, c: Command) -> Option<Reply> {
        let (d, out) = (self.driver.clone(), Rc::new(RefCell::new(None)));
        let slot = out.clone();
        self.spawn(async move {
            let reply = d.call(c, Some(ACCOUNT), None).await?;
            *slot.borrow_mut() = Some(reply);
            Ok(())
        });
        let reply = out.borrow_mut().take();
        reply
    }

    /// Settles the Worker sends off the client's path (`wait_until`), one
    /// after the other: each may run on while a dispatch it set off waits
    /// for Sync.
    fn settle(&mut self, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        let d = self.driver.clone();
        self.spawn(async move {
            for c in commands {
                d.call(c, Some(ACCOUNT), None).await?;
            }
            Ok(())
        });
    }

    /// A call the object answers without waiting for the world.
    fn reply(&mut self, c: Command) -> Reply {
        let what = format!("{c:?}");
        self.call(c).unwrap_or_else(|| {
            let why = format!("driver: the call {} waited for I/O", &what[..what.len().min(80)]);
            self.fault.get_or_insert(why);
            Reply::Ack { released: 0 }
        })
    }

    /// The account's hot state (the driver loads it before any call).
    fn state(&self) -> Ref<'_, AccountState> {
        self.driver.state().expect("the driver loaded the account")
    }

    fn fire_alarm(&mut self) -> Check {
        self.stats.alarms += 1;
        self.sh.borrow_mut().alarm = None;
        let d = self.driver.clone();
        self.alarm_task = Some(Box::pin(async move { d.alarm().await }));
        self.pump();
        Ok(())
    }

    /// A new object over the same tables (and the same durable alarm).
    fn boot(&mut self) {
        self.driver = Rc::new(Driver::new(SimIo(self.sh.clone()), self.config.clone()));
        let d = self.driver.clone();
        self.spawn(async move { d.load().await });
    }

    fn restart(&mut self) -> Check {
        self.stats.restarts += 1;
        self.restarted_at = Some(self.now);
        // What the tables say must be what memory said (less the live holds).
        let before = self.status_view();
        let interrupted = self.alarm_task.take().is_some();
        self.tasks.clear();
        {
            let mut sh = self.sh.borrow_mut();
            sh.recon = None;
            sh.calls.clear();
            sh.answers.clear();
        }
        self.epoch += 1;
        self.boot();
        let after = self.status_view();
        if before != after {
            return Err(format!("restart changed the account's status:\n before {before}\n after  {after}"));
        }
        if interrupted {
            // An interrupted alarm is retried.
            let mut sh = self.sh.borrow_mut();
            sh.alarm = Some(sh.alarm.map_or(self.now + 1, |a| a.min(self.now + 1)));
        }
        Ok(())
    }

    /// The status a client would read, on a copy (reading changes nothing).
    fn status_view(&self) -> String {
        let mut copy = self.state().clone();
        let sh = self.sh.borrow();
        match apply(&self.l, &mut copy, &sh.store, self.now, 0.5, Command::Status).reply {
            Reply::Status(mut s) => {
                s.queue.held = 0;
                s.storage.in_memory.held = 0;
                // When work is next due rests on memory-only state too (a
                // running listing, the queue's block): only what is pending must survive.
                s.pending.next_listing_in_ms = None;
                s.pending.next_submission_in_ms = None;
                // Held requests count toward their clients (live, not stored).
                s.clients.retain(|c| c.in_use + c.queued > 0);
                for c in &mut s.clients {
                    (c.held, c.target_share) = (0, 0.0);
                    (c.usage, c.usage_share) = (c.in_use + c.queued, 0.0);
                }
                // Metrics are written every few seconds, not per command: a
                // restart may lose the last of them (a counter reset).
                s.counters = Default::default();
                s.waits = governor_core::operations::metrics::Metrics::default().waits();
                s.series = governor_core::operations::series::Series::default().view(0);
                serde_json::to_string(&s).unwrap_or_default()
            }
            other => format!("{other:?}"),
        }
    }

    // ---- the network and Sync ----------------------------------------------

    fn create_fate(&mut self, queued: bool) -> Fate {
        let p = self.p.clone();
        let amb = p.ambiguous;
        let r = &mut self.rng;
        if r.chance(p.p_timeout) {
            // Sync may have the create either way (the Worker and the queue keep
            // the permit as unknown); a queued job's reaches Sync in strict mode.
            let reached = if queued { amb && r.chance(0.5) } else { r.chance(0.5) };
            return Fate::Timeout { reached };
        }
        if r.chance(p.p_neterr) {
            return Fate::NetErr { reached: amb && r.chance(0.5) };
        }
        if r.chance(p.p_5xx) {
            return Fate::ServerError { processed: amb && r.chance(0.5) };
        }
        if r.chance(p.p_noid) && (!queued || amb) {
            return Fate::NoId;
        }
        Fate::Normal
    }

    fn get_fate(&mut self) -> Fate {
        let p = self.p.clone();
        let r = &mut self.rng;
        if r.chance(p.p_timeout / 2.0) {
            return Fate::Timeout { reached: r.chance(0.5) };
        }
        if r.chance(p.p_5xx / 2.0) {
            return Fate::ServerError { processed: true };
        }
        Fate::Normal
    }

    fn send(&mut self, kind: Kind, fate: Fate) -> u64 {
        self.seq += 1;
        let id = self.seq;
        self.reqs.insert(id, Req { kind, fate, answer: None, body: String::new() });
        let margin = self.l.generate.margin_ms;
        let arrive = self.now + self.rng.range(0, margin);
        let reached = match fate {
            Fate::Timeout { reached } | Fate::NetErr { reached } => reached,
            _ => true,
        };
        if reached {
            self.at(arrive, Event::Arrive(id));
        }
        let back = match fate {
            Fate::Timeout { .. } => self.now + self.p.timeout_ms,
            Fate::NetErr { .. } => arrive + self.rng.range(0, 50),
            _ => arrive + self.rng.range(1, 300),
        };
        self.at(back, Event::Respond(id));
        id
    }

    fn arrive(&mut self, id: u64) -> Check {
        let Some(req) = self.reqs.get(&id).cloned() else { return Ok(()) };
        let now = self.now;
        let label = match &req.kind {
            Kind::Client { class, permit, .. } => format!("{class} permit {permit:?}"),
            Kind::Submit { job, .. } => format!("submit {} permit {}", job.ticket, job.permit),
            Kind::Read { .. } => "read".into(),
            Kind::Refetch => "replay read-back".into(),
            Kind::Page { .. } => "reconcile page".into(),
            Kind::Lookup { .. } => "reconcile lookup".into(),
            Kind::Outside { .. } => "outside".into(),
        };
        let spends: Vec<String>;
        let (buckets, governed, create): (Vec<&str>, bool, bool) = match &req.kind {
            Kind::Client { class, permit, .. } => {
                spends = self.l.buckets(&class.as_str().into()).iter().map(ToString::to_string).collect();
                (spends.iter().map(String::as_str).collect(), true, permit.is_some())
            }
            Kind::Submit { .. } => (vec!["generate"], true, true),
            Kind::Outside { create: true } => (vec!["generate"], false, true),
            Kind::Outside { create: false } => (vec!["other"], false, false),
            _ => (vec!["other"], true, false),
        };
        let limited = self.sync.arrive(&buckets, now, governed.then_some(label.as_str()))?;
        let mut body = String::new();
        let answer = if limited {
            Answer::Limited(LimitKind::Rate)
        } else if matches!(req.fate, Fate::ServerError { processed: false }) {
            Answer::ServerError
        } else if create {
            let (key, model, hook) = match &req.kind {
                Kind::Client { key, model, hook, .. } => (key.as_ref().map(scoped), model.clone(), *hook),
                Kind::Submit { job, .. } => (Some(job.idempotency_key.clone()), None, self.rng.chance(0.4)),
                _ => (None, MODELS[self.rng.below(3) as usize].map(str::to_owned), false),
            };
            let duration = self.rng.range(100, self.p.gen_max);
            let failed = self.rng.chance(self.p.p_fail_gen);
            match self.sync.create(now, key.as_deref(), governed, model, hook, duration, failed)? {
                Processed::Limited(k) => Answer::Limited(k),
                Processed::Existing(g, status) => {
                    self.stats.deduplicated += 1;
                    if self.sync.gens[&g].ended.is_some() {
                        self.stats.deduplicated_ended += 1;
                    }
                    Answer::Created(g, status)
                }
                Processed::Created(g) => {
                    if governed {
                        self.stats.creates += 1;
                        if matches!(req.kind, Kind::Submit { .. }) {
                            self.stats.dispatched += 1;
                        }
                    } else {
                        self.stats.created_outside += 1;
                    }
                    let ends = self.sync.gens[&g].ends;
                    self.at(ends, Event::GenEnd(g.clone()));
                    Answer::Created(g, "PENDING")
                }
            }
        } else {
            match &req.kind {
                Kind::Read { ids, .. } => {
                    let items: Vec<String> = ids
                        .iter()
                        .filter_map(|g| {
                            self.sync.status(g.as_str()).map(|s| format!(r#"{{"id":"{g}","status":"{s}"}}"#))
                        })
                        .collect();
                    body = if items.len() == 1 && ids.len() == 1 {
                        items[0].clone()
                    } else {
                        format!("[{}]", items.join(","))
                    };
                }
                Kind::Lookup { ids, .. } => {
                    let items: Vec<String> = ids
                        .iter()
                        .filter_map(|g| {
                            self.sync.status(g.as_str()).map(|s| format!(r#"{{"id":"{g}","status":"{s}"}}"#))
                        })
                        .collect();
                    body = format!("[{}]", items.join(","));
                }
                Kind::Page { cursor, limit, .. } => {
                    let page = self.sync.list_page(now, cursor.as_deref(), *limit as usize);
                    body = serde_json::to_string(&page).unwrap_or_default();
                }
                _ => {}
            }
            Answer::Ok
        };
        let answer = match (answer, req.fate) {
            (Answer::Created(g, _), Fate::ServerError { .. }) => {
                let _ = g;
                Answer::ServerError
            }
            (Answer::Ok, Fate::ServerError { .. }) => Answer::ServerError,
            (Answer::Created(..), Fate::NoId) => Answer::NoId,
            (a, _) => a,
        };
        if let Some(r) = self.reqs.get_mut(&id) {
            r.answer = Some(answer);
            r.body = body;
        }
        Ok(())
    }

    fn respond(&mut self, id: u64) -> Check {
        let Some(req) = self.reqs.remove(&id) else { return Ok(()) };
        // What came back: nothing (timeout), a connection error, or Sync's answer.
        let answer = match req.fate {
            Fate::Timeout { .. } => {
                self.stats.timeouts += 1;
                None
            }
            Fate::NetErr { .. } => {
                self.stats.net_errors += 1;
                None
            }
            _ => req.answer.clone(),
        };
        match &answer {
            Some(Answer::Limited(LimitKind::Rate)) => self.stats.upstream_429_rate += 1,
            Some(Answer::Limited(LimitKind::Concurrency)) => self.stats.upstream_429_concurrency += 1,
            Some(Answer::ServerError) => self.stats.upstream_5xx += 1,
            Some(Answer::NoId) => self.stats.no_id += 1,
            _ => {}
        }
        match req.kind {
            Kind::Client { class, permit: Some(permit), key, .. } => {
                let mut ended = None;
                let command = match (&answer, req.fate) {
                    // No answer in time (504) or the connection failed: Sync may
                    // have taken it, so the Worker keeps the permit until a
                    // listing tells (src/handler.rs: `Command::Unsettled`).
                    (None, _) => Some(Command::Unsettled { permit }),
                    (Some(a), _) => {
                        let (status, body) = match a {
                            Answer::Created(g, s) => (201, format!(r#"{{"id":"{g}","status":"{s}"}}"#)),
                            Answer::NoId => (200, "{}".to_owned()),
                            Answer::Limited(kind) => (429, limited_body(*kind)),
                            Answer::ServerError | Answer::Ok => (500, r#"{"statusCode":500}"#.to_owned()),
                        };
                        if let (Answer::Created(g, _), Some(k)) = (a, &key) {
                            self.tell(&scoped(k), g)?;
                        }
                        let body = if status == 201 && self.rng.chance(0.3) {
                            // Some answers are too large to keep for replays.
                            body.replace("}", &format!(r#","pad":"{}"}}"#, "x".repeat(200)))
                        } else {
                            body
                        };
                        ended = settle::ended_in_create(status, body.as_bytes());
                        settle::after_create(permit, status, body.as_bytes(), None, key.clone())
                    }
                };
                let _ = class;
                match command {
                    // The client's answer waits for this one (src/handler.rs).
                    Some(c @ Command::UpstreamLimited { .. }) => {
                        if let Reply::Rejected(_) = self.reply(c) {
                            self.stats.rejected += 1;
                        }
                        self.settle(ended.into_iter().collect());
                    }
                    // Bind, release: off the client's path, in order.
                    c => {
                        self.settle(c.into_iter().chain(ended).collect());
                    }
                }
            }
            Kind::Client { class, permit: None, .. } => {
                if let Some(Answer::Limited(kind)) = answer {
                    self.reply(Command::UpstreamLimited {
                        class: class.into(),
                        kind,
                        permit: None,
                        retry_after_ms: None,
                    });
                }
            }
            Kind::Read { in_flight, .. } => match answer {
                Some(Answer::Ok) => {
                    if let Some(c) = settle::observed(req.body.as_bytes(), &in_flight) {
                        self.settle(vec![c]);
                    }
                }
                Some(Answer::Limited(kind)) => {
                    let c =
                        Command::UpstreamLimited { class: "other".into(), kind, permit: None, retry_after_ms: None };
                    self.reply(c);
                }
                _ => {}
            },
            Kind::Refetch => {
                if let Some(Answer::Limited(kind)) = answer {
                    let c =
                        Command::UpstreamLimited { class: "other".into(), kind, permit: None, retry_after_ms: None };
                    self.reply(c);
                }
            }
            Kind::Submit { job, epoch, slot } => {
                if epoch != self.epoch {
                    return Ok(()); // the object that sent it is gone
                }
                // As src/upstream.rs::submit reads Sync's answer (answer::read_create).
                if let Some(Answer::Created(g, _)) = &answer {
                    let gens = self.job_gens.entry(job.ticket.clone()).or_default();
                    gens.insert(g.clone());
                    if gens.len() > 1 {
                        return Err(format!("queue: ticket {} created generations {gens:?} at Sync", job.ticket));
                    }
                }
                let outcome = match answer {
                    Some(Answer::Created(generation, status)) => {
                        let body = format!(r#"{{"id":"{generation}","status":"{status}"}}"#);
                        // Read as every create is (a replayed key's generation may have ended).
                        DispatchOutcome::from(answer::read_create(201, body.as_bytes(), None))
                    }
                    Some(Answer::Limited(kind)) => DispatchOutcome::Limited { kind, retry_after_ms: None },
                    _ => DispatchOutcome::Transient,
                };
                self.answer(epoch, slot, IoAnswer::Submitted(outcome));
            }
            Kind::Page { epoch, slot, .. } => {
                // As src/upstream.rs::list_active reads Sync's answer.
                let page = match answer {
                    Some(Answer::Ok) => {
                        let items: Vec<ActiveGeneration> = serde_json::from_str(&req.body).unwrap_or_default();
                        let count = items.len();
                        ListedPage::Items { items, count }
                    }
                    Some(Answer::Limited(kind)) => ListedPage::Limited { body: limited_body(kind) },
                    _ => ListedPage::Failed,
                };
                self.answer(epoch, slot, IoAnswer::Page(page));
            }
            Kind::Lookup { epoch, slot, .. } => {
                // As src/upstream.rs::statuses: nothing read is no statuses.
                let ended: Vec<Observed> = match answer {
                    Some(Answer::Ok) => {
                        #[derive(serde::Deserialize)]
                        struct L {
                            id: String,
                            status: governor_core::lifecycle::status::GenerationStatus,
                        }
                        serde_json::from_str::<Vec<L>>(&req.body)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|g| Observed { id: g.id.into(), status: g.status, output_ms: None })
                            .collect()
                    }
                    _ => Vec::new(),
                };
                self.answer(epoch, slot, IoAnswer::LookedUp(ended));
            }
            Kind::Outside { .. } => {}
        }
        Ok(())
    }

    fn gen_end(&mut self, id: &str) {
        let Some(g) = self.sync.end(id, self.now) else { return };
        if !g.governed {
            return;
        }
        if self.rng.chance(self.p.p_lost) {
            self.stats.webhooks_lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.p.p_dup) {
            self.stats.webhooks_duplicated += 1;
            self.rng.range(2, 3)
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.rng.chance(self.p.p_late) {
                self.stats.webhooks_late += 1;
                self.rng.range(self.l.reconcile.max_ms, 3 * self.l.reconcile.max_ms)
            } else {
                self.rng.range(5, 1_500)
            };
            self.stats.webhooks_sent += 1;
            let e = Event::Webhook { gen: g.id.clone(), status: g.final_status.to_owned(), relay: g.hook };
            self.at(self.now + delay, e);
        }
    }

    fn webhook(&mut self, gen: String, status: String, relay: bool) -> Check {
        let relay = relay.then(|| RelayRequest {
            url: "https://client.example/hook".into(),
            body: format!(r#"{{"id":"{gen}","status":"{status}"}}"#),
            headers: vec![("content-type".into(), "application/json".into())],
        });
        let queued_before = self.state().outbox.counters.next_id;
        // The object hands a freed permit to the queue at once (the call
        // runs on while its submissions wait for Sync).
        let status = governor_core::lifecycle::status::GenerationStatus::parse(&status);
        self.call(Command::Webhook { generation: gen.as_str().into(), status, relay, output_ms: None });
        if self.state().permits.holds_generation(&gen.as_str().into()) {
            return Err(format!("permits: the webhook of {gen} left its permit held"));
        }
        if self.state().outbox.counters.next_id > queued_before && !self.relayed.insert(gen.clone()) {
            // The same end relayed twice (a duplicate or replayed webhook):
            // the account remembers relayed ends, so this never happens.
            self.stats.relayed_twice += 1;
            return Err(format!("relay: the end of {gen} was queued for the client twice"));
        }
        Ok(())
    }

    // ---- clients and the Worker ---------------------------------------------

    fn client(&mut self, admit: AdmitRequest, wait: Option<Ms>, hook: bool, read: Vec<String>) -> Check {
        self.seq += 1;
        let id = self.seq;
        let mut admit = admit;
        let deadline = self.now + wait.unwrap_or(0);
        if let Some(w) = wait {
            admit.hold = Some(Hold::first(w));
        }
        self.holds.insert(id, Holding { admit, deadline, hook, read });
        self.client_try(id)
    }

    fn client_try(&mut self, id: u64) -> Check {
        let Some(h) = self.holds.get(&id).cloned() else { return Ok(()) };
        let reply = self.reply(Command::Admit(h.admit.clone()));
        match reply {
            Reply::Rejected(r) if h.admit.hold.is_some() => {
                let remaining = h.deadline.saturating_sub(self.now);
                let next = h.admit.hold.as_ref().and_then(|held| held.next(&r, remaining));
                let (hold, sleep) = next.clone().unwrap_or((Hold::first(0), 0));
                if next.is_none() || self.rng.chance(0.03) {
                    if let Some(ticket) = r.hold {
                        self.reply(Command::Unhold { ticket, reason: None });
                    }
                    self.stats.rejected += 1;
                    self.holds.remove(&id);
                } else {
                    self.stats.held += 1;
                    if let Some(x) = self.holds.get_mut(&id) {
                        x.admit.hold = Some(hold);
                    }
                    self.at(self.now + sleep, Event::HoldRetry(id));
                }
                return Ok(());
            }
            _ => {}
        }
        self.holds.remove(&id);
        let admit = h.admit;
        match reply {
            Reply::Admitted(a) => {
                self.stats.admitted += 1;
                if let (Some(k), Some(p)) = (&admit.idempotency, a.permit) {
                    let sk = scoped(k);
                    if let Some(prev) = self.keyed_permits.get(&sk) {
                        if self.state().permits.held().iter().any(|x| x.id == *prev) {
                            return Err(format!(
                                "idempotency: key {sk:?} admitted again (permit {p}) while its first request (permit {prev}) is still in flight"
                            ));
                        }
                    }
                    if admit.enqueue.is_some() {
                        self.async_keys.insert(sk.clone());
                    }
                    self.keyed_permits.insert(sk, p);
                }
                let fate = if a.permit.is_some() { self.create_fate(false) } else { self.get_fate() };
                let kind = Kind::Client {
                    class: admit.class.to_string(),
                    permit: a.permit,
                    key: admit.idempotency.clone(),
                    hook: h.hook,
                    model: admit.model.clone(),
                };
                if admit.report_in_flight {
                    self.send(Kind::Read { in_flight: a.in_flight, ids: h.read.clone() }, fate);
                } else {
                    self.send(kind, fate);
                }
            }
            Reply::Rejected(_) => self.stats.rejected += 1,
            Reply::Queued(t) => {
                let key = admit.idempotency.as_ref().map(|k| (k.client.clone(), k.key.clone()));
                match self.tickets.iter().find(|x| x.id == t.id) {
                    Some(known) => {
                        if known.key != key {
                            return Err(format!("queue: ticket {} returned for another key {key:?}", t.id));
                        }
                    }
                    None => {
                        self.stats.queued += 1;
                        self.tickets.push(TicketInfo { id: t.id.clone(), key, canceled: false });
                    }
                }
            }
            Reply::Replay(r) => {
                self.stats.replays += 1;
                let told = id_in(&r.body).or(r.refetch.clone());
                if let Some(g) = told {
                    self.tell(&scoped(&r.key), g.as_str())?;
                }
                if let Some(k) = &admit.idempotency {
                    if r.key != *k {
                        return Err(format!("idempotency: key {k:?} replayed the answer of {:?}", r.key));
                    }
                }
                if r.refetch.is_some() {
                    // The Worker reads the generation back (one `other` request, spent by the core).
                    let fate = self.get_fate();
                    self.send(Kind::Refetch, fate);
                }
            }
            Reply::Refused(Refusal::InProgress { .. }) => self.stats.in_progress += 1,
            other => return Err(format!("unexpected reply to an admission: {other:?}")),
        }
        Ok(())
    }

    /// A client learns which generation its key created.
    fn tell(&mut self, key: &str, g: &str) -> Check {
        match self.told.get(key) {
            Some(prev) if prev != g => {
                Err(format!("idempotency: key {key:?} was answered with generation {g} after {prev}"))
            }
            _ => {
                self.told.insert(key.to_owned(), g.to_owned());
                Ok(())
            }
        }
    }

    /// Generations a client reads: recent governed ones (one, or a list).
    fn read_targets(&self, pick: u16, list: bool) -> Vec<String> {
        let ids: Vec<&String> = self.sync.gens.values().filter(|g| g.governed).map(|g| &g.id).rev().take(8).collect();
        if ids.is_empty() {
            return vec!["gen999999".into()];
        }
        let n = if list { 3 } else { 1 };
        (0..n).map(|i| ids[(pick as usize + i * 5) % ids.len()].clone()).collect()
    }

    // ---- the history --------------------------------------------------------

    /// Run everything due up to `t`.
    fn advance(&mut self, t: Ms) -> Check {
        loop {
            let next_event = self.events.keys().next().map(|k| k.0);
            let alarm = if self.alarm_task.is_some() { None } else { self.sh.borrow().alarm };
            let next = match (next_event, alarm) {
                (Some(e), Some(a)) => e.min(a),
                (Some(e), None) => e,
                (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > t {
                break;
            }
            self.now = self.now.max(next);
            if alarm == Some(next) && next_event.is_none_or(|e| a_first(next, e)) {
                self.fire_alarm()?;
            } else {
                let (_, e) = self.events.pop_first().expect("an event");
                self.stats.events += 1;
                self.event(e)?;
            }
            if let Some(why) = self.fault.take() {
                return Err(why);
            }
            self.work_conserving()?;
        }
        self.now = self.now.max(t);
        Ok(())
    }

    fn event(&mut self, e: Event) -> Check {
        match e {
            Event::Arrive(id) => self.arrive(id),
            Event::Respond(id) => self.respond(id),
            Event::GenEnd(id) => {
                self.gen_end(&id);
                Ok(())
            }
            Event::Webhook { gen, status, relay } => self.webhook(gen, status, relay),
            Event::HoldRetry(id) => self.client_try(id),
            Event::Delivered { epoch, slot, id, attempt } => {
                if epoch == self.epoch && attempt == Attempt::Status(200) {
                    self.stats.relays += 1;
                    // The object it answered is alive: it records the outcome now.
                    self.accepted.insert(id);
                }
                self.answer(epoch, slot, IoAnswer::Delivered(attempt));
                Ok(())
            }
        }
    }

    pub fn step(&mut self, s: &Step) -> Check {
        self.advance(self.now + s.gap)?;
        self.stats.steps += 1;
        let mut r = Rng::new(s.r);
        match s.op.clone() {
            Op::Other { client, upload, hold } => {
                let class = if upload { "upload" } else { "other" };
                let admit = AdmitRequest { class: class.into(), ..AdmitRequest::default() };
                let wait = hold.then(|| r.range(100, 5_000));
                let _ = client;
                self.client(admit, wait, false, vec![])?;
            }
            Op::Create { client, key, hold, hook, model } => {
                let admit = AdmitRequest {
                    class: "generate".into(),
                    permit: true,
                    model: MODELS[model as usize % 3].map(str::to_owned),
                    idempotency: key.map(|k| IdempotencyKey { client: format!("c{client}"), key: format!("k{k}") }),
                    callback: Some(format!("cb{:x}", s.r).into()),
                    ..AdmitRequest::default()
                };
                let wait = hold.then(|| r.range(100, 5_000));
                self.client(admit, wait, hook, vec![])?;
            }
            Op::Enqueue { client, key, hook, prio, size, model } => {
                let model = MODELS[model as usize % 3].map(str::to_owned);
                let spec = JobSpec {
                    client: format!("c{client}"),
                    priority: i64::from(prio),
                    body: format!(r#"{{"model":"m","hook":{hook},"pad":"{}"}}"#, "x".repeat(size as usize)),
                    model: model.clone(),
                    idempotency_key: key.map(|k| format!("k{k}")),
                    cost: None,
                };
                let admit = AdmitRequest {
                    class: "generate".into(),
                    permit: true,
                    model,
                    enqueue: Some(spec),
                    idempotency: key.map(|k| IdempotencyKey { client: format!("c{client}"), key: format!("k{k}") }),
                    ..AdmitRequest::default()
                };
                self.client(admit, None, hook, vec![])?;
            }
            Op::Read { pick, list } => {
                self.stats.reads += 1;
                let admit = AdmitRequest { class: "other".into(), report_in_flight: true, ..AdmitRequest::default() };
                let read = self.read_targets(pick, list);
                self.client(admit, None, false, read)?;
            }
            Op::Cancel { pick } => {
                if !self.tickets.is_empty() {
                    let i = pick as usize % self.tickets.len();
                    let ticket = self.tickets[i].id.clone();
                    if let Reply::Ticket(v) = self.reply(Command::Cancel { ticket, client: None }) {
                        if v.status.as_str() != "CANCELED" {
                            return Err(format!("queue: cancel answered {v:?}"));
                        }
                        if !self.tickets[i].canceled {
                            self.stats.canceled += 1;
                        }
                        self.tickets[i].canceled = true;
                    }
                }
            }
            Op::Ticket { pick } => {
                if !self.tickets.is_empty() {
                    let t = self.tickets[pick as usize % self.tickets.len()].clone();
                    match self.reply(Command::Ticket { ticket: t.id.clone(), client: None }) {
                        Reply::Ticket(v) => {
                            if let Some(g) = &v.generation_id {
                                let at_sync = self.sync.by_key.get(&job_key(t.id.as_str()));
                                if at_sync.map(String::as_str) != Some(g.as_str()) {
                                    return Err(format!(
                                        "queue: ticket {} says generation {g}, Sync has {at_sync:?} for its key",
                                        t.id
                                    ));
                                }
                            }
                        }
                        Reply::Refused(Refusal::UnknownTicket) => {}
                        other => return Err(format!("unexpected reply to a ticket read: {other:?}")),
                    }
                }
            }
            Op::Status => {
                self.reply(Command::Status);
                // A read sweeps expired records after it reads; read again (the
                // same instant changes nothing) and hold it to the tables.
                if let Reply::Status(s) = self.reply(Command::Status) {
                    let sh = self.sh.borrow();
                    let store = &sh.store;
                    let idem_bytes: u64 = store.idempotency.values().map(|r| r.bytes()).sum();
                    let outbox_bytes: u64 = store.outbox.values().map(|d| d.bytes()).sum();
                    let st = &s.storage;
                    if st.idempotency.count != store.idempotency.len() as u64 || st.idempotency.bytes != idem_bytes {
                        return Err(format!(
                            "storage: status says idempotency {:?}, the table holds {} rows / {idem_bytes} bytes",
                            st.idempotency,
                            store.idempotency.len()
                        ));
                    }
                    if st.outbox.count != store.outbox.len() as u64 || st.outbox.bytes != outbox_bytes {
                        return Err(format!(
                            "storage: status says outbox {:?}, the table holds {} rows / {outbox_bytes} bytes",
                            st.outbox,
                            store.outbox.len()
                        ));
                    }
                }
            }
            Op::Outside { read } => {
                let fate = Fate::Normal;
                self.send(Kind::Outside { create: !read }, fate);
            }
            Op::ReplayWebhook { pick } => {
                let ended: Vec<(String, &'static str, bool)> = self
                    .sync
                    .gens
                    .values()
                    .filter(|g| g.governed && g.ended.is_some())
                    .map(|g| (g.id.clone(), g.final_status, g.hook))
                    .collect();
                if !ended.is_empty() {
                    let (gen, status, hook) = ended[pick as usize % ended.len()].clone();
                    self.stats.webhooks_replayed += 1;
                    self.webhook(gen, status.to_owned(), hook)?;
                }
            }
            Op::Restart => {
                let submitting = self.reqs.values().any(|q| matches!(q.kind, Kind::Submit { .. }));
                if submitting && !self.p.restart_mid_submit {
                    self.stats.restarts_deferred += 1;
                } else {
                    self.restart()?;
                }
            }
            Op::Idle => {}
            Op::ForgedCallback { pick } => self.forged_callback(pick)?,
            Op::OversizedEnqueue { client } => self.oversized_enqueue(client)?,
            Op::HostileTimes => self.hostile_times()?,
            Op::ShadowSpell { n } => self.shadow_spell(n)?,
        }
        // Anything the step set off at this very moment.
        self.advance(self.now)?;
        self.check()
    }

    /// After the history: no new work, time passes until everything settles;
    /// then every permit, job and key must have come to rest.
    pub fn drain(&mut self) -> Check {
        let l = &self.l;
        let horizon = self.now
            + l.concurrency.reservation_ttl_ms
            + self.p.gen_max * (u64::from(l.queue.max_depth) + 2)
            + 8 * l.reconcile.max_ms
            + l.queue.retry_ms * 256 * 4
            + 3 * self.slack
            + 120_000;
        while self.now < horizon {
            self.advance(self.now + 500)?;
            self.check()?;
            let quiet = self.state().permits.in_use() == 0
                && self.state().queue.depth() == 0
                && self.sync.active_at(self.now).next().is_none()
                && self.events.is_empty()
                && self.alarm_task.is_none()
                && self.tasks.is_empty();
            if quiet {
                break;
            }
        }
        let st = self.state();
        if st.permits.in_use() > 0 {
            return Err(format!("liveness: permits still held after the drain: {:?}", st.permits.held()));
        }
        if st.queue.depth() > 0 {
            return Err(format!("liveness: queued jobs never reached Sync: {:?}", st.queue.jobs()));
        }
        if st.idempotency.in_flight() > 0 {
            return Err("liveness: idempotency keys still in flight after the drain".into());
        }
        Ok(())
    }

    /// How long reconciliation runs stopped by an injected fault kept it
    /// waiting after `from`. A page Sync answers 5xx, 429 (its own count,
    /// which outside traffic shares) or not at all ends the run, and the core
    /// (core/src/lifecycle/listing.rs) tries again `reconcile.min_ms` later; a Sync 429
    /// also pauses `other` for up to `backoff.cap_ms` (exponential, full
    /// jitter), and a run refused its budget meanwhile waits for the pause to
    /// end. None of that is bounded by a number of faults (they are drawn at
    /// random), so the liveness bound counts, for each such run, the time from
    /// its start (or `from`) to its retry: exactly the documented backoff as
    /// the core applied it. Runs refused their first page for plain budget
    /// are not faults: the reserved share must fit them in the slack. Runs
    /// refused a later page count too unless `starvable_listing` (a known
    /// gap of the core, not a fault).
    fn fault_delay(&self, from: Ms) -> Ms {
        self.sh
            .borrow()
            .faulted_runs
            .iter()
            .filter(|(_, retry)| *retry > from)
            .map(|(began, retry)| retry - (*began).max(from))
            .sum()
    }

    /// Work the account can do now is not left waiting (checked after every
    /// event, with all of the object's tasks run until they wait for the
    /// world): when no dispatch loop is running, no queued job is
    /// admissible now (a permit free, its rates and budget allow it, its turn
    /// in the fair order: what `Command::Dispatch` would hand out). The
    /// driver's own bounds are the only exceptions, each with the alarm
    /// armed to resume at once: a loop that stopped at its per-wake bound
    /// (its last look still found work) or was cut off by a restart, and the
    /// queue's backoff while the object has no Sync key.
    fn work_conserving(&self) -> Check {
        if self.driver.dispatching() {
            return Ok(()); // one loop at a time: it takes the next job when Sync answers
        }
        let Some(st) = self.driver.state() else { return Ok(()) };
        if st.queue.depth() == 0 || (!st.queue.has_ready(self.now) && st.queue.stale_submitting().is_none()) {
            return Ok(());
        }
        let sh = self.sh.borrow();
        // The alarm the driver armed runs the work at once: after a loop's
        // per-wake bound (or a restart that cut the loop off), after the
        // backoff without a key, when the work became due with time while
        // the alarm handler is still running (the runtime runs one alarm at
        // a time), and after a call a client or the operator waits for (an
        // admission, a read, a cancel, a held request leaving, a 429 to
        // answer, an admin call: it never waits for another job's submission).
        let resumes = sh.alarm.is_some_and(|a| a <= self.now + 1);
        let client_waits = matches!(
            sh.last_command.as_str(),
            "Admit" | "Status" | "Ticket" | "Ledger" | "Cancel" | "Unhold" | "UpstreamLimited" | "Admin"
        );
        let excused = sh.loop_found_work
            || st.sending.block.is_some()
            || self.alarm_task.is_some()
            || self.restarted_at == Some(self.now)
            || client_waits;
        if resumes && excused {
            return Ok(());
        }
        let mut copy = st.clone();
        let out = apply(&self.config.limits, &mut copy, &sh.store, self.now, 0.5, Command::Dispatch);
        match out.reply {
            Reply::Dispatch(job) if std::env::var("DST_DEBUG").is_ok() => Err(format!(
                "liveness: {} admissible, first at {:?}, pending then {:?} now {:?}, held {:?}, jobs {:?}, permits {:?}",
                job.ticket,
                (self.now - 200..=self.now).find(|t| {
                    let mut c = st.clone();
                    matches!(apply(&self.config.limits, &mut c, &sh.store, *t, 0.5, Command::Dispatch).reply, Reply::Dispatch(_))
                }),
                st.pending(&st.ops.overrides.apply(&self.config.limits), self.now - 22),
                st.pending(&st.ops.overrides.apply(&self.config.limits), self.now),
                st.line.held,
                st.queue.jobs(),
                st.permits.held()
            )),
            Reply::Dispatch(job) => Err(format!(
                "liveness: queued job {} is admissible now and no dispatch loop runs (after {}; alarm armed for {:?}, now {})",
                job.ticket, sh.last_command, sh.alarm, self.now
            )),
            _ => Ok(()),
        }
    }

    /// The invariants, after every step.
    pub fn check(&mut self) -> Check {
        self.work_conserving()?;
        let l = &self.l;
        let st_ref = self.driver.state().ok_or("driver: the account is not loaded")?;
        let st = &*st_ref;
        let sh = self.sh.borrow();
        let store = &sh.store;
        let now = self.now;
        self.stats.peak_permits = self.stats.peak_permits.max(u64::from(st.permits.in_use()));

        // Permits: the governor's own never exceed the cap.
        let own = st.permits.held().iter().filter(|p| !matches!(p.holder, Holder::Adopted(_))).count() as u32;
        if own > l.concurrency.cap {
            return Err(format!("permits: {own} held by governed requests, cap {}", l.concurrency.cap));
        }
        // Every permit ends within a reconciliation period (plus slack) of its generation's end.
        for p in st.permits.held() {
            match p.generation() {
                None => {
                    if now > p.expires + self.slack {
                        return Err(format!("permits: reservation {p:?} outlived its TTL (now {now})"));
                    }
                }
                Some(g) => {
                    let Some(gen) = self.sync.gens.get(g.as_str()) else {
                        return Err(format!("permits: {p:?} holds a generation Sync never created"));
                    };
                    if let Some(e) = gen.ended {
                        let from = e.max(p.bound_at.unwrap_or(p.since));
                        let faults = self.fault_delay(from);
                        let bound = from + l.reconcile.max_ms + self.slack + faults;
                        if now > bound {
                            return Err(format!(
                                "permits: {p:?} still held {} ms after its generation ended at {e} (bound {} ms: period {} + slack {} + faulted runs {faults})",
                                now - from,
                                bound - from,
                                l.reconcile.max_ms,
                                self.slack
                            ));
                        }
                    }
                }
            }
        }
        let mut held_gens = BTreeSet::new();
        for g in st.permits.held().iter().filter_map(|p| p.generation()) {
            if !held_gens.insert(g) {
                return Err(format!("permits: generation {g} holds two permits: {:?}", st.permits.held()));
            }
        }
        let table: BTreeSet<PermitId> = store.permits.keys().copied().collect();
        let memory: BTreeSet<PermitId> = st.permits.held().iter().map(|p| p.id).collect();
        if table != memory {
            return Err(format!("storage: permits table {table:?} is not memory's {memory:?}"));
        }

        // The queue: bounded, bodies out of memory and in their rows.
        let waiting: Vec<_> = store.jobs.values().filter(|j| j.is_waiting()).collect();
        if waiting.len() as u32 > l.queue.max_depth || st.queue.depth() != waiting.len() as u32 {
            return Err(format!(
                "storage: {} waiting jobs in the table, {} in memory, bound {}",
                waiting.len(),
                st.queue.depth(),
                l.queue.max_depth
            ));
        }
        let body_bytes: u64 = store.job_bodies.values().map(|b| b.len() as u64).sum();
        if body_bytes > l.queue.max_bytes || body_bytes != st.queue.bytes() {
            return Err(format!(
                "storage: queued bodies hold {body_bytes} bytes, memory counts {}, bound {}",
                st.queue.bytes(),
                l.queue.max_bytes
            ));
        }
        let bodies: BTreeSet<&TicketId> = store.job_bodies.keys().collect();
        let waiting_tickets: BTreeSet<&TicketId> = waiting.iter().map(|j| &j.ticket).collect();
        if bodies != waiting_tickets {
            return Err(format!("storage: body rows {bodies:?} are not the waiting jobs {waiting_tickets:?}"));
        }
        if st.queue.jobs().iter().any(|j| !j.spec.body.is_empty()) {
            return Err("storage: a queued body is held in memory".into());
        }
        // Idempotency: bounded, counters agree with the table.
        let totals = &st.idempotency.totals;
        let idem_bytes: u64 = store.idempotency.values().map(|r| r.bytes()).sum();
        if totals.records != store.idempotency.len() as u64 || totals.bytes != idem_bytes {
            return Err(format!(
                "storage: idempotency totals {totals:?}, the table holds {} rows / {idem_bytes} bytes",
                store.idempotency.len()
            ));
        }
        let allowed = if self.p.exact_idempotency_bound {
            0
        } else {
            store.idempotency.keys().filter(|k| self.async_keys.contains(*k)).count() as u64
        };
        if totals.records > u64::from(l.idempotency.max_records) + allowed || idem_bytes > l.idempotency.max_bytes {
            return Err(format!("storage: idempotency table over its bounds: {totals:?}"));
        }
        let in_flight_rows =
            store.idempotency.values().filter(|r| matches!(r.state, IdempotencyState::InFlight { .. })).count();
        if in_flight_rows != st.idempotency.in_flight() {
            return Err(format!(
                "storage: {in_flight_rows} in-flight key rows, {} in memory",
                st.idempotency.in_flight()
            ));
        }
        // The outbox: bounded, counters agree.
        let outbox_bytes: u64 = store.outbox.values().map(|d| d.bytes()).sum();
        if store.outbox.len() as u32 > l.relay.max_pending
            || outbox_bytes > l.relay.max_bytes
            || st.outbox.pending() != store.outbox.len()
            || st.outbox.bytes() != outbox_bytes
        {
            return Err(format!(
                "storage: outbox {} rows / {outbox_bytes} bytes (memory {} / {}), bounds {} / {}",
                store.outbox.len(),
                st.outbox.pending(),
                st.outbox.bytes(),
                l.relay.max_pending,
                l.relay.max_bytes
            ));
        }
        // Admissions: at most `limit` rows per class are kept.
        let mut rows: BTreeMap<&str, u32> = BTreeMap::new();
        for ((class, _), n) in &store.admissions {
            *rows.entry(class.as_str()).or_default() += n;
        }
        for (class, n) in rows {
            let limit = l.rate(&class.into()).map_or(0, |r| r.limit);
            if n > limit {
                return Err(format!("storage: {n} admission rows of {class}, limit {limit}"));
            }
        }
        // Finished jobs are swept after their retention.
        let stale = store
            .jobs
            .values()
            .filter(|j| j.is_finished() && j.updated_at + l.queue.retention_ms + 2 * 60_000 + 15_000 < now)
            .count();
        if stale > 0 {
            return Err(format!("storage: {stale} finished jobs kept past their retention"));
        }

        // Queued jobs against Sync: a job that reached Sync is never canceled or
        // failed, and a ticket's generation is the one its key created.
        for t in &self.tickets {
            let at_sync = self.sync.by_key.get(&job_key(t.id.as_str()));
            let Some(job) = store.jobs.get(&t.id) else { continue };
            match (&job.state, at_sync) {
                (JobState::Canceled, Some(g)) => {
                    return Err(format!("queue: ticket {} is CANCELED but its key created {g} at Sync", t.id));
                }
                (JobState::Done { generation: None, status, .. }, Some(g)) => {
                    return Err(format!("queue: ticket {} is {status} but its key created {g} at Sync", t.id));
                }
                (JobState::Submitted { generation }, s) | (JobState::Done { generation: Some(generation), .. }, s)
                    if s.map(String::as_str) != Some(generation.as_str()) =>
                {
                    return Err(format!("queue: ticket {} says {generation}, Sync has {s:?} for its key", t.id));
                }
                (JobState::Done { generation: Some(g), status, .. }, _) => {
                    let gen = &self.sync.gens[g.as_str()];
                    if gen.ended.is_none() || gen.final_status != status.as_str() {
                        return Err(format!(
                            "queue: ticket {} is {status}, Sync says {g} is {:?}",
                            t.id,
                            self.sync.status(g.as_str())
                        ));
                    }
                }
                _ => {}
            }
            if t.canceled && job.state != JobState::Canceled {
                return Err(format!("queue: ticket {} was canceled, now {:?}", t.id, job.state));
            }
        }
        // No client key maps to two generations, nor to two tickets.
        let mut by_key: BTreeMap<String, Vec<GenerationId>> = BTreeMap::new();
        let live = |at: Ms| at.saturating_add(l.idempotency.ttl_ms) > now;
        for r in store.idempotency.values().filter(|r| live(r.at)) {
            if let IdempotencyState::Done { generation: Some(g), .. } = &r.state {
                by_key.entry(r.key.clone()).or_default().push(g.clone());
            }
        }
        let mut jobs_by_key: BTreeMap<String, Vec<&TicketId>> = BTreeMap::new();
        for j in store.jobs.values() {
            if let Some(k) = &j.spec.idempotency_key {
                let sk = format!("{}\u{1f}{k}", j.spec.client);
                jobs_by_key.entry(sk.clone()).or_default().push(&j.ticket);
                let g = match &j.state {
                    JobState::Submitted { generation } => Some(generation.clone()),
                    JobState::Done { generation, .. } => generation.clone(),
                    _ => None,
                };
                if let Some(g) = g {
                    by_key.entry(sk).or_default().push(g);
                }
            }
        }
        for (k, gens) in &by_key {
            if gens.iter().any(|g| *g != gens[0]) {
                return Err(format!("idempotency: key {k:?} maps to generations {gens:?}"));
            }
        }
        for (k, tickets) in &jobs_by_key {
            if tickets.len() > 1 {
                return Err(format!("idempotency: key {k:?} has tickets {tickets:?}"));
            }
        }
        // A key the governor forgot may be answered afresh.
        let known: BTreeSet<String> = store
            .idempotency
            .values()
            .filter(|r| live(r.at))
            .map(|r| r.key.clone())
            .chain(jobs_by_key.keys().cloned())
            .collect();
        self.told.retain(|k, _| known.contains(k));
        Ok(())
    }

    pub fn finish(&mut self) {
        let io = self.sh.borrow().stats.clone();
        self.stats.add(&io);
        self.stats.histories = 1;
        self.stats.sim_ms = self.now - 1_700_000_000_000;
    }
}

fn a_first(alarm: Ms, event: Ms) -> bool {
    alarm <= event
}
