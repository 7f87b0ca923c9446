//! The admin key: who may call the operations paths.

use crate::request::Request;
use governor_core::auth::keys::{bearer_token, fingerprint, is_admin_key};
use governor_core::config::Config;
use governor_core::wire::error::GovernorError;

/// The admin key's fingerprint when the caller presents it.
pub fn authorize(req: &Request, config: &Config) -> Result<String, GovernorError> {
    let Some(expected) = &config.admin_key else { return Err(GovernorError::NotFound) };
    let presented = req.field("x-governor-admin-key").or_else(|| req.field("authorization").and_then(bearer_token));
    if !is_admin_key(expected, presented) {
        return Err(GovernorError::AdminUnauthorized);
    }
    Ok(fingerprint(expected.expose())[..8].to_owned())
}
