//! Generations seen ending before their create was bound (a webhook can
//! overtake the Worker's `Bind`): the bind then frees the permit at once.
//! Bounded; in memory only (reconciliation covers a restart).

use crate::ids::{GenerationId, TicketId};
use crate::lifecycle::status::GenerationStatus;
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct EarlyEnds {
    /// (generation, status, when, the callback that said so).
    pub seen: Vec<(GenerationId, GenerationStatus, Ms, Option<TicketId>)>,
    /// The callback a webhook being applied came on (tags what it ends).
    pub callback_said: Option<TicketId>,
}
