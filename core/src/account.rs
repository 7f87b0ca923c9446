//! One account's state and the pure `apply` that every Durable Object call
//! goes through: `(limits, state, now, jitter, command) -> reply`.
//! The caller owns the clock and the randomness; nothing here does I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admit::{Held, IdempotencyMap};
use crate::backoff::Backoff;
use crate::config::Limits;
use crate::contract::{
    AdmitRequest, BackoffView, Command, ConcurrencyView, InFlightView, LimitKind, Observed, PolicyState, QueueView,
    ReconcileView, RelayView, Reply, StatusView,
};
use crate::durations::Durations;
use crate::permits::{Holder, Permit, Permits};
use crate::queue::Queue;
use crate::reconcile::Schedule;
use crate::relay::Outbox;
use crate::status::is_terminal;
use crate::window::WindowLog;
use crate::Ms;

/// Name of the concurrency policy in headers and errors.
pub const CONCURRENCY: &str = "concurrency";

/// Everything the account's object persists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    #[serde(default)]
    pub windows: BTreeMap<String, WindowLog>,
    #[serde(default)]
    pub permits: Permits,
    #[serde(default)]
    pub backoff: BTreeMap<String, Backoff>,
    #[serde(default)]
    pub durations: Durations,
    #[serde(default)]
    pub reconcile: Schedule,
    #[serde(default)]
    pub outbox: Outbox,
    /// Persisted apart, one job per key, only what changed.
    #[serde(skip)]
    pub queue: Queue,
    #[serde(default)]
    pub idempotency: IdempotencyMap,
    /// Orders held requests and queued jobs in one line.
    #[serde(default)]
    pub next_seq: u64,
    /// The pass-through Sync key, sealed, kept while the queue needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key: Option<String>,
    /// Held requests (`Prefer: wait`): live HTTP requests, so not persisted.
    #[serde(skip)]
    pub held: Vec<Held>,
}

/// Apply one command. `jitter` is a uniform sample in `[0, 1)`.
pub fn apply(limits: &Limits, state: &mut AccountState, now: Ms, jitter: f64, command: Command) -> Reply {
    state.permits.expire(now);
    let reply = match command {
        Command::Admit(req) => state.admit(limits, now, &req),
        Command::Bind { permit, generation, replay } => {
            state.permits.bind(&limits.concurrency, permit, &generation, now);
            state.idempotency.settle(permit, replay, now);
            Reply::Ack { released: 0 }
        }
        Command::Release { permit } => {
            state.idempotency.settle(permit, None, now);
            Reply::Ack { released: u32::from(state.permits.release(permit).is_some()) }
        }
        Command::Observe { generations } => {
            Reply::Ack { released: state.release_terminal(&generations, now).len() as u32 }
        }
        Command::Webhook { generation, status, relay } => {
            let freed = state.release_terminal(&[Observed { id: generation, status }], now);
            // Sync calls back when the generation ends: an exact duration.
            // (A status read only shows when a client looked, so it teaches nothing.)
            for p in freed.iter().filter(|p| matches!(p.holder, Holder::Generation(_))) {
                state.durations.observe(p.model.as_deref(), now.saturating_sub(p.since));
            }
            let released = freed.len() as u32;
            if let Some(r) = relay {
                state.outbox.enqueue(&limits.relay, now, r.url, r.body, r.headers);
            }
            Reply::Ack { released }
        }
        Command::Reconciled { listed_from, active, complete, ended } => {
            for o in ended.iter().filter(|o| is_terminal(&o.status)) {
                state.queue.generation_ended(&o.id, &o.status, now);
            }
            let active: Vec<(String, Option<String>)> = active.into_iter().map(|a| (a.id, a.model)).collect();
            let (gone, adopted) = if complete {
                state.permits.reconcile(&limits.concurrency, &active, listed_from, now)
            } else {
                // A partial list can only prove presence, never absence.
                let before = state.permits.in_use();
                for (id, model) in &active {
                    state.permits.adopt(&limits.concurrency, id, model.clone(), now);
                }
                (Vec::new(), state.permits.in_use() - before)
            };
            let released = gone.len() as u32;
            state.reconcile.finished(&limits.reconcile, now, released + adopted, state.permits.in_use() > 0);
            Reply::Ack { released }
        }
        Command::ReconcileFailed { retry_at } => {
            state.reconcile.postpone(retry_at.max(now + 1));
            Reply::Ack { released: 0 }
        }
        Command::Delivered { id, attempt } => {
            state.outbox.settle(&limits.relay, id, attempt, now, jitter);
            Reply::Ack { released: 0 }
        }
        Command::UpstreamLimited { class, kind, permit, retry_after_ms } => {
            if let Some(p) = permit {
                state.permits.release(p);
                state.idempotency.settle(p, None, now);
            }
            match kind {
                LimitKind::Rate => {
                    for bucket in limits.buckets(&class) {
                        state.backoff.entry(bucket.to_owned()).or_default().strike(
                            &limits.backoff,
                            now,
                            jitter,
                            retry_after_ms,
                        );
                    }
                }
                LimitKind::Concurrency => state.reconcile.suspect(&limits.reconcile, now),
            }
            // The caller gets the governor's own refusal, with an honest retry time.
            let probe = AdmitRequest { class, permit: kind == LimitKind::Concurrency, ..AdmitRequest::default() };
            match state.admit_check(limits, now, &probe) {
                Err(r) => Reply::Rejected(r),
                Ok(()) => Reply::Ack { released: 0 },
            }
        }
        Command::Unhold { ticket } => {
            state.held.retain(|h| h.ticket != ticket);
            Reply::Ack { released: 0 }
        }
        Command::Dispatch => state.dispatch(limits, now),
        Command::Dispatched { ticket, permit, outcome } => {
            state.dispatched(limits, now, jitter, &ticket, permit, outcome)
        }
        Command::Ticket { ticket } => state.ticket(limits, now, &ticket),
        Command::Cancel { ticket } => state.cancel(limits, now, &ticket),
        Command::Tick => Reply::Ack { released: 0 },
        Command::Status => Reply::Status(state.status(limits, now)),
    };
    if state.permits.in_use() > 0 {
        state.reconcile.arm(&limits.reconcile, now);
    }
    reply
}

