//! The account's status document (`GET /governor/v1/status`): its policies,
//! permits, backoff, reconciliation, relay, queue and storage against their
//! bounds. Views only: the account builds them.

use serde::Serialize;

use crate::ids::GenerationId;
use crate::queue::job::Blocked;
use crate::rates::class::RateClass;
use crate::wire::headers::PolicyState;
use crate::Ms;

/// `GET /governor/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub policies: Vec<PolicyState>,
    pub concurrency: ConcurrencyView,
    /// Batch permits (Sync's Batch API).
    pub batches: crate::batch::BatchesView,
    /// The batch lane: jobs waiting for it, batches in flight, calls saved.
    pub lane: crate::batch::lane::LaneView,
    pub backoff: Vec<BackoffView>,
    pub reconcile: ReconcileView,
    pub relay: RelayView,
    pub queue: QueueView,
    pub storage: StorageView,
    /// `enforce` or `shadow` (`GOVERNOR_MODE`).
    pub mode: String,
    /// An operator's pause, if any.
    pub paused: Option<crate::operations::admin::PauseView>,
    /// Every limit in effect and where it came from.
    pub limits: Vec<crate::operations::overrides::LimitView>,
    pub counters: crate::operations::metrics::Counters,
    /// Wait percentiles of held requests and queued jobs.
    pub waits: crate::operations::series::WaitsView,
    /// The last 15 minutes per class, for the dashboard.
    pub series: crate::operations::series::SeriesView,
    /// Budgets, spend per client, the ledger ([`crate::budget::view`]).
    pub costs: crate::budget::view::CostsView,
    /// What is still pending and when it is due (the drained probe).
    pub pending: crate::operations::drained::PendingView,
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
    pub generation: Option<GenerationId>,
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
