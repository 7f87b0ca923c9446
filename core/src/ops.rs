//! The operator's commands on one account (the admin API): runtime limit
//! overrides, pause and resume, the queue as a list, cancelling one job or
//! draining them all, force-releasing a permit, and a metrics snapshot.
//! Each is a [`AdminCommand`] through the same `apply` as everything else;
//! the Worker checks the admin key and logs who did what.

use serde::{Deserialize, Serialize};

use crate::account::AccountState;
use crate::config::Limits;
use crate::contract::{Refusal, Reply, TicketView};
use crate::metrics::MetricsView;
use crate::overrides::{LimitView, LimitsPatch};
use crate::queue::JobState;
use crate::store::{Store, StoreResult};
use crate::time::rfc3339;
use crate::Ms;

/// Jobs listed at most by one `Queue` call (the depth is always given).
pub const MAX_LISTED_JOBS: usize = 500;
/// Longest pause reason kept.
const MAX_REASON_CHARS: usize = 200;
/// `Retry-After` of a pause when the operator gives none.
pub const DEFAULT_PAUSE_RETRY_S: u64 = 60;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminCommand {
    /// The body of `PUT .../limits`, read here (see [`LimitsPatch::parse`]).
    SetLimits {
        body: String,
    },
    ClearLimits,
    /// The body of `POST .../pause`, read here (see [`parse_pause`]).
    Pause {
        body: String,
    },
    Resume,
    Queue,
    Cancel {
        ticket: String,
    },
    Drain,
    /// A generation id, or `permit-<n>` for a permit not yet bound.
    ReleasePermit {
        target: String,
    },
    Metrics,
    /// `PUT .../clients/{client}/limits` (the body, read by
    /// [`crate::shares`]) or, without a body, `DELETE`.
    ClientLimits {
        client: String,
        #[serde(default)]
        body: Option<String>,
    },
}

/// Force-released keyed creates awaiting a listing, at most.
const MAX_RELEASED_KEYS: usize = 1_024;

/// An admin command's answer: serialised, it is the response's body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AdminReply {
    Limits { limits: Vec<LimitView> },
    Jobs(JobsView),
    Paused { paused: Option<PauseView> },
    Cancelled { cancelled: u32 },
    Released { released: u32 },
    Client { client: crate::shares::status::ClientView },
}

/// An operator's pause, as stored (`meta` row `paused`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub since: Ms,
    pub retry_after_s: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseView {
    pub since: String,
    pub retry_after_seconds: u64,
    pub reason: Option<String>,
}

