//! Batches (Sync's Batch API, issue 18) as one part of the account: its own
//! state, its own row (the `batches` meta value, bounded by the batch cap),
//! its own rules. The rest of the account calls it through a few narrow
//! hooks: admission asks [`BatchPermits::has_room`], settling hands it
//! Sync's answers, the listing asks it for one batch page, reconciliation
//! asks how many unknown generations batches may have spawned.
//!
//! | module | one concept |
//! |---|---|
//! | [`limit`] | `BatchLimit`: `MAX_CONCURRENT_BATCHES`, the reservation and lease TTLs |
//! | [`permits`] | batch permits: reserved at admission, bound to a batch id, freed at its end; the cap learned down from Sync |
//! | [`settle`] | what Sync's answer to a batch create means: bind, release, learn, or wait for a listing |
//! | [`answer`] | reading Sync's batch answers (create, reads, lists), bounded and hostile-safe |
//! | [`lane`] | the batch lane: its batches in flight and counters, its messages |
//! | [`lane_policy`] | the lane's configuration (`SYNC_BATCH*`), apart from its mechanism |
//! | [`lane_step`] | the lane's rules: when a batch goes, is read, its result read |
//! | [`lane_answer`] | what Sync's answers to the lane's calls do to a lane batch and its jobs |
//! | [`lane_wake`] | when the lane needs the alarm |
//! | [`lane_pick`] | which lane jobs go in the next batch (fair order, line and byte bounds) |
//! | [`lane_lines`] | the lane's JSONL: input lines from queued bodies, the result read back |

use crate::ids::GenerationId;

pub mod answer;
pub mod lane;
pub mod lane_answer;
pub mod lane_lines;
pub mod lane_pick;
pub mod lane_policy;
pub mod lane_step;
pub mod lane_wake;
pub mod limit;
pub mod permits;
pub mod settle;

pub use answer::{CreateAnswer, SeenBatch};
pub use limit::BatchLimit;
pub use permits::{BatchHolder, BatchPermit, BatchPermitId, BatchPermits, BatchesView};

/// Name of the batch-concurrency policy in headers and errors.
pub const POLICY: &str = "batches";

/// The active generations reconciliation may adopt: all it knows, and the
/// unknown ones past the first `allowance` (the generations open batches
/// may still run; the list is newest first, as a batch's spawned ones are).
pub fn not_spawned<T>(
    active: Vec<(GenerationId, T)>,
    allowance: u32,
    known: impl Fn(&GenerationId) -> bool,
) -> Vec<(GenerationId, T)> {
    let mut skip = allowance;
    active
        .into_iter()
        .filter(|(id, _)| {
            if skip > 0 && !known(id) {
                skip -= 1;
                return false;
            }
            true
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_generations_up_to_the_allowance_are_not_adopted() {
        let active: Vec<(crate::ids::GenerationId, ())> =
            ["a", "b", "c", "mine"].iter().map(|s| ((*s).into(), ())).collect();
        let kept = super::not_spawned(active, 2, |g| *g == "mine");
        let ids: Vec<&str> = kept.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(ids, ["c", "mine"]);
    }
}
