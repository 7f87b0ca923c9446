//! When the batch lane needs the alarm: a batch in flight due for a read,
//! waiting work that makes a batch (500 at once, 20 once arrivals paused
//! or the oldest lingered) when a batch permit and the `other` token allow, waiting work
//! too small for a batch once it waited its longest, a closed lane's work.

use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::batch::lane::MAX_LANE_BATCHES;
use crate::config::limits::Limits;
use crate::rates::class::RateClass;
use crate::Ms;

/// A batch of fewer than `max_jobs` goes at the latest once its oldest job
/// waited this many times `linger_ms`, however steadily work arrives.
pub const LINGER_CEILING: u64 = 10;

impl AccountState {
    /// When the lane next needs the alarm.
    pub(crate) fn lane_wake(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        let policy = &limits.batches.lane;
        // A batch in flight is read when due; an unanswered create is
        // looked at as often (a listing may have bound it meanwhile).
        let polls =
            self.lane.batches.iter().filter(|b| self.lane.live != Some(b.permit)).map(|b| b.next_at.max(now + 1)).min();
        let waiting = self.lane_waiting().count() as u32;
        let go = if waiting == 0 || self.lane.live.is_some() {
            None
        } else if !self.lane_open(limits) {
            Some(now + 1)
        } else if let Some(ready) = self.lane_ready_at(limits).filter(|_| self.lane.batches.len() < MAX_LANE_BATCHES) {
            let probe = AdmitRequest { class: RateClass::Other, batch: true, ..AdmitRequest::default() };
            Some(match self.admit_check(limits, now, &probe) {
                Ok(()) => ready.max(now + 1),
                Err(r) => r.retry_at_ms.max(ready).max(now + 1),
            })
        } else {
            self.lane_waiting().map(|j| j.created_at.saturating_add(policy.max_wait_ms)).min().map(|t| t.max(now + 1))
        };
        [polls, go].into_iter().flatten().min()
    }

    /// When the waiting lane work makes a batch: at once with `max_jobs`;
    /// with `min_jobs`, once no lane job arrived for `linger_ms` (the
    /// backlog stopped growing) or the oldest waited
    /// [`LINGER_CEILING`] × `linger_ms` (`None`: fewer than `min_jobs`).
    pub(super) fn lane_ready_at(&self, limits: &Limits) -> Option<Ms> {
        let policy = &limits.batches.lane;
        let waiting = self.lane_waiting().count() as u32;
        if waiting >= policy.max_jobs {
            return Some(0);
        }
        let oldest = self.lane_waiting().map(|j| j.created_at).min()?;
        let newest = self.lane_waiting().map(|j| j.created_at).max()?;
        let quiet = newest.saturating_add(policy.linger_ms);
        let ceiling = oldest.saturating_add(policy.linger_ms.saturating_mul(LINGER_CEILING));
        (waiting >= policy.min_jobs).then(|| quiet.min(ceiling))
    }

    /// Is there lane work for the alarm now?
    pub(crate) fn lane_due(&self, limits: &Limits, now: Ms) -> bool {
        self.lane_wake(limits, now).is_some_and(|t| t <= now + 1)
    }
}
