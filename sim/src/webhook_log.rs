//! The webhook log (`/_sim/webhooks`, `/_sim/stats`) and one webhook to
//! send: data only, kept by the simulator's state and filled by
//! [`crate::webhooks`].

use std::collections::VecDeque;

use serde::Serialize;

/// Deliveries kept at most in the log.
pub const CAPACITY: usize = 1000;

/// Webhook counters for `/_sim/stats`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WebhookStats {
    /// Terminal generations that had a webhook url.
    pub scheduled: u64,
    /// POSTs attempted (a duplicate counts twice).
    pub sent: u64,
    /// POSTs answered 2xx.
    pub delivered: u64,
    /// POSTs answered non-2xx or that failed to connect.
    pub failed: u64,
    /// Webhooks not sent because of the drop fault.
    pub dropped: u64,
    /// Webhooks sent twice because of the dup fault.
    pub duplicated: u64,
}

/// One delivery attempt (or a dropped one), for `GET /_sim/webhooks`.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `generation` or `batch`.
    pub kind: &'static str,
    /// The id of the generation (or of the batch, for `kind: batch`).
    pub generation_id: String,
    pub generation_status: &'static str,
    pub url: String,
    /// 1 for the first copy, 2 for a duplicate.
    pub copy: u8,
    pub dropped: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub signature: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Default)]
pub struct WebhookLog {
    pub stats: WebhookStats,
    pub deliveries: VecDeque<Delivery>,
}

impl WebhookLog {
    pub fn record(&mut self, d: Delivery) {
        if self.deliveries.len() >= CAPACITY {
            self.deliveries.pop_front();
        }
        self.deliveries.push_back(d);
    }
}

/// One webhook to send: what it is about and its payload.
pub struct Hook {
    pub kind: &'static str,
    pub id: String,
    pub status: &'static str,
    pub body: serde_json::Value,
    /// Probability that it is not sent at all.
    pub drop_rate: f64,
}
