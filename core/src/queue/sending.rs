//! Sending queued work, the queue's own part of the account beside its
//! rows: the Sync key it goes with (sealed, persisted as `sealed_key`),
//! what blocks it (no key: backing off) and the job being sent now (both in
//! memory only: after a restart the object finds out again, and a
//! SUBMITTING job is one whose send was cut off).

use crate::ids::TicketId;
use crate::queue::job::DispatchBlock;

#[derive(Clone, Debug, Default)]
pub struct Sending {
    /// The pass-through Sync key, sealed, kept while the queue needs it.
    pub sealed_key: Option<String>,
    /// Queued work that could not be sent (no Sync key): backing off.
    pub block: Option<DispatchBlock>,
    /// The queued job a dispatch is sending now.
    pub live: Option<TicketId>,
}
