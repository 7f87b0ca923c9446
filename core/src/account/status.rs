//! What the account shows: the policies of the RateLimit fields, the
//! status document, when the next permit frees, which generations a
//! listing presumes ended.

use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::lifecycle::permits::Holder;
use crate::lifecycle::permits::CONCURRENCY;
use crate::operations::admin::Paused;
use crate::rates::class::RateClass;
use crate::rates::window::WindowLog;
use crate::storage::store::SCHEMA_VERSION;
use crate::wire::headers::PolicyState;
use crate::wire::view::{
    BackoffView, BoundView, ConcurrencyView, InFlightView, MemoryView, QueueView, ReconcileView, RelayView, StatusView,
    StorageView,
};
use crate::Ms;

impl AccountState {
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
                let log = self.rates.windows.get(&bucket);
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

    pub(super) fn status(&self, base: &Limits, limits: &Limits, now: Ms) -> StatusView {
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
            lane: self.lane_view(limits),
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
                        generation: p.generation().cloned(),
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
                runs: self.reconciliation.schedule.runs,
                next_in_ms: self.reconciliation.schedule.next_at.map(|at| at.saturating_sub(now)),
                last_drift: self.reconciliation.schedule.last_drift,
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
                held: self.line.held.len() as u32,
                blocked: self.sending.block.as_ref().map(|b| b.reason),
                blocked_retry_in_ms: self.sending.block.as_ref().map(|b| b.until.saturating_sub(now)),
            },
            backoff: self
                .rates
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
                    held: self.line.held.len() as u32,
                    admission_stamps: self.rates.windows.values().map(WindowLog::len).sum::<usize>() as u32,
                },
            },
            mode: if limits.shadow { "shadow" } else { "enforce" }.to_owned(),
            paused: self.ops.paused.as_ref().map(Paused::view),
            limits: self.ops.overrides.sources(base),
            counters: self.ops.metrics.counters.clone(),
            waits: self.ops.metrics.waits(),
            series: self.ops.metrics.series.view(now),
            costs: crate::budget::costs::view(&self.costs, &limits.costs, now),
            pending: self.pending(limits, now),
            clients: self.client_views(limits, now),
        }
    }

    /// Generations a complete listing of `active` (begun at `listed_from`)
    /// would release: the object looks up their final status first.
    pub fn presumed_ended(&self, active: &[GenerationId], listed_from: Ms) -> Vec<GenerationId> {
        self.permits
            .held()
            .iter()
            .filter(|p| p.bound_at.is_some_and(|b| b < listed_from))
            .filter_map(|p| p.generation())
            .filter(|g| !active.contains(g))
            .cloned()
            .collect()
    }
}
