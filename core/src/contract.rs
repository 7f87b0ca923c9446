//! The typed contract for every call into an account's Durable Object.
//!
//! The Worker sends one JSON-encoded [`Command`] per call and gets one
//! [`Reply`]; the object decodes, applies the command to its state through
//! [`crate::account::apply`], persists, and encodes the reply. No path
//! strings, no ad-hoc bodies.

use serde::{Deserialize, Serialize};

use crate::class::RateClass;
use crate::permits::PermitId;
use crate::queue::JobSpec;
use crate::reconcile::ActiveGeneration;
use crate::relay::Attempt;
use crate::status::{GenerationStatus, TicketStatus};
use crate::Ms;

/// A call into the account's object. Only the calls the Worker makes
/// travel as JSON; the object's own (alarm work, reconciliation, dispatch)
/// are `#[serde(skip)]`: no encoder or decoder is built for them.
// A message, built once and moved into `apply` once: boxing its large
// variants would add an allocation per call for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// May a request of `class` go to Sync now? For `POST /v2/generate`,
    /// `permit` asks for a concurrency permit too (all or nothing).
    Admit(AdmitRequest),
    /// Sync created `generation` for the request holding `permit`; with a
    /// client `Idempotency-Key`, Sync's answer is kept for replays.
    Bind {
        permit: PermitId,
        generation: String,
        #[serde(default)]
        replay: Option<Replay>,
    },
    /// Sync refused the request holding `permit` (nothing was created): free it.
    Release { permit: PermitId },
    /// Sync's answer to the create holding `permit` is unknown (5xx, timeout,
    /// a dropped connection, a 2xx without an id): the generation may exist.
    /// The permit stays until a reconciliation listing begun later shows
    /// what Sync has (the generation is then adopted if active), or its TTL.
    Unsettled { permit: PermitId },
    /// Generation statuses seen in responses passing through.
    Observe { generations: Vec<Observed> },
    /// Sync answered the batch create holding batch permit `permit`.
    BatchCreated {
        permit: crate::batch::BatchPermitId,
        answer: crate::batch::CreateAnswer,
        #[serde(default)]
        retry_after_ms: Option<Ms>,
    },
    /// Batches seen in a read or list passing through (or a batch webhook).
    BatchesSeen { batches: Vec<crate::batch::SeenBatch> },
    /// Sync answered 429 to a request the governor admitted.
    UpstreamLimited { class: RateClass, kind: LimitKind, permit: Option<PermitId>, retry_after_ms: Option<Ms> },
    /// A verified webhook from Sync: free the generation's permit and, if
    /// the client gave its own `webhookUrl`, queue the payload for it.
    Webhook {
        generation: String,
        status: GenerationStatus,
        relay: Option<RelayRequest>,
        /// The payload's `outputDuration`, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_ms: Option<u64>,
    },
    /// A webhook on a callback URL bound to one create (its token names
    /// `callback`): refused unless the payload's generation is that
    /// create's; deduplicated per callback (see [`crate::callback`]).
    Callback {
        callback: String,
        generation: String,
        status: GenerationStatus,
        relay: Option<RelayRequest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_ms: Option<u64>,
    },
    /// The object listed Sync's active generations (the listing began at
    /// `listed_from`; `complete` is false when paging stopped early), and
    /// looked up the final status of those that ended unseen (`ended`).
    #[serde(skip)]
    Reconciled {
        listed_from: Ms,
        active: Vec<ActiveGeneration>,
        complete: bool,
        #[serde(default)]
        ended: Vec<Observed>,
    },
    /// The listing could not run; try again at `retry_at`.
    #[serde(skip)]
    ReconcileFailed { retry_at: Ms },
    /// Begin a reconciliation run: the reply says what to fetch first.
    #[serde(skip)]
    ListStart,
    /// How fetching the page the core asked for went.
    #[serde(skip)]
    Listed { page: crate::listing::ListedPage },
    /// The final statuses the core asked for.
    #[serde(skip)]
    LookedUp { ended: Vec<Observed> },
    /// One relay delivery attempt ended.
    #[serde(skip)]
    Delivered { id: u64, attempt: Attempt },
    /// A page of the job ledger. `query` was checked by the Worker
    /// ([`crate::ledger::LedgerQuery::parse`]); `client`: the caller's own
    /// rows only, `None` for every client's (the admin key, or the
    /// account's own Sync key in pass-through mode).
    Ledger { query: String, client: Option<String> },
    /// A held request gave up (client gone or deadline passed).
    Unhold {
        ticket: u64,
        /// Why the last attempt was refused (the request is counted as refused for it).
        #[serde(default)]
        reason: Option<Reason>,
    },
    /// The alarm asks for the next queued job to submit, if one may go now.
    #[serde(skip)]
    Dispatch,
    /// How submitting a queued job ended.
    #[serde(skip)]
    Dispatched { ticket: String, permit: PermitId, outcome: DispatchOutcome },
    /// Queued work is ready but cannot be sent (`reason`): the queue backs
    /// off (exponentially, up to a cap) instead of waking the alarm at once.
    #[serde(skip)]
    DispatchBlocked { reason: Blocked },
    /// What blocked the queue is gone (a request brought the account's Sync
    /// key): queued work may go at once.
    #[serde(skip)]
    DispatchUnblocked,
    /// A queue ticket's state (`GET /governor/v1/queue/{ticket}`). With
    /// `client` (managed mode), a ticket of another client is unknown.
    Ticket {
        ticket: String,
        #[serde(default)]
        client: Option<String>,
    },
    /// Cancel a ticket not yet submitted (`DELETE /governor/v1/queue/{ticket}`);
    /// `client` as for `Ticket`.
    Cancel {
        ticket: String,
        #[serde(default)]
        client: Option<String>,
    },
    /// The alarm fired: expire leases.
    #[serde(skip)]
    Tick,
    /// The account's state for `GET /governor/v1/status`.
    Status,
    /// An operator's command (the admin API).
    Admin(crate::ops::AdminCommand),
}

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
    /// The ticket id a queued job gets (the caller draws 128 random bits,
    /// see [`crate::queue::ticket_id`]); without one the core numbers it.
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// The id the create's callback token names (the caller draws it; a
    /// queued job's is its ticket id): the permit remembers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// What the Worker saw of earlier requests it forwarded (statuses,
    /// added latency), counted with this admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<crate::metrics::Tally>,
    /// A create's cost: its client, its client's budgets and Sync's
    /// estimate when the Worker asked for one ([`crate::budget`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostRequest>,
    /// Who asks: the account's name and the client's (see [`crate::shares`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRef>,
}

