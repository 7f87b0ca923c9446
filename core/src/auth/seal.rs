//! Sealing a pass-through Sync key for the queue. Queued jobs must survive a
//! runtime restart and be submitted with the key of the client that queued
//! them; the raw key is never stored. It is kept sealed (AES-256-GCM under a
//! key derived from `GOVERNOR_WEBHOOK_KEY` with HMAC-SHA256 and a label) and
//! only while the account's queue holds jobs. The nonce is an input.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::secret::Secret;

fn cipher(master: &[u8]) -> Aes256Gcm {
    labelled_cipher(master, b"sync-governor/seal/v1")
}

/// An AES-256-GCM cipher under a key derived from `master` for one purpose
/// (`label`): keys for different purposes never coincide.
fn labelled_cipher(master: &[u8], label: &[u8]) -> Aes256Gcm {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(label);
    let key = m.finalize().into_bytes();
    Aes256Gcm::new(&key)
}

/// `nonce || ciphertext` of `plain`, bound to `aad`, under the key derived
/// from `master` for `label`.
pub fn seal_bytes(master: &[u8], label: &[u8], nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let sealed = labelled_cipher(master, label)
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend(sealed);
    out
}

/// The inverse of [`seal_bytes`]; `None` when the key, label, `aad` or any
/// byte differs.
pub fn unseal_bytes(master: &[u8], label: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    labelled_cipher(master, label).decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad }).ok()
}

/// `base64url(nonce || ciphertext)`.
pub fn seal(master: &[u8], nonce: [u8; 12], plain: &Secret) -> String {
    let sealed = cipher(master).encrypt(Nonce::from_slice(&nonce), plain.expose().as_bytes()).unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend(sealed);
    URL_SAFE_NO_PAD.encode(out)
}

pub fn unseal(master: &[u8], sealed: &str) -> Option<Secret> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, body) = raw.split_at(12);
    let plain = cipher(master).decrypt(Nonce::from_slice(nonce), body).ok()?;
    String::from_utf8(plain).ok().map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = seal(b"master-key", [7; 12], &Secret::new("sk-live-abc"));
        assert!(!s.contains("sk-live"));
        assert_eq!(unseal(b"master-key", &s).map(|k| k.expose().to_owned()).as_deref(), Some("sk-live-abc"));
        assert!(unseal(b"other-key", &s).is_none());
        let mut t = s.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert!(unseal(b"master-key", &String::from_utf8(t).unwrap()).is_none());
    }
}
