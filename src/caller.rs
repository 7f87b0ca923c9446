//! Who is asking: the key a request presents, the caller it resolves to, and
//! the key the account's object may keep in memory.

use governor_core::auth::keys::{bearer_token, Caller};
use governor_core::auth::secret::Secret;
use governor_core::config::Config;
use governor_core::wire::error::GovernorError;

use crate::request::Request;

/// The key a caller presents: `x-api-key`, or `Authorization: Bearer`
/// (scheme in any case, RFC 9110 §11.1).
pub fn presented_key(req: &Request) -> Option<String> {
    req.field("x-api-key").or_else(|| req.field("authorization").and_then(bearer_token)).map(str::to_owned)
}

/// The key the account object may keep in memory: only pass-through keys
/// travel (managed keys are in the object's own configuration).
pub fn object_key<'a>(config: &Config, caller: &'a Caller) -> Option<&'a Secret> {
    (!config.keys.is_managed()).then_some(&caller.upstream_key)
}

/// The caller a request's key resolves to, or why not.
pub fn authenticate(req: &Request, config: &Config) -> Result<Caller, GovernorError> {
    Ok(config.keys.resolve(presented_key(req).as_deref())?)
}
