//! One account: its hot state in memory, its tables behind a [`Store`],
//! and the sans-IO [`apply`] that every Durable Object call goes through:
//! `(limits, state, store, now, jitter, command) -> Output { reply, writes, effects, wake }`.
//! The caller owns the clock, the randomness and all I/O: it applies the
//! writes to its tables, runs the effects and arms the alarm at `wake`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admission::idempotency::Idempotency;
use crate::admission::request::Held;
use crate::admission::request::{AdmitRequest, Reason};
use crate::config::limits::Limits;
use crate::lifecycle::durations::Durations;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::permits::CONCURRENCY;
use crate::lifecycle::permits::{Holder, Permit, PermitId, Permits};
use crate::lifecycle::reconcile::Schedule;
use crate::lifecycle::status::GenerationStatus;
use crate::lifecycle::status::Observed;
use crate::operations::admin::Paused;
use crate::operations::metrics::Metrics;
use crate::operations::overrides::Overrides;
use crate::queue::job::DispatchBlock;
use crate::queue::Queue;
use crate::rates::backoff::Backoff;
use crate::rates::class::RateClass;
use crate::rates::window::WindowLog;
use crate::relay::delivery::Delivery;
use crate::relay::Outbox;
use crate::storage::row::{StoreError, StoreResult};
use crate::storage::store::{Store, Write, SCHEMA_VERSION};
use crate::wire::contract::{Command, Refusal, Reply};
use crate::wire::headers::PolicyState;
use crate::wire::view::{
    BackoffView, BoundView, ConcurrencyView, InFlightView, MemoryView, QueueView, ReconcileView, RelayView, StatusView,
    StorageView,
};
use crate::Ms;

/// Batch permits kept at most from a stored row (the cap's bound).
const MAX_BATCH_PERMITS: usize = 100;
/// Generations remembered as ended before their bind.
const RECENT_ENDS: usize = 256;
/// Relay deliveries handed out per alarm: bounds the bodies in memory.
const DELIVERIES_PER_TICK: usize = 16;
/// Rows removed per sweep and table; a full batch sweeps again next command.
const SWEEP_BATCH: u32 = 256;
/// How often finished records are swept (a bounded batch each time).
const SWEEP_EVERY_MS: Ms = 60_000;
/// How often an active account tells the deployment's directory.
pub const ANNOUNCE_EVERY_MS: Ms = 60_000;

/// The account's hot state: what admission needs, in memory, bounded by the
/// limits (not by how long the account has lived). The tables are the truth.
#[derive(Clone, Debug, Default)]
pub struct AccountState {
    pub windows: BTreeMap<RateClass, WindowLog>,
    pub permits: Permits,
    /// Batch permits (Sync's Batch API): their own part and row.
    pub batches: crate::batch::BatchPermits,
    pub backoff: BTreeMap<RateClass, Backoff>,
    pub durations: Durations,
    pub reconcile: Schedule,
    pub outbox: Outbox,
    pub queue: Queue,
    pub idempotency: Idempotency,
    /// Orders held requests and queued jobs in one line.
    pub next_seq: u64,
    /// The pass-through Sync key, sealed, kept while the queue needs it.
    pub sealed_key: Option<String>,
    /// Held requests (`Prefer: wait`): live HTTP requests, so not persisted.
    pub held: Vec<Held>,
    /// Queued work that could not be sent (no Sync key): backing off. In
    /// memory only: after a restart the object finds out again.
    pub dispatch_block: Option<DispatchBlock>,
    /// Generations seen ending before their create was bound (a webhook can
    /// overtake the Worker's `Bind`): the bind then frees the permit at once.
    /// Bounded; in memory only (reconciliation covers a restart).
    /// (generation, status, when, the callback that said so).
    pub(crate) recent_ends: Vec<(String, GenerationStatus, Ms, Option<String>)>,
    /// A reconciliation run in progress (memory only: a restart lists again).
    pub(crate) listing: Option<crate::lifecycle::pages::Listing>,
    /// Rows written since the last flush (admissions, prunes).
    journal: Vec<Write>,
    /// Meta values as last written, to write only what changed.
    written: BTreeMap<&'static str, String>,
    written_permits: BTreeMap<PermitId, Permit>,
    sweep_at: Ms,
    /// Operator overrides of the configured limits (persisted).
    pub overrides: Overrides,
    /// An operator's pause (persisted).
    pub paused: Option<Paused>,
    /// Counters, histograms and the dashboard's series (persisted at most
    /// every few seconds).
    pub metrics: Metrics,
    /// When the directory last heard of the account (persisted).
    announced_at: Option<Ms>,
    /// The queued job a dispatch is sending now (memory only: after a
    /// restart a SUBMITTING job is one whose send was cut off).
    pub(crate) live_submission: Option<String>,
    /// The callback a webhook being applied came on (tags `recent_ends`).
    pub(crate) callback_said: Option<String>,
    /// The stored times were clamped to the first command's clock.
    pub(crate) clamped: bool,
    /// Unbound permits an operator force-released while their keyed create
    /// may still reach Sync, and when: their `Idempotency-Key` records stay
    /// until a complete listing begun after the release (persisted, bounded).
    pub(crate) released_keys: Vec<(PermitId, Ms)>,
    /// Cost budgets, learned costs and the job ledger ([`crate::budget`]).
    pub costs: crate::budget::costs::Costs,
    /// Sharing the account among its clients (see [`crate::shares`]).
    pub shares: crate::shares::Shares,
}

