//! What the account's Durable Object enforces: the rates per class, the
//! concurrency cap and every policy, as [`Limits`]; where each configured
//! value came from ([`VarSources`]). Data and its queries only: the vars
//! are parsed in [`crate::config`].

use serde::{Deserialize, Serialize};

use crate::admission::idempotency::IdempotencyPolicy;
use crate::lifecycle::permits::ConcurrencyLimit;
use crate::lifecycle::reconcile::ReconcilePolicy;
use crate::queue::job::QueuePolicy;
use crate::rates::backoff::BackoffPolicy;
use crate::rates::class::RateClass;
use crate::rates::window::RateLimit;
use crate::relay::delivery::RelayPolicy;
use crate::Ms;

/// A rate class beyond `generate` and `other`, matched by method and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraClass {
    /// Always a [`RateClass::Extra`] (a built-in name is refused where
    /// `RATE_CLASSES` is read).
    pub name: RateClass,
    pub method: String,
    pub path: String,
    pub rate: RateLimit,
}

/// What the account's Durable Object enforces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub generate: RateLimit,
    pub other: RateLimit,
    pub extra: Vec<ExtraClass>,
    pub concurrency: ConcurrencyLimit,
    pub backoff: BackoffPolicy,
    pub reconcile: ReconcilePolicy,
    pub relay: RelayPolicy,
    pub queue: QueuePolicy,
    pub idempotency: IdempotencyPolicy,
    /// `GOVERNOR_MODE=shadow`: every decision is taken and counted, nothing
    /// is refused, held or queued.
    pub shadow: bool,
    /// Which of the limits above were set by a var (for status).
    pub sources: VarSources,
    /// `CLIENT_LIMITS`: what each client of an account may take.
    #[serde(default)]
    pub clients: crate::shares::limits::ClientLimits,
    /// `PRICES`, the account's budgets, `LEDGER_RETENTION_DAYS`.
    #[serde(default)]
    pub costs: crate::budget::vars::CostConfig,
    /// `MAX_CONCURRENT_BATCHES` and the batch leases.
    #[serde(default)]
    pub batches: crate::batch::BatchLimit,
}

impl Limits {
    /// The rate policy of a class, if it exists (an extra class only while
    /// `RATE_CLASSES` names it).
    pub fn rate(&self, class: &RateClass) -> Option<&RateLimit> {
        match class {
            RateClass::Generate => Some(&self.generate),
            RateClass::Other => Some(&self.other),
            RateClass::Extra(_) => self.extra.iter().find(|c| c.name == *class).map(|c| &c.rate),
        }
    }

    /// Units of the `other` budget per window that only the governor's own
    /// reconciliation may spend: 1 in 100 (6 of Sync's 600 per minute), at
    /// least 1 when the budget has 4 or more.
    pub fn reconcile_reserve(&self) -> u32 {
        if self.other.limit >= 4 {
            (self.other.limit / 100).max(1)
        } else {
            0
        }
    }

    /// Every rate class, in policy order.
    pub fn classes(&self) -> impl Iterator<Item = (RateClass, &RateLimit)> {
        [(RateClass::Generate, &self.generate), (RateClass::Other, &self.other)]
            .into_iter()
            .chain(self.extra.iter().map(|c| (c.name.clone(), &c.rate)))
    }

    /// The buckets a request of `class` spends from: its own, and `other`
    /// too for extra classes (Sync's per-endpoint limits come on top of
    /// "all other endpoints", so the safe reading spends both).
    pub fn buckets(&self, class: &RateClass) -> Vec<RateClass> {
        match class {
            RateClass::Generate | RateClass::Other => vec![class.clone()],
            RateClass::Extra(_) => vec![class.clone(), RateClass::Other],
        }
    }
}

/// Which configured limits came from vars (filled by [`crate::config`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarSources {
    pub generate: bool,
    pub generate_burst: bool,
    pub requests: bool,
    pub requests_burst: bool,
    pub classes: bool,
    pub concurrency: bool,
}

/// Plan name → concurrent generations.
pub fn plan_cap(plan: &str) -> Option<u32> {
    match plan.to_ascii_lowercase().as_str() {
        "hobbyist" => Some(1),
        "creator" => Some(3),
        "growth" => Some(6),
        "scale" => Some(15),
        _ => None,
    }
}

impl Limits {
    /// Test and benchmark helper: Sync's documented limits scaled to a window.
    pub fn for_window(generate: u32, other: u32, cap: u32, window_ms: Ms, margin_ms: Ms) -> Self {
        Limits {
            generate: RateLimit::per_window(generate, window_ms, margin_ms),
            other: RateLimit::per_window(other, window_ms, margin_ms),
            extra: vec![ExtraClass {
                name: "upload".into(),
                method: "POST".into(),
                path: "/v2/assets/upload".into(),
                rate: RateLimit::per_window(120, window_ms, margin_ms),
            }],
            concurrency: ConcurrencyLimit { cap, reservation_ttl_ms: 600_000, lease_ttl_ms: 3_600_000 },
            backoff: BackoffPolicy { base_ms: 1_000, cap_ms: 60_000 },
            reconcile: ReconcilePolicy { min_ms: 1_000, max_ms: 8_000, page_size: 100 },
            relay: RelayPolicy {
                base_ms: 100,
                cap_ms: 1_000,
                max_age_ms: 10_000,
                max_pending: 100,
                max_bytes: 1 << 20,
                dedupe_ttl_ms: 86_400_000,
                dedupe_max: 1_000,
            },
            queue: QueuePolicy { max_depth: 100, retention_ms: 60_000, retry_ms: 100, max_bytes: 8 << 20 },
            idempotency: IdempotencyPolicy {
                ttl_ms: 86_400_000,
                max_records: 1_000,
                max_bytes: 1 << 20,
                max_body_bytes: 4_096,
            },
            shadow: false,
            sources: VarSources::default(),
            clients: Default::default(),
            costs: Default::default(),
            batches: Default::default(),
        }
    }
}
