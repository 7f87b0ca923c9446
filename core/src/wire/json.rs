//! JSON text in: one reader for all of it. `serde_json` instantiates its
//! whole parser once per input type (`&str` and `&[u8]` are two), so every
//! decode goes through bytes, and the Worker carries one parser.

use serde::de::DeserializeOwned;

/// Decode JSON text (as `serde_json::from_str`, through the byte reader).
pub fn from_str<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}
