//! Configuration: every wrangler var and secret, parsed and validated in one
//! place from a lookup function (so it is tested natively). Invalid values
//! fail loudly with the variable's name; secret values never appear in a
//! message.
//!
//! | module | one concept |
//! |---|---|
//! | [`limits`] | `Limits`: what the account's object enforces, and where each value came from |
//! | [`vars`] | reading a var with bounds and defaults; `ConfigError` names the variable |
//! | `limit_vars` | the limits' vars, read into `Limits` |
//! | `key_vars` | the webhook key, the Sync secret, the client keys |

mod key_vars;
mod limit_vars;
pub mod limits;
pub mod vars;

use crate::auth::keys::KeyMode;
use crate::auth::secret::Secret;
use crate::config::limits::Limits;
use crate::Ms;

use vars::{err, ConfigError, Vars};
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
        self.local_mode && crate::relay::url::is_loopback_host(host)
    }
}

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
}

#[cfg(test)]
mod tests;
