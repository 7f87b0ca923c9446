//! What an account counts about itself: decisions by outcome, upstream
//! answers, histograms of waits and of the latency the governor adds, the
//! last 15 minutes per class for the dashboard, and wait percentiles. All of
//! it is plain data updated by the core; the object persists it at most
//! every [`FLUSH_EVERY_MS`] (a restart loses at most that much of the
//! counts, which Prometheus reads as a counter reset). [`render`] turns
//! accounts' snapshots into the Prometheus text exposition format.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::Ms;

/// The dashboard's series: 90 steps of 10 seconds (15 minutes).
pub const STEP_MS: Ms = 10_000;
pub const STEPS: usize = 90;
/// Waits kept for the percentiles.
pub const RECENT_WAITS: usize = 1_024;
/// The metrics row is written at most this often.
pub const FLUSH_EVERY_MS: Ms = 10_000;
/// Classes the series tracks (the configured ones; a bound all the same).
const MAX_SERIES_CLASSES: usize = 32;
/// Upper bounds of the histogram buckets, in milliseconds.
pub const BOUNDS_MS: [Ms; 16] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000];

/// A cumulative histogram: `counts[i]` observations at most `BOUNDS_MS[i]`
/// (not cumulated), the last one above every bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(default)]
    pub counts: Vec<u64>,
    #[serde(default)]
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
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Admissions by class.
    pub admitted: BTreeMap<String, u64>,
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

/// One class's last 15 minutes: admitted, refused, held per step.
type Ring = VecDeque<[u32; 3]>;

/// The last [`STEPS`] steps per class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The step that `back()` of every ring counts.
    end: u64,
    classes: Vec<(String, Ring)>,
}

/// Which of a step's three numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Admitted = 0,
    Refused = 1,
    Held = 2,
}

impl Series {
    fn advance(&mut self, now: Ms) {
        let step = now / STEP_MS;
        if step <= self.end {
            return;
        }
        let n = (step - self.end).min(STEPS as u64) as usize;
        for (_, ring) in self.classes.iter_mut() {
            for _ in 0..n {
                ring.pop_front();
                ring.push_back([0; 3]);
            }
        }
        self.end = step;
    }

    pub fn record(&mut self, class: &str, outcome: Outcome, now: Ms) {
        self.advance(now);
        let i = match self.classes.iter().position(|(c, _)| c == class) {
            Some(i) => i,
            None if self.classes.len() >= MAX_SERIES_CLASSES => return,
            None => {
                self.classes.push((class.to_owned(), VecDeque::from(vec![[0; 3]; STEPS])));
                self.classes.len() - 1
            }
        };
        if let Some(last) = self.classes[i].1.back_mut() {
            last[outcome as usize] = last[outcome as usize].saturating_add(1);
        }
    }

