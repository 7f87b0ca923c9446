//! Reads the Worker's configuration from its environment (wrangler vars,
//! `.dev.vars` and secrets are all string bindings).

use governor_core::config::{Config, ConfigError};
use worker::Env;

/// Every variable the governor reads, so that the lookup can be eager.
pub const VARS: &[&str] = &[
    "SYNC_API_BASE",
    "GENERATE_PER_MINUTE",
    "REQUESTS_PER_MINUTE",
    "GENERATE_BURST",
    "REQUESTS_BURST",
    "RATE_CLASSES",
    "RATE_WINDOW_MS",
    "RATE_MARGIN_MS",
    "MAX_CONCURRENT_GENERATIONS",
    "SYNC_PLAN",
    "RESERVATION_TTL_SECONDS",
    "PERMIT_LEASE_SECONDS",
    "UPSTREAM_BACKOFF_BASE_MS",
    "UPSTREAM_BACKOFF_CAP_MS",
    "GOVERNOR_CLIENT_KEYS",
    "SYNC_API_KEYS",
    "SYNC_API_KEY",
    "ALLOWED_ORIGINS",
    "MAX_JSON_BODY_BYTES",
];

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

pub fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_vars(&|name| var(env, name))
}
