//! The configuration of batch permits (tower's `limit/` split: this is the
//! config; [`super::permits`] is the mechanism and the permit).

use serde::{Deserialize, Serialize};

use crate::Ms;

/// Batches an account may have in flight, and the backstop leases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLimit {
    /// `MAX_CONCURRENT_BATCHES` (Sync's batch concurrency for the plan).
    pub cap: u32,
    /// A reservation whose create never reported back is presumed lost.
    pub reservation_ttl_ms: Ms,
    /// A batch whose end was never observed is freed after this (Sync's
    /// target turnaround is 24 hours; `BATCH_LEASE_SECONDS`, 26 h).
    pub lease_ttl_ms: Ms,
    /// How long a cap learned from Sync's `concurrency_limit_reached` holds
    /// before the configured cap is tried again.
    pub learned_ttl_ms: Ms,
    /// The batch lane (`SYNC_BATCH`).
    #[serde(default)]
    pub lane: super::lane_policy::LanePolicy,
}

impl Default for BatchLimit {
    fn default() -> Self {
        BatchLimit {
            cap: 2,
            reservation_ttl_ms: 600_000,
            lease_ttl_ms: 26 * 3_600_000,
            learned_ttl_ms: 3_600_000,
            lane: super::lane_policy::LanePolicy::OFF,
        }
    }
}
