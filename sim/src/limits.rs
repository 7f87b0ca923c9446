//! Per-key limit enforcement: request classes, the strict sliding-window rate
//! check, and the per-account counters that the stats endpoint reports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;

/// Which rate budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// `POST /v2/generate`.
    Generate,
    /// `POST /v2/assets/upload`.
    Upload,
    /// Everything else that needs auth, unknown paths included.
    Other,
    /// `GET /v2/models`, `GET /v2/errors`: no auth, no limits.
    Public,
    /// `/_sim/*`: control plane, not logged.
    Sim,
}

impl Class {
    /// Classifies a request by method and path.
    pub fn of(method: &axum::http::Method, path: &str) -> Class {
        use axum::http::Method;
        if path == "/_sim" || path.starts_with("/_sim/") {
            return Class::Sim;
        }
        match (method, path) {
            (&Method::POST, "/v2/generate") => Class::Generate,
            (&Method::POST, "/v2/assets/upload") => Class::Upload,
            (&Method::GET, "/v2/models") | (&Method::GET, "/v2/errors") => Class::Public,
            _ => Class::Other,
        }
    }

    /// Index into per-class arrays (only for the three limited classes).
    pub fn idx(self) -> Option<usize> {
        match self {
            Class::Generate => Some(0),
            Class::Other => Some(1),
            Class::Upload => Some(2),
            Class::Public | Class::Sim => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Generate => "generate",
            Class::Upload => "upload",
            Class::Other => "other",
            Class::Public => "public",
            Class::Sim => "sim",
        }
    }

    /// The per-window limit of this class.
    pub fn limit(self, cfg: &Config) -> u32 {
        match self {
            Class::Generate => cfg.generate_per_minute,
            Class::Upload => cfg.upload_limit(),
            _ => cfg.other_per_minute,
        }
    }
}

/// Strict sliding log: the accept times of one class within the window.
#[derive(Debug, Default)]
pub struct SlidingLog {
    accepted: VecDeque<Instant>,
    /// Most accepted requests ever seen inside one window.
    pub max_in_window: u64,
}

impl SlidingLog {
    /// Accepts the request at `now` if fewer than `limit` requests were
    /// accepted in `(now - window, now]`; refused requests leave no trace.
    pub fn try_accept(&mut self, now: Instant, window: Duration, limit: u32) -> bool {
        while let Some(&t) = self.accepted.front() {
            if now.duration_since(t) >= window {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if self.accepted.len() as u64 >= u64::from(limit) {
            return false;
        }
        self.accepted.push_back(now);
        self.max_in_window = self.max_in_window.max(self.accepted.len() as u64);
        true
    }
}

/// One API key's account: limits state and counters.
#[derive(Debug, Default)]
pub struct Account {
    pub logs: [SlidingLog; 3],
    pub requests: [u64; 3],
    pub rate_limited: [u64; 3],
    pub concurrency_limited: u64,
    pub injected_429: u64,
    pub injected_5xx: u64,
    /// Generations in PENDING or PROCESSING.
    pub active: u32,
    /// Slots held by creates still reading their body.
    pub reserved: u32,
    pub peak_concurrency: u32,
    pub created: u64,
    pub completed: u64,
    pub failed: u64,
    pub rejected: u64,
    /// Batch-spawned generations in PENDING or PROCESSING (outside `active`).
    pub batch_active: u32,
    /// Batches not yet terminal.
    pub batches_open: u32,
    pub batches_created: u64,
    /// Batch creates refused for the batch concurrency.
    pub batch_concurrency_limited: u64,
    /// Batch creates refused with 402 (plan without batches).
    pub batch_plan_refused: u64,
}

impl Account {
    /// Holds a concurrency slot if one is free.
    pub fn try_reserve(&mut self, limit: u32) -> bool {
        if self.active + self.reserved >= limit {
            return false;
        }
        self.reserved += 1;
        true
    }

    /// A batch-spawned generation became active (outside the cap).
    pub fn activate_batch(&mut self) {
        self.batch_active += 1;
        self.created += 1;
    }

    pub fn release(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
    }

    /// A generation became active (its reservation, if any, already released).
    pub fn activate(&mut self) {
        self.active += 1;
        self.created += 1;
        self.peak_concurrency = self.peak_concurrency.max(self.active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn classes() {
        assert_eq!(Class::of(&Method::POST, "/v2/generate"), Class::Generate);
        assert_eq!(Class::of(&Method::POST, "/v2/generate/"), Class::Other);
        assert_eq!(Class::of(&Method::GET, "/v2/generate/abc"), Class::Other);
        assert_eq!(Class::of(&Method::POST, "/v2/assets/upload"), Class::Upload);
        assert_eq!(Class::of(&Method::GET, "/v2/models"), Class::Public);
        assert_eq!(Class::of(&Method::POST, "/v2/models"), Class::Other);
        assert_eq!(Class::of(&Method::GET, "/_sim/stats"), Class::Sim);
        assert_eq!(Class::of(&Method::GET, "/nope"), Class::Other);
    }

    #[test]
    fn strict_window() {
        let mut log = SlidingLog::default();
        let t0 = Instant::now();
        let w = Duration::from_millis(100);
        assert!(log.try_accept(t0, w, 2));
        assert!(log.try_accept(t0 + Duration::from_millis(10), w, 2));
        assert!(!log.try_accept(t0 + Duration::from_millis(99), w, 2));
        // t0 leaves the window exactly at t0 + window.
        assert!(log.try_accept(t0 + Duration::from_millis(100), w, 2));
        assert!(!log.try_accept(t0 + Duration::from_millis(109), w, 2));
        assert!(log.try_accept(t0 + Duration::from_millis(110), w, 2));
        assert_eq!(log.max_in_window, 2);
    }

    #[test]
    fn reservations() {
        let mut a = Account::default();
        assert!(a.try_reserve(2));
        assert!(a.try_reserve(2));
        assert!(!a.try_reserve(2));
        a.release();
        a.activate();
        assert!(!a.try_reserve(2));
        assert_eq!(a.peak_concurrency, 1);
    }
}
