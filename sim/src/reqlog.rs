//! The log of requests received (not `/_sim/*`), for `GET /_sim/requests`.

use std::collections::VecDeque;

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::generation::FilePart;

/// Entries kept at most.
pub const CAPACITY: usize = 1000;

/// One request as received.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub method: String,
    pub path: String,
    /// Raw query string, `""` when none.
    pub query: String,
    /// Lower-case names; `x-api-key` masked to its first 4 chars + `…`;
    /// repeated headers joined with `, `.
    pub headers: Map<String, Value>,
    pub body_len: u64,
    pub body_sha256: String,
    pub class: &'static str,
    /// Index of the `x-api-key` in the configured keys; `null` when the
    /// header is missing or the key unknown (tells keys apart without
    /// showing them).
    pub key_index: Option<usize>,
    pub status: u16,
    /// Unix time in ms when the request arrived.
    pub at_ms: u64,
    /// File parts of a multipart create (name, length, sha256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FilePart>>,
}

/// Masks an API key for display: first 4 chars + `…`.
pub fn mask_key(key: &str) -> String {
    let head: String = key.chars().take(4).collect();
    format!("{head}…")
}

/// Headers as a JSON object, with the API key masked.
pub fn headers_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        let mut joined = values.join(", ");
        if name.as_str() == "x-api-key" {
            joined = mask_key(&joined);
        }
        out.insert(name.as_str().to_string(), Value::String(joined));
    }
    out
}

/// Ring buffer of the last [`CAPACITY`] requests.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<Entry>,
}

impl RequestLog {
    pub fn push(&mut self, e: Entry) {
        if self.entries.len() >= CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }

    /// The last `n` entries, oldest first.
    pub fn last(&self, n: usize) -> Vec<Entry> {
        let skip = self.entries.len().saturating_sub(n);
        self.entries.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_key() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-secret".parse().unwrap());
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        let j = headers_json(&h);
        assert_eq!(j["x-api-key"], "sk-s…");
        assert_eq!(j["accept"], "a, b");
    }

    #[test]
    fn ring() {
        let mut l = RequestLog::default();
        for i in 0..(CAPACITY + 5) {
            l.push(Entry {
                method: "GET".into(),
                path: format!("/{i}"),
                query: String::new(),
                headers: Map::new(),
                body_len: 0,
                body_sha256: String::new(),
                class: "other",
                key_index: None,
                status: 200,
                at_ms: 0,
                files: None,
            });
        }
        let last = l.last(2);
        assert_eq!(last[1].path, format!("/{}", CAPACITY + 4));
        assert_eq!(l.last(5000).len(), CAPACITY);
    }
}
