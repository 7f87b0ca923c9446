//! The webhook relay's security: the callback token the governor puts in
//! `webhookUrl`, Sync's `Sync-Signature`, and which client URLs the relay
//! may deliver to.
//!
//! The token is `base64url(claims) "." base64url(HMAC-SHA256(key, claims))`:
//! unguessable without `GOVERNOR_WEBHOOK_KEY`, it names the account and the
//! client's own webhook URL, so the callback needs no lookup to route.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a callback token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account (Durable Object name).
    #[serde(rename = "a")]
    pub account: String,
    /// The client's original `webhookUrl`, if it gave one.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookError {
    MalformedToken,
    BadToken,
    MissingSignature,
    BadSignature,
    StaleSignature,
}

impl WebhookError {
    pub fn message(&self) -> &'static str {
        match self {
            Self::MalformedToken => "malformed callback token",
            Self::BadToken => "callback token does not verify",
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

pub fn sign_token(key: &[u8], claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut m = mac(key);
    m.update(&payload);
    let tag = m.finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
}

/// Verify a token in constant time and return its claims.
pub fn verify_token(key: &[u8], token: &str) -> Result<Claims, WebhookError> {
    let (payload, tag) = token.split_once('.').ok_or(WebhookError::MalformedToken)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| WebhookError::MalformedToken)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| WebhookError::MalformedToken)?;
    let mut m = mac(key);
    m.update(&payload);
    m.verify_slice(&tag).map_err(|_| WebhookError::BadToken)?;
    serde_json::from_slice(&payload).map_err(|_| WebhookError::MalformedToken)
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

/// A client webhook URL as the runtime's own URL parser (the one `fetch`
/// uses) read it: the check below sees exactly what a delivery would reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientUrl<'a> {
    /// `https:` or `http:` (with the colon, as WHATWG `protocol`).
    pub scheme: &'a str,
    /// WHATWG `hostname`: IPv4 canonicalised, IPv6 in brackets, lower case.
    pub host: &'a str,
    /// A user name or password was present.
    pub credentials: bool,
}

enum Host {
    Domain,
    V4(std::net::Ipv4Addr),
    V6(std::net::Ipv6Addr),
}

fn classify(host: &str) -> Result<Host, String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse().map(Host::V6).map_err(|_| "webhookUrl has a malformed IPv6 host".to_owned());
    }
    Ok(host.parse().map_or(Host::Domain, Host::V4))
}

/// May the relay deliver to this client URL? `https` to a public host;
/// plain `http` only to loopback, and only in local mode.
pub fn check_client_url(url: &ClientUrl<'_>, local_mode: bool) -> Result<(), String> {
    if url.credentials {
        return Err("webhookUrl must not carry credentials".into());
    }
    if url.host.is_empty() {
        return Err("webhookUrl has no host".into());
    }
    let host = classify(url.host)?;
    let loopback = match &host {
        Host::Domain => url.host == "localhost" || url.host.ends_with(".localhost"),
        Host::V4(ip) => ip.is_loopback(),
        Host::V6(ip) => ip.is_loopback(),
    };
    if loopback {
        return if local_mode && (url.scheme == "http:" || url.scheme == "https:") {
            Ok(())
        } else {
            Err("webhookUrl must not point at loopback".into())
        };
    }
    if url.scheme != "https:" {
        return Err("webhookUrl must be https".into());
    }
    let internal = match host {
        Host::Domain => url.host.ends_with(".internal") || url.host.ends_with(".local") || !url.host.contains('.'),
        Host::V4(ip) => {
            ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast() || ip.is_documentation()
        }
        Host::V6(ip) => {
            let s = ip.segments()[0];
            ip.is_unspecified() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80 || ip.to_ipv4_mapped().is_some()
        }
    };
    if internal {
        return Err("webhookUrl must point at a public host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_resist_forgery() {
        let claims = Claims { account: "k-abc".into(), client_url: Some("https://hooks.example/x?y=1".into()) };
        let token = sign_token(b"key", &claims);
        assert_eq!(verify_token(b"key", &token), Ok(claims));
        assert_eq!(verify_token(b"other", &token), Err(WebhookError::BadToken));
        let (p, _) = token.split_once('.').unwrap();
        let forged = format!("{p}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(verify_token(b"key", &forged), Err(WebhookError::BadToken));
        assert_eq!(verify_token(b"key", "nodot"), Err(WebhookError::MalformedToken));
        assert_eq!(verify_token(b"key", "!!.!!"), Err(WebhookError::MalformedToken));
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

    fn check(scheme: &str, host: &str, local: bool) -> Result<(), String> {
        check_client_url(&ClientUrl { scheme, host, credentials: false }, local)
    }

    #[test]
    fn client_urls() {
        assert!(check("https:", "hooks.example.com", false).is_ok());
        assert!(check("http:", "hooks.example.com", false).is_err());
        assert!(check("ftp:", "hooks.example.com", false).is_err());
        assert!(check("http:", "127.0.0.1", false).is_err());
        assert!(check("http:", "127.0.0.1", true).is_ok());
        assert!(check("http:", "[::1]", true).is_ok());
        assert!(check("https:", "localhost", false).is_err());
        assert!(check("https:", "10.0.0.5", false).is_err());
        assert!(check("https:", "169.254.169.254", false).is_err());
        assert!(check("https:", "[fd00::1]", false).is_err());
        assert!(check("https:", "[::ffff:10.0.0.1]", false).is_err());
        assert!(check("https:", "metadata.internal", false).is_err());
        assert!(check("https:", "intranet", false).is_err());
        assert!(check("https:", "", false).is_err());
        assert!(check("https:", "[nope]", false).is_err());
        assert!(check_client_url(&ClientUrl { scheme: "https:", host: "hooks.example.com", credentials: true }, false)
            .is_err());
    }
}
