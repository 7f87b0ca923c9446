//! The operator's commands on one account (the admin API): runtime limit
//! overrides, pause and resume, the queue as a list, cancelling one job or
//! draining them all, force-releasing a permit, and a metrics snapshot.
//! Each is a [`AdminCommand`] through the same `apply` as everything else;
//! the Worker checks the admin key and logs who did what.

use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::operations::admin::parse_pause;
use crate::operations::admin::JobView;
use crate::operations::admin::JobsView;
use crate::operations::admin::Paused;
use crate::operations::admin::MAX_LISTED_JOBS;
use crate::operations::admin::{AdminCommand, AdminReply, MAX_RELEASED_KEYS};
use crate::operations::overrides::LimitsPatch;
use crate::operations::prometheus::MetricsView;
use crate::queue::job::JobState;
use crate::queue::job::TicketView;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

impl AccountState {
    pub(crate) fn admin(
        &mut self,
        base: &Limits,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        command: AdminCommand,
    ) -> StoreResult<Reply> {
        let invalid = |m: String| Ok(Reply::Refused(Refusal::Invalid(m)));
        let reply = match command {
            AdminCommand::SetLimits { body } => {
                let patch = match LimitsPatch::parse(body.as_bytes(), base) {
                    Ok(p) => p,
                    Err(m) => return invalid(m),
                };
                self.ops.overrides.merge(&patch);
                AdminReply::Limits { limits: self.ops.overrides.sources(base) }
            }
            AdminCommand::ClearLimits => {
                self.ops.overrides = Default::default();
                AdminReply::Limits { limits: self.ops.overrides.sources(base) }
            }
            AdminCommand::Pause { body } => {
                let (retry_after_s, reason) = match parse_pause(body.as_bytes()) {
                    Ok(p) => p,
                    Err(m) => return invalid(m),
                };
                let since = self.ops.paused.as_ref().map_or(now, |p| p.since);
                self.ops.paused = Some(Paused { since, retry_after_s, reason });
                AdminReply::Paused { paused: self.ops.paused.as_ref().map(Paused::view) }
            }
            AdminCommand::Resume => {
                self.ops.paused = None;
                // Places taken during the pause would hold back newcomers until
                // their holders' next look: the line starts afresh.
                self.line.held.clear();
                AdminReply::Paused { paused: None }
            }
            AdminCommand::Queue => AdminReply::Jobs(self.jobs_view(limits, now)),
            AdminCommand::Cancel { ticket } => return self.cancel(limits, store, now, &ticket, None),
            AdminCommand::Drain => {
                let waiting: Vec<TicketId> = self
                    .queue
                    .jobs()
                    .iter()
                    .filter(|j| j.state == JobState::Queued)
                    .map(|j| j.ticket.clone())
                    .collect();
                let n = waiting.iter().filter(|t| self.queue.cancel(t, now).is_ok()).count();
                AdminReply::Cancelled { cancelled: n as u32 }
            }
            AdminCommand::ReleasePermit { target } => {
                let freed = match target.strip_prefix("permit-").and_then(|n| n.parse().ok()).map(crate::ids::PermitId)
                {
                    Some(id) => self.permits.release(id),
                    None => self.permits.release_generation(&GenerationId::new(target.as_str())),
                };
                let Some(p) = freed else { return Ok(Reply::Refused(Refusal::NotFound)) };
                let keyed = self.idempotency.in_flight_permits().any(|k| k == p.id);
                if keyed && p.holder == crate::lifecycle::permits::Holder::Request {
                    // Its create may still reach Sync: the key stays until a
                    // listing says what Sync has (one is asked for now).
                    if self.reconciliation.released_keys.len() >= MAX_RELEASED_KEYS {
                        let (oldest, _) = self.reconciliation.released_keys.remove(0);
                        self.idempotency.settle(oldest, None, None, now, &limits.idempotency);
                    }
                    self.reconciliation.released_keys.push((p.id, now));
                    self.reconciliation.schedule.next_at =
                        Some(self.reconciliation.schedule.next_at.map_or(now, |at| at.min(now)));
                } else {
                    self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
                }
                AdminReply::Released { released: 1 }
            }
            AdminCommand::Metrics => return Ok(Reply::Metrics(Box::new(self.metrics_view(limits, now)))),
            AdminCommand::ClientLimits { client, body } => {
                return Ok(self.client_limits_admin(limits, now, &client, body.as_deref()))
            }
            AdminCommand::Budget { body } => return Ok(self.budget_admin(limits, now, body.as_deref())),
        };
        Ok(Reply::Admin(reply))
    }

    fn jobs_view(&self, limits: &Limits, now: Ms) -> JobsView {
        let jobs = self
            .queue_positions(limits, now)
            .into_iter()
            .take(MAX_LISTED_JOBS)
            .map(|(job, position)| {
                let t: TicketView = self.ticket_view_at(limits, now, job, Some(position));
                JobView {
                    ticket: t.id,
                    client: t.client,
                    priority: job.spec.priority,
                    status: t.status,
                    age_ms: now.saturating_sub(job.created_at),
                    position: t.position,
                    estimated_start_at: t.estimated_start_at,
                }
            })
            .collect();
        JobsView { depth: self.queue.depth(), jobs }
    }

    pub(crate) fn metrics_view(&self, limits: &Limits, now: Ms) -> MetricsView {
        let m = &self.ops.metrics;
        MetricsView {
            counters: m.counters.clone(),
            wait_held: m.wait_held.clone(),
            wait_queue: m.wait_queue.clone(),
            added_latency: m.added_latency.clone(),
            permits_in_use: self.permits.in_use(),
            permits_limit: limits.concurrency.cap,
            queue_depth: self.queue.depth(),
            held_now: self.line.held.len() as u32,
            relay_pending: self.outbox.pending() as u64,
            relay_delivered: self.outbox.counters.delivered,
            relay_failed: self.outbox.counters.abandoned,
            relay_dropped: self.outbox.counters.dropped,
            paused: self.ops.paused.is_some(),
            shadow: limits.shadow,
            clients: self.client_gauges(limits, 0),
            spend: crate::budget::metrics::gauges(&self.costs, &limits.costs, now),
        }
    }
}
