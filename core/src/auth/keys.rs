//! Who is calling and which account pays.
//!
//! * Pass-through (default): the caller's `x-api-key` *is* a Sync key. The
//!   account is named by a SHA-256 digest of it (the raw key is
//!   never stored) and the key is forwarded unchanged.
//! * Managed: `GOVERNOR_CLIENT_KEYS` maps client keys to accounts and
//!   `SYNC_API_KEYS` (or `SYNC_API_KEY`) maps accounts to Sync keys. Client
//!   keys never reach Sync, Sync keys never reach clients.
//!
//! Lookups compare SHA-256 digests in constant time and visit every entry,
//! so neither timing nor early exit reveals how much of a key matched.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::secret::Secret;

/// The caller, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Names the account's Durable Object. Never contains a key.
    pub account: String,
    /// The key to send to Sync.
    pub upstream_key: Secret,
    /// Stable, non-secret name of the client (for fairness and logs).
    pub client: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Unknown,
}

/// How callers are authenticated.
#[derive(Clone, Debug)]
pub enum KeyMode {
    PassThrough,
    Managed(ManagedKeys),
}

#[derive(Clone, Debug)]
pub struct ManagedKeys {
    /// (digest of the client key, account, client name).
    clients: Vec<([u8; 32], String, String)>,
    sync_keys: BTreeMap<String, Secret>,
}

/// One entry of `GOVERNOR_CLIENT_KEYS`: the account a client key spends
/// from, and the client's name when the operator gave one (else the
/// client is named by the key's fingerprint, see [`key_client_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub account: String,
    pub client: Option<String>,
}

/// The client name of a key without a configured one: `c-` and the first 8
/// hex digits of its fingerprint (stable, not reversible).
pub fn key_client_name(key: &str) -> String {
    format!("c-{}", &fingerprint(key)[..8])
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// matched case-insensitively (RFC 9110 §11.1) and may be followed by any
/// run of spaces or tabs; anything else (another scheme, no token) is `None`.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim_start_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Is `presented` the admin key? Compared in constant time (as digests, so
/// the lengths do not leak either).
pub fn is_admin_key(expected: &crate::auth::secret::Secret, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(p) = presented else { return false };
    digest(expected.expose()).ct_eq(&digest(p)).into()
}

/// A short, non-reversible label for a key (the account name in pass-through).
pub fn fingerprint(key: &str) -> String {
    hex::encode(&digest(&format!("sync-governor/v1/{key}"))[..16])
}

impl ManagedKeys {
    /// `clients`: client key → account; `sync_keys`: account → Sync key.
    pub fn new(clients: BTreeMap<String, String>, sync_keys: BTreeMap<String, Secret>) -> Self {
        let entries = clients.into_iter().map(|(key, account)| (key, KeyEntry { account, client: None })).collect();
        Self::with_entries(entries, sync_keys)
    }

    /// As [`ManagedKeys::new`], with clients named by the operator.
    pub fn with_entries(clients: BTreeMap<String, KeyEntry>, sync_keys: BTreeMap<String, Secret>) -> Self {
        let clients = clients
            .into_iter()
            .map(|(key, e)| {
                let name = e.client.unwrap_or_else(|| key_client_name(&key));
                (digest(&key), e.account, name)
            })
            .collect();
        Self { clients, sync_keys }
    }

    fn resolve(&self, presented: &str) -> Result<Caller, AuthError> {
        let wanted = digest(presented);
        let mut found: Option<(&str, &str)> = None;
        for (hash, account, name) in &self.clients {
            if bool::from(hash.ct_eq(&wanted)) {
                found = Some((account, name));
            }
        }
        let (account, name) = found.ok_or(AuthError::Unknown)?;
        let upstream_key = self.sync_keys.get(account).cloned().ok_or(AuthError::Unknown)?;
        Ok(Caller { account: format!("a-{account}"), upstream_key, client: name.to_owned() })
    }
}

impl KeyMode {
    /// Authenticate a presented key (`x-api-key`, or a bearer token).
    pub fn resolve(&self, presented: Option<&str>) -> Result<Caller, AuthError> {
        let key = presented.map(str::trim).filter(|k| !k.is_empty()).ok_or(AuthError::Missing)?;
        match self {
            KeyMode::PassThrough => {
                let fp = fingerprint(key);
                Ok(Caller { client: key_client_name(key), account: format!("k-{fp}"), upstream_key: Secret::new(key) })
            }
            KeyMode::Managed(m) => m.resolve(key),
        }
    }

    /// The Sync key of a managed account, by its object name (`a-<name>`).
    /// Pass-through accounts have none: their key is never stored.
    pub fn upstream_for_account(&self, account: &str) -> Option<Secret> {
        match self {
            KeyMode::PassThrough => None,
            KeyMode::Managed(m) => account.strip_prefix("a-").and_then(|name| m.sync_keys.get(name).cloned()),
        }
    }

    pub fn is_managed(&self) -> bool {
        matches!(self, KeyMode::Managed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed() -> KeyMode {
        let clients = BTreeMap::from([
            ("ck-alice".to_owned(), "acme".to_owned()),
            ("ck-bob".to_owned(), "acme".to_owned()),
            ("ck-eve".to_owned(), "other".to_owned()),
        ]);
        let sync = BTreeMap::from([
            ("acme".to_owned(), Secret::new("sk-acme")),
            ("other".to_owned(), Secret::new("sk-other")),
        ]);
        KeyMode::Managed(ManagedKeys::new(clients, sync))
    }

    #[test]
    fn pass_through_names_the_account_by_digest() {
        let c = KeyMode::PassThrough.resolve(Some("sk-123")).unwrap();
        assert!(c.account.starts_with("k-") && !c.account.contains("sk-123"));
        assert_eq!(c.upstream_key.expose(), "sk-123");
        assert_eq!(KeyMode::PassThrough.resolve(Some(" ")), Err(AuthError::Missing));
    }

    #[test]
    fn managed_maps_clients_to_accounts() {
        let m = managed();
        let a = m.resolve(Some("ck-alice")).unwrap();
        let b = m.resolve(Some("ck-bob")).unwrap();
        assert_eq!(a.account, "a-acme");
        assert_eq!(a.account, b.account);
        assert_ne!(a.client, b.client);
        assert_eq!(a.upstream_key.expose(), "sk-acme");
        assert_eq!(m.resolve(Some("ck-eve")).unwrap().upstream_key.expose(), "sk-other");
        assert_eq!(m.resolve(Some("sk-acme")), Err(AuthError::Unknown));
        assert_eq!(m.resolve(None), Err(AuthError::Missing));
        assert_eq!(m.upstream_for_account("a-acme").map(|k| k.expose().to_owned()).as_deref(), Some("sk-acme"));
        assert!(KeyMode::PassThrough.upstream_for_account("k-abc").is_none());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for h in ["Bearer ck-1", "bearer ck-1", "BEARER ck-1", "bEaReR \t ck-1", " Bearer ck-1 "] {
            assert_eq!(bearer_token(h), Some("ck-1"), "{h:?}");
        }
        for h in ["Basic ck-1", "Bearer", "Bearer   ", "Bearerck-1", "ck-1", ""] {
            assert_eq!(bearer_token(h), None, "{h:?}");
        }
    }
}
