//! Configuration: every wrangler var and secret, parsed and validated in one
//! place from a lookup function (so it is tested natively). Invalid values
//! fail loudly with the variable's name; secret values never appear in a
//! message.
//!
//! | module | one concept |
//! |---|---|
//! | [`limits`] | `Limits`: what the account's object enforces, and where each value came from |

pub mod limits;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::admission::idempotency::IdempotencyPolicy;
use crate::auth::keys::{KeyEntry, KeyMode, ManagedKeys};
use crate::auth::secret::Secret;
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
use crate::shares::client::is_configurable_client_name;
use crate::Ms;

pub const DEFAULT_API_BASE: &str = "https://api.sync.so";

/// The Worker's whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_base: String,
    pub limits: Limits,
    pub keys: KeyMode,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: u64,
    pub webhooks: WebhookConfig,
    /// Longest `Prefer: wait` honoured, in milliseconds.
    pub max_wait_ms: u64,
    /// How long any call to Sync or to a client's webhook may take.
    pub timeouts: Timeouts,
    /// `GOVERNOR_ADMIN_KEY`: enables the admin API and metrics.
    pub admin_key: Option<Secret>,
    /// `FAIL_MODE=open`: when the account's object fails, forward anyway.
    pub fail_open: bool,
    /// `LOG_LEVEL`: which structured log lines are written.
    pub log_level: LogLevel,
}

/// `LOG_LEVEL`, most to least verbose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Off,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" => Self::Error,
            "off" | "none" => Self::Off,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Off => "off",
        }
    }
}

/// Time boxes of the governor's outgoing calls, in milliseconds. A call
/// still unanswered when its box ends is aborted: the client gets 504, and
/// a create's permit is kept as unknown (the generation may exist) until a
/// reconciliation listing tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `POST /v2/generate` (forwarded or queued), until Sync's answer is read;
    /// a multipart upload's sending time counts.
    pub create_ms: Ms,
    /// Any other forwarded request, until Sync's response head (its body then
    /// streams); the object's own `GET /v2/generate/{id}` until read.
    pub read_ms: Ms,
    /// `GET /v2/generations` (forwarded, and reconciliation's pages).
    pub list_ms: Ms,
    /// One relay delivery to a client's webhook.
    pub relay_ms: Ms,
}

impl Timeouts {
    /// The time box of a forwarded request: a create's, the list's, or a read's.
    pub fn forward_ms(&self, method: &str, path: &str, creates: bool) -> Ms {
        if creates {
            return self.create_ms;
        }
        let list = method.eq_ignore_ascii_case("GET")
            && crate::wire::path::canonical_path(path).is_ok_and(|p| p.eq_ignore_ascii_case("/v2/generations"));
        if list {
            self.list_ms
        } else {
            self.read_ms
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { create_ms: 60_000, read_ms: 30_000, list_ms: 30_000, relay_ms: 10_000 }
    }
}

/// The webhook relay's settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Signs callback tokens; the relay is off without it.
    pub key: Option<Secret>,
    /// Sync's webhook secret (`whsec_...`): when set, callbacks must carry a
    /// valid `Sync-Signature`.
    pub sync_secret: Option<Secret>,
    pub tolerance_s: u64,
    /// The governor's public origin for callbacks (else the request's own).
    pub public_url: Option<String>,
    /// Local mode: client webhooks may be plain http to loopback. In effect
    /// only for requests whose host is loopback ([`WebhookConfig::local_for`]).
    pub local_mode: bool,
    /// `GOVERNOR_WEBHOOK_KEY_PREVIOUS`: still opens tokens minted before a
    /// rotation (never mints).
    pub previous_key: Option<Secret>,
    /// How long a callback token is accepted after it was minted.
    pub token_ttl_s: u64,
}

impl WebhookConfig {
    /// Keys that open callback tokens: the current one, then the previous.
    pub fn token_keys(&self) -> Vec<&[u8]> {
        self.key.iter().chain(self.previous_key.iter()).map(|k| k.expose().as_bytes()).collect()
    }

    /// Is local mode in effect for a request to `host` (its URL's
    /// hostname)? Only on loopback: a deployment that left `LOCAL_MODE` on
    /// is served as if it were off.
    pub fn local_for(&self, host: &str) -> bool {
        self.local_mode && crate::relay::webhook::is_loopback_host(host)
    }
}

