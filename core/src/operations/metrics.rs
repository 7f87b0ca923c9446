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

use crate::rates::class::RateClass;
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
    pub fn admitted(&mut self, class: &RateClass, now: Ms) {
        bump(&mut self.counters.admitted, class.as_str());
        self.series.record(class.as_str(), Outcome::Admitted, now);
        self.dirty = true;
    }

    pub fn refused(&mut self, class: &RateClass, reason: &str, now: Ms) {
        bump(&mut self.counters.refused, reason);
        self.series.record(class.as_str(), Outcome::Refused, now);
        self.dirty = true;
    }

    pub fn would_refuse(&mut self, reason: &str) {
        bump(&mut self.counters.would_refuse, reason);
        self.dirty = true;
    }

    pub fn held(&mut self, class: &RateClass, now: Ms) {
        self.counters.held += 1;
        self.series.record(class.as_str(), Outcome::Held, now);
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
    /// Per client: permits, queued and held work, weight (see [`crate::shares`]).
    #[serde(default)]
    pub clients: Vec<ClientGauge>,
}

/// One client's gauges in the scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientGauge {
    pub client: String,
    pub in_use: u32,
    pub queued: u32,
    pub held: u32,
    pub weight: u32,
}

/// A label value, escaped as the exposition format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Milliseconds as decimal seconds, without float formatting.
fn seconds(ms: u64) -> String {
    let s = format!("{}.{:03}", ms / 1_000, ms % 1_000);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Every family: name, type, help. Samples name their family by index.
const FAMILIES: [(&str, &str, &str); 21] = [
    ("sync_governor_admitted_total", "counter", "Requests admitted, by rate class."),
    ("sync_governor_refused_total", "counter", "Requests refused, by reason."),
    ("sync_governor_would_refuse_total", "counter", "Shadow mode: requests that would have been refused, by reason."),
    ("sync_governor_upstream_responses_total", "counter", "Sync's answers to forwarded requests."),
    ("sync_governor_held_total", "counter", "Requests held in line (Prefer: wait)."),
    ("sync_governor_queued_total", "counter", "Jobs queued (Prefer: respond-async)."),
    ("sync_governor_shed_total", "counter", "Held requests refused at once: expected wait too long."),
    ("sync_governor_upstream_429_total", "counter", "429 answers from Sync."),
    ("sync_governor_fail_open_total", "counter", "Forwarded without a decision (FAIL_MODE=open)."),
    ("sync_governor_relay_total", "counter", "Webhook relays to clients, by outcome."),
    ("sync_governor_permits_in_use", "gauge", "Concurrency permits held."),
    ("sync_governor_permits_limit", "gauge", "Concurrency cap in effect."),
    ("sync_governor_queue_depth", "gauge", "Jobs waiting in the queue."),
    ("sync_governor_held_requests", "gauge", "Requests holding a place in line now."),
    ("sync_governor_relay_pending", "gauge", "Webhook relays waiting to be delivered."),
    ("sync_governor_wait_seconds", "histogram", "Time held requests and queued jobs waited."),
    ("sync_governor_added_latency_seconds", "histogram", "Time the governor added to forwarded requests."),
    ("sync_governor_client_permits_in_use", "gauge", "Concurrency permits a client holds."),
    ("sync_governor_client_queued_jobs", "gauge", "A client's jobs waiting in the queue."),
    ("sync_governor_client_held_requests", "gauge", "A client's requests holding a place in line."),
    ("sync_governor_client_weight", "gauge", "A client's weight in the fair order."),
];

/// One sample: its family, an extra label, and its value.
type Sample<'a> = (usize, Option<(&'static str, &'a str)>, u64);

impl MetricsView {
    /// Every counter and gauge as samples of [`FAMILIES`] (histograms apart).
    fn samples(&self) -> Vec<Sample<'_>> {
        let c = &self.counters;
        let mut out: Vec<Sample<'_>> = Vec::new();
        for (family, key, map) in [
            (0, "class", &c.admitted),
            (1, "reason", &c.refused),
            (2, "reason", &c.would_refuse),
            (3, "status", &c.upstream),
        ] {
            out.extend(map.iter().map(|(k, n)| (family, Some((key, k.as_str())), *n)));
        }
        for (outcome, n) in
            [("delivered", self.relay_delivered), ("failed", self.relay_failed), ("dropped", self.relay_dropped)]
        {
            out.push((9, Some(("outcome", outcome)), n));
        }
        let plain = [
            (4, c.held),
            (5, c.queued),
            (6, c.shed),
            (7, c.upstream429),
            (8, c.fail_open),
            (10, u64::from(self.permits_in_use)),
            (11, u64::from(self.permits_limit)),
            (12, u64::from(self.queue_depth)),
            (13, u64::from(self.held_now)),
            (14, self.relay_pending),
        ];
        out.extend(plain.into_iter().map(|(f, n)| (f, None, n)));
        for g in &self.clients {
            let l = Some(("client", g.client.as_str()));
            out.extend(
                [(17, l, g.in_use), (18, l, g.queued), (19, l, g.held), (20, l, g.weight)]
                    .map(|(f, l, n)| (f, l, u64::from(n))),
            );
        }
        out
    }
}

fn write_line(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

fn write_histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let mut cumulative = 0u64;
    let bucket = format!("{name}_bucket");
    for (i, bound) in BOUNDS_MS.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let le = seconds(*bound);
        write_line(out, &bucket, &[labels, &[("le", le.as_str())]].concat(), &cumulative.to_string());
    }
    let count = h.count().to_string();
    write_line(out, &bucket, &[labels, &[("le", "+Inf")]].concat(), &count);
    write_line(out, &format!("{name}_sum"), labels, &seconds(h.sum_ms));
    write_line(out, &format!("{name}_count"), labels, &count);
}

/// Render accounts' metrics in the Prometheus text exposition format
/// (version 0.0.4): one family per metric, one series per account.
pub fn render(accounts: &[(String, MetricsView)]) -> String {
    let mut out = String::new();
    let samples: Vec<(&str, Vec<Sample<'_>>)> = accounts.iter().map(|(a, m)| (a.as_str(), m.samples())).collect();
    for (i, (name, kind, help)) in FAMILIES.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (a, m) in accounts {
            match i {
                15 => {
                    write_histogram(&mut out, name, &[("account", a), ("kind", "held")], &m.wait_held);
                    write_histogram(&mut out, name, &[("account", a), ("kind", "queue")], &m.wait_queue);
                }
                16 => write_histogram(&mut out, name, &[("account", a)], &m.added_latency),
                _ => {}
            }
        }
        for (a, list) in &samples {
            for (_, extra, n) in list.iter().filter(|s| s.0 == i) {
                let mut labels = vec![("account", *a)];
                labels.extend(extra.iter().copied());
                write_line(&mut out, name, &labels, &n.to_string());
            }
        }
    }
    out
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
            clients: Vec::new(),
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
