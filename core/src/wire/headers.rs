//! The `RateLimit-Policy` and `RateLimit` header fields of
//! draft-ietf-httpapi-ratelimit-headers (structured-field lists of items:
//! `"name";q=..;w=..` and `"name";r=..;t=..`), and the `Retry-After` value.
//! The concurrency policy carries `qu="concurrent-requests"` and no window.

use serde::{Deserialize, Serialize};

use crate::Ms;

/// `RateLimit-Policy: "generate";q=60;w=60, "concurrency";q=3;qu="concurrent-requests"`
pub fn ratelimit_policy(policies: &[PolicyState]) -> String {
    policies
        .iter()
        .map(|p| match p.window_s {
            Some(w) => format!("\"{}\";q={};w={}", p.name, p.quota, w),
            None => format!("\"{}\";q={};qu=\"concurrent-requests\"", p.name, p.quota),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RateLimit: "generate";r=59;t=1, "concurrency";r=2;t=0`
pub fn ratelimit(policies: &[PolicyState]) -> String {
    policies
        .iter()
        .map(|p| format!("\"{}\";r={};t={}", p.name, p.remaining, p.reset_ms.div_ceil(1_000)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One policy's definition and current state, for the RateLimit fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyState {
    pub name: String,
    pub quota: u32,
    /// Window in seconds; `None` for the concurrency policy.
    pub window_s: Option<u64>,
    pub remaining: u32,
    /// Milliseconds until quota comes back.
    pub reset_ms: Ms,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_both_fields() {
        let p = vec![
            PolicyState { name: "generate".into(), quota: 60, window_s: Some(60), remaining: 59, reset_ms: 1_500 },
            PolicyState { name: "concurrency".into(), quota: 3, window_s: None, remaining: 2, reset_ms: 0 },
        ];
        assert_eq!(ratelimit_policy(&p), r#""generate";q=60;w=60, "concurrency";q=3;qu="concurrent-requests""#);
        assert_eq!(ratelimit(&p), r#""generate";r=59;t=2, "concurrency";r=2;t=0"#);
    }
}
