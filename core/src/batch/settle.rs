//! What Sync's answer to a batch create means for the account: bind,
//! release, learn a lower cap, or keep the permit until a listing tells.
//! Sync's 429 becomes the governor's own, with an honest retry time.

use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::config::limits::Limits;
use crate::rates::class::RateClass;
use crate::wire::contract::Reply;
use crate::Ms;

use super::{BatchPermitId, CreateAnswer};

impl AccountState {
    pub(crate) fn batch_created(
        &mut self,
        limits: &Limits,
        now: Ms,
        jitter: f64,
        permit: BatchPermitId,
        answer: CreateAnswer,
        retry_after_ms: Option<Ms>,
    ) -> Reply {
        let done = self.batch_answered(limits, now, jitter, permit, &answer, retry_after_ms);
        match answer {
            CreateAnswer::Created(seen) => Reply::Ack { released: u32::from(!done || seen.terminal) },
            CreateAnswer::Validated | CreateAnswer::Refused { .. } => Reply::Ack { released: u32::from(done) },
            CreateAnswer::Unknown => Reply::Ack { released: 0 },
            CreateAnswer::ConcurrencyLimited | CreateAnswer::RateLimited => self.governor_refusal(limits, now),
        }
    }

    /// What Sync's answer to a batch create does to the batch permit and the
    /// rates, for a client's create and the lane's alike: bind, release,
    /// learn a lower cap, strike `other`, or keep the permit until a listing
    /// tells. Returns what the bind or the release returned (false when kept).
    pub(super) fn batch_answered(
        &mut self,
        limits: &Limits,
        now: Ms,
        jitter: f64,
        permit: BatchPermitId,
        answer: &CreateAnswer,
        retry_after_ms: Option<Ms>,
    ) -> bool {
        match answer {
            CreateAnswer::Created(seen) => self.batches.bind(&limits.batches, permit, seen, now),
            CreateAnswer::Validated | CreateAnswer::Refused { .. } => self.batches.release(permit),
            CreateAnswer::Unknown => {
                self.batches.mark_unknown(&limits.batches, permit, now);
                self.reconciliation.schedule.arm(&limits.reconcile, now);
                false
            }
            CreateAnswer::ConcurrencyLimited => {
                self.ops.metrics.upstream_429();
                let freed = self.batches.release(permit);
                self.batches.learn_down(&limits.batches, now);
                freed
            }
            CreateAnswer::RateLimited => {
                self.ops.metrics.upstream_429();
                let freed = self.batches.release(permit);
                self.rates.strike(limits, &RateClass::Other, now, jitter, retry_after_ms);
                freed
            }
        }
    }

    /// The caller of a batch Sync refused with 429 gets the governor's 429
    /// (shadow mode: Sync's own, as it is).
    fn governor_refusal(&self, limits: &Limits, now: Ms) -> Reply {
        if limits.shadow {
            return Reply::Ack { released: 1 };
        }
        let probe = AdmitRequest { class: RateClass::Other, batch: true, ..AdmitRequest::default() };
        match self.admit_check(limits, now, &probe) {
            Err(r) => Reply::Rejected(r),
            Ok(()) => Reply::Ack { released: 1 },
        }
    }
}