    pub fn view(&self, now: Ms) -> SeriesView {
        let mut s = self.clone();
        s.advance(now);
        let classes = s
            .classes
            .iter()
            .map(|(name, ring)| {
                let col = |i: usize| ring.iter().map(|r| r[i]).collect();
                (name.clone(), ClassSeries { admitted: col(0), refused: col(1), held: col(2) })
            })
            .collect();
        SeriesView { step_ms: STEP_MS, ends_at: (s.end + 1) * STEP_MS, classes }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub step_ms: Ms,
    /// The end of the last step (epoch ms); the first starts 15 minutes before.
    pub ends_at: Ms,
    /// By class name (a JSON object).
    #[serde(serialize_with = "as_map")]
    pub classes: Vec<(String, ClassSeries)>,
}

fn as_map<S: serde::Serializer>(v: &[(String, ClassSeries)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, c)| (k, c)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassSeries {
    pub admitted: Vec<u32>,
    pub refused: Vec<u32>,
    pub held: Vec<u32>,
}

/// The last [`RECENT_WAITS`] waits, for percentiles (memory only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recent(VecDeque<u32>);

impl Recent {
    pub fn push(&mut self, ms: Ms) {
        if self.0.len() >= RECENT_WAITS {
            self.0.pop_front();
        }
        self.0.push_back(u32::try_from(ms).unwrap_or(u32::MAX));
    }

    /// Nearest-rank percentiles of the waits kept.
    pub fn view(&self) -> WaitView {
        let mut v: Vec<u32> = self.0.iter().copied().collect();
        v.sort_unstable();
        let rank = |p: f64| -> Option<Ms> {
            if v.is_empty() {
                return None;
            }
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(Ms::from(v[i]))
        };
        WaitView { count: v.len() as u32, p50_ms: rank(0.5), p90_ms: rank(0.9), p99_ms: rank(0.99) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitView {
    pub count: u32,
    pub p50_ms: Option<Ms>,
    pub p90_ms: Option<Ms>,
    pub p99_ms: Option<Ms>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitsView {
    pub held: WaitView,
    pub queue: WaitView,
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

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n = n.saturating_add(1),
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl Metrics {
    pub fn admitted(&mut self, class: &str, now: Ms) {
        bump(&mut self.counters.admitted, class);
        self.series.record(class, Outcome::Admitted, now);
        self.dirty = true;
    }

    pub fn refused(&mut self, class: &str, reason: &str, now: Ms) {
        bump(&mut self.counters.refused, reason);
        self.series.record(class, Outcome::Refused, now);
        self.dirty = true;
    }

    pub fn would_refuse(&mut self, reason: &str) {
        bump(&mut self.counters.would_refuse, reason);
        self.dirty = true;
    }

    pub fn held(&mut self, class: &str, now: Ms) {
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

/// An account's metrics as the Worker renders them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsView {
    pub counters: Counters,
    pub wait_held: Histogram,
    pub wait_queue: Histogram,
    pub added_latency: Histogram,
    pub permits_in_use: u32,
    pub permits_limit: u32,
    pub queue_depth: u32,
    pub held_now: u32,
    pub relay_pending: u64,
    pub relay_delivered: u64,
    pub relay_failed: u64,
    pub relay_dropped: u64,
    pub paused: bool,
    pub shadow: bool,
}

/// A label value, escaped as the exposition format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        let _ = writeln!(self.0, "{name}{{{}}} {value}", labels.join(","));
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        for (i, bound) in BOUNDS_MS.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            let le = format!("{}", *bound as f64 / 1_000.0);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.line(&format!("{name}_bucket"), &l, cumulative);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        self.line(&format!("{name}_bucket"), &l, h.count());
        self.line(&format!("{name}_sum"), labels, h.sum_ms as f64 / 1_000.0);
        self.line(&format!("{name}_count"), labels, h.count());
    }
}

/// Render accounts' metrics in the Prometheus text exposition format
/// (version 0.0.4): one family per metric, one series per account.
pub fn render(accounts: &[(String, MetricsView)]) -> String {
    let mut o = Out(String::new());
    let by_key =
        |o: &mut Out, name: &str, help: &str, key: &str, pick: &dyn Fn(&MetricsView) -> &BTreeMap<String, u64>| {
            o.head(name, "counter", help);
            for (a, m) in accounts {
                for (k, n) in pick(m) {
                    o.line(name, &[("account", a), (key, k)], n);
                }
            }
        };
    by_key(&mut o, "sync_governor_admitted_total", "Requests admitted, by rate class.", "class", &|m| {
        &m.counters.admitted
    });
    by_key(&mut o, "sync_governor_refused_total", "Requests refused, by reason.", "reason", &|m| &m.counters.refused);
    by_key(
        &mut o,
        "sync_governor_would_refuse_total",
        "Shadow mode: requests that would have been refused, by reason.",
        "reason",
        &|m| &m.counters.would_refuse,
    );
    by_key(&mut o, "sync_governor_upstream_responses_total", "Sync's answers to forwarded requests.", "status", &|m| {
        &m.counters.upstream
    });
    let single = |o: &mut Out, name: &str, kind: &str, help: &str, pick: &dyn Fn(&MetricsView) -> u64| {
        o.head(name, kind, help);
        for (a, m) in accounts {
            o.line(name, &[("account", a)], pick(m));
        }
    };
    single(&mut o, "sync_governor_held_total", "counter", "Requests held in line (Prefer: wait).", &|m| {
        m.counters.held
    });
    single(&mut o, "sync_governor_queued_total", "counter", "Jobs queued (Prefer: respond-async).", &|m| {
        m.counters.queued
    });
    single(
        &mut o,
        "sync_governor_shed_total",
        "counter",
        "Held requests refused at once: expected wait too long.",
        &|m| m.counters.shed,
    );
    single(&mut o, "sync_governor_upstream_429_total", "counter", "429 answers from Sync.", &|m| {
        m.counters.upstream429
    });
    single(
        &mut o,
        "sync_governor_fail_open_total",
        "counter",
        "Forwarded without a decision (FAIL_MODE=open).",
        &|m| m.counters.fail_open,
    );
    o.head("sync_governor_relay_total", "counter", "Webhook relays to clients, by outcome.");
    for (a, m) in accounts {
        for (outcome, n) in [("delivered", m.relay_delivered), ("failed", m.relay_failed), ("dropped", m.relay_dropped)]
        {
            o.line("sync_governor_relay_total", &[("account", a), ("outcome", outcome)], n);
        }
    }
    single(&mut o, "sync_governor_permits_in_use", "gauge", "Concurrency permits held.", &|m| {
        u64::from(m.permits_in_use)
    });
    single(&mut o, "sync_governor_permits_limit", "gauge", "Concurrency cap in effect.", &|m| {
        u64::from(m.permits_limit)
    });
    single(&mut o, "sync_governor_queue_depth", "gauge", "Jobs waiting in the queue.", &|m| u64::from(m.queue_depth));
    single(&mut o, "sync_governor_held_requests", "gauge", "Requests holding a place in line now.", &|m| {
        u64::from(m.held_now)
    });
    single(&mut o, "sync_governor_relay_pending", "gauge", "Webhook relays waiting to be delivered.", &|m| {
        m.relay_pending
    });
    single(&mut o, "sync_governor_paused", "gauge", "1 while an operator has paused the account.", &|m| {
        u64::from(m.paused)
    });
    o.head("sync_governor_wait_seconds", "histogram", "Time held requests and queued jobs waited.");
    for (a, m) in accounts {
        o.histogram("sync_governor_wait_seconds", &[("account", a), ("kind", "held")], &m.wait_held);
        o.histogram("sync_governor_wait_seconds", &[("account", a), ("kind", "queue")], &m.wait_queue);
    }
    o.head("sync_governor_added_latency_seconds", "histogram", "Time the governor added to forwarded requests.");
    for (a, m) in accounts {
        o.histogram("sync_governor_added_latency_seconds", &[("account", a)], &m.added_latency);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_slides_and_keeps_fifteen_minutes() {
        let mut s = Series::default();
        s.record("generate", Outcome::Admitted, 1_000_000);
        s.record("generate", Outcome::Refused, 1_000_500);
        let v = s.view(1_000_900);
        let class = |v: &SeriesView| v.classes.iter().find(|(c, _)| c == "generate").map(|(_, s)| s.clone()).unwrap();
        let g = &class(&v);
        assert_eq!((g.admitted.len(), g.admitted[STEPS - 1], g.refused[STEPS - 1]), (STEPS, 1, 1));
        let later = s.view(1_000_000 + 3 * STEP_MS);
        assert_eq!(class(&later).admitted[STEPS - 4], 1);
        let gone = s.view(1_000_000 + 100 * STEP_MS);
        assert!(class(&gone).admitted.iter().all(|n| *n == 0));
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_last_waits() {
        let mut r = Recent::default();
        assert_eq!(r.view().p50_ms, None);
        for ms in 1..=100 {
            r.push(ms);
        }
        let v = r.view();
        assert_eq!((v.p50_ms, v.p90_ms, v.p99_ms), (Some(50), Some(90), Some(99)));
        for _ in 0..RECENT_WAITS {
            r.push(7);
        }
        assert_eq!(r.view().p99_ms, Some(7));
    }

    #[test]
    fn histograms_are_cumulative_in_the_exposition() {
        let mut h = Histogram::default();
        for ms in [3, 7, 7, 2_000, 999_999] {
            h.observe(ms);
        }
        let mut m = MetricsView {
            counters: Counters::default(),
            wait_held: h,
            wait_queue: Histogram::default(),
            added_latency: Histogram::default(),
            permits_in_use: 1,
            permits_limit: 3,
            queue_depth: 0,
            held_now: 0,
            relay_pending: 0,
            relay_delivered: 0,
            relay_failed: 0,
            relay_dropped: 0,
            paused: false,
            shadow: false,
        };
        m.counters.refused.insert("rate".into(), 2);
        let text = render(&[("a-\"q\"".into(), m)]);
        assert!(text.contains("sync_governor_wait_seconds_bucket{account=\"a-\\\"q\\\"\",kind=\"held\",le=\"0.01\"} 3"));
        assert!(text.contains("sync_governor_wait_seconds_bucket{account=\"a-\\\"q\\\"\",kind=\"held\",le=\"+Inf\"} 5"));
        assert!(text.contains("sync_governor_refused_total{account=\"a-\\\"q\\\"\",reason=\"rate\"} 2"));
        assert!(text.contains("# TYPE sync_governor_permits_in_use gauge"));
    }
}

#[cfg(test)]
mod persistence {
    use super::*;

    #[test]
    fn metrics_survive_their_row() {
        let mut m = Metrics::default();
        m.admitted("generate", 1_000_000);
        m.refused("other", "rate", 1_000_000);
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
