//! What an account counts about itself: decisions by outcome, upstream
//! answers, histograms of waits and of the latency the governor adds, the
//! last 15 minutes per class for the dashboard, and wait percentiles. All of
//! it is plain data updated by the core; the object persists it at most
//! every [`FLUSH_EVERY_MS`] (a restart loses at most that much of the
//! counts, which Prometheus reads as a counter reset). The series are in
//! [`crate::operations::series`], the exposition in
//! [`crate::operations::prometheus`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::operations::series::Outcome;
use crate::operations::series::Recent;
use crate::operations::series::Series;
use crate::operations::series::WaitsView;
use crate::rates::class::RateClass;
use crate::Ms;

/// The metrics row is written at most this often.
pub const FLUSH_EVERY_MS: Ms = 10_000;
/// Upper bounds of the histogram buckets, in milliseconds.
pub const BOUNDS_MS: [Ms; 16] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000];

/// A cumulative histogram: `counts[i]` observations at most `BOUNDS_MS[i]`
/// (not cumulated), the last one above every bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Histogram {
    #[serde(default)]
    pub counts: Vec<u64>,
    #[serde(default, alias = "sum_ms")]
    pub sum_ms: u64,
}

impl Histogram {
    pub fn observe(&mut self, ms: Ms) {
        self.counts.resize(BOUNDS_MS.len() + 1, 0);
        let i = BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(BOUNDS_MS.len());
        self.counts[i] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    pub fn merge(&mut self, other: &Histogram) {
        self.counts.resize(BOUNDS_MS.len() + 1, 0);
        for (i, c) in other.counts.iter().take(BOUNDS_MS.len() + 1).enumerate() {
            self.counts[i] = self.counts[i].saturating_add(*c);
        }
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What the Worker saw of requests it forwarded for an account, since it
/// last told the account (it rides along with the next admission).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Sync's answers by HTTP status.
    #[serde(default)]
    pub upstream: Vec<(u16, u64)>,
    /// Time the governor added to each request (all but the wait for Sync).
    #[serde(default)]
    pub added_latency: Histogram,
    /// Requests forwarded without a decision (`FAIL_MODE=open`, the
    /// account's object unreachable).
    #[serde(default)]
    pub fail_open: u64,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.upstream.is_empty() && self.added_latency.count() == 0 && self.fail_open == 0
    }
}

/// Decision outcomes, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counters {
    /// Admissions by class.
    pub admitted: BTreeMap<RateClass, u64>,
    /// Refusals by reason.
    pub refused: BTreeMap<String, u64>,
    /// Shadow mode: what would have been refused, by reason.
    pub would_refuse: BTreeMap<String, u64>,
    /// Requests held (`Prefer: wait`) at least once.
    pub held: u64,
    /// Jobs queued (`Prefer: respond-async`).
    pub queued: u64,
    /// Held requests answered at once because their expected wait was
    /// longer than they were willing to wait.
    pub shed: u64,
    /// Sync's answers to forwarded requests, by status.
    pub upstream: BTreeMap<String, u64>,
    /// 429s from Sync (forwarded requests, queue submissions, listings).
    pub upstream429: u64,
    /// Forwarded without a decision (`FAIL_MODE=open`).
    pub fail_open: u64,
}

/// An account's metrics. Persisted (without the recent waits) in the
/// `meta` row `metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default)]
    pub counters: Counters,
    #[serde(default)]
    pub wait_held: Histogram,
    #[serde(default)]
    pub wait_queue: Histogram,
    #[serde(default)]
    pub added_latency: Histogram,
    #[serde(default)]
    pub series: Series,
    #[serde(skip)]
    pub recent_held: Recent,
    #[serde(skip)]
    pub recent_queue: Recent,
    /// Changed since last written.
    #[serde(skip)]
    pub dirty: bool,
    /// When the row may be written next.
    #[serde(skip)]
    pub flush_at: Ms,
}

fn bump<K: Ord + Clone + std::borrow::Borrow<Q>, Q: Ord + ToOwned<Owned = K> + ?Sized>(
    map: &mut BTreeMap<K, u64>,
    key: &Q,
) {
    match map.get_mut(key) {
        Some(n) => *n = n.saturating_add(1),
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl Metrics {
    pub fn admitted(&mut self, class: &RateClass, now: Ms) {
        bump(&mut self.counters.admitted, class);
        self.series.record(class, Outcome::Admitted, now);
        self.dirty = true;
    }

    pub fn refused(&mut self, class: &RateClass, reason: &str, now: Ms) {
        bump(&mut self.counters.refused, reason);
        self.series.record(class, Outcome::Refused, now);
        self.dirty = true;
    }

    pub fn would_refuse(&mut self, reason: &str) {
        bump(&mut self.counters.would_refuse, reason);
        self.dirty = true;
    }

    pub fn held(&mut self, class: &RateClass, now: Ms) {
        self.counters.held += 1;
        self.series.record(class, Outcome::Held, now);
        self.dirty = true;
    }

    pub fn held_wait(&mut self, ms: Ms) {
        self.wait_held.observe(ms);
        self.recent_held.push(ms);
        self.dirty = true;
    }

    pub fn queue_wait(&mut self, ms: Ms) {
        self.wait_queue.observe(ms);
        self.recent_queue.push(ms);
        self.dirty = true;
    }

    pub fn queued(&mut self) {
        self.counters.queued += 1;
        self.dirty = true;
    }

    pub fn shed(&mut self) {
        self.counters.shed += 1;
        self.dirty = true;
    }

    pub fn upstream_429(&mut self) {
        self.counters.upstream429 += 1;
        self.dirty = true;
    }

    pub fn tally(&mut self, t: &Tally) {
        for (status, n) in t.upstream.iter().take(64) {
            if (100..=599).contains(status) {
                let e = self.counters.upstream.entry(status.to_string()).or_default();
                *e = e.saturating_add(*n);
            }
        }
        self.added_latency.merge(&t.added_latency);
        self.counters.fail_open = self.counters.fail_open.saturating_add(t.fail_open);
        self.dirty = true;
    }

    pub fn waits(&self) -> WaitsView {
        WaitsView { held: self.recent_held.view(), queue: self.recent_queue.view() }
    }

    /// The row to write now, if it changed and its time has come.
    pub fn due_row(&mut self, now: Ms) -> Option<String> {
        if !self.dirty || now < self.flush_at {
            return None;
        }
        self.dirty = false;
        self.flush_at = now + FLUSH_EVERY_MS;
        serde_json::to_string(self).ok()
    }
}

#[cfg(test)]
mod persistence {
    use super::*;

    #[test]
    fn metrics_survive_their_row() {
        let mut m = Metrics::default();
        m.admitted(&RateClass::Generate, 1_000_000);
        m.refused(&RateClass::Other, "rate", 1_000_000);
        m.held_wait(1_200);
        m.tally(&Tally { upstream: vec![(200, 3)], added_latency: Histogram::default(), fail_open: 1 });
        let row = m.due_row(1_000_000).expect("dirty metrics are written");
        let back: Metrics = serde_json::from_str(&row).expect("the row reads back");
        assert_eq!(back.counters, m.counters);
        assert_eq!(back.wait_held, m.wait_held);
        assert_eq!(back.series, m.series);
        assert!(m.due_row(1_000_001).is_none(), "not again before FLUSH_EVERY_MS");
    }
}
