//! A retried client `Idempotency-Key`: Sync's first answer replayed (or its
//! generation read back), and when a key still in flight should resolve.

use crate::account::AccountState;
use crate::admission::idempotency::Replay;
use crate::admission::request::AdmitRequest;
use crate::admission::request::IN_PROGRESS_RETRY_MS;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::rates::class::RateClass;
use crate::storage::store::{IdempotencyRecord, IdempotencyState};
use crate::wire::contract::Reply;
use crate::Ms;

impl AccountState {
    /// When a key still in flight is expected to resolve: a create on its
    /// way to Sync answers within seconds; one whose answer was lost waits
    /// for the next reconciliation listing (or its reservation's end).
    pub(crate) fn in_progress_retry_at(&self, permit: crate::lifecycle::permits::PermitId, now: Ms) -> Ms {
        let soon = now + IN_PROGRESS_RETRY_MS;
        let Some(p) = self.permits.held().iter().find(|p| p.id == permit) else { return soon };
        if p.unknown_since.is_none() {
            return soon.min(p.expires.max(now + 1));
        }
        let listing = self.reconciliation.schedule.next_at.filter(|at| *at > now).unwrap_or(soon);
        listing.min(p.expires).max(soon)
    }

    pub(crate) fn done_generation_runs(&self, r: &IdempotencyRecord) -> bool {
        matches!(&r.state, IdempotencyState::Done { generation: Some(g), .. } if self.permits.holds_generation(g))
    }

    /// A retried key: Sync's first answer, or (when it was too large to
    /// keep) its generation to read back, which costs one `other` request.
    pub(crate) fn replay(
        &mut self,
        limits: &Limits,
        now: Ms,
        key: crate::admission::idempotency::IdempotencyKey,
        status: u16,
        generation: Option<GenerationId>,
        body: Option<String>,
    ) -> Reply {
        if let Some(body) = body {
            return Reply::Replay(Replay { key, status, body, refetch: None });
        }
        let read = AdmitRequest { class: RateClass::Other, ..AdmitRequest::default() };
        if let Err(r) = self.admit_check(limits, now, &read) {
            self.ops.metrics.refused(&RateClass::Generate, r.reason.name(), now);
            return Reply::Rejected(r);
        }
        self.spend(limits, &RateClass::Other, now);
        Reply::Replay(Replay { key, status, body: String::new(), refetch: generation })
    }
}