impl AccountState {
    /// Release the permits of generations seen in a terminal status, and
    /// give queued jobs that submitted them their final status.
    fn release_terminal(&mut self, seen: &[Observed], now: Ms) -> Vec<Permit> {
        let ended: Vec<&Observed> = seen.iter().filter(|o| is_terminal(&o.status)).collect();
        for o in &ended {
            self.queue.generation_ended(&o.id, &o.status, now);
        }
        ended.into_iter().filter_map(|o| self.permits.release_generation(&o.id)).collect()
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
    pub fn policies(&self, limits: &Limits, now: Ms, class: &str, permit: bool) -> Vec<PolicyState> {
        let mut out: Vec<PolicyState> = limits
            .buckets(class)
            .into_iter()
            .filter_map(|b| limits.rate(b).map(|r| (b, r)))
            .map(|(bucket, rate)| {
                let log = self.windows.get(bucket);
                PolicyState {
                    name: bucket.to_owned(),
                    quota: rate.limit,
                    window_s: Some(rate.window_ms.div_ceil(1_000).max(1)),
                    remaining: log.map_or(rate.limit, |l| l.remaining(rate, now)),
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

    fn status(&self, limits: &Limits, now: Ms) -> StatusView {
        let mut policies: Vec<PolicyState> = limits
            .classes()
            .flat_map(|(name, _)| self.policies(limits, now, name, false).into_iter().take(1))
            .collect();
        policies.extend(self.policies(limits, now, "generate", true).into_iter().filter(|p| p.name == CONCURRENCY));
        StatusView {
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
                delivered: self.outbox.delivered,
                abandoned: self.outbox.abandoned,
            },
            queue: QueueView { depth: self.queue.depth(), held: self.held.len() as u32 },
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
    /// relay delivery, queued work), if ever.
    pub fn next_wake(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        [self.permits.next_expiry(), self.reconcile.next_at, self.outbox.next_wake(), self.queue_wake(limits, now)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Drop state that no longer matters, to keep what is persisted small.
    pub fn compact(&mut self, limits: &Limits, now: Ms) {
        for (name, log) in self.windows.iter_mut() {
            if let Some(rate) = limits.rate(name) {
                log.prune(rate, now);
            }
        }
        self.windows.retain(|name, log| limits.rate(name).is_some_and(|r| !log.is_idle(r, now)));
        self.backoff.retain(|_, b| !b.is_idle(now));
        self.queue.gc(&limits.queue, now);
        self.idempotency.gc(now);
        self.held.retain(|h| h.expires_at > now);
        if self.queue.depth() == 0 {
            self.sealed_key = None;
        }
    }
}
