//! The relay outbox: webhook payloads waiting to reach a client's own
//! `webhookUrl`. Persisted with the account, so a runtime restart does not
//! lose a pending delivery; retried with exponential backoff and full jitter
//! until delivered, refused for good (a 4xx other than 408/429), or too old.
//!
//! | module | one concept |
//! |---|---|
//! | [`delivery`] | one delivery's row, how an attempt ended, the relay's policy |
//! | [`webhook`] | callback tokens, `Sync-Signature` checks |
//! | [`url`] | which client URLs the relay may deliver to (SSRF checks) |

pub mod delivery;
pub mod url;
pub mod webhook;

use serde::{Deserialize, Serialize};

use crate::rates::backoff::full_jitter;
use crate::relay::delivery::Attempt;
use crate::relay::delivery::Delivery;
use crate::relay::delivery::RelayPolicy;
use crate::storage::store::Write;
use crate::Ms;

/// The outbox's schedule: every pending delivery without its body (the
/// body stays in its row until the attempt reads it). Bounded in count and
/// bytes; a payload past either bound is dropped and counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    items: Vec<Delivery>,
    pub counters: RelayCounters,
    bytes: u64,
    writes: Vec<Write>,
}

/// Persisted in the `meta` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayCounters {
    #[serde(default)]
    pub next_id: u64,
    /// Deliveries that succeeded / were given up / never fit the outbox.
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub abandoned: u64,
    #[serde(default)]
    pub dropped: u64,
    /// Webhooks for an end already relayed (replays, duplicates): acknowledged and dropped.
    #[serde(default)]
    pub duplicates: u64,
    /// Rows of the `relayed` table (ends remembered for deduplication).
    #[serde(default)]
    pub remembered: u64,
}

impl Outbox {
    pub fn restore(schedule: Vec<Delivery>, counters: RelayCounters) -> Self {
        let bytes = schedule.iter().map(|d| d.bytes() + d.body_bytes).sum();
        let mut counters = counters;
        // Never reuse an id a stored row holds (a counter row may lag its rows).
        counters.next_id = schedule.iter().map(|d| d.id).max().unwrap_or(0).max(counters.next_id);
        Outbox { items: schedule, counters, bytes, writes: Vec::new() }
    }

    /// Stored times read back: the next attempt within the backoff's cap,
    /// the deadline within the policy's age (see [`crate::storage::clamp`]).
    pub fn clamp_times(&mut self, policy: &RelayPolicy, now: Ms) {
        for d in &mut self.items {
            d.next_at = crate::storage::bound::at_most(d.next_at, now.saturating_add(policy.cap_ms));
            d.deadline = crate::storage::bound::at_most(d.deadline, now.saturating_add(policy.max_age_ms));
        }
    }

    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    /// Queue a payload; `None` when it would pass the outbox's bounds (it is
    /// dropped and counted).
    pub fn enqueue(
        &mut self,
        policy: &RelayPolicy,
        now: Ms,
        url: String,
        body: String,
        headers: Vec<(String, String)>,
    ) -> Option<u64> {
        let mut d = Delivery {
            id: self.counters.next_id.saturating_add(1),
            url,
            body,
            headers,
            attempts: 0,
            next_at: now,
            deadline: now.saturating_add(policy.max_age_ms),
            body_bytes: 0,
        };
        let bytes = d.bytes();
        let too_big = d.body.len() as u64 > crate::storage::row::MAX_ROW_BYTES;
        if too_big
            || self.items.len() as u32 >= policy.max_pending
            || self.bytes.saturating_add(bytes) > policy.max_bytes
        {
            self.counters.dropped += 1;
            return None;
        }
        self.counters.next_id = d.id;
        self.bytes += bytes;
        d.body_bytes = d.body.len() as u64;
        self.writes.push(Write::PutDelivery(d.clone()));
        d.body = String::new();
        self.items.push(d);
        Some(self.counters.next_id)
    }

    /// Deliveries to attempt now (ids).
    pub fn due(&self, now: Ms) -> Vec<u64> {
        self.items.iter().filter(|d| d.next_at <= now).map(|d| d.id).collect()
    }

    pub fn pending(&self) -> usize {
        self.items.len()
    }

