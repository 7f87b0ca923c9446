//! Reads the Worker's configuration from its environment (wrangler vars,
//! `.dev.vars` and secrets are all string bindings).

use governor_core::config::{Config, ConfigError};
use worker::Env;

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

pub fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_vars(&|name| var(env, name))
}