/// A configuration problem, naming the variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.problem)
    }
}

fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A secret that is set must have a value: an empty one (a blank
    /// `wrangler secret put`, an empty line in `.dev.vars`) would otherwise
    /// read as unset and silently turn a protection off.
    fn not_blank(&self, var: &'static str) -> Result<(), ConfigError> {
        match (self.0)(var) {
            Some(v) if v.trim().is_empty() => Err(err(var, "is set but empty: give it a value or remove it")),
            _ => Ok(()),
        }
    }

    /// A number of seconds, in milliseconds (checked: never wraps).
    fn seconds(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<Ms, ConfigError> {
        self.number(var, default, min, max)?
            .checked_mul(1_000)
            .ok_or_else(|| err(var, "is too large to count in milliseconds"))
    }

    fn number(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else { return Ok(default) };
        let n: u64 = raw.parse().map_err(|_| err(var, format!("expected a whole number, got {raw:?}")))?;
        if n < min || n > max {
            return Err(err(var, format!("must be between {min} and {max}, got {n}")));
        }
        Ok(n)
    }

    fn secret_json<T: for<'de> Deserialize<'de>>(
        &self,
        var: &'static str,
        shape: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            // Never echo the value or serde's message (it may quote it).
            Some(raw) => crate::wire::json::from_str(&raw).map(Some).map_err(|_| err(var, format!("must be {shape}"))),
        }
    }
}

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
    /// Parse from a variable lookup (wrangler vars and secrets).
    pub fn from_vars(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars(lookup);
        let api_base = v.get("SYNC_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let api_base = api_base.trim_end_matches('/').to_owned();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(err("SYNC_API_BASE", "must be an http(s) URL"));
        }
        Ok(Self {
            api_base,
            limits: Self::limits(&v)?,
            keys: Self::keys(&v)?,
            allowed_origins: v
                .get("ALLOWED_ORIGINS")
                .map(|s| {
                    s.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect()
                })
                .unwrap_or_default(),
            max_body_bytes: v.number("MAX_JSON_BODY_BYTES", 1 << 20, 1_024, 100 << 20)?,
            webhooks: Self::webhooks(&v)?,
            max_wait_ms: v.seconds("MAX_WAIT_SECONDS", 60, 0, 600)?,
            timeouts: Self::timeouts(&v)?,
            admin_key: Self::admin_key(&v)?,
            fail_open: match v.get("FAIL_MODE").as_deref() {
                None | Some("closed") => false,
                Some("open") => true,
                Some(other) => return Err(err("FAIL_MODE", format!("must be closed or open, got {other:?}"))),
            },
            log_level: match v.get("LOG_LEVEL") {
                None => LogLevel::default(),
                Some(l) => LogLevel::parse(&l)
                    .ok_or_else(|| err("LOG_LEVEL", format!("must be debug, info, warn, error or off, got {l:?}")))?,
            },
        })
    }

    fn admin_key(v: &Vars) -> Result<Option<Secret>, ConfigError> {
        v.not_blank("GOVERNOR_ADMIN_KEY")?;
        match v.get("GOVERNOR_ADMIN_KEY") {
            Some(k) if k.len() < 16 => Err(err("GOVERNOR_ADMIN_KEY", "must be at least 16 characters")),
            k => Ok(k.map(Secret::new)),
        }
    }

    fn timeouts(v: &Vars) -> Result<Timeouts, ConfigError> {
        let d = Timeouts::default();
        // From a tenth of a second to the 15 minutes a Durable Object's alarm may run.
        let (min, max) = (100, 900_000);
        Ok(Timeouts {
            create_ms: v.number("UPSTREAM_TIMEOUT_CREATE_MS", d.create_ms, min, max)?,
            read_ms: v.number("UPSTREAM_TIMEOUT_READ_MS", d.read_ms, min, max)?,
            list_ms: v.number("UPSTREAM_TIMEOUT_LIST_MS", d.list_ms, min, max)?,
            relay_ms: v.number("RELAY_TIMEOUT_MS", d.relay_ms, min, max)?,
        })
    }

    fn limits(v: &Vars) -> Result<Limits, ConfigError> {
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
                name: s.name,
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

    fn webhooks(v: &Vars) -> Result<WebhookConfig, ConfigError> {
        v.not_blank("GOVERNOR_WEBHOOK_KEY")?;
        v.not_blank("SYNC_WEBHOOK_SECRET")?;
        v.not_blank("GOVERNOR_WEBHOOK_KEY_PREVIOUS")?;
        let key = v.get("GOVERNOR_WEBHOOK_KEY");
        if key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(err("GOVERNOR_WEBHOOK_KEY", "must be at least 16 characters"));
        }
        let previous_key = v.get("GOVERNOR_WEBHOOK_KEY_PREVIOUS");
        if previous_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(err("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "must be at least 16 characters"));
        }
        if previous_key.is_some() && key.is_none() {
            return Err(err("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "is set but GOVERNOR_WEBHOOK_KEY is not"));
        }
        if previous_key.is_some() && previous_key == key {
            return Err(err("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "is the same as GOVERNOR_WEBHOOK_KEY"));
        }
        let public_url = v.get("GOVERNOR_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        if public_url.as_ref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
            return Err(err("GOVERNOR_PUBLIC_URL", "must be an http(s) URL"));
        }
        let local_mode = match v.get("LOCAL_MODE").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => return Err(err("LOCAL_MODE", format!("must be true or false, got {other:?}"))),
        };
        Ok(WebhookConfig {
            key: key.map(Secret::new),
            sync_secret: v.get("SYNC_WEBHOOK_SECRET").map(Secret::new),
            tolerance_s: v.number("WEBHOOK_TOLERANCE_SECONDS", 300, 1, 86_400)?,
            public_url,
            local_mode,
            previous_key: previous_key.map(Secret::new),
            token_ttl_s: v.number("WEBHOOK_TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_S, 1, 30 * 86_400)?,
        })
    }

    fn keys(v: &Vars) -> Result<KeyMode, ConfigError> {
        for var in ["GOVERNOR_CLIENT_KEYS", "SYNC_API_KEYS", "SYNC_API_KEY"] {
            v.not_blank(var)?;
        }
        let clients: Option<BTreeMap<String, KeyEntry>> = v.secret_json(
            "GOVERNOR_CLIENT_KEYS",
            "a JSON object mapping client keys to account names or to {\"account\", \"client\"}",
        )?;
        let sync_keys: Option<BTreeMap<String, String>> =
            v.secret_json("SYNC_API_KEYS", "a JSON object mapping account names to Sync API keys")?;
        let single = v.get("SYNC_API_KEY");
        let Some(clients) = clients else {
            if sync_keys.is_some() {
                return Err(err("SYNC_API_KEYS", "is set but GOVERNOR_CLIENT_KEYS is not (managed keys need both)"));
            }
            if single.is_some() {
                return Err(err(
                    "SYNC_API_KEY",
                    "is set but GOVERNOR_CLIENT_KEYS is not: pass-through mode would ignore it and forward each \
                     caller's own key (set GOVERNOR_CLIENT_KEYS for managed keys, or remove SYNC_API_KEY)",
                ));
            }
            return Ok(KeyMode::PassThrough);
        };
        if clients.is_empty() {
            return Err(err("GOVERNOR_CLIENT_KEYS", "has no client keys"));
        }
        if clients.keys().any(|k| k.len() < 16) {
            return Err(err("GOVERNOR_CLIENT_KEYS", "every client key must be at least 16 characters"));
        }
        // Account names name objects, admin routes and metrics labels.
        // (The value is not echoed: a map written backwards would put a key here.)
        if clients.values().any(|e| !crate::wire::path::is_account_name(&format!("a-{}", e.account))) {
            return Err(err(
                "GOVERNOR_CLIENT_KEYS",
                "every account name must be letters, digits, '.', '_' or '-', at most 128",
            ));
        }
        if clients.values().filter_map(|e| e.client.as_deref()).any(|c| !is_configurable_client_name(c)) {
            return Err(err(
                "GOVERNOR_CLIENT_KEYS",
                "every client name must be letters, digits, '.', '_' or '-', at most 64, not starting with c- or h-",
            ));
        }
        let sync_keys: BTreeMap<String, Secret> = match (sync_keys, single) {
            (Some(map), _) => map.into_iter().map(|(a, k)| (a, Secret::new(k))).collect(),
            (None, Some(key)) => {
                let accounts: std::collections::BTreeSet<&String> = clients.values().map(|e| &e.account).collect();
                if accounts.len() != 1 {
                    return Err(err(
                        "SYNC_API_KEY",
                        "serves a single account, but GOVERNOR_CLIENT_KEYS names several: use SYNC_API_KEYS",
                    ));
                }
                accounts.into_iter().map(|a| (a.clone(), Secret::new(key.clone()))).collect()
            }
            (None, None) => {
                return Err(err(
                    "SYNC_API_KEYS",
                    "GOVERNOR_CLIENT_KEYS is set but no Sync key is (SYNC_API_KEYS or SYNC_API_KEY)",
                ))
            }
        };
        // No name is printed: with either map written backwards it would be a key.
        let missing = clients
            .values()
            .map(|e| &e.account)
            .filter(|a| !sync_keys.contains_key(*a))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if missing > 0 {
            return Err(err(
                "SYNC_API_KEYS",
                format!(
                    "has no Sync key for {missing} of the accounts GOVERNOR_CLIENT_KEYS names (GOVERNOR_CLIENT_KEYS maps \
                     client key -> account name, SYNC_API_KEYS account name -> Sync key)"
                ),
            ));
        }
        Ok(KeyMode::Managed(ManagedKeys::with_entries(clients, sync_keys)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_sync() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.limits.generate.limit, 60);
        assert_eq!(c.limits.other.limit, 600);
        assert_eq!(c.limits.generate.window_ms, 60_000);
        assert_eq!(c.limits.concurrency.cap, 1);
        assert_eq!(c.limits.rate(&RateClass::from("upload")).map(|r| r.limit), Some(120));
        assert!(!c.keys.is_managed());
    }

    #[test]
    fn plans_and_conflicts() {
        assert_eq!(parse(&[("SYNC_PLAN", "Growth")]).unwrap().limits.concurrency.cap, 6);
        assert_eq!(parse(&[("MAX_CONCURRENT_GENERATIONS", "40")]).unwrap().limits.concurrency.cap, 40);
        assert_eq!(parse(&[("SYNC_PLAN", "gold")]).unwrap_err().var, "SYNC_PLAN");
        assert!(parse(&[("SYNC_PLAN", "scale"), ("MAX_CONCURRENT_GENERATIONS", "2")]).is_err());
        assert_eq!(parse(&[("GENERATE_PER_MINUTE", "ten")]).unwrap_err().var, "GENERATE_PER_MINUTE");
        assert_eq!(parse(&[("GENERATE_PER_MINUTE", "0")]).unwrap_err().var, "GENERATE_PER_MINUTE");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let e = parse(&[("GOVERNOR_CLIENT_KEYS", "{\"ck-very-secret-value\": 5}")]).unwrap_err();
        assert!(!e.to_string().contains("very-secret"), "{e}");
        let e = parse(&[("GOVERNOR_CLIENT_KEYS", "{\"ck-very-secret-value\":\"a\"}")]).unwrap_err();
        assert!(!e.to_string().contains("very-secret"), "{e}");
    }

    #[test]
    fn managed_keys() {
        let c = parse(&[("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#), ("SYNC_API_KEY", "sk-live")])
            .unwrap();
        let caller = c.keys.resolve(Some("ck-0123456789abcdef")).unwrap();
        assert_eq!(caller.upstream_key.expose(), "sk-live");
        assert!(parse(&[("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#)]).is_err());
        assert!(parse(&[
            ("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#),
            ("SYNC_API_KEYS", r#"{"other":"sk"}"#)
        ])
        .is_err());
    }

    #[test]
    fn named_clients_and_client_limits() {
        let keys = r#"{"ck-0123456789abcdef":{"account":"acme","client":"mobile-app"},"ck-fedcba9876543210":"acme"}"#;
        let c = parse(&[("GOVERNOR_CLIENT_KEYS", keys), ("SYNC_API_KEY", "sk-live")]).unwrap();
        assert_eq!(c.keys.resolve(Some("ck-0123456789abcdef")).unwrap().client, "mobile-app");
        let fp = c.keys.resolve(Some("ck-fedcba9876543210")).unwrap();
        assert_eq!((fp.account.as_str(), fp.client.len()), ("a-acme", 10));
        assert!(fp.client.starts_with("c-"));
        for bad in [
            r#"{"ck-0123456789abcdef":{"account":"acme","client":"c-12345678"}}"#,
            r#"{"ck-0123456789abcdef":{"account":"acme","client":"has space"}}"#,
            r#"{"ck-0123456789abcdef":{"client":"x"}}"#,
            r#"{"ck-0123456789abcdef":{"account":"acme","client":"ck-0123456789abcdef x"}}"#,
        ] {
            let e = parse(&[("GOVERNOR_CLIENT_KEYS", bad), ("SYNC_API_KEY", "sk-live")]).unwrap_err();
            assert_eq!(e.var, "GOVERNOR_CLIENT_KEYS", "{bad}");
            assert!(!e.to_string().contains("0123456789abcdef"), "{e}");
        }
        let c = parse(&[("CLIENT_LIMITS", r#"{"*":{"*":{"weight":2,"usdPerMonth":100}}}"#)]).unwrap();
        assert_eq!(c.limits.clients.resolve("k-00", "h-x").weight, Some(2));
        let e = parse(&[("CLIENT_LIMITS", r#"{"*":{"ck-secret-0123456789":{"weight":0}}}"#)]).unwrap_err();
        assert_eq!(e.var, "CLIENT_LIMITS");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn extra_classes() {
        let c = parse(&[("RATE_CLASSES", r#"[{"name":"assets","method":"get","path":"/v2/assets","perMinute":30}]"#)])
            .unwrap();
        assert_eq!(c.limits.extra[0].method, "GET");
        assert_eq!(c.limits.buckets(&RateClass::from("assets")), vec![RateClass::from("assets"), RateClass::Other]);
        assert!(
            parse(&[("RATE_CLASSES", r#"[{"name":"generate","method":"GET","path":"/v2/x","perMinute":3}]"#)]).is_err()
        );
        for path in ["/v2//assets", "/v2/assets;x", "/v2/./assets", "/v2/assets%2Fupload"] {
            let spec = format!(r#"[{{"name":"a","method":"GET","path":"{path}","perMinute":3}}]"#);
            assert_eq!(parse(&[("RATE_CLASSES", &spec)]).unwrap_err().var, "RATE_CLASSES", "{path}");
        }
    }

    #[test]
    fn webhook_key_rotation_and_token_lifetime() {
        let (current, previous) = ("current-key-0123456789", "previous-key-0123456789");
        let c = parse(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", previous)]).unwrap();
        assert_eq!(c.webhooks.token_keys(), vec![current.as_bytes(), previous.as_bytes()]);
        assert_eq!(c.webhooks.token_ttl_s, DEFAULT_TOKEN_TTL_S);
        assert_eq!(c.limits.relay.dedupe_ttl_ms, (DEFAULT_TOKEN_TTL_S + 300) * 1_000);
        let var = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().var;
        assert_eq!(var(&[("GOVERNOR_WEBHOOK_KEY_PREVIOUS", previous)]), "GOVERNOR_WEBHOOK_KEY_PREVIOUS");
        assert_eq!(
            var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "short")]),
            "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
        );
        assert_eq!(
            var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", current)]),
            "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
        );
        assert_eq!(
            var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "")]),
            "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
        );
        assert_eq!(var(&[("WEBHOOK_TOKEN_TTL_SECONDS", "0")]), "WEBHOOK_TOKEN_TTL_SECONDS");
        let short = parse(&[("WEBHOOK_TOKEN_TTL_SECONDS", "60")]).unwrap();
        assert_eq!(short.webhooks.token_ttl_s, 60);
    }

    #[test]
    fn local_mode_is_in_effect_only_on_loopback() {
        let on = parse(&[("LOCAL_MODE", "true")]).unwrap();
        assert!(
            on.webhooks.local_for("127.0.0.1") && on.webhooks.local_for("localhost") && on.webhooks.local_for("[::1]")
        );
        assert!(!on.webhooks.local_for("governor.example.com"));
        assert!(!on.webhooks.local_for("10.0.0.1"));
        assert!(!parse(&[]).unwrap().webhooks.local_for("127.0.0.1"));
    }

    #[test]
    fn blank_secrets_are_errors_not_pass_through() {
        let clients = r#"{"ck-0123456789abcdef":"acme"}"#;
        assert_eq!(parse(&[("GOVERNOR_CLIENT_KEYS", "")]).unwrap_err().var, "GOVERNOR_CLIENT_KEYS");
        assert_eq!(
            parse(&[("GOVERNOR_CLIENT_KEYS", "  "), ("SYNC_API_KEY", "sk")]).unwrap_err().var,
            "GOVERNOR_CLIENT_KEYS"
        );
        assert_eq!(parse(&[("GOVERNOR_CLIENT_KEYS", clients), ("SYNC_API_KEY", "")]).unwrap_err().var, "SYNC_API_KEY");
        assert_eq!(
            parse(&[("GOVERNOR_CLIENT_KEYS", clients), ("SYNC_API_KEYS", "")]).unwrap_err().var,
            "SYNC_API_KEYS"
        );
        assert_eq!(parse(&[("SYNC_WEBHOOK_SECRET", "")]).unwrap_err().var, "SYNC_WEBHOOK_SECRET");
        assert_eq!(parse(&[("SYNC_WEBHOOK_SECRET", " \t")]).unwrap_err().var, "SYNC_WEBHOOK_SECRET");
        assert_eq!(parse(&[("GOVERNOR_WEBHOOK_KEY", "")]).unwrap_err().var, "GOVERNOR_WEBHOOK_KEY");
        // Set with a value, or not set at all, is fine.
        assert!(parse(&[("SYNC_WEBHOOK_SECRET", "whsec_x")]).unwrap().webhooks.sync_secret.is_some());
        assert!(parse(&[]).unwrap().webhooks.sync_secret.is_none());
        // Ordinary vars may still be left empty for their default.
        assert_eq!(parse(&[("GENERATE_PER_MINUTE", "")]).unwrap().limits.generate.limit, 60);
    }

    #[test]
    fn a_sync_key_without_client_keys_is_an_error() {
        let e = parse(&[("SYNC_API_KEY", "sk-live-secret")]).unwrap_err();
        assert_eq!(e.var, "SYNC_API_KEY");
        assert!(!e.to_string().contains("sk-live-secret"), "{e}");
    }

    #[test]
    fn upstream_timeouts_have_defaults_and_bounds() {
        let t = parse(&[]).unwrap().timeouts;
        assert_eq!(t, Timeouts { create_ms: 60_000, read_ms: 30_000, list_ms: 30_000, relay_ms: 10_000 });
        let t = parse(&[
            ("UPSTREAM_TIMEOUT_CREATE_MS", "1500"),
            ("UPSTREAM_TIMEOUT_READ_MS", "700"),
            ("UPSTREAM_TIMEOUT_LIST_MS", "800"),
            ("RELAY_TIMEOUT_MS", "900"),
        ])
        .unwrap()
        .timeouts;
        assert_eq!(t, Timeouts { create_ms: 1_500, read_ms: 700, list_ms: 800, relay_ms: 900 });
        assert_eq!(t.forward_ms("POST", "/v2/generate", true), 1_500);
        assert_eq!(t.forward_ms("GET", "/v2/generations", false), 800);
        assert_eq!(t.forward_ms("get", "/v2/Generations/", false), 800);
        assert_eq!(t.forward_ms("GET", "/v2/generate/abc", false), 700);
        assert_eq!(t.forward_ms("POST", "/v2/assets/upload", false), 700);
        for var in
            ["UPSTREAM_TIMEOUT_CREATE_MS", "UPSTREAM_TIMEOUT_READ_MS", "UPSTREAM_TIMEOUT_LIST_MS", "RELAY_TIMEOUT_MS"]
        {
            for bad in ["0", "99", "900001", "soon"] {
                assert_eq!(parse(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
            }
        }
    }

    #[test]
    fn seconds_become_milliseconds_without_wrapping() {
        let c = parse(&[("MAX_WAIT_SECONDS", "600"), ("RESERVATION_TTL_SECONDS", "86400")]).unwrap();
        assert_eq!(c.max_wait_ms, 600_000);
        assert_eq!(c.limits.concurrency.reservation_ttl_ms, 86_400_000);
        let huge = (u64::MAX / 1_000 + 1).to_string();
        let lookup = move |_: &str| Some(huge.clone());
        let e = Vars(&lookup).seconds("X_SECONDS", 1, 0, u64::MAX).unwrap_err();
        assert_eq!(e.var, "X_SECONDS");
        assert_eq!(Vars(&|_| Some("7".into())).seconds("X_SECONDS", 1, 0, 10), Ok(7_000));
    }
}
