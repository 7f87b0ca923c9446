//! The webhook relay's security: the callback token the governor puts in
//! `webhookUrl` and Sync's `Sync-Signature` (which client URLs the relay
//! may deliver to is [`crate::relay::url`]).
//!
//! The token is `v2.<kid>.<base64url(nonce || AES-256-GCM(claims))>`, sealed
//! under a key derived from `GOVERNOR_WEBHOOK_KEY` (the `kid` names which key,
//! so a previous key can still open tokens minted before a rotation). It is
//! unforgeable and opaque: nobody who sees a generation's `webhookUrl` can
//! read the client's own URL or the account from it. It names the account,
//! the client's URL, when it expires and whether it was minted in local
//! mode, so the callback needs no lookup to route.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::seal::{seal_bytes, unseal_bytes};
use crate::ids::TicketId;

type HmacSha256 = Hmac<Sha256>;

/// The token format this core mints.
const TOKEN_VERSION: &str = "v2";
/// The AES-GCM key purpose of callback tokens (distinct from the queue's seal).
const TOKEN_LABEL: &[u8] = b"sync-governor/callback-token/v2";

/// What a callback token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account (Durable Object name).
    #[serde(rename = "a")]
    pub account: String,
    /// The client's original `webhookUrl`, if it gave one.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "e")]
    pub expires_s: u64,
    /// Minted in local mode (its URL may be plain-http loopback): refused
    /// whenever local mode is not in effect.
    #[serde(rename = "l", default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// The create this URL was made for (see [`crate::lifecycle::callback`]); tokens
    /// minted before it carry none and are not bound.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<TicketId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookError {
    MalformedToken,
    BadToken,
    UnknownKey,
    ExpiredToken,
    LocalToken,
    MissingSignature,
    BadSignature,
    StaleSignature,
}

impl WebhookError {
    pub fn message(&self) -> &'static str {
        match self {
            Self::MalformedToken => "malformed callback token",
            Self::BadToken => "callback token does not verify",
            Self::UnknownKey => "callback token was minted under a key that is no longer accepted",
            Self::ExpiredToken => "callback token has expired",
            Self::LocalToken => "callback token was minted in local mode, which is not in effect",
            Self::MissingSignature => "missing Sync-Signature header",
            Self::BadSignature => "Sync-Signature does not verify",
            Self::StaleSignature => "Sync-Signature timestamp is outside the tolerance",
        }
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// A key's public id: 8 hex digits of HMAC-SHA256(key, label). It tells
/// which key sealed a token without saying anything about the key.
pub fn key_id(key: &[u8]) -> String {
    let mut m = mac(key);
    m.update(b"sync-governor/key-id/v1");
    hex::encode(&m.finalize().into_bytes()[..4])
}

/// Mint a callback token under `key`; `nonce` must be fresh randomness.
pub fn sign_token(key: &[u8], claims: &Claims, nonce: [u8; 12]) -> String {
    let kid = key_id(key);
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let sealed = seal_bytes(key, TOKEN_LABEL, nonce, kid.as_bytes(), &payload);
    format!("{TOKEN_VERSION}.{kid}.{}", URL_SAFE_NO_PAD.encode(sealed))
}

/// Open a token under whichever of `keys` (current first, then previous)
/// minted it, and check its expiry against `now_s`.
pub fn verify_token(keys: &[&[u8]], token: &str, now_s: u64) -> Result<Claims, WebhookError> {
    let mut parts = token.splitn(3, '.');
    let (Some(TOKEN_VERSION), Some(kid), Some(sealed)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(WebhookError::MalformedToken);
    };
    let sealed = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| WebhookError::MalformedToken)?;
    let key = keys.iter().find(|k| key_id(k) == kid).ok_or(WebhookError::UnknownKey)?;
    let payload = unseal_bytes(key, TOKEN_LABEL, kid.as_bytes(), &sealed).ok_or(WebhookError::BadToken)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| WebhookError::MalformedToken)?;
    if now_s > claims.expires_s {
        return Err(WebhookError::ExpiredToken);
    }
    Ok(claims)
}

