//! The typed contract for every call into an account's Durable Object.
//!
//! The Worker sends one JSON-encoded [`Command`] per call and gets one
//! [`Reply`]; the object decodes, applies the command to its state through
//! [`crate::account::apply`], persists, and encodes the reply. No path
//! strings, no ad-hoc bodies.

use serde::{Deserialize, Serialize};

use crate::permits::PermitId;
use crate::reconcile::ActiveGeneration;
use crate::relay::Attempt;
use crate::Ms;

/// A call into the account's object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// May a request of `class` go to Sync now? For `POST /v2/generate`,
    /// `permit` asks for a concurrency permit too (all or nothing).
    Admit(AdmitRequest),
    /// Sync created `generation` for the request holding `permit`.
    Bind { permit: PermitId, generation: String },
    /// Sync refused or failed the request holding `permit`: free it.
    Release { permit: PermitId },
    /// Generation statuses seen in responses passing through.
    Observe { generations: Vec<Observed> },
    /// Sync answered 429 to a request the governor admitted.
    UpstreamLimited { class: String, kind: LimitKind, permit: Option<PermitId>, retry_after_ms: Option<Ms> },
    /// A verified webhook from Sync: free the generation's permit and, if
    /// the client gave its own `webhookUrl`, queue the payload for it.
    Webhook { generation: String, status: String, relay: Option<RelayRequest> },
    /// The object listed Sync's active generations (the listing began at
    /// `listed_from`; `complete` is false when paging stopped early).
    Reconciled { listed_from: Ms, active: Vec<ActiveGeneration>, complete: bool },
    /// The listing could not run; try again at `retry_at`.
    ReconcileFailed { retry_at: Ms },
    /// One relay delivery attempt ended.
    Delivered { id: u64, attempt: Attempt },
    /// The alarm fired: expire leases.
    Tick,
    /// The account's state for `GET /governor/v1/status`.
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmitRequest {
    pub class: String,
    #[serde(default)]
    pub permit: bool,
    #[serde(default)]
    pub model: Option<String>,
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
    pub status: String,
}

/// Which kind of upstream limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Rate,
    Concurrency,
}

/// The object's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Admitted(Admitted),
    Rejected(Rejection),
    Ack { released: u32 },
    Status(StatusView),
}

/// An admission: the permit (if one was asked for) now belongs to the
/// request, which must bind or release it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    pub permit: Option<PermitId>,
    pub policies: Vec<PolicyState>,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub policies: Vec<PolicyState>,
    pub concurrency: ConcurrencyView,
    pub backoff: Vec<BackoffView>,
    pub reconcile: ReconcileView,
    pub relay: RelayView,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileView {
    pub runs: u64,
    pub next_in_ms: Option<Ms>,
    pub last_drift: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayView {
    pub pending: usize,
    pub delivered: u64,
    pub abandoned: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyView {
    pub limit: u32,
    pub in_use: u32,
    pub free: u32,
    pub in_flight: Vec<InFlightView>,
    pub expected_duration_ms: Ms,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlightView {
    /// `None` while the request is still on its way to Sync.
    pub generation: Option<String>,
    pub adopted: bool,
    pub age_ms: Ms,
    pub model: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackoffView {
    pub class: String,
    pub paused_for_ms: Ms,
    pub strikes: u32,
}
