//! An admission asked and answered: the request (its class, permit, hold,
//! queued job, idempotency key, client, cost), a held request's place in
//! the line, and the answer (admitted, or refused with the earliest retry).

use serde::{Deserialize, Serialize};

use crate::admission::idempotency::IdempotencyKey;
use crate::budget::estimate::CostRequest;
use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::lifecycle::permits::PermitId;
use crate::queue::job::JobSpec;
use crate::rates::class::RateClass;
use crate::wire::headers::PolicyState;
use crate::Ms;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmitRequest {
    pub class: RateClass,
    #[serde(default)]
    pub permit: bool,
    #[serde(default)]
    pub model: Option<String>,
    /// `Prefer: wait`: keep a place in the account's line while refused.
    #[serde(default)]
    pub hold: Option<Hold>,
    /// `Prefer: respond-async`: queue the job when it cannot go now.
    #[serde(default)]
    pub enqueue: Option<JobSpec>,
    /// A client `Idempotency-Key` on a generate, scoped to the client.
    #[serde(default)]
    pub idempotency: Option<IdempotencyKey>,
    /// The pass-through Sync key sealed for the queue (never plain).
    #[serde(default)]
    pub sealed_key: Option<String>,
    /// Return the generations holding permits, so that a status read can
    /// tell whether its response frees any without another call.
    #[serde(default)]
    pub report_in_flight: bool,
    /// The governor's own request (reconciliation): it may use the share of
    /// the `other` budget that clients cannot take, so that clients polling
    /// at the limit never starve the freeing of lost permits.
    #[serde(default)]
    pub internal: bool,
    /// `POST /v2/batch`: a batch permit too (all or nothing with the budget).
    #[serde(default)]
    pub batch: bool,
    /// `X-Governor-Lane: batch` on a queued create: batch-lane work.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lane: bool,
    /// Set by the driver while Sync has not yet accepted the account's key
    /// (a provisional account, [`crate::driver::provisional`]): such an
    /// account arms no alarm, so nothing may wait in it for a batch.
    #[serde(skip)]
    pub key_unproven: bool,
    /// The ticket id a queued job gets (the caller draws 128 random bits,
    /// see [`crate::ids::TicketId`]); without one the core numbers it.
    #[serde(default)]
    pub ticket_id: Option<TicketId>,
    /// The id the create's callback token names (the caller draws it; a
    /// queued job's is its ticket id): the permit remembers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<TicketId>,
    /// What the Worker saw of earlier requests it forwarded (statuses,
    /// added latency), counted with this admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<crate::operations::metrics::Tally>,
    /// A create's cost: its client, its client's budgets and Sync's
    /// estimate when the Worker asked for one ([`crate::budget`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostRequest>,
    /// Who asks: the account's name and the client's (see [`crate::shares`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRef>,
}

/// The caller of an admission, for sharing the account among its clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    /// The account's object name (`a-acme`, `k-<fingerprint>`).
    pub account: String,
    pub client: String,
}

impl AdmitRequest {
    /// The admission a proxied request that is not a create asks for: its
    /// class, whether its answer may show generations the account holds
    /// (a read of generations), whether it takes a batch permit.
    pub fn for_proxy(proxy: &crate::wire::route::Proxy) -> AdmitRequest {
        use crate::wire::route::ProxyKind;
        AdmitRequest {
            class: proxy.class.clone(),
            report_in_flight: proxy.kind == ProxyKind::ReadsGenerations,
            batch: proxy.kind == ProxyKind::BatchCreate,
            ..AdmitRequest::default()
        }
    }

    /// A create's cost estimate, on the request and on the job it may queue.
    pub fn with_cost(mut self, cost: CostRequest) -> AdmitRequest {
        if let Some(job) = self.enqueue.as_mut() {
            job.cost = Some(Box::new(cost.clone()));
        }
        self.cost = Some(cost);
        self
    }

    /// The client a request counts toward: its own, or its queued job's.
    pub fn client_name(&self) -> Option<&str> {
        self.client.as_ref().map(|c| c.client.as_str()).or(self.enqueue.as_ref().map(|j| j.client.as_str()))
    }
}

/// A held request's place in line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The ticket a previous refusal gave, if any.
    pub ticket: Option<u64>,
    /// What is left of the client's wait.
    pub remaining_ms: Ms,
    /// Admission calls the request has made, this one included (0 reads as 1).
    #[serde(default)]
    pub calls: u32,
}

/// How often a held request waiting for a permit (or its turn) looks again,
/// at most (see [`Hold::sleep_ms`]).
pub const HOLD_POLL_MS: Ms = 100;
/// A held place is kept this long past the promised next attempt.
pub const HOLD_GRACE_MS: Ms = 1_000;
/// The most admission calls one held request makes, whatever its wait (one
/// more gives its place up). Every call into the account's object is a
/// subrequest of the client's request: 36 + 1, plus the forward to Sync and
/// the settle calls, stay under the 50 subrequests per request of the
/// Workers Free plan (the paid plans allow 1000).
pub const HOLD_MAX_CALLS: u32 = 36;

