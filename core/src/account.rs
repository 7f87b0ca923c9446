//! One account's state and the pure `apply` that every Durable Object call
//! goes through: `(limits, state, now, jitter, command) -> reply`.
//! The caller owns the clock and the randomness; nothing here does I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::config::Limits;
use crate::contract::{
    AdmitRequest, Admitted, BackoffView, Command, ConcurrencyView, InFlightView, LimitKind, Observed, PolicyState,
    Reason, ReconcileView, Rejection, RelayView, Reply, StatusView,
};
use crate::durations::Durations;
use crate::permits::{Holder, Permit, Permits};
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
}

/// Apply one command. `jitter` is a uniform sample in `[0, 1)`.
pub fn apply(limits: &Limits, state: &mut AccountState, now: Ms, jitter: f64, command: Command) -> Reply {
    state.permits.expire(now);
    let reply = match command {
        Command::Admit(req) => state.admit(limits, now, &req),
        Command::Bind { permit, generation } => {
            state.permits.bind(&limits.concurrency, permit, &generation, now);
            Reply::Ack { released: 0 }
        }
        Command::Release { permit } => Reply::Ack { released: u32::from(state.permits.release(permit).is_some()) },
        Command::Observe { generations } => Reply::Ack { released: state.release_terminal(&generations).len() as u32 },
        Command::Webhook { generation, status, relay } => {
            let freed = state.release_terminal(&[Observed { id: generation, status }]);
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
        Command::Reconciled { listed_from, active, complete } => {
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
            }
            match kind {
                LimitKind::Rate => {
                    for bucket in limits.buckets(&class) {
                        state.backoff.entry(bucket.to_owned()).or_default().strike(&limits.backoff, now, jitter, retry_after_ms);
                    }
                }
                LimitKind::Concurrency => state.reconcile.suspect(&limits.reconcile, now),
            }
            // The caller gets the governor's own refusal, with an honest retry time.
            match state.admit_check(limits, now, &AdmitRequest { class, permit: kind == LimitKind::Concurrency, model: None }) {
                Err(r) => Reply::Rejected(r),
                Ok(()) => Reply::Ack { released: 0 },
            }
        }
        Command::Tick => Reply::Ack { released: 0 },
        Command::Status => Reply::Status(state.status(limits, now)),
    };
    if state.permits.in_use() > 0 {
        state.reconcile.arm(&limits.reconcile, now);
    }
    reply
}

impl AccountState {
    /// Would a request pass now? `Err` carries the refusal that lasts longest
    /// (the earliest time at which every limit has room).
    fn admit_check(&self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Result<(), Rejection> {
        let mut refusal: Option<(Ms, Reason, String, u32)> = None;
        let mut refuse = |at: Ms, reason: Reason, policy: &str, limit: u32| {
            if refusal.as_ref().is_none_or(|r| at > r.0) {
                refusal = Some((at, reason, policy.to_owned(), limit));
            }
        };
        for bucket in limits.buckets(&req.class) {
            let Some(rate) = limits.rate(bucket) else { continue };
            if let Some(Err(until)) = self.backoff.get(bucket).map(|b| b.check(now)) {
                refuse(until, Reason::UpstreamBackoff, bucket, rate.limit);
            }
            if let Err(at) = self.windows.get(bucket).map_or(Ok(()), |w| w.check(rate, now)) {
                refuse(at, Reason::Rate, bucket, rate.limit);
            }
        }
        if req.permit && (!self.permits.has_room(&limits.concurrency) || self.reconcile.is_full(now)) {
            refuse(self.next_permit_free(now), Reason::Concurrency, CONCURRENCY, limits.concurrency.cap);
        }
        match refusal {
            None => Ok(()),
            Some((at, reason, policy, limit)) => {
                let at = at.max(now + 1);
                let policies = self.policies(limits, now, &req.class, req.permit);
                Err(Rejection { reason, policy, limit, retry_at_ms: at, retry_after_ms: at - now, policies })
            }
        }
    }

    fn admit(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Reply {
        if let Err(r) = self.admit_check(limits, now, req) {
            return Reply::Rejected(r);
        }
        for bucket in limits.buckets(&req.class) {
            if let Some(rate) = limits.rate(bucket) {
                self.windows.entry(bucket.to_owned()).or_default().record(rate, now);
            }
        }
        let permit = req.permit.then(|| self.permits.reserve(&limits.concurrency, now, req.model.clone()));
        Reply::Admitted(Admitted { permit, policies: self.policies(limits, now, &req.class, req.permit) })
    }

    /// Release the permits of generations seen in a terminal status.
    fn release_terminal(&mut self, seen: &[Observed]) -> Vec<Permit> {
        seen.iter()
            .filter(|o| is_terminal(&o.status))
            .filter_map(|o| self.permits.release_generation(&o.id))
            .collect()
    }

    /// When the next permit is expected to free: the soonest expected end
    /// among the in-flight generations, from their ages and the durations
    /// observed on this account.
    fn next_permit_free(&self, now: Ms) -> Ms {
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
            relay: RelayView { pending: self.outbox.pending(), delivered: self.outbox.delivered, abandoned: self.outbox.abandoned },
            backoff: self
                .backoff
                .iter()
                .filter(|(_, b)| !b.is_idle(now))
                .map(|(class, b)| BackoffView { class: class.clone(), paused_for_ms: b.until.saturating_sub(now), strikes: b.strikes })
                .collect(),
        }
    }

    /// When the object must wake up next (lease expiry, reconciliation,
    /// relay delivery), if ever.
    pub fn next_wake(&self) -> Option<Ms> {
        [self.permits.next_expiry(), self.reconcile.next_at, self.outbox.next_wake()].into_iter().flatten().min()
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
    }
}
