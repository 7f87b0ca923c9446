//! Reconciliation against Sync's list of active generations: the backstop
//! that makes the governor's permits converge to what Sync really has, when
//! webhooks are lost or another client uses the same key directly.
//!
//! While the account holds permits, the object's alarm lists
//! `PENDING,PROCESSING` generations. Permits bound before the listing began
//! whose generation is no longer listed are released; listed generations
//! the governor never admitted are adopted. The period halves to the
//! minimum after a drift and doubles up to the maximum while quiet.

use crate::ids::GenerationId;
use serde::{Deserialize, Serialize};

use crate::Ms;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcilePolicy {
    pub min_ms: Ms,
    pub max_ms: Ms,
    /// Items per list page (Sync allows 1..=100).
    pub page_size: u32,
}

/// A generation Sync lists as active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveGeneration {
    pub id: GenerationId,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// When to list next; `None` when there is nothing to reconcile.
    #[serde(default)]
    pub next_at: Option<Ms>,
    #[serde(default)]
    pub interval_ms: Ms,
    /// After an upstream concurrency 429, treat the cap as full until the
    /// next reconciliation says otherwise.
    #[serde(default)]
    pub full_until: Ms,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub last_drift: u32,
}

impl Schedule {
    /// Make sure a reconciliation is planned within the current interval.
    pub fn arm(&mut self, policy: &ReconcilePolicy, now: Ms) {
        if self.interval_ms == 0 {
            self.interval_ms = policy.min_ms;
        }
        let at = now + self.interval_ms;
        self.next_at = Some(self.next_at.map_or(at, |n| n.min(at)));
    }

    /// Something looks wrong: reconcile now, and treat the cap as full
    /// until then.
    pub fn suspect(&mut self, policy: &ReconcilePolicy, now: Ms) {
        self.interval_ms = policy.min_ms;
        self.next_at = Some(now);
        self.full_until = now + policy.max_ms;
    }

    pub fn due(&self, now: Ms) -> bool {
        self.next_at.is_some_and(|at| at <= now)
    }

    pub fn is_full(&self, now: Ms) -> bool {
        self.full_until > now
    }

    /// A reconciliation finished with `drift` corrections; plan the next.
    pub fn finished(&mut self, policy: &ReconcilePolicy, now: Ms, drift: u32, still_needed: bool) {
        self.runs += 1;
        self.last_drift = drift;
        self.full_until = 0;
        self.interval_ms =
            if drift > 0 { policy.min_ms } else { (self.interval_ms.max(policy.min_ms) * 2).min(policy.max_ms) };
        self.next_at = still_needed.then_some(now + self.interval_ms);
    }

    /// The listing could not run (no budget, no key, Sync down): retry at `at`.
    pub fn postpone(&mut self, at: Ms) {
        self.next_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ReconcilePolicy = ReconcilePolicy { min_ms: 1_000, max_ms: 8_000, page_size: 100 };

    #[test]
    fn adapts_the_period() {
        let mut s = Schedule::default();
        s.arm(&P, 0);
        assert_eq!(s.next_at, Some(1_000));
        s.finished(&P, 1_000, 0, true);
        assert_eq!(s.next_at, Some(3_000));
        s.finished(&P, 3_000, 0, true);
        s.finished(&P, 7_000, 0, true);
        assert_eq!(s.interval_ms, 8_000);
        s.finished(&P, 15_000, 2, true);
        assert_eq!(s.next_at, Some(16_000));
        s.finished(&P, 16_000, 0, false);
        assert_eq!(s.next_at, None);
    }

    #[test]
    fn suspicion_forces_a_run_and_fills_the_cap() {
        let mut s = Schedule::default();
        s.suspect(&P, 500);
        assert!(s.due(500) && s.is_full(600));
        s.finished(&P, 600, 1, true);
        assert!(!s.is_full(600));
    }
}
