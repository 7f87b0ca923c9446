//! A webhook on a bound callback URL. The token in the URL names one
//! create (a random id the Worker draws; a queued job's is its ticket), and
//! the permit of that create remembers it. With signature checks off
//! anyone holding the URL can post to it, so the posted body's `id` is
//! checked against what the account knows: a callback whose create is
//! bound to another generation, or a generation held under another
//! callback, is refused. An end seen before its create's bind frees it at
//! the bind only when it came on that create's own callback. Relayed ends
//! are deduplicated per callback, so a forged copy on one URL never makes
//! another generation's real webhook a duplicate.

use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::Observed;
use crate::relay::delivery::RelayRequest;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

/// Why a callback is refused (the only message: nothing of the body is echoed).
pub const MISMATCH: &str = "the payload's id is not the generation this callback URL was made for";

impl AccountState {
    /// Does what the account knows allow `generation` on `callback`?
    fn callback_matches(&self, callback: &TicketId, generation: &GenerationId) -> bool {
        let held = self.permits.held();
        let own = held.iter().find(|p| p.callback.as_ref() == Some(callback));
        if own.and_then(|p| p.generation()).is_some_and(|g| g != generation) {
            return false;
        }
        let holder = held.iter().find(|p| p.generation() == Some(generation));
        holder.and_then(|p| p.callback.as_ref()).is_none_or(|c| c == callback)
    }

    /// Would the end recorded for `generation` free `permit` at its bind?
    /// Only if no callback said it, or its own did.
    pub(crate) fn recent_end_is_for(&self, permit: PermitId, generation: &GenerationId) -> bool {
        let Some((.., said)) = self.early_ends.seen.iter().find(|(g, ..)| g == generation) else { return true };
        let own = self.permits.held().iter().find(|p| p.id == permit).and_then(|p| p.callback.clone());
        said.is_none() || *said == own
    }

    pub(crate) fn callback(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        callback: TicketId,
        seen: Observed,
        relay: Option<RelayRequest>,
    ) -> StoreResult<Reply> {
        if !self.callback_matches(&callback, &seen.id) {
            return Ok(Reply::Refused(Refusal::Invalid(MISMATCH.into())));
        }
        self.early_ends.callback_said = Some(callback.clone());
        let freed = self.release_terminal(limits, store, std::slice::from_ref(&seen), now);
        self.early_ends.callback_said = None;
        let released = freed?.len() as u32;
        if let Some(r) = relay {
            let key = Observed {
                id: GenerationId::new(format!("{}#{callback}", seen.id)),
                status: seen.status,
                output_ms: None,
            };
            self.relay_once(limits, store, now, key, r)?;
        }
        Ok(Reply::Ack { released })
    }
}
