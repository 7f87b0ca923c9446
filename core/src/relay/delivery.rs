//! One delivery's row (URL, headers, body, schedule), how an attempt
//! ended, and the relay's policy: the outbox's data, below the store that
//! keeps it.

use serde::{Deserialize, Serialize};

use crate::Ms;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPolicy {
    pub base_ms: Ms,
    pub cap_ms: Ms,
    /// Give up on a delivery this long after the webhook arrived.
    pub max_age_ms: Ms,
    /// Bounds of the outbox: pending deliveries and their bytes.
    pub max_pending: u32,
    pub max_bytes: u64,
    /// How long a relayed (generation, status) is remembered, so a replayed
    /// or duplicated webhook is acknowledged and dropped.
    #[serde(default = "default_dedupe_ttl")]
    pub dedupe_ttl_ms: Ms,
    /// At most this many remembered ends (the oldest live one goes first).
    #[serde(default = "default_dedupe_max")]
    pub dedupe_max: u32,
}

fn default_dedupe_ttl() -> Ms {
    (crate::relay::webhook::DEFAULT_TOKEN_TTL_S + 300) * 1_000
}

fn default_dedupe_max() -> u32 {
    100_000
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
    /// Size of the body while it is not in memory.
    #[serde(default)]
    pub body_bytes: u64,
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The client answered with this status.
    Status(u16),
    /// The client could not be reached.
    Unreachable,
    /// The URL no longer passes the `webhookUrl` check (checked again at
    /// each delivery): given up at once.
    Refused,
}

impl Delivery {
    /// Bytes the delivery's row occupies.
    pub fn bytes(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.url.len() + self.body.len() + headers + 48) as u64
    }

    /// The schedule part of the row (what memory keeps).
    pub fn without_body(&self) -> Delivery {
        Delivery { body: String::new(), body_bytes: self.body.len() as u64, ..self.clone() }
    }
}

/// A payload to relay to a client's own webhook URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRequest {
    pub url: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}