/// Check `Sync-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
pub fn verify_sync_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_s: u64,
    tolerance_s: u64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let mut t: Option<u64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::BadSignature)?;
    if t.abs_diff(now_s) > tolerance_s {
        return Err(WebhookError::StaleSignature);
    }
    let verifies = |sig: &Vec<u8>| {
        let mut m = mac(secret);
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        m.verify_slice(sig).is_ok()
    };
    if sigs.iter().any(verifies) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Compute a `Sync-Signature` header (for tests and the simulator's peers).
pub fn sync_signature(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Default lifetime of a callback token: a day in the queue plus a day of
/// generation.
pub const DEFAULT_TOKEN_TTL_S: u64 = 2 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"governor-key-0123456789";
    const OLD: &[u8] = b"previous-key-0123456789";

    fn claims() -> Claims {
        Claims {
            account: "k-abc".into(),
            client_url: Some("https://hooks.example/x?y=1".into()),
            expires_s: 2_000,
            local: false,
            callback: Some("tk_00112233445566778899aabbccddeeff".into()),
        }
    }

    #[test]
    fn tokens_round_trip_and_resist_forgery() {
        let token = sign_token(KEY, &claims(), [1; 12]);
        assert_eq!(verify_token(&[KEY], &token, 1_000), Ok(claims()));
        assert_eq!(verify_token(&[OLD], &token, 1_000), Err(WebhookError::UnknownKey));
        // A key with the same id would still not open it (the id is a hint).
        let forged_kid = format!("v2.{}.{}", key_id(OLD), token.splitn(3, '.').nth(2).unwrap());
        assert_eq!(verify_token(&[OLD], &forged_kid, 1_000), Err(WebhookError::BadToken));
        let (head, body) = token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(verify_token(&[KEY], &tampered, 1_000), Err(WebhookError::BadToken));
        assert_eq!(verify_token(&[KEY], "nodot", 1_000), Err(WebhookError::MalformedToken));
        assert_eq!(verify_token(&[KEY], "v2.abc.!!", 1_000), Err(WebhookError::MalformedToken));
        // The previous release's format (readable claims + HMAC) is refused.
        assert_eq!(verify_token(&[KEY], "eyJhIjoiayJ9.AAAA", 1_000), Err(WebhookError::MalformedToken));
    }

    #[test]
    fn tokens_expire() {
        let token = sign_token(KEY, &claims(), [2; 12]);
        assert!(verify_token(&[KEY], &token, 2_000).is_ok());
        assert_eq!(verify_token(&[KEY], &token, 2_001), Err(WebhookError::ExpiredToken));
    }

    #[test]
    fn tokens_carry_a_key_id_and_survive_a_rotation() {
        let old = sign_token(OLD, &claims(), [3; 12]);
        let new = sign_token(KEY, &claims(), [3; 12]);
        assert!(old.starts_with(&format!("v2.{}.", key_id(OLD))));
        assert_ne!(key_id(OLD), key_id(KEY));
        // After the rotation: the current key first, the previous still opens old tokens.
        assert_eq!(verify_token(&[KEY, OLD], &old, 1_000), Ok(claims()));
        assert_eq!(verify_token(&[KEY, OLD], &new, 1_000), Ok(claims()));
        // Once the previous key is dropped, its tokens stop working.
        assert_eq!(verify_token(&[KEY], &old, 1_000), Err(WebhookError::UnknownKey));
    }

    #[test]
    fn the_client_url_and_account_are_not_readable_from_the_token() {
        let token = sign_token(KEY, &claims(), [4; 12]);
        for part in token.split('.') {
            let decoded = URL_SAFE_NO_PAD.decode(part).unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded);
            assert!(!text.contains("hooks.example") && !text.contains("k-abc"), "{text}");
        }
        assert!(!token.contains("aG9va3"), "no base64 of the URL");
        // Two tokens of the same claims differ (fresh nonce).
        assert_ne!(token, sign_token(KEY, &claims(), [5; 12]));
    }

    #[test]
    fn local_flag_round_trips() {
        let local = Claims { local: true, ..claims() };
        let token = sign_token(KEY, &local, [6; 12]);
        assert!(verify_token(&[KEY], &token, 0).unwrap().local);
        assert!(!verify_token(&[KEY], &sign_token(KEY, &claims(), [6; 12]), 0).unwrap().local);
    }

    #[test]
    fn sync_signatures() {
        let body = br#"{"id":"g1","status":"COMPLETED"}"#;
        let header = sync_signature(b"whsec_x", 1_000, body);
        assert_eq!(verify_sync_signature(b"whsec_x", Some(&header), body, 1_100, 300), Ok(()));
        assert_eq!(
            verify_sync_signature(b"whsec_x", Some(&header), body, 2_000, 300),
            Err(WebhookError::StaleSignature)
        );
        assert_eq!(verify_sync_signature(b"whsec_y", Some(&header), body, 1_000, 300), Err(WebhookError::BadSignature));
        assert_eq!(
            verify_sync_signature(b"whsec_x", Some(&header), b"{}", 1_000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_sync_signature(b"whsec_x", None, body, 1_000, 300), Err(WebhookError::MissingSignature));
    }
}