/// What the account needs to price and budget a create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRequest {
    pub client: String,
    /// Sync's estimate (`POST /v2/analyze/cost`), when it answered.
    #[serde(default)]
    pub sync_estimate: Option<crate::budget::MicroUsd>,
    /// The client's budgets (`CLIENT_LIMITS` usdPerDay / usdPerMonth).
    #[serde(default)]
    pub budgets: crate::budget::BudgetLimits,
    /// The queue ticket or the client's `Idempotency-Key`.
    #[serde(default)]
    pub key: Option<String>,
}

/// The caller of an admission, for sharing the account among its clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    /// The account's object name (`a-acme`, `k-<fingerprint>`).
    pub account: String,
    pub client: String,
}

impl AdmitRequest {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    pub client: String,
    pub key: String,
}

/// A stored answer to a generate, replayed for a retried `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub key: IdempotencyKey,
    pub status: u16,
    pub body: String,
    /// The body was over the replay cap: read this generation back from Sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refetch: Option<String>,
}

/// How submitting a queued job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchOutcome {
    Created {
        generation: String,
    },
    /// Sync answered with a generation that had already ended, in its final
    /// `status` (the job's `Idempotency-Key` replayed an old create): the
    /// permit frees at once, as for a direct create (`settle::ended_in_create`).
    Ended {
        generation: String,
        status: GenerationStatus,
    },
    Limited {
        kind: LimitKind,
        retry_after_ms: Option<Ms>,
    },
    /// Sync refused the job for good (a 4xx other than 429).
    Refused {
        status: u16,
        error: String,
    },
    /// 5xx or unreachable: try again later with the same idempotency key.
    Transient,
}

/// A queued job to submit now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchJob {
    pub ticket: String,
    pub permit: PermitId,
    pub body: String,
    pub idempotency_key: String,
}

/// A queue ticket as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub id: String,
    pub status: TicketStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_start_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub client: String,
    /// `budget_exhausted`: the job waits for its budget's renewal
    /// (`estimatedStartAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// The one field of a [`TicketView`] the Worker reads (for `Location`).
#[derive(Debug, Deserialize)]
pub struct TicketId {
    pub id: String,
}

/// A payload to relay to a client's own webhook URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRequest {
    pub url: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub id: String,
    pub status: GenerationStatus,
    /// Sync's `outputDuration` in milliseconds, when the body had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_ms: Option<u64>,
}

/// Which kind of upstream limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Rate,
    Concurrency,
}

/// The object's answer. Encoded by the object only: the Worker reads it as
/// the reply type of its call ([`crate::calls`], the same JSON), which keeps
/// the views it only passes on as raw text, so it carries no decoder for them.
#[allow(clippy::large_enum_variant)] // a message, moved once (see `Command`)
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Admitted(Admitted),
    Rejected(Rejection),
    Ack {
        released: u32,
    },
    Status(StatusView),
    /// The job was queued (or an idempotent retry found its ticket).
    Queued(TicketView),
    Ticket(TicketView),
    /// A retried `Idempotency-Key`: Sync's original answer.
    Replay(Replay),
    /// The queue has a job to submit now.
    #[serde(skip)]
    Dispatch(DispatchJob),
    /// The request cannot be served as asked (unknown ticket, ...).
    Refused(Refusal),
    /// What a reconciliation run fetches next.
    #[serde(skip)]
    List(crate::listing::ListStep),
    /// The answer to an operator's command: the body of its response.
    Admin(crate::ops::AdminReply),
    /// The account's metrics, for the Worker to render.
    Metrics(Box<crate::metrics::MetricsView>),
    /// A page of the job ledger, encoded as asked.
    Ledger(LedgerPage),
}

