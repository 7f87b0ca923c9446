//! Which limit a Sync 429 speaks of, read from its body (hostile input:
//! anything unreadable is a rate limit). A leaf: settling, listings and
//! batches read 429s through here.

use serde::{Deserialize, Serialize};

/// Which kind of upstream limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Rate,
    Concurrency,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Which limit a Sync 429 body speaks of.
pub fn limit_kind(body: &[u8]) -> LimitKind {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let text = parsed
        .map(|b| format!("{} {}", b.error_code.unwrap_or_default(), b.message.unwrap_or_default()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    if text.contains("concurren") {
        LimitKind::Concurrency
    } else {
        LimitKind::Rate
    }
}
