//! Stored times read back (after a restart, a migration, a hostile row):
//! each is clamped to what its policy could have written, measured from the
//! first command's clock. A backoff ends within its cap, a reservation
//! within its TTL, a bound permit within its lease, an admission is never
//! in the future, a pacing clock never past a burst; the alarm is armed in
//! the future and within a day, so no time outside JS `Date`'s range
//! reaches the runtime.

use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::storage::bound::at_most;
use crate::Ms;

impl AccountState {
    /// Clamp every stored time to `now` plus its policy's maximum.
    pub(crate) fn clamp_times(&mut self, limits: &Limits, now: Ms) {
        self.rates.clamp_times(limits, now);
        for w in self.shares.clamp_times(limits, now) {
            self.journal(w);
        }
        self.permits.clamp_times(&limits.concurrency, now);
        let r = &limits.reconcile;
        let most = now.saturating_add(r.max_ms);
        self.reconciliation.schedule.next_at = self.reconciliation.schedule.next_at.map(|at| at_most(at, most));
        self.reconciliation.schedule.full_until = at_most(self.reconciliation.schedule.full_until, most);
        self.reconciliation.schedule.interval_ms = self.reconciliation.schedule.interval_ms.min(r.max_ms);
        let q = &limits.queue;
        self.queue.clamp_times(now, now.saturating_add(q.retry_ms.saturating_mul(1 << 10).max(3_600_000)));
        self.outbox.clamp_times(&limits.relay, now);
        if let Some(p) = &mut self.ops.paused {
            p.since = at_most(p.since, now);
        }
    }
}
