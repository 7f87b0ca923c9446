//! The keys' vars: the webhook key and its rotation, the Sync secret, the
//! pass-through or managed client keys and their accounts.

use std::collections::BTreeMap;

use crate::auth::keys::{KeyEntry, KeyMode, ManagedKeys};
use crate::auth::secret::Secret;
use crate::relay::webhook::DEFAULT_TOKEN_TTL_S;
use crate::shares::client::is_configurable_client_name;

use super::vars::{err, ConfigError, Vars};
use super::{Config, WebhookConfig};

impl Config {
    pub(super) fn webhooks(v: &Vars) -> Result<WebhookConfig, ConfigError> {
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

    pub(super) fn keys(v: &Vars) -> Result<KeyMode, ConfigError> {
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
