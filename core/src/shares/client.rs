//! Who a client is inside an account: a name, as a type.
//!
//! * Managed keys: the name the operator gave the key in
//!   `GOVERNOR_CLIENT_KEYS` (`{"<key>": {"account": "acme", "client": "mobile-app"}}`),
//!   else `c-` and 8 hex digits of the key's fingerprint (`{"<key>": "acme"}`).
//! * Pass-through: the key's fingerprint label, split by the advisory
//!   `X-Governor-Client` header (any caller holding the account's key can
//!   claim any name: it divides that key's share, never adds to it).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::auth::keys::KeyEntry;

/// Longest client name, in bytes.
pub const MAX_CLIENT_NAME: usize = 64;

/// Is `name` a client name an operator may give (in `GOVERNOR_CLIENT_KEYS`
/// or `CLIENT_LIMITS`)? Letters, digits, `.`, `_`, `-`, at most 64 bytes;
/// `c-` and `h-` are the governor's own prefixes (fingerprints, headers).
pub fn is_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLIENT_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Is `name` one the operator may name a client key with? (The governor's
/// own `c-<fingerprint>` and `h-<header>` names cannot be taken.)
pub fn is_configurable_client_name(name: &str) -> bool {
    is_client_name(name) && !name.starts_with("c-") && !name.starts_with("h-")
}

/// The client named by an `X-Governor-Client` value in pass-through mode:
/// `h-` and its letters, digits, `.`, `_`, `-` (others dropped), at most
/// 64 bytes in all; `None` when nothing is left. A value that already
/// starts with `h-` (the name the governor shows) is that client:
/// `h-mobile` and `mobile` are one client, never `h-h-mobile`.
pub fn header_client(value: &str) -> Option<String> {
    let value = value.trim();
    let value = value.strip_prefix("h-").unwrap_or(value);
    let kept: String =
        value.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).take(MAX_CLIENT_NAME - 2).collect();
    (!kept.is_empty()).then(|| format!("h-{kept}"))
}

/// The client a request counts for (fairness, limits, usage), the
/// caller's key first (issue 19 finding 9): with managed keys the key's
/// client, whatever `X-Governor-Client` says (a caller cannot split its key
/// into more shares than the key has); in pass-through mode, where the
/// account is the one key every caller holds, the header's client splits
/// that key (advisory), else the key's label.
pub fn request_client(managed: bool, key_client: &str, header: Option<&str>) -> String {
    match header.filter(|_| !managed).and_then(header_client) {
        Some(h) => h,
        None => key_client.to_owned(),
    }
}

/// The `CLIENT_LIMITS` names a client's entry may be written under, in
/// the order they win: its own name, then for a header's client (`h-one`)
/// the name as the caller sends it (`one`).
pub fn entry_names(client: &str) -> impl Iterator<Item = &str> {
    std::iter::once(client).chain(client.strip_prefix("h-").filter(|n| !n.is_empty()))
}

impl<'de> Deserialize<'de> for KeyEntry {
    /// `"acme"` or `{"account": "acme", "client": "mobile-app"}`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an account name or {\"account\", \"client\"}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyEntry, E> {
                Ok(KeyEntry { account: v.to_owned(), client: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyEntry, A::Error> {
                let (mut account, mut client) = (None, None);
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "account" if account.is_none() => account = Some(map.next_value::<String>()?),
                        "client" if client.is_none() => client = Some(map.next_value::<String>()?),
                        _ => return Err(de::Error::custom("unknown or repeated field")),
                    }
                }
                let account = account.ok_or_else(|| de::Error::custom("missing account"))?;
                Ok(KeyEntry { account, client })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_headers() {
        assert!(is_configurable_client_name("mobile-app") && is_configurable_client_name("a.b_c"));
        for bad in ["", "c-12345678", "h-x", "a b", "é", &"x".repeat(65)] {
            assert!(!is_configurable_client_name(bad), "{bad:?}");
        }
        assert_eq!(header_client(" web/1 ").as_deref(), Some("h-web1"));
        assert_eq!(header_client("h-web1").as_deref(), Some("h-web1"));
        assert_eq!(header_client("h-h-x").as_deref(), Some("h-h-x"));
        assert_eq!(header_client("h-"), None);
        assert_eq!(entry_names("h-one").collect::<Vec<_>>(), ["h-one", "one"]);
        assert_eq!(entry_names("mobile").collect::<Vec<_>>(), ["mobile"]);
        assert_eq!(header_client("\u{7f}\t"), None);
        assert_eq!(header_client(&"y".repeat(200)).map(|h| h.len()), Some(MAX_CLIENT_NAME));
    }

    #[test]
    fn key_entries_read_both_forms() {
        let m: std::collections::BTreeMap<String, KeyEntry> = crate::wire::json::from_str(
            r#"{"k1":"acme","k2":{"account":"acme","client":"mobile"},"k3":{"account":"b"}}"#,
        )
        .unwrap();
        assert_eq!(m["k1"], KeyEntry { account: "acme".into(), client: None });
        assert_eq!(m["k2"].client.as_deref(), Some("mobile"));
        assert_eq!(m["k3"].client, None);
        for bad in [r#"{"k":{"client":"x"}}"#, r#"{"k":{"account":"a","x":1}}"#, r#"{"k":5}"#, r#"{"k":["a"]}"#] {
            assert!(crate::wire::json::from_str::<std::collections::BTreeMap<String, KeyEntry>>(bad).is_err(), "{bad}");
        }
    }
}
