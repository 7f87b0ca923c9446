//! Timers that drive each generation PENDING → PROCESSING → terminal, so that
//! webhooks fire and concurrency frees on time, not lazily on read.

use std::sync::Arc;
use std::time::Duration;

use crate::generation::Outcome;
use crate::state::Sim;

/// Starts the timers of one generation.
pub fn spawn(sim: Arc<Sim>, id: String, pending: Duration, processing: Duration, outcome: Outcome) {
    let epoch = sim.current_epoch();
    tokio::spawn(async move {
        tokio::time::sleep(pending).await;
        if sim.current_epoch() != epoch {
            return;
        }
        if outcome == Outcome::Reject {
            // Rejection happens at intake: straight from PENDING.
            sim.finish(&id, outcome);
            return;
        }
        if !sim.start_processing(&id) {
            return;
        }
        tokio::time::sleep(processing).await;
        if sim.current_epoch() != epoch {
            return;
        }
        sim.finish(&id, outcome);
    });
}