    /// Bytes of the pending deliveries' rows.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn remove(&mut self, index: usize) {
        let d = self.items.remove(index);
        self.bytes = self.bytes.saturating_sub(d.bytes() + d.body_bytes);
        self.writes.push(Write::DeleteDelivery(d.id));
    }

    /// Record an attempt's outcome; `jitter` is uniform in `[0, 1)`.
    pub fn settle(&mut self, policy: &RelayPolicy, id: u64, attempt: Attempt, now: Ms, jitter: f64) {
        let Some(index) = self.items.iter().position(|d| d.id == id) else { return };
        // A 3xx is a failed attempt like a 5xx: redirects are never followed.
        let permanent = attempt == Attempt::Refused
            || matches!(attempt, Attempt::Status(s) if (400..500).contains(&s) && s != 408 && s != 429);
        if matches!(attempt, Attempt::Status(s) if (200..300).contains(&s)) {
            self.remove(index);
            self.counters.delivered += 1;
            return;
        }
        let d = &mut self.items[index];
        d.attempts = d.attempts.saturating_add(1);
        let pause = full_jitter(policy.base_ms, policy.cap_ms, d.attempts, jitter).max(policy.base_ms / 2).max(1);
        d.next_at = now + pause;
        if permanent || d.next_at > d.deadline {
            self.remove(index);
            self.counters.abandoned += 1;
        } else {
            let (attempts, next_at) = (d.attempts, d.next_at);
            self.writes.push(Write::RescheduleDelivery { id, attempts, next_at });
        }
    }

    pub fn next_wake(&self) -> Option<Ms> {
        self.items.iter().map(|d| d.next_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RelayPolicy = RelayPolicy {
        base_ms: 100,
        cap_ms: 1_000,
        max_age_ms: 2_000,
        max_pending: 3,
        max_bytes: 1 << 20,
        dedupe_ttl_ms: 10_000,
        dedupe_max: 10,
    };

    #[test]
    fn retries_then_delivers() {
        let mut o = Outbox::default();
        let id = o.enqueue(&P, 0, "https://c/h".into(), "{}".into(), vec![]).unwrap();
        assert_eq!(o.due(0), vec![id]);
        o.settle(&P, id, Attempt::Unreachable, 0, 0.99);
        assert!(o.due(0).is_empty());
        let next = o.next_wake().unwrap();
        assert!((50..=200).contains(&next), "{next}");
        o.settle(&P, id, Attempt::Status(503), next, 0.5);
        o.settle(&P, id, Attempt::Status(204), 1_000, 0.5);
        assert_eq!((o.pending(), o.counters.delivered), (0, 1));
    }

    #[test]
    fn gives_up_on_permanent_refusal_or_age() {
        let mut o = Outbox::default();
        let a = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]).unwrap();
        o.settle(&P, a, Attempt::Status(410), 0, 0.5);
        let b = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]).unwrap();
        o.settle(&P, b, Attempt::Status(500), 1_990, 0.9);
        assert_eq!((o.pending(), o.counters.abandoned), (0, 2));
    }

    #[test]
    fn a_refused_url_is_given_up_and_a_redirect_retried() {
        let mut o = Outbox::default();
        let a = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]).unwrap();
        o.settle(&P, a, Attempt::Refused, 0, 0.5);
        assert_eq!((o.pending(), o.counters.abandoned), (0, 1));
        let b = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]).unwrap();
        o.settle(&P, b, Attempt::Status(307), 0, 0.5);
        assert_eq!((o.pending(), o.counters.delivered), (1, 0), "a 3xx is not a delivery");
    }

    #[test]
    fn bounded_in_count_and_bytes() {
        let mut o = Outbox::default();
        for _ in 0..3 {
            assert!(o.enqueue(&P, 0, "u".into(), "b".into(), vec![]).is_some());
        }
        assert_eq!(o.enqueue(&P, 0, "u".into(), "b".into(), vec![]), None, "count bound");
        let mut o = Outbox::default();
        assert_eq!(o.enqueue(&P, 0, "u".into(), "x".repeat(2 << 20), vec![]), None, "byte bound");
        assert_eq!(o.counters.dropped, 1);
        let writes = o.take_writes();
        assert!(writes.is_empty(), "a dropped payload writes nothing");
    }
}