/// What one command produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub reply: Reply,
    /// Rows to write, in order, in one transaction, before the reply leaves.
    pub writes: Vec<Write>,
    /// I/O the object runs after the writes (from the alarm).
    pub effects: Vec<Effect>,
    /// When the alarm must fire next, if ever.
    pub wake: Option<Ms>,
}

/// I/O the object performs on the core's behalf; each reports back as a
/// command.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// POST this payload to the client's URL, then `Command::Delivered`.
    Deliver(Delivery),
    /// Submit queued jobs while `Command::Dispatch` hands one out.
    Dispatch,
    /// List Sync's active generations, then `Command::Reconciled`.
    Reconcile,
}

fn meta_value<T: DeserializeOwned + Default>(meta: &BTreeMap<String, String>, key: &str) -> T {
    meta.get(key).and_then(|v| crate::wire::json::from_str(v).ok()).unwrap_or_default()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl AccountState {
    /// Load the hot state from the tables. Rows that do not decode were
    /// skipped by the store; a value that does not decode starts empty.
    pub fn load(store: &dyn Store, base: &Limits) -> StoreResult<Self> {
        let meta: BTreeMap<String, String> = store.meta()?.into_iter().collect();
        // The account's overrides first: a raised limit keeps its stamps
        // (restoring with the vars' limits would forget some inside the window).
        let overrides: Overrides = meta_value(&meta, "overrides");
        let effective;
        let limits = if overrides.is_empty() {
            base
        } else {
            effective = overrides.apply(base);
            &effective
        };
        let mut stamps: BTreeMap<RateClass, Vec<Ms>> = BTreeMap::new();
        for (class, at) in store.admissions()? {
            stamps.entry(class).or_default().push(at);
        }
        // Clients' own rate logs are `<class>@<client>` rows.
        let client_stamps: BTreeMap<String, Vec<Ms>> =
            stamps.extract_if(.., |c, _| c.as_str().contains('@')).map(|(c, s)| (c.as_str().to_owned(), s)).collect();
        let tats: BTreeMap<RateClass, Ms> = meta_value(&meta, "tat");
        let windows = stamps
            .into_iter()
            .filter_map(|(class, s)| {
                let rate = limits.rate(&class)?;
                Some((class.clone(), WindowLog::restore(s, tats.get(&class).copied().unwrap_or(0), rate)))
            })
            .collect();
        let permits = Permits::restore(store.permits()?, meta_value(&meta, "permit_next_id"));
        let cursor: Option<String> = meta_value(&meta, "queue_cursor");
        let mut state = AccountState {
            windows,
            permits,
            batches: meta_value::<crate::batch::BatchPermits>(&meta, "batches").bounded(MAX_BATCH_PERMITS),
            backoff: meta_value(&meta, "backoff"),
            durations: meta_value(&meta, "durations"),
            reconcile: meta_value(&meta, "reconcile"),
            outbox: Outbox::restore(store.outbox_schedule()?, meta_value(&meta, "relay")),
            queue: Queue::restore(store.waiting_jobs()?, cursor),
            idempotency: Idempotency::restore(store.in_flight_idempotency()?, meta_value(&meta, "idempotency")),
            next_seq: meta_value(&meta, "seq"),
            sealed_key: meta_value(&meta, "sealed_key"),
            overrides,
            paused: meta_value(&meta, "paused"),
            metrics: meta_value(&meta, "metrics"),
            announced_at: meta_value(&meta, "announced_at"),
            released_keys: meta_value(&meta, "released_keys"),
            costs: crate::budget::costs::Costs::restore(
                meta_value(&meta, "cost_book"),
                meta_value(&meta, "cost_learned"),
                meta_value(&meta, "cost_overrides"),
                crate::ledger::Ledger::restore(store.ledger().ledger_open()?, meta_value(&meta, "ledger")),
            ),
            shares: crate::shares::Shares::restore(
                meta_value(&meta, "shares"),
                meta_value(&meta, "fair_clock"),
                client_stamps,
                limits,
            ),
            ..AccountState::default()
        };
        // An in-flight key whose permit is gone (a skipped row, an older
        // layout) would answer "in progress" forever: its request ended.
        let orphans: Vec<PermitId> = state
            .idempotency
            .in_flight_permits()
            .filter(|p| !state.permits.held().iter().any(|h| h.id == *p))
            .filter(|p| !state.released_keys.iter().any(|(r, _)| r == p))
            .collect();
        for p in orphans {
            state.idempotency.settle(p, None, None, 0, &limits.idempotency);
        }
        state.written_permits = state.permits.held().iter().map(|p| (p.id, p.clone())).collect();
        for (key, value) in state.meta_values() {
            if meta.get(key) == Some(&value) {
                state.written.insert(key, value);
            }
        }
        Ok(state)
    }

    /// Every meta row, as it would be written now.
    fn meta_values(&self) -> Vec<(&'static str, String)> {
        let tats: BTreeMap<&RateClass, Ms> =
            self.windows.iter().filter(|(_, w)| w.tat() > 0).map(|(c, w)| (c, w.tat())).collect();
        vec![
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("tat", json(&tats)),
            ("permit_next_id", json(&self.permits.next_id())),
            ("backoff", json(&self.backoff)),
            ("batches", json(&self.batches)),
            ("durations", json(&self.durations)),
            ("reconcile", json(&self.reconcile)),
            ("relay", json(&self.outbox.counters)),
            ("idempotency", json(&self.idempotency.totals)),
            ("seq", json(&self.next_seq)),
            ("sealed_key", json(&self.sealed_key)),
            ("queue_cursor", json(&self.queue.last_client())),
            ("overrides", json(&self.overrides)),
            ("paused", json(&self.paused)),
            ("announced_at", json(&self.announced_at)),
            ("released_keys", json(&self.released_keys)),
            ("cost_book", json(&self.costs.book)),
            ("cost_learned", json(&self.costs.learned)),
            ("cost_overrides", json(&self.costs.overrides)),
            ("ledger", json(&self.costs.ledger.totals)),
            ("shares", json(&self.shares.row)),
            ("fair_clock", json(&self.shares.clock)),
        ]
    }

    pub(crate) fn journal(&mut self, w: Write) {
        self.journal.push(w);
    }

    /// Count one admission of `class` (every bucket it spends from).
    pub(crate) fn spend(&mut self, limits: &Limits, class: &RateClass, now: Ms) {
        for bucket in limits.buckets(class) {
            if let Some(rate) = limits.rate(&bucket) {
                let log = self.windows.entry(bucket.clone()).or_default();
                let (at, dropped_before) = log.record(rate, now);
                self.journal.push(Write::Admission { class: bucket.clone(), at });
                if let Some(before) = dropped_before {
                    self.journal.push(Write::PruneAdmissions { class: bucket.clone(), before });
                    if limits.shadow {
                        // Shadow admits past the limit, several in one
                        // millisecond: rows of one time outlive a prune by time.
                        self.journal.push(Write::TrimAdmissions { class: bucket, keep: rate.limit });
                    }
                }
            }
        }
    }

    /// Everything that changed since the last flush, as rows.
    fn flush(&mut self, limits: &Limits, now: Ms) -> Vec<Write> {
        let mut writes = std::mem::take(&mut self.journal);
        writes.extend(self.queue.take_writes());
        writes.extend(self.outbox.take_writes());
        writes.extend(self.idempotency.take_writes());
        let mut seen = BTreeMap::new();
        for p in self.permits.held() {
            if self.written_permits.get(&p.id) != Some(p) {
                writes.push(Write::PutPermit(p.clone()));
            }
            seen.insert(p.id, p.clone());
        }
        for (id, gone) in self.written_permits.iter().filter(|(id, _)| !seen.contains_key(id)) {
            writes.push(Write::DeletePermit(*id));
            // However the permit ended, its job's row closes with it.
            self.costs.permit_gone(&limits.costs, gone, now);
        }
        writes.extend(self.costs.ledger.take_writes().into_iter().map(Write::Ledger));
        self.written_permits = seen;
        for (key, value) in self.meta_values() {
            if self.written.get(key) != Some(&value) {
                writes.push(Write::Meta { key, value: value.clone() });
                self.written.insert(key, value);
            }
        }
        if let Some(value) = self.metrics.due_row(now) {
            writes.push(Write::Meta { key: "metrics", value });
        }
        writes
    }
}

/// Apply one command. `jitter` is a uniform sample in `[0, 1)`.
pub fn apply(
    limits: &Limits,
    state: &mut AccountState,
    store: &dyn Store,
    now: Ms,
    jitter: f64,
    command: Command,
) -> Output {
    let mut effects = Vec::new();
    if !state.clamped {
        state.clamped = true;
        state.clamp_times(&state.overrides.apply(limits), now);
    }
    // Operator overrides apply to every decision, from the next one on.
    let base = limits;
    let overridden;
    let limits = if state.overrides.is_empty() {
        base
    } else {
        overridden = state.overrides.apply(base);
        &overridden
    };
    let result = match command {
        Command::Admin(cmd) => state.admin(base, limits, store, now, cmd),
        Command::Status => Ok(Reply::Status(state.status(base, limits, now))),
        Command::Ledger { query, client } => {
            state.costs.page(store.ledger(), &query, client.as_deref()).map(Reply::Ledger)
        }
        command => state.step(limits, store, now, jitter, command, &mut effects),
    };
    let mut reply = match result {
        Ok(reply) => reply,
        Err(StoreError(_)) => Reply::Refused(Refusal::StorageUnavailable),
    };
    if let Reply::Admitted(a) = &mut reply {
        if state.announced_at.is_none_or(|at| at + ANNOUNCE_EVERY_MS <= now) {
            state.announced_at = Some(now);
            a.announce = true;
        }
    }
    if state.permits.in_use() > 0 || state.batches.in_use() > 0 {
        state.reconcile.arm(&limits.reconcile, now);
    }
    if let Err(StoreError(_)) = state.compact(limits, store, now) {
        // A sweep that could not read is tried again on the next command.
    }
    let writes = state.flush(limits, now);
    // An operator's new limits count for the next alarm too (a raised cap
    // lets queued work go at once).
    let changed = if matches!(reply, Reply::Admin(crate::operations::admin::AdminReply::Limits { .. })) {
        Some(state.overrides.apply(base))
    } else {
        None
    };
    let wake = crate::storage::bound::wake_within(state.next_wake(changed.as_ref().unwrap_or(limits), now), now);
    Output { reply, writes, effects, wake }
}

impl AccountState {
    pub(crate) fn step(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        command: Command,
        effects: &mut Vec<Effect>,
    ) -> StoreResult<Reply> {
        for p in self.permits.expire(now) {
            // A reservation that never heard back: its key may be retried.
            self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
        }
        self.batches.expire(now);
        Ok(match command {
            Command::Admit(req) => self.admit(limits, store, now, &req)?,
            Command::BatchCreated { permit, answer, retry_after_ms } => {
                self.batch_created(limits, now, jitter, permit, answer, retry_after_ms)
            }
            Command::BatchesSeen { batches } => Reply::Ack { released: self.batches.seen(&batches) },
            Command::Bind { permit, generation, replay } => {
                self.idempotency.settle(permit, replay, Some(&generation), now, &limits.idempotency);
                Reply::Ack { released: self.bind(limits, store, permit, &generation, now)? }
            }
            Command::Release { permit } => {
                self.idempotency.settle(permit, None, None, now, &limits.idempotency);
                Reply::Ack { released: u32::from(self.permits.release(permit).is_some()) }
            }
            Command::Unsettled { permit } => {
                self.permits.mark_unknown(&limits.concurrency, permit, now);
                Reply::Ack { released: 0 }
            }
            Command::Observe { generations } => {
                Reply::Ack { released: self.release_terminal(limits, store, &generations, now)?.len() as u32 }
            }
            Command::Callback { callback, generation, status, relay, output_ms } => {
                self.callback(limits, store, now, callback, Observed { id: generation, status, output_ms }, relay)?
            }
            Command::Webhook { generation, status, relay, output_ms } => {
                let seen = Observed { id: generation, status, output_ms };
                let freed = self.release_terminal(limits, store, std::slice::from_ref(&seen), now)?;
                let released = freed.len() as u32;
                if let Some(r) = relay {
                    self.relay_once(limits, store, now, seen, r)?;
                }
                Reply::Ack { released }
            }
            Command::Reconciled { listed_from, active, complete, ended } => {
                self.jobs_ended(store, &ended, now)?;
                self.costs_saw(limits, &ended, now);
                let active: Vec<(String, Option<String>)> = active.into_iter().map(|a| (a.id, a.model)).collect();
                // Sync marks nothing on a batch's generations: while batches
                // are open, that many unknown active ones are not adopted.
                let active = crate::batch::not_spawned(active, self.batches.spawned_allowance(), |g| {
                    self.permits.holds_generation(g)
                });
                let (gone, adopted) = if complete {
                    let (gone, adopted) = self.permits.reconcile(&limits.concurrency, &active, listed_from, now);
                    self.learn_ended(&gone, &ended, listed_from);
                    // Force-released creates: Sync's list began after them.
                    let (settled, kept) = std::mem::take(&mut self.released_keys)
                        .into_iter()
                        .partition::<Vec<_>, _>(|(_, at)| *at <= listed_from);
                    self.released_keys = kept;
                    for (p, _) in settled {
                        self.idempotency.settle(p, None, None, now, &limits.idempotency);
                    }
                    for p in &gone {
                        // An unknown create's key may be tried again now.
                        self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
                    }
                    (gone, adopted)
                } else {
                    // A partial list can only prove presence, never absence.
                    let before = self.permits.in_use();
                    for (id, model) in &active {
                        self.permits.adopt(&limits.concurrency, id, model.clone(), now);
                    }
                    (Vec::new(), self.permits.in_use() - before)
                };
                let released = gone.len() as u32;
                self.reconcile.finished(&limits.reconcile, now, released + adopted, self.permits.in_use() > 0);
                Reply::Ack { released }
            }
            Command::ListStart => self.list_start(limits, now),
            Command::Listed { page } => self.listed(limits, store, now, jitter, page, effects)?,
            Command::LookedUp { ended } => self.looked_up(limits, store, now, jitter, ended, effects)?,
            Command::ReconcileFailed { retry_at } => {
                self.reconcile.postpone(retry_at.max(now + 1));
                Reply::Ack { released: 0 }
            }
            Command::Delivered { id, attempt } => {
                self.outbox.settle(&limits.relay, id, attempt, now, jitter);
                Reply::Ack { released: 0 }
            }
            Command::UpstreamLimited { class, kind, permit, retry_after_ms } => {
                self.metrics.upstream_429();
                if let Some(p) = permit {
                    self.costs.upstream_429(p);
                    self.permits.release(p);
                    self.idempotency.settle(p, None, None, now, &limits.idempotency);
                }
                match kind {
                    LimitKind::Rate => {
                        for bucket in limits.buckets(&class) {
                            self.backoff.entry(bucket).or_default().strike(
                                &limits.backoff,
                                now,
                                jitter,
                                retry_after_ms,
                            );
                        }
                    }
                    LimitKind::Concurrency => self.reconcile.suspect(&limits.reconcile, now),
                }
                // Shadow mode: Sync's own 429 goes back to the client as it is.
                if limits.shadow {
                    return Ok(Reply::Ack { released: 0 });
                }
                // The caller gets the governor's own refusal, with an honest retry time.
                let probe = AdmitRequest { class, permit: kind == LimitKind::Concurrency, ..AdmitRequest::default() };
                match self.admit_check(limits, now, &probe) {
                    Err(r) => Reply::Rejected(r),
                    Ok(()) => Reply::Ack { released: 0 },
                }
            }
            Command::Unhold { ticket, reason } => {
                if let Some(h) = self.held.iter().find(|h| h.ticket == ticket) {
                    let (class, name) = (h.class.clone(), reason.map_or("wait_expired", Reason::name));
                    self.metrics.refused(&class, name, now);
                }
                self.held.retain(|h| h.ticket != ticket);
                Reply::Ack { released: 0 }
            }
            Command::Dispatch => self.dispatch(limits, store, now)?,
            Command::Dispatched { ticket, permit, outcome } => {
                self.dispatched(limits, store, now, jitter, &ticket, permit, outcome)?
            }
            Command::DispatchBlocked { reason } => {
                self.block_dispatch(limits, reason, now);
                Reply::Ack { released: 0 }
            }
            Command::DispatchUnblocked => {
                self.dispatch_block = None;
                Reply::Ack { released: 0 }
            }
            Command::Ticket { ticket, client } => self.ticket(limits, store, now, &ticket, client.as_deref())?,
            Command::Cancel { ticket, client } => self.cancel(limits, store, now, &ticket, client.as_deref())?,
            Command::Tick => {
                // A bounded batch per alarm (bodies are read for these only);
                // the rest are due at once and re-arm the alarm.
                for id in self.outbox.due(now).into_iter().take(DELIVERIES_PER_TICK) {
                    match store.delivery(id)? {
                        Some(d) => effects.push(Effect::Deliver(d)),
                        // The row is gone (a crash between writes): nothing to send.
                        None => self.outbox.settle(
                            &limits.relay,
                            id,
                            crate::relay::delivery::Attempt::Status(410),
                            now,
                            jitter,
                        ),
                    }
                }
                let work = self.queue.has_ready(now) || self.interrupted_submission().is_some();
                if work && !self.dispatch_blocked(now) && self.paused.is_none() {
                    effects.push(Effect::Dispatch);
                }
                if self.reconcile.due(now) {
                    effects.push(Effect::Reconcile);
                }
                Reply::Ack { released: 0 }
            }
            Command::Status | Command::Admin(_) | Command::Ledger { .. } => Reply::Ack { released: 0 },
        })
    }

    /// Release the permits of generations seen in a terminal status, learn
    /// how long they took, and give queued jobs that submitted them their
    /// final status.
    pub(crate) fn release_terminal(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        seen: &[Observed],
        now: Ms,
    ) -> StoreResult<Vec<Permit>> {
        let ended: Vec<Observed> = seen.iter().filter(|o| o.status.is_terminal()).cloned().collect();
        self.jobs_ended(store, &ended, now)?;
        self.costs_saw(limits, &ended, now);
        let mut freed: Vec<Permit> = Vec::new();
        for o in &ended {
            match self.permits.release_generation(&o.id) {
                Some(p) => freed.push(p),
                None if !self.recent_ends.iter().any(|(g, ..)| *g == o.id) => {
                    if self.recent_ends.len() >= RECENT_ENDS {
                        self.recent_ends.remove(0);
                    }
                    self.recent_ends.push((o.id.clone(), o.status.clone(), now, self.callback_said.clone()));
                }
                None => {}
            }
        }
        for p in freed.iter().filter(|p| matches!(p.holder, Holder::Generation(_))) {
            // Seen ending now: an upper bound of its duration, exact for webhooks.
            self.durations.observe(p.model.as_deref(), now.saturating_sub(p.since));
        }
        Ok(freed)
    }

    /// Queue a webhook's payload for the client, once per (generation,
    /// status): a replayed or duplicated webhook is counted and dropped
    /// (the caller still acknowledges it). The ends relayed are remembered
    /// for `dedupe_ttl_ms` (as long as a callback token can be replayed),
    /// at most `dedupe_max` of them.
    pub(crate) fn relay_once(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        seen: Observed,
        r: crate::relay::delivery::RelayRequest,
    ) -> StoreResult<()> {
        let policy = &limits.relay;
        let horizon = now.saturating_sub(policy.dedupe_ttl_ms);
        let journaled = self.journal.iter().any(
            |w| matches!(w, Write::PutRelayed { generation, status, .. } if *generation == seen.id && *status == seen.status),
        );
        if journaled || store.relayed(&seen.id, &seen.status)?.is_some_and(|at| at >= horizon) {
            self.outbox.counters.duplicates += 1;
            return Ok(());
        }
        if self.outbox.enqueue(policy, now, r.url, r.body, r.headers).is_none() {
            // Dropped for the outbox's bounds: a later copy may still get in.
            return Ok(());
        }
        let mut evicted = Vec::new();
        if self.outbox.counters.remembered >= u64::from(policy.dedupe_max) {
            // Expired ends go first; only when none is left, the oldest live one.
            evicted = store.relayed_older_than(horizon, 256)?;
            if evicted.is_empty() {
                evicted = store.relayed_older_than(Ms::MAX, 1)?;
            }
        }
        let key = (seen.id, seen.status);
        // An expired row of the same end is overwritten, not added.
        let overwritten = store.relayed(&key.0, &key.1)?.is_some() && !evicted.contains(&key);
        self.forget_relayed(evicted);
        self.journal.push(Write::PutRelayed { generation: key.0, status: key.1, at: now });
        if !overwritten {
            self.outbox.counters.remembered += 1;
        }
        Ok(())
    }

    fn forget_relayed(&mut self, ends: Vec<(String, GenerationStatus)>) {
        for (generation, status) in ends {
            self.outbox.counters.remembered = self.outbox.counters.remembered.saturating_sub(1);
            self.journal.push(Write::DeleteRelayed { generation, status });
        }
    }

    /// Permits freed by a listing whose generation's terminal status was
    /// read back: it ended before the listing began (an upper bound of its
    /// duration, as for status reads).
    fn learn_ended(&mut self, gone: &[Permit], ended: &[Observed], listed_from: Ms) {
        for p in gone.iter().filter(|p| matches!(p.holder, Holder::Generation(_))) {
            let seen = ended.iter().any(|o| Some(o.id.as_str()) == p.generation() && o.status.is_terminal());
            if seen {
                self.durations.observe(p.model.as_deref(), listed_from.saturating_sub(p.since));
            }
        }
    }

    fn jobs_ended(&mut self, store: &dyn Store, ended: &[Observed], now: Ms) -> StoreResult<()> {
        for o in ended.iter().filter(|o| o.status.is_terminal()) {
            for mut job in store.jobs_by_generation(&o.id)? {
                job.state = crate::queue::job::JobState::Done {
                    status: o.status.clone(),
                    generation: Some(o.id.clone()),
                    error: None,
                };
                job.updated_at = now;
                self.journal(Write::PutJob(job));
            }
        }
        Ok(())
    }

    /// Units of `bucket` clients may not take: the reconciliation's share of
    /// `other`, while there are permits to reconcile.
    pub(crate) fn client_reserve(&self, limits: &Limits, bucket: &RateClass, internal: bool) -> u32 {
        if internal || *bucket != RateClass::Other || self.permits.in_use() == 0 {
            0
        } else {
            limits.reconcile_reserve()
        }
    }

    /// The status a generation was seen ending with before its bind, if so
    /// (and forget it).
    pub(crate) fn take_recent_end(&mut self, generation: &str) -> Option<GenerationStatus> {
        let i = self.recent_ends.iter().position(|(g, ..)| g == generation)?;
        Some(self.recent_ends.remove(i).1)
    }

    /// Bind a reserved permit to the generation Sync created (a direct
    /// create or a queued job). If that generation was already seen ending
    /// (a webhook can overtake the bind), the permit frees at once and a
    /// queued job takes its final status. Returns the permits released.
    pub(crate) fn bind(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        permit: PermitId,
        generation: &str,
        now: Ms,
    ) -> StoreResult<u32> {
        self.permits.bind(&limits.concurrency, permit, generation, now);
        self.costs.bound(permit, generation, now);
        if !self.recent_end_is_for(permit, generation) {
            return Ok(0);
        }
        let Some(status) = self.take_recent_end(generation) else { return Ok(0) };
        let ended = Observed { id: generation.to_owned(), status, output_ms: None };
        self.jobs_ended(store, std::slice::from_ref(&ended), now)?;
        self.costs_saw(limits, std::slice::from_ref(&ended), now);
        Ok(u32::from(self.permits.release_generation(generation).is_some()))
    }

    /// When the next permit is expected to free: the soonest expected end
    /// among the in-flight generations, from their ages and the durations
    /// observed on this account.
    pub(crate) fn next_permit_free(&self, now: Ms) -> Ms {
        self.permits
            .held()
            .iter()
            .map(|p| self.durations.expected_end(p.model.as_deref(), p.since, now).min(p.expires.max(now + 1)))
            .min()
            .unwrap_or(now + 1)
    }

    /// The policies that apply to a request of `class` (and concurrency when
    /// it asks for a permit), with their current state.
    pub fn policies(&self, limits: &Limits, now: Ms, class: &RateClass, permit: bool) -> Vec<PolicyState> {
        let mut out: Vec<PolicyState> = limits
            .buckets(class)
            .into_iter()
            .filter_map(|b| limits.rate(&b).map(|r| (b, r)))
            .map(|(bucket, rate)| {
                let log = self.windows.get(&bucket);
                let reserve = self.client_reserve(limits, &bucket, false);
                PolicyState {
                    name: bucket.to_string(),
                    quota: rate.limit,
                    window_s: Some(rate.window_ms.div_ceil(1_000).max(1)),
                    remaining: log.map_or(rate.limit, |l| l.remaining(rate, now)).saturating_sub(reserve),
                    reset_ms: log.map_or(0, |l| l.reset_in(rate, now)),
                }
            })
            .collect();
        if permit {
            let free = self.permits.free(&limits.concurrency);
            out.push(PolicyState {
                name: CONCURRENCY.to_owned(),
                quota: limits.concurrency.cap,
                window_s: None,
                remaining: free,
                reset_ms: if free > 0 { 0 } else { self.next_permit_free(now) - now },
            });
        }
        out
    }

    fn status(&self, base: &Limits, limits: &Limits, now: Ms) -> StatusView {
        let mut policies: Vec<PolicyState> = limits
            .classes()
            .flat_map(|(class, _)| self.policies(limits, now, &class, false).into_iter().take(1))
            .collect();
        policies.extend(
            self.policies(limits, now, &RateClass::Generate, true).into_iter().filter(|p| p.name == CONCURRENCY),
        );
        let idem = &limits.idempotency;
        StatusView {
            batches: self.batches.view(&limits.batches, now),
            policies,
            concurrency: ConcurrencyView {
                limit: limits.concurrency.cap,
                in_use: self.permits.in_use(),
                free: self.permits.free(&limits.concurrency),
                in_flight: self
                    .permits
                    .held()
                    .iter()
                    .map(|p| InFlightView {
                        generation: p.generation().map(str::to_owned),
                        adopted: matches!(p.holder, Holder::Adopted(_)),
                        age_ms: now.saturating_sub(p.since),
                        model: p.model.clone(),
                        expected_end_in_ms: self
                            .durations
                            .expected_end(p.model.as_deref(), p.since, now)
                            .saturating_sub(now),
                    })
                    .collect(),
                expected_duration_ms: self.durations.expected(None),
            },
            reconcile: ReconcileView {
                runs: self.reconcile.runs,
                next_in_ms: self.reconcile.next_at.map(|at| at.saturating_sub(now)),
                last_drift: self.reconcile.last_drift,
            },
            relay: RelayView {
                pending: self.outbox.pending(),
                delivered: self.outbox.counters.delivered,
                abandoned: self.outbox.counters.abandoned,
                dropped: self.outbox.counters.dropped,
                duplicates: self.outbox.counters.duplicates,
            },
            queue: QueueView {
                depth: self.queue.depth(),
                held: self.held.len() as u32,
                blocked: self.dispatch_block.as_ref().map(|b| b.reason),
                blocked_retry_in_ms: self.dispatch_block.as_ref().map(|b| b.until.saturating_sub(now)),
            },
            backoff: self
                .backoff
                .iter()
                .filter(|(_, b)| !b.is_idle(now))
                .map(|(class, b)| BackoffView {
                    class: class.clone(),
                    paused_for_ms: b.until.saturating_sub(now),
                    strikes: b.strikes,
                })
                .collect(),
            storage: StorageView {
                schema_version: SCHEMA_VERSION,
                idempotency: BoundView {
                    count: self.idempotency.totals.records,
                    max_count: u64::from(idem.max_records),
                    bytes: self.idempotency.totals.bytes,
                    max_bytes: idem.max_bytes,
                },
                outbox: BoundView {
                    count: self.outbox.pending() as u64,
                    max_count: u64::from(limits.relay.max_pending),
                    bytes: self.outbox.bytes(),
                    max_bytes: limits.relay.max_bytes,
                },
                queue: BoundView {
                    count: u64::from(self.queue.depth()),
                    max_count: u64::from(limits.queue.max_depth),
                    bytes: self.queue.bytes(),
                    max_bytes: limits.queue.max_bytes,
                },
                in_memory: MemoryView {
                    permits: self.permits.in_use(),
                    waiting_jobs: self.queue.depth(),
                    outbox_schedule: self.outbox.pending() as u32,
                    in_flight_keys: self.idempotency.in_flight() as u32,
                    held: self.held.len() as u32,
                    admission_stamps: self.windows.values().map(WindowLog::len).sum::<usize>() as u32,
                },
            },
            mode: if limits.shadow { "shadow" } else { "enforce" }.to_owned(),
            paused: self.paused.as_ref().map(Paused::view),
            limits: self.overrides.sources(base),
            counters: self.metrics.counters.clone(),
            waits: self.metrics.waits(),
            series: self.metrics.series.view(now),
            costs: crate::budget::costs::view(&self.costs, &limits.costs, now),
            pending: self.pending(limits, now),
            clients: self.client_views(limits, now),
        }
    }

    /// Generations a complete listing of `active` (begun at `listed_from`)
    /// would release: the object looks up their final status first.
    pub fn presumed_ended(&self, active: &[String], listed_from: Ms) -> Vec<String> {
        self.permits
            .held()
            .iter()
            .filter(|p| p.bound_at.is_some_and(|b| b < listed_from))
            .filter_map(|p| p.generation())
            .filter(|g| !active.iter().any(|a| a == g))
            .map(str::to_owned)
            .collect()
    }

    /// When the object must wake up next (lease expiry, reconciliation,
    /// relay delivery, queued work, sweeping old records), if ever.
    pub fn next_wake(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        let sweep = (self.idempotency.totals.records > 0).then_some(self.sweep_at.max(now + 1));
        // Counts not yet written are written by then (an idle object is
        // evicted; its alarm brings it back to write them).
        let metrics = self.metrics.dirty.then_some(self.metrics.flush_at.max(now + 1));
        [
            metrics,
            self.permits.next_expiry(),
            self.batches.next_expiry(),
            self.reconcile.next_at,
            self.outbox.next_wake(),
            self.queue_wake(limits, now),
            sweep,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Drop state that no longer matters: spent admissions out of every
    /// span, idle backoffs, expired idempotency records and finished jobs
    /// past their retention (a bounded batch per minute).
    fn compact(&mut self, limits: &Limits, store: &dyn Store, now: Ms) -> StoreResult<()> {
        for (name, log) in self.windows.iter_mut() {
            if let Some(rate) = limits.rate(name) {
                if let Some(before) = log.prune(rate, now) {
                    self.journal.push(Write::PruneAdmissions { class: name.clone(), before });
                }
            }
        }
        self.windows.retain(|name, log| limits.rate(name).is_some_and(|r| !log.is_idle(r, now)));
        self.shares.compact(limits, now, &mut self.journal);
        self.backoff.retain(|_, b| !b.is_idle(now));
        self.held.retain(|h| h.expires_at > now);
        let horizon = now.saturating_sub(limits.concurrency.reservation_ttl_ms);
        self.recent_ends.retain(|(_, _, at, _)| *at > horizon);
        if self.queue.depth() == 0 {
            self.sealed_key = None;
            self.dispatch_block = None;
        }
        if now >= self.sweep_at {
            self.sweep_at = now + SWEEP_EVERY_MS;
            let permits = &self.permits;
            self.idempotency.expire(store, now, &limits.idempotency, |g| permits.holds_generation(g))?;
            self.costs.ledger.sweep(store.ledger(), now, limits.costs.retention_days)?;
            let horizon = now.saturating_sub(limits.relay.dedupe_ttl_ms);
            let expired = store.relayed_older_than(horizon, 256)?;
            let touched = |g: &String, s: &GenerationStatus| {
                self.journal.iter().any(|w| match w {
                    Write::PutRelayed { generation, status, .. } | Write::DeleteRelayed { generation, status } => {
                        generation == g && status == s
                    }
                    _ => false,
                })
            };
            let expired: Vec<(String, GenerationStatus)> =
                expired.into_iter().filter(|(g, s)| !touched(g, s)).collect();
            self.forget_relayed(expired);
            let before = now.saturating_sub(limits.queue.retention_ms);
            let finished = store.finished_jobs_older_than(before, SWEEP_BATCH)?;
            if finished.len() as u32 >= SWEEP_BATCH {
                // Churn outpaces one batch a minute: keep sweeping until caught up.
                self.sweep_at = now;
            }
            for ticket in finished {
                let touched = self.journal.iter().any(|w| matches!(w, Write::PutJob(j) if j.ticket == ticket));
                if !touched {
                    self.journal.push(Write::DeleteJob(ticket));
                }
            }
        }
        Ok(())
    }
}

impl AccountState {
    /// What is pending now (see [`crate::operations::drained::PendingView`]). Work running now reads
    /// as due now, as it does after a restart cut it off (a submission is
    /// resumed, a listing begun again): the view is the same either side of
    /// a restart.
    pub fn pending(&self, limits: &Limits, now: Ms) -> crate::operations::drained::PendingView {
        let from_now = |at: Ms| at.saturating_sub(now);
        let running = |yes: bool, next: Option<Ms>| if yes { Some(0) } else { next.map(from_now) };
        crate::operations::drained::PendingView {
            deliveries: self.outbox.pending() as u32,
            next_delivery_in_ms: self.outbox.next_wake().map(from_now),
            submissions: self.queue.depth(),
            next_submission_in_ms: running(self.live_submission.is_some(), self.queue_wake(limits, now)),
            next_listing_in_ms: running(self.listing.is_some(), self.reconcile.next_at),
        }
    }
}
