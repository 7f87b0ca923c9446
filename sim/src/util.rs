//! Small helpers: ids, clocks, digests, signatures.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

/// A UUID-v4-shaped id from the simulator's generator.
pub fn uuid(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Now, as RFC 3339 with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Sync's webhook signature header value: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign_webhook(secret: &str, t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", webhook_v1(secret, t, body))
}

/// The `v1` part of the signature.
pub fn webhook_v1(secret: &str, t: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uuid_shape() {
        let mut r = rand::rngs::StdRng::seed_from_u64(1);
        let id = uuid(&mut r);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn signature_matches_known_hmac() {
        // HMAC-SHA256("key", "1.{}") computed independently (Python hmac).
        let s = sign_webhook("key", 1, b"{}");
        assert!(s.starts_with("t=1,v1="));
        assert_eq!(s, "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224");
        assert_ne!(webhook_v1("key", 1, b"{}"), webhook_v1("key", 2, b"{}"));
    }
}
