//! The relay outbox: webhook payloads waiting to reach a client's own
//! `webhookUrl`. Persisted with the account, so a runtime restart does not
//! lose a pending delivery; retried with exponential backoff and full jitter
//! until delivered, refused for good (a 4xx other than 408/429), or too old.

use serde::{Deserialize, Serialize};

use crate::backoff::full_jitter;
use crate::Ms;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPolicy {
    pub base_ms: Ms,
    pub cap_ms: Ms,
    /// Give up on a delivery this long after the webhook arrived.
    pub max_age_ms: Ms,
}

/// One payload on its way to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub url: String,
    /// Sync's raw body, byte for byte.
    pub body: String,
    /// Headers to send along (Sync's signature headers, content type).
    pub headers: Vec<(String, String)>,
    pub attempts: u32,
    pub next_at: Ms,
    pub deadline: Ms,
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The client answered with this status.
    Status(u16),
    /// The client could not be reached.
    Unreachable,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    #[serde(default)]
    items: Vec<Delivery>,
    #[serde(default)]
    next_id: u64,
    /// Deliveries that succeeded / were given up, for the status view.
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub abandoned: u64,
}

impl Outbox {
    pub fn enqueue(
        &mut self,
        policy: &RelayPolicy,
        now: Ms,
        url: String,
        body: String,
        headers: Vec<(String, String)>,
    ) -> u64 {
        self.next_id += 1;
        self.items.push(Delivery {
            id: self.next_id,
            url,
            body,
            headers,
            attempts: 0,
            next_at: now,
            deadline: now + policy.max_age_ms,
        });
        self.next_id
    }

    /// Deliveries to attempt now.
    pub fn due(&self, now: Ms) -> Vec<Delivery> {
        self.items.iter().filter(|d| d.next_at <= now).cloned().collect()
    }

    pub fn pending(&self) -> usize {
        self.items.len()
    }

    /// Record an attempt's outcome; `jitter` is uniform in `[0, 1)`.
    pub fn settle(&mut self, policy: &RelayPolicy, id: u64, attempt: Attempt, now: Ms, jitter: f64) {
        let Some(index) = self.items.iter().position(|d| d.id == id) else { return };
        let permanent = matches!(attempt, Attempt::Status(s) if (400..500).contains(&s) && s != 408 && s != 429);
        if matches!(attempt, Attempt::Status(s) if (200..300).contains(&s)) {
            self.items.remove(index);
            self.delivered += 1;
            return;
        }
        let d = &mut self.items[index];
        d.attempts += 1;
        let pause = full_jitter(policy.base_ms, policy.cap_ms, d.attempts, jitter).max(policy.base_ms / 2).max(1);
        d.next_at = now + pause;
        if permanent || d.next_at > d.deadline {
            self.items.remove(index);
            self.abandoned += 1;
        }
    }

    pub fn next_wake(&self) -> Option<Ms> {
        self.items.iter().map(|d| d.next_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RelayPolicy = RelayPolicy { base_ms: 100, cap_ms: 1_000, max_age_ms: 2_000 };

    #[test]
    fn retries_then_delivers() {
        let mut o = Outbox::default();
        let id = o.enqueue(&P, 0, "https://c/h".into(), "{}".into(), vec![]);
        assert_eq!(o.due(0).len(), 1);
        o.settle(&P, id, Attempt::Unreachable, 0, 0.99);
        assert!(o.due(0).is_empty());
        let next = o.next_wake().unwrap();
        assert!((50..=200).contains(&next), "{next}");
        o.settle(&P, id, Attempt::Status(503), next, 0.5);
        o.settle(&P, id, Attempt::Status(204), 1_000, 0.5);
        assert_eq!((o.pending(), o.delivered), (0, 1));
    }

    #[test]
    fn gives_up_on_permanent_refusal_or_age() {
        let mut o = Outbox::default();
        let a = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]);
        o.settle(&P, a, Attempt::Status(410), 0, 0.5);
        let b = o.enqueue(&P, 0, "u".into(), "b".into(), vec![]);
        o.settle(&P, b, Attempt::Status(500), 1_990, 0.9);
        assert_eq!((o.pending(), o.abandoned), (0, 2));
    }
}
