//! The drained probe: what the account still has pending — relay
//! deliveries, queued submissions, reconciliation listings — and when each
//! is next due, read from the same state that computes the next wake
//! (`AccountState::next_wake`; computed by `AccountState::pending`). Work handed to the object and not yet
//! reported back counts as pending (a delivery stays in the outbox until
//! its `Delivered`, a submission is live until its `Dispatched`, a listing
//! runs until its last page). The status view carries it as `pending`, so
//! a test can see that nothing more will happen before a given time instead
//! of waiting out a quiet period before a negative assertion.

use serde::Serialize;

use crate::Ms;

/// What is pending, and when it is next due (milliseconds from now; 0: due
/// or running now; `None`: nothing of that kind is scheduled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView {
    /// Relay deliveries in the outbox (being sent or waiting to be retried).
    pub deliveries: u32,
    pub next_delivery_in_ms: Option<Ms>,
    /// Queued jobs not yet submitted (or being submitted).
    pub submissions: u32,
    /// When the queue may submit next (0 while a submission is on its way;
    /// `None` while paused or empty).
    pub next_submission_in_ms: Option<Ms>,
    /// When a reconciliation listing is next due (0 while one runs).
    pub next_listing_in_ms: Option<Ms>,
}

impl PendingView {
    /// Nothing runs now and no delivery or submission is due within `ms`;
    /// with `listings`, no listing either.
    pub fn drained_for(&self, ms: Ms, listings: bool) -> bool {
        let quiet = |next: Option<Ms>| next.is_none_or(|n| n > ms);
        quiet(self.next_delivery_in_ms)
            && quiet(self.next_submission_in_ms)
            && (!listings || quiet(self.next_listing_in_ms))
    }
}