/// A ledger page as the Worker sends it on (defined with the ledger).
pub use crate::ledger::encode::LedgerPage;

/// A refusal that is not about capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    UnknownTicket,
    AlreadySubmitted,
    /// The same `Idempotency-Key` is still on its way to Sync; its outcome
    /// is expected within `retry_after_ms`.
    InProgress {
        retry_after_ms: Ms,
    },
    /// The account's storage could not be read; nothing was decided.
    StorageUnavailable,
    /// What the request names does not exist (a permit to release, ...).
    NotFound,
    /// The request's body is not what the command takes.
    Invalid(String),
    /// A body to queue is larger than a queued body may be
    /// ([`crate::queue::MAX_QUEUED_BODY_BYTES`]).
    BodyTooLarge {
        limit: u64,
    },
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
    pub in_flight: Vec<String>,
    /// Tell the deployment's directory that the account is active (at most
    /// about once a minute).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub announce: bool,
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
    /// ([`crate::shed::MAX_AHEAD`]): the wait is longer than any estimate.
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

/// One policy's definition and current state, for the RateLimit fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyState {
    pub name: String,
    pub quota: u32,
    /// Window in seconds; `None` for the concurrency policy.
    pub window_s: Option<u64>,
    pub remaining: u32,
    /// Milliseconds until quota comes back.
    pub reset_ms: Ms,
}

/// `GET /governor/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub policies: Vec<PolicyState>,
    pub concurrency: ConcurrencyView,
    /// Batch permits (Sync's Batch API).
    pub batches: crate::batch::BatchesView,
    pub backoff: Vec<BackoffView>,
    pub reconcile: ReconcileView,
    pub relay: RelayView,
    pub queue: QueueView,
    pub storage: StorageView,
    /// `enforce` or `shadow` (`GOVERNOR_MODE`).
    pub mode: String,
    /// An operator's pause, if any.
    pub paused: Option<crate::ops::PauseView>,
    /// Every limit in effect and where it came from.
    pub limits: Vec<crate::overrides::LimitView>,
    pub counters: crate::metrics::Counters,
    /// Wait percentiles of held requests and queued jobs.
    pub waits: crate::metrics::WaitsView,
    /// The last 15 minutes per class, for the dashboard.
    pub series: crate::metrics::SeriesView,
    /// Budgets, spend per client, the ledger ([`crate::budget::view`]).
    pub costs: crate::budget::view::CostsView,
    /// What is still pending and when it is due (the drained probe).
    pub pending: crate::drained::PendingView,
    /// The account's clients: limits, permits, queued and held work, shares.
    pub clients: Vec<crate::shares::status::ClientView>,
}

/// What the account stores, against its bounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageView {
    pub schema_version: u32,
    pub idempotency: BoundView,
    pub outbox: BoundView,
    pub queue: BoundView,
    /// Records the object keeps in memory (the rest is read by key).
    pub in_memory: MemoryView,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundView {
    pub count: u64,
    pub max_count: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryView {
    pub permits: u32,
    pub waiting_jobs: u32,
    pub outbox_schedule: u32,
    pub in_flight_keys: u32,
    pub held: u32,
    pub admission_stamps: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub depth: u32,
    pub held: u32,
    /// Why queued work cannot be sent now, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Blocked>,
    /// When the object tries again (while `blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_retry_in_ms: Option<Ms>,
}

/// Why the queue cannot send its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// The object has no Sync key for the account: a pass-through key not
    /// presented since the runtime restarted (and no sealed copy), or an
    /// account no longer in `SYNC_API_KEYS`.
    NoSyncKey,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileView {
    pub runs: u64,
    pub next_in_ms: Option<Ms>,
    pub last_drift: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayView {
    pub pending: usize,
    pub delivered: u64,
    pub abandoned: u64,
    /// Payloads that did not fit the outbox's bounds.
    pub dropped: u64,
    /// Webhooks for an end already relayed (replays, duplicates): acknowledged and dropped.
    pub duplicates: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyView {
    pub limit: u32,
    pub in_use: u32,
    pub free: u32,
    pub in_flight: Vec<InFlightView>,
    pub expected_duration_ms: Ms,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlightView {
    /// `None` while the request is still on its way to Sync.
    pub generation: Option<String>,
    pub adopted: bool,
    pub age_ms: Ms,
    pub model: Option<String>,
    /// When the generation is expected to end, from the observed durations
    /// (0 when overdue).
    pub expected_end_in_ms: Ms,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackoffView {
    pub class: RateClass,
    pub paused_for_ms: Ms,
    pub strikes: u32,
}
