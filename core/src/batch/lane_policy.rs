//! The batch lane's configuration (`SYNC_BATCH*`): config apart from the
//! lane's mechanism ([`super::lane`]), so the batch limit can carry it
//! without depending on the lane's state.

use serde::{Deserialize, Serialize};

use crate::Ms;

/// `SYNC_BATCH` and the lane's timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanePolicy {
    /// `SYNC_BATCH=on` (off by default: only Scale and Enterprise have the API).
    pub enabled: bool,
    /// Batch-lane jobs that must wait before a batch goes (Sync's minimum, 20).
    pub min_jobs: u32,
    /// Lines per batch at most (Sync's maximum, 500).
    pub max_jobs: u32,
    /// Bytes of one batch's JSONL at most (Sync takes 5 MB).
    pub max_bytes: u64,
    /// A batch goes at `max_jobs` waiting, or at `min_jobs` once no lane
    /// job arrived for this long (`SYNC_BATCH_LINGER_MS`; at the latest
    /// once the oldest waited ten times as long): a batch takes hours, so
    /// a minute to fill it saves calls and costs nothing.
    pub linger_ms: Ms,
    /// How often a lane batch in flight is read (`SYNC_BATCH_POLL_MS`).
    pub poll_ms: Ms,
    /// Fewer than `min_jobs` waiting this long go direct (`SYNC_BATCH_MAX_WAIT_SECONDS`).
    pub max_wait_ms: Ms,
}

impl LanePolicy {
    pub const OFF: LanePolicy = LanePolicy {
        enabled: false,
        min_jobs: 20,
        max_jobs: 500,
        max_bytes: 5 * 1024 * 1024 - 64 * 1024,
        linger_ms: 60_000,
        poll_ms: 60_000,
        max_wait_ms: 3_600_000,
    };
}

impl Default for LanePolicy {
    fn default() -> Self {
        LanePolicy::OFF
    }
}