impl Hold {
    /// The first attempt of a request willing to wait `wait_ms`.
    pub fn first(wait_ms: Ms) -> Hold {
        Hold { ticket: None, remaining_ms: wait_ms, calls: 1 }
    }

    /// How long the holder sleeps before its next attempt after `r`: the
    /// exact retry time for a rate limit, a short poll for a permit (which
    /// frees when a webhook arrives, at no predictable time) — but never
    /// less than what is left of the wait spread over the calls left, so
    /// that a request makes at most [`HOLD_MAX_CALLS`] calls and the last
    /// one lands at its deadline. 0 when no call is left.
    pub fn sleep_ms(&self, r: &Rejection) -> Ms {
        let left = HOLD_MAX_CALLS.saturating_sub(self.calls.max(1));
        if left == 0 {
            return 0;
        }
        let floor = self.remaining_ms / u64::from(left);
        // A permit, or a pause's end, comes at no predictable time: look again soon.
        let polls = matches!(r.reason, Reason::Concurrency | Reason::Paused);
        let wait = if polls { r.retry_after_ms.min(HOLD_POLL_MS) } else { r.retry_after_ms };
        wait.max(floor).min(self.remaining_ms)
    }

    /// After refusal `r`, with `remaining_ms` of the wait left: the next
    /// attempt's hold and the sleep before it, or `None` when the request
    /// should give up (its wait is over or its calls are spent).
    pub fn next(&self, r: &Rejection, remaining_ms: Ms) -> Option<(Hold, Ms)> {
        let now = Hold { ticket: r.hold, remaining_ms, calls: self.calls.max(1) };
        let sleep = now.sleep_ms(r);
        if remaining_ms == 0 || sleep == 0 {
            return None;
        }
        Some((Hold { calls: now.calls + 1, ..now }, sleep))
    }
}

/// An admission: the permit (if one was asked for) now belongs to the
/// request, which must bind or release it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    pub permit: Option<PermitId>,
    /// The batch permit reserved for a batch create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_permit: Option<crate::batch::BatchPermitId>,
    pub policies: Vec<PolicyState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<GenerationId>,
    /// Tell the deployment's directory that the account is active (at most
    /// about once a minute).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub announce: bool,
    /// The account's key is unproven and nothing of it is stored: the
    /// Worker sends `Command::KeyAccepted` when Sync's answer accepts the key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A rate bucket has no room in its span.
    Rate,
    /// Every concurrency permit is held.
    Concurrency,
    /// Sync itself answered 429 recently; the class is paused.
    UpstreamBackoff,
    /// The account's queue is full (depth or bytes).
    QueueFull,
    /// The idempotency table is at its bound (count or bytes).
    IdempotencyFull,
    /// An operator paused the account.
    Paused,
    /// More are waiting in the account's line than it tracks
    /// ([`crate::admission::shed::MAX_AHEAD`]): the wait is longer than any estimate.
    LineFull,
    /// A cost budget (the account's or the client's) cannot cover the
    /// create's estimate until it renews.
    BudgetExhausted,
    /// A budget applies but nothing can estimate the create's cost.
    CostUnknown,
}

impl Reason {
    /// The reason's name in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Rate => "rate",
            Reason::Concurrency => "concurrency",
            Reason::UpstreamBackoff => "upstream_backoff",
            Reason::QueueFull => "queue_full",
            Reason::IdempotencyFull => "idempotency_full",
            Reason::Paused => "paused",
            Reason::LineFull => "line_full",
            Reason::BudgetExhausted => "budget_exhausted",
            Reason::CostUnknown => "cost_unknown",
        }
    }
}

/// A refusal, as a value: the earliest time the same request would pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: Reason,
    /// The policy that refused (`generate`, `other`, `concurrency`, ...).
    pub policy: String,
    pub limit: u32,
    pub retry_at_ms: Ms,
    pub retry_after_ms: Ms,
    pub policies: Vec<PolicyState>,
    /// The held request's place in line (`Prefer: wait`).
    #[serde(default)]
    pub hold: Option<u64>,
}

impl Rejection {
    /// `Retry-After` in whole seconds: rounded up, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ms.div_ceil(1_000).max(1)
    }
}

/// `Retry-After` for a key whose create is still on its way to Sync.
pub const IN_PROGRESS_RETRY_MS: Ms = 2_000;
/// Places held in the line at most (each is a live request waiting): past
/// it, a request that would wait is refused at once, as without `Prefer`.
pub const MAX_HELD: usize = 10_000;

/// A held request's place in line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub ticket: u64,
    pub class: RateClass,
    pub expires_at: Ms,
    /// When the request first took its place (for the wait histogram).
    pub since: Ms,
    /// A batch create: it waits for a batch permit, in a line of its own.
    pub batch: bool,
    /// The client it counts toward.
    pub client: Option<String>,
}
