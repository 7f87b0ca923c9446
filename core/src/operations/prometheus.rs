//! An account's metrics as the Worker renders them ([`MetricsView`]), and
//! [`render`]: every account's snapshot in the Prometheus text exposition
//! format.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::operations::metrics::{Counters, Histogram, BOUNDS_MS};

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
    /// Budgets and spend, the account's and per client ([`crate::budget::metrics`]).
    #[serde(default)]
    pub spend: crate::budget::metrics::SpendGauges,
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
        out.extend(c.admitted.iter().map(|(class, n)| (0, Some(("class", class.as_str())), *n)));
        for (family, key, map) in
            [(1, "reason", &c.refused), (2, "reason", &c.would_refuse), (3, "status", &c.upstream)]
        {
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
    let spend: Vec<(&str, &crate::budget::metrics::SpendGauges)> =
        accounts.iter().map(|(a, m)| (a.as_str(), &m.spend)).collect();
    crate::budget::metrics::render(&mut out, &spend);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            spend: Default::default(),
        };
        m.counters.refused.insert("rate".into(), 2);
        let text = render(&[("a-\"q\"".into(), m)]);
        assert!(text.contains("sync_governor_wait_seconds_bucket{account=\"a-\\\"q\\\"\",kind=\"held\",le=\"0.01\"} 3"));
        assert!(text.contains("sync_governor_wait_seconds_bucket{account=\"a-\\\"q\\\"\",kind=\"held\",le=\"+Inf\"} 5"));
        assert!(text.contains("sync_governor_refused_total{account=\"a-\\\"q\\\"\",reason=\"rate\"} 2"));
        assert!(text.contains("# TYPE sync_governor_permits_in_use gauge"));
    }
}
