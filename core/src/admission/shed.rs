//! Load shedding: how long a request at a given place in the account's line
//! can expect to wait. A `Prefer: wait=N` request whose expected wait is
//! longer than N is answered at once with 429 and that estimate, instead of
//! holding a connection for N seconds to be refused at the end.
//!
//! Both limits are slots that free and are taken again: a rate bucket has
//! `limit` slots, each freed one span after its admission; the concurrency
//! cap has `cap` slots, each freed when its generation ends (the durations
//! observed on the account). The k-th request in line gets the k-th slot to
//! come free; a slot taken at `t` frees again at `t + hold`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::config::limits::Limits;
use crate::queue::job::JobState;
use crate::rates::class::RateClass;
use crate::Ms;

/// Places in line looked at, at most (a deeper line is "longer than anyone waits").
pub const MAX_AHEAD: usize = 10_000;
/// The longest wait an estimate names (the largest `MAX_WAIT_SECONDS`):
/// past it a client learns "not soon", never a time a JS timer would
/// wrap to about 1 ms.
pub const MAX_ESTIMATE_MS: Ms = 600_000;

/// When the slot of the request `ahead` places back in line comes free:
/// `frees` are the times the slots free now (one per slot in use; slots
/// not in use are free at `now`), `slots` how many there are, `hold` how
/// long a slot is held once taken.
pub fn slot_free_at(frees: &[Ms], slots: u32, hold: Ms, ahead: usize, now: Ms) -> Ms {
    let slots = slots.max(1) as usize;
    let mut sorted: Vec<Ms> = frees.iter().map(|t| (*t).max(now)).collect();
    sorted.sort_unstable();
    // More in use than slots (a lowered cap, shadow mode): the earliest
    // frees only give room once enough others have freed too.
    let excess = sorted.len().saturating_sub(slots);
    let mut heap: BinaryHeap<Reverse<Ms>> = sorted.into_iter().skip(excess).map(Reverse).collect();
    while heap.len() < slots {
        heap.push(Reverse(now));
    }
    // A deeper line waits at least as long as the last place looked at.
    let mut at = now;
    for _ in 0..=ahead.min(MAX_AHEAD) {
        let Reverse(t) = heap.pop().unwrap_or(Reverse(now));
        at = t;
        heap.push(Reverse(t.saturating_add(hold.max(1))));
    }
    at
}

impl AccountState {
    /// Requests and jobs ahead of a request of `class` at line position `seq`.
    pub(crate) fn line_ahead(&self, class: &RateClass, seq: u64, now: Ms) -> usize {
        let held = self.line.held.iter().filter(|h| h.class == *class && h.ticket < seq && h.expires_at > now).count();
        let queued = if *class == RateClass::Generate {
            self.queue.jobs().iter().filter(|j| j.state == JobState::Queued && j.seq < seq).count()
        } else {
            0
        };
        held + queued
    }

    /// How long `req` can expect to wait for its turn: every bucket it
    /// spends from and (with `permit`) a concurrency permit, for its place
    /// in line (past [`MAX_AHEAD`], the wait of that place: a lower bound).
    pub(crate) fn expected_wait(&self, limits: &Limits, now: Ms, req: &AdmitRequest, seq: u64, permit: bool) -> Ms {
        let ahead = self.fair_count_ahead(limits, &req.class, Self::place_of(req, seq), now);
        let mut at = now;
        for bucket in limits.buckets(&req.class) {
            let Some(rate) = limits.rate(&bucket) else { continue };
            let span = rate.span_ms();
            let frees: Vec<Ms> =
                self.rates.windows.get(&bucket).map_or_else(Vec::new, |w| {
                    w.stamps().iter().filter(|s| **s + span > now).map(|s| s + span).collect()
                });
            at = at.max(slot_free_at(&frees, rate.limit, span, ahead, now));
            if let Some(b) = self.rates.backoff.get(&bucket) {
                at = at.max(b.until);
            }
        }
        if permit {
            let frees: Vec<Ms> = self
                .permits
                .held()
                .iter()
                .map(|p| self.durations.expected_end(p.model.as_deref(), p.since, now).min(p.expires.max(now + 1)))
                .collect();
            let hold = self.durations.expected(req.model.as_deref());
            at = at.max(slot_free_at(&frees, limits.concurrency.cap, hold, ahead, now));
        }
        at.saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_go_first_then_the_earliest_frees_then_rounds() {
        // 3 slots, 1 free now, two free at 100 and 300; each held 1000.
        let frees = [100, 300];
        assert_eq!(slot_free_at(&frees, 3, 1_000, 0, 0), 0);
        assert_eq!(slot_free_at(&frees, 3, 1_000, 1, 0), 100);
        assert_eq!(slot_free_at(&frees, 3, 1_000, 2, 0), 300);
        assert_eq!(slot_free_at(&frees, 3, 1_000, 3, 0), 1_000);
        assert_eq!(slot_free_at(&frees, 3, 1_000, 4, 0), 1_100);
    }

    #[test]
    fn a_burst_of_a_rate_window_frees_together() {
        // 60 per minute all spent at t=0: the 30th in line goes at 60 s,
        // not 30 s later than the first (a fluid estimate would shed it).
        let frees = vec![60_000; 60];
        assert_eq!(slot_free_at(&frees, 60, 60_000, 29, 1_000), 60_000);
        assert_eq!(slot_free_at(&frees, 60, 60_000, 60, 1_000), 120_000);
    }

    #[test]
    fn more_in_use_than_slots_waits_for_the_excess_to_end() {
        // Cap lowered to 1 with 3 running (ends 10, 20, 30): the first in
        // line gets the slot when the last of them ends.
        assert_eq!(slot_free_at(&[10, 20, 30], 1, 100, 0, 0), 30);
    }
}
