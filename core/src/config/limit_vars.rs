//! The limits' vars: rates, bursts, extra classes, the concurrency cap and
//! every policy's bounds, read into [`Limits`].

use serde::Deserialize;

use crate::admission::idempotency::IdempotencyPolicy;
use crate::config::limits::plan_cap;
use crate::config::limits::ExtraClass;
use crate::config::limits::Limits;
use crate::config::limits::VarSources;
use crate::lifecycle::permits::ConcurrencyLimit;
use crate::lifecycle::reconcile::ReconcilePolicy;
use crate::queue::job::QueuePolicy;
use crate::rates::backoff::BackoffPolicy;
use crate::rates::class::RateClass;
use crate::rates::window::RateLimit;
use crate::relay::delivery::RelayPolicy;
use crate::relay::webhook::DEFAULT_TOKEN_TTL_S;

use super::vars::{err, ConfigError, Vars};
use super::Config;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExtraClassSpec {
    name: String,
    method: String,
    path: String,
    per_minute: u32,
    #[serde(default)]
    burst: Option<u32>,
}

const DEFAULT_EXTRA: &str = r#"[{"name":"upload","method":"POST","path":"/v2/assets/upload","perMinute":120}]"#;

impl Config {
    pub(super) fn limits(v: &Vars) -> Result<Limits, ConfigError> {
        let window_ms = v.number("RATE_WINDOW_MS", 60_000, 10, 3_600_000)?;
        let margin_ms = v.number("RATE_MARGIN_MS", 1_000, 0, 60_000)?;
        let rate = |limit: u64, burst_var: &'static str| -> Result<RateLimit, ConfigError> {
            let limit = limit as u32;
            let burst = v.number(burst_var, u64::from(limit), 1, u64::from(limit))? as u32;
            Ok(RateLimit { limit, window_ms, margin_ms, burst })
        };
        let generate = rate(v.number("GENERATE_PER_MINUTE", 60, 1, 100_000)?, "GENERATE_BURST")?;
        let other = rate(v.number("REQUESTS_PER_MINUTE", 600, 1, 100_000)?, "REQUESTS_BURST")?;
        let extra_raw = v.get("RATE_CLASSES").unwrap_or_else(|| DEFAULT_EXTRA.to_owned());
        let specs: Vec<ExtraClassSpec> = crate::wire::json::from_str(&extra_raw).map_err(|e| {
            err("RATE_CLASSES", format!("expected [{{\"name\",\"method\",\"path\",\"perMinute\"}}]: {e}"))
        })?;
        let mut extra = Vec::new();
        for s in specs {
            if RateClass::is_builtin(&s.name) || s.name == crate::lifecycle::permits::CONCURRENCY || s.name.is_empty() {
                return Err(err("RATE_CLASSES", format!("class name {:?} is reserved or empty", s.name)));
            }
            if !s.path.starts_with("/v2/") || s.per_minute == 0 {
                return Err(err("RATE_CLASSES", format!("class {:?} needs a /v2/ path and perMinute >= 1", s.name)));
            }
            if crate::wire::path::canonical_path(&s.path).is_err() {
                return Err(err(
                    "RATE_CLASSES",
                    format!("class {:?}: path {:?} is ambiguous (empty or dot segments, ';', escapes)", s.name, s.path),
                ));
            }
            let burst = s.burst.unwrap_or(s.per_minute).clamp(1, s.per_minute);
            extra.push(ExtraClass {
                name: RateClass::from(s.name),
                method: s.method.to_ascii_uppercase(),
                path: s.path,
                rate: RateLimit { limit: s.per_minute, window_ms, margin_ms, burst },
            });
        }
        let cap = match (v.get("MAX_CONCURRENT_GENERATIONS"), v.get("SYNC_PLAN")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "MAX_CONCURRENT_GENERATIONS",
                    "set either MAX_CONCURRENT_GENERATIONS or SYNC_PLAN, not both",
                ))
            }
            (Some(_), None) => v.number("MAX_CONCURRENT_GENERATIONS", 1, 1, 10_000)? as u32,
            (None, Some(plan)) => plan_cap(&plan).ok_or_else(|| {
                err(
                    "SYNC_PLAN",
                    format!(
                        "unknown plan {plan:?}: use hobbyist, creator, growth or scale, or MAX_CONCURRENT_GENERATIONS"
                    ),
                )
            })?,
            (None, None) => 1,
        };
        let concurrency = ConcurrencyLimit {
            cap,
            reservation_ttl_ms: v.seconds("RESERVATION_TTL_SECONDS", 600, 1, 86_400)?,
            lease_ttl_ms: v.seconds("PERMIT_LEASE_SECONDS", 3_600, 1, 7 * 86_400)?,
        };
        let batches = crate::batch::BatchLimit {
            cap: v.number("MAX_CONCURRENT_BATCHES", 2, 1, 100)? as u32,
            reservation_ttl_ms: v.seconds("RESERVATION_TTL_SECONDS", 600, 1, 86_400)?,
            lease_ttl_ms: v.seconds("BATCH_LEASE_SECONDS", 26 * 3_600, 60, 7 * 86_400)?,
            learned_ttl_ms: 3_600_000,
            lane: lane_policy(v)?,
        };
        let backoff = BackoffPolicy {
            base_ms: v.number("UPSTREAM_BACKOFF_BASE_MS", 1_000, 1, 600_000)?,
            cap_ms: v.number("UPSTREAM_BACKOFF_CAP_MS", 60_000, 1, 3_600_000)?,
        };
        let reconcile = ReconcilePolicy {
            min_ms: v.number("RECONCILE_MIN_MS", 15_000, 100, 3_600_000)?,
            max_ms: v.number("RECONCILE_MAX_MS", 300_000, 100, 86_400_000)?,
            page_size: v.number("RECONCILE_PAGE_SIZE", 100, 1, 100)? as u32,
        };
        if reconcile.max_ms < reconcile.min_ms {
            return Err(err("RECONCILE_MAX_MS", "must not be below RECONCILE_MIN_MS"));
        }
        let relay = RelayPolicy {
            base_ms: v.number("RELAY_BACKOFF_BASE_MS", 1_000, 1, 600_000)?,
            cap_ms: v.number("RELAY_BACKOFF_CAP_MS", 300_000, 1, 3_600_000)?,
            max_age_ms: v.seconds("RELAY_MAX_SECONDS", 86_400, 1, 7 * 86_400)?,
            max_pending: v.number("RELAY_MAX_PENDING", 1_000, 1, 100_000)? as u32,
            max_bytes: v.number("RELAY_MAX_BYTES", 64 << 20, 1 << 16, 1 << 30)?,
            // A replay needs an unexpired token: remember relayed ends as
            // long as a token lives, plus the signature tolerance.
            dedupe_ttl_ms: v
                .seconds("WEBHOOK_TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_S, 1, 30 * 86_400)?
                .saturating_add(v.seconds("WEBHOOK_TOLERANCE_SECONDS", 300, 1, 86_400)?),
            dedupe_max: v.number("RELAY_DEDUPE_MAX_RECORDS", 100_000, 1, 10_000_000)? as u32,
        };
        let queue = QueuePolicy {
            max_depth: v.number("QUEUE_MAX_DEPTH", 1_000, 1, 100_000)? as u32,
            retention_ms: v.seconds("QUEUE_RETENTION_SECONDS", 86_400, 1, 30 * 86_400)?,
            retry_ms: v.number("QUEUE_RETRY_MS", 1_000, 1, 600_000)?,
            max_bytes: v.number("QUEUE_MAX_BYTES", 512 << 20, 1 << 16, 4 << 30)?,
        };
        let idempotency = IdempotencyPolicy {
            ttl_ms: v.seconds("IDEMPOTENCY_TTL_SECONDS", 86_400, 1, 7 * 86_400)?,
            max_records: v.number("IDEMPOTENCY_MAX_RECORDS", 100_000, 1, 10_000_000)? as u32,
            max_bytes: v.number("IDEMPOTENCY_MAX_BYTES", 64 << 20, 1 << 16, 4 << 30)?,
            max_body_bytes: v.number("IDEMPOTENCY_MAX_BODY_BYTES", 8 << 10, 0, 1 << 20)?,
        };
        let shadow = match v.get("GOVERNOR_MODE").as_deref() {
            None | Some("enforce") => false,
            Some("shadow") => true,
            Some(other) => return Err(err("GOVERNOR_MODE", format!("must be enforce or shadow, got {other:?}"))),
        };
        let sources = VarSources {
            generate: v.get("GENERATE_PER_MINUTE").is_some(),
            generate_burst: v.get("GENERATE_BURST").is_some(),
            requests: v.get("REQUESTS_PER_MINUTE").is_some(),
            requests_burst: v.get("REQUESTS_BURST").is_some(),
            classes: v.get("RATE_CLASSES").is_some(),
            concurrency: v.get("MAX_CONCURRENT_GENERATIONS").is_some() || v.get("SYNC_PLAN").is_some(),
        };
        Ok(Limits {
            generate,
            other,
            extra,
            concurrency,
            backoff,
            reconcile,
            relay,
            queue,
            idempotency,
            shadow,
            sources,
            costs: crate::budget::vars::CostConfig::from_vars(&|k| v.get(k)).map_err(|(var, e)| err(var, e))?,
            clients: match v.get("CLIENT_LIMITS") {
                None => Default::default(),
                Some(raw) => crate::shares::limits::ClientLimits::parse(&raw).map_err(|e| err("CLIENT_LIMITS", e))?,
            },
            batches,
        })
    }
}

/// The batch lane (`SYNC_BATCH`, off by default: only Scale and Enterprise have the API).
fn lane_policy(v: &Vars) -> Result<crate::batch::lane::LanePolicy, ConfigError> {
    Ok(crate::batch::lane::LanePolicy {
        enabled: match v.get("SYNC_BATCH").as_deref().map(str::trim) {
            None | Some("") | Some("off") => false,
            Some("on") => true,
            Some(other) => return Err(err("SYNC_BATCH", format!("must be on or off, got {other:?}"))),
        },
        poll_ms: v.number("SYNC_BATCH_POLL_MS", 60_000, 100, 3_600_000)?,
        linger_ms: v.number("SYNC_BATCH_LINGER_MS", 60_000, 0, 86_400_000)?,
        max_wait_ms: v.seconds("SYNC_BATCH_MAX_WAIT_SECONDS", 3_600, 1, 7 * 86_400)?,
        ..crate::batch::lane::LanePolicy::OFF
    })
}
