//! The batch lane's configuration, state and messages (issue 18): queued
//! work whose sender said it can wait (`X-Governor-Lane: batch`, or a
//! client whose `CLIENT_LIMITS` entry says `"lane": "batch"`) drains
//! through Sync's Batch API instead of one create each. The rules live in
//! [`super::lane_step`]; the jobs themselves are rows of the queue (state
//! `lane` while they wait, `batched` while a batch holds them), so this
//! state is only the batches in flight and the counters: small, one row.

use serde::{Deserialize, Serialize};

use crate::batch::{BatchPermitId, CreateAnswer, SeenBatch};
use crate::Ms;

/// Lane batches in flight at most (each holds a batch permit too).
pub const MAX_LANE_BATCHES: usize = 16;

pub use super::lane_policy::LanePolicy;

/// A client's lane in `CLIENT_LIMITS` (`"lane": "batch"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneChoice {
    Batch,
    Direct,
}

/// Why the lane is off for the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneOff {
    /// Sync answered 402: the plan has no Batch API.
    PlanWithoutBatches,
}

impl LaneOff {
    pub fn name(self) -> &'static str {
        match self {
            LaneOff::PlanWithoutBatches => "plan_without_batches",
        }
    }
}

/// One lane batch in flight. Its jobs are the queue's `batched` rows that
/// name its permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneBatch {
    pub permit: BatchPermitId,
    /// Sync's batch id (`None` while its create is on its way or unanswered).
    #[serde(default)]
    pub batch: Option<String>,
    pub since: Ms,
    pub jobs: u32,
    /// When it is read next.
    #[serde(default)]
    pub next_at: Ms,
    /// Seen terminal: its result is read next.
    #[serde(default)]
    pub ended: bool,
    /// Reads that got nothing usable in a row.
    #[serde(default)]
    pub misses: u32,
}

/// The lane's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneTotals {
    /// Batches Sync accepted.
    #[serde(default)]
    pub batches: u64,
    /// Jobs sent in those batches.
    #[serde(default)]
    pub jobs: u64,
    /// Jobs whose generation a batch made (its result said so).
    #[serde(default)]
    pub created: u64,
    /// Jobs that fell back to the direct queue.
    #[serde(default)]
    pub fell_back: u64,
}

/// The lane's state (the `lane` meta row).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    #[serde(default)]
    pub off: Option<(LaneOff, Ms)>,
    #[serde(default)]
    pub batches: Vec<LaneBatch>,
    #[serde(default)]
    pub totals: LaneTotals,
    /// The create on its way now (memory only: after a restart a lane batch
    /// without an id was cut off).
    #[serde(skip)]
    pub live: Option<BatchPermitId>,
}

impl Lane {
    /// Keep at most [`MAX_LANE_BATCHES`] from a stored row.
    pub fn bounded(mut self) -> Self {
        self.batches.truncate(MAX_LANE_BATCHES);
        self
    }

    /// Upstream calls the lane saved: one create per generation a batch
    /// made, less the batch creates themselves.
    pub fn calls_saved(&self) -> u64 {
        self.totals.created.saturating_sub(self.totals.batches)
    }
}

/// What the lane asks the driver to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneStep {
    /// `POST /v2/batch` with these JSONL lines (the `other` token spent,
    /// the batch permit reserved), then [`LaneCommand::Created`].
    Submit { permit: BatchPermitId, lines: String, count: u32 },
    /// `GET /v2/batch/{batch}`, then [`LaneCommand::Seen`].
    Poll { batch: String },
    /// The result JSONL (`GET /v2/batches/{batch}/result`, its redirect
    /// followed without the key), then [`LaneCommand::Result`].
    Fetch { batch: String },
    /// Nothing to do now.
    Idle,
}

/// What the driver reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneCommand {
    /// What may the lane do now?
    Next,
    /// Sync's answer to the lane batch's create.
    Created { permit: BatchPermitId, answer: CreateAnswer },
    /// Sync's answer to a read of the batch (`None`: nothing usable).
    Seen { batch: String, seen: Option<SeenBatch> },
    /// The result JSONL (`None`: not read).
    Result { batch: String, body: Option<String> },
}

/// One lane batch in the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneBatchView {
    pub batch_id: Option<String>,
    pub jobs: u32,
    pub ended: bool,
}

/// The lane in the account's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneView {
    /// `SYNC_BATCH=on` and not turned off.
    pub enabled: bool,
    /// Why it is off for the account (`plan_without_batches`), if it is.
    pub off: Option<&'static str>,
    /// Batch-lane jobs waiting for a batch.
    pub waiting: u32,
    /// Lane batches in flight.
    pub in_flight: Vec<LaneBatchView>,
    pub batches: u64,
    pub jobs_batched: u64,
    pub created: u64,
    pub fell_back: u64,
    /// Upstream calls saved: generations the batches made, less the batch creates.
    pub calls_saved: u64,
}
