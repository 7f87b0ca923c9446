//! When the account's alarm must fire next, and what is pending until then
//! (the drained probe).

use crate::config::limits::Limits;

use crate::account::AccountState;
use crate::Ms;

impl AccountState {
    /// When the object must wake up next (lease expiry, reconciliation,
    /// relay delivery, queued work, sweeping old records), if ever.
    pub fn next_wake(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        let sweep = (self.idempotency.totals.records > 0).then_some(self.sweep_at.max(now + 1));
        // Counts not yet written are written by then (an idle object is
        // evicted; its alarm brings it back to write them).
        let metrics = self.ops.metrics.dirty.then_some(self.ops.metrics.flush_at.max(now + 1));
        [
            metrics,
            self.permits.next_expiry(),
            self.batches.next_expiry(),
            self.reconciliation.schedule.next_at,
            self.outbox.next_wake(),
            self.queue_wake(limits, now),
            self.ops.paused.is_none().then(|| self.lane_wake(limits, now)).flatten(),
            sweep,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl AccountState {
    /// What is pending now (see [`crate::operations::drained::PendingView`]). Work running now reads
    /// as due now, as it does after a restart cut it off (a submission is
    /// resumed, a listing begun again): the view is the same either side of
    /// a restart.
    pub fn pending(&self, limits: &Limits, now: Ms) -> crate::operations::drained::PendingView {
        let from_now = |at: Ms| at.saturating_sub(now);
        let running = |yes: bool, next: Option<Ms>| if yes { Some(0) } else { next.map(from_now) };
        crate::operations::drained::PendingView {
            deliveries: self.outbox.pending() as u32,
            next_delivery_in_ms: self.outbox.next_wake().map(from_now),
            submissions: self.queue.depth(),
            next_submission_in_ms: running(self.sending.live.is_some(), self.queue_wake(limits, now)),
            next_listing_in_ms: running(self.reconciliation.listing.is_some(), self.reconciliation.schedule.next_at),
        }
    }
}
