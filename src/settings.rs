//! Reads the Worker's configuration from its environment (wrangler vars,
//! `.dev.vars` and secrets are all string bindings). Parsed once per isolate:
//! the environment of a deployed isolate never changes.

use std::cell::RefCell;
use std::rc::Rc;

use governor_core::config::{Config, ConfigError};
use worker::Env;

thread_local! {
    static CACHE: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
}

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// Parse the configuration (no cache; the Durable Object keeps its own).
pub fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_vars(&|name| var(env, name))
}

/// The configuration, parsed on the isolate's first request.
pub fn cached(env: &Env) -> Rc<Result<Config, ConfigError>> {
    CACHE.with(|c| c.borrow_mut().get_or_insert_with(|| Rc::new(load(env))).clone())
}
