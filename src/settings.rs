//! Reads the Worker's configuration from its environment (wrangler vars,
//! `.dev.vars` and secrets are all string bindings). Parsed once per isolate:
//! the environment of a deployed isolate never changes.

use std::cell::RefCell;
use std::rc::Rc;

use governor_core::config::vars::ConfigError;
use governor_core::config::Config;
use worker::Env;

thread_local! {
    static CACHE: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
    static WARNED_UNVERIFIED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Say once per isolate that callbacks are taken without a signature check
/// (no `SYNC_WEBHOOK_SECRET`); `GET /governor/v1/status` says it too.
pub fn warn_unverified() {
    if !WARNED_UNVERIFIED.with(|w| w.replace(true)) {
        worker::console_warn!(
            "SYNC_WEBHOOK_SECRET is not set: webhook signature verification is off (anyone holding a callback URL \
             can post to it); set it in production"
        );
    }
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
    CACHE.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let config = load(env);
                if config.as_ref().is_ok_and(|c| c.webhooks.sync_secret.is_none()) {
                    warn_unverified();
                }
                Rc::new(config)
            })
            .clone()
    })
}