impl Paused {
    pub fn view(&self) -> PauseView {
        PauseView { since: rfc3339(self.since), retry_after_seconds: self.retry_after_s, reason: self.reason.clone() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobsView {
    pub depth: u32,
    pub jobs: Vec<JobView>,
}

/// A waiting job as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub ticket: String,
    pub client: String,
    pub priority: i64,
    pub status: crate::status::TicketStatus,
    pub age_ms: Ms,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_start_at: Option<String>,
}

/// The body of `POST .../pause`: `{"retryAfterSeconds"?: n, "reason"?: "..."}`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PauseBody {
    #[serde(default)]
    retry_after_seconds: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Read a pause body (empty is fine): `(retry_after_s, reason)`.
pub fn parse_pause(body: &[u8]) -> Result<(u64, Option<String>), String> {
    let b: PauseBody = if body.iter().all(u8::is_ascii_whitespace) {
        PauseBody::default()
    } else if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("expected a JSON object {\"retryAfterSeconds\"?, \"reason\"?}".into());
    } else {
        serde_json::from_slice(body).map_err(|_| "expected {\"retryAfterSeconds\"?: 1..86400, \"reason\"?: string}")?
    };
    let retry_after_s = b.retry_after_seconds.unwrap_or(DEFAULT_PAUSE_RETRY_S);
    if !(1..=86_400).contains(&retry_after_s) {
        return Err("retryAfterSeconds must be between 1 and 86400".into());
    }
    let reason = b.reason.map(|r| r.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect());
    Ok((retry_after_s, reason))
}

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
                self.overrides.merge(&patch);
                AdminReply::Limits { limits: self.overrides.sources(base) }
            }
            AdminCommand::ClearLimits => {
                self.overrides = Default::default();
                AdminReply::Limits { limits: self.overrides.sources(base) }
            }
            AdminCommand::Pause { body } => {
                let (retry_after_s, reason) = match parse_pause(body.as_bytes()) {
                    Ok(p) => p,
                    Err(m) => return invalid(m),
                };
                let since = self.paused.as_ref().map_or(now, |p| p.since);
                self.paused = Some(Paused { since, retry_after_s, reason });
                AdminReply::Paused { paused: self.paused.as_ref().map(Paused::view) }
            }
            AdminCommand::Resume => {
                self.paused = None;
                // Places taken during the pause would hold back newcomers until
                // their holders' next look: the line starts afresh.
                self.held.clear();
                AdminReply::Paused { paused: None }
            }
            AdminCommand::Queue => AdminReply::Jobs(self.jobs_view(limits, now)),
            AdminCommand::Cancel { ticket } => return self.cancel(limits, store, now, &ticket, None),
            AdminCommand::Drain => {
                let waiting: Vec<String> = self
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
                let freed = match target.strip_prefix("permit-").and_then(|n| n.parse().ok()) {
                    Some(id) => self.permits.release(id),
                    None => self.permits.release_generation(&target),
                };
                let Some(p) = freed else { return Ok(Reply::Refused(Refusal::NotFound)) };
                let keyed = self.idempotency.in_flight_permits().any(|k| k == p.id);
                if keyed && p.holder == crate::permits::Holder::Request {
                    // Its create may still reach Sync: the key stays until a
                    // listing says what Sync has (one is asked for now).
                    if self.released_keys.len() >= MAX_RELEASED_KEYS {
                        let (oldest, _) = self.released_keys.remove(0);
                        self.idempotency.settle(oldest, None, None, now, &limits.idempotency);
                    }
                    self.released_keys.push((p.id, now));
                    self.reconcile.next_at = Some(self.reconcile.next_at.map_or(now, |at| at.min(now)));
                } else {
                    self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
                }
                AdminReply::Released { released: 1 }
            }
            AdminCommand::Metrics => return Ok(Reply::Metrics(Box::new(self.metrics_view(limits)))),
            AdminCommand::ClientLimits { client, body } => {
                return Ok(self.client_limits_admin(limits, now, &client, body.as_deref()))
            }
        };
        Ok(Reply::Admin(reply))
    }

    fn jobs_view(&self, limits: &Limits, now: Ms) -> JobsView {
        let jobs = self
            .queue
            .service_order()
            .into_iter()
            .take(MAX_LISTED_JOBS)
            .map(|job| {
                let t: TicketView = self.ticket_view(limits, now, job);
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

    pub(crate) fn metrics_view(&self, limits: &Limits) -> MetricsView {
        let m = &self.metrics;
        MetricsView {
            counters: m.counters.clone(),
            wait_held: m.wait_held.clone(),
            wait_queue: m.wait_queue.clone(),
            added_latency: m.added_latency.clone(),
            permits_in_use: self.permits.in_use(),
            permits_limit: limits.concurrency.cap,
            queue_depth: self.queue.depth(),
            held_now: self.held.len() as u32,
            relay_pending: self.outbox.pending() as u64,
            relay_delivered: self.outbox.counters.delivered,
            relay_failed: self.outbox.counters.abandoned,
            relay_dropped: self.outbox.counters.dropped,
            paused: self.paused.is_some(),
            shadow: limits.shadow,
            clients: self.client_gauges(limits, 0),
        }
    }
}
