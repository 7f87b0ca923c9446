//! Turning outcomes into HTTP: the one place where a [`GovernorError`]
//! becomes a status and a JSON body, and where the RateLimit fields and
//! `Retry-After` are written.

use governor_core::wire::error::GovernorError;
use governor_core::wire::headers::PolicyState;
use governor_core::wire::headers::{ratelimit, ratelimit_policy};
use worker::{Headers, Response};

use crate::cors::{self, Origin};

/// Write `RateLimit-Policy` and `RateLimit` onto `headers`.
pub fn rate_headers(headers: &Headers, policies: &[PolicyState]) {
    if !policies.is_empty() {
        let _ = headers.set("ratelimit-policy", &ratelimit_policy(policies));
        let _ = headers.set("ratelimit", &ratelimit(policies));
    }
}

/// A JSON response of a typed body, serialised straight to text (no
/// intermediate `Value`: one serializer per type keeps the bundle small).
pub fn json_of<T: serde::Serialize>(status: u16, body: &T, origin: &Origin) -> Response {
    json_text(status, serde_json::to_string(body).unwrap_or_default(), origin)
}

/// A JSON response from already serialised text.
pub fn json_text(status: u16, text: String, origin: &Origin) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    cors::decorate(&headers, origin);
    Response::builder().with_status(status).with_headers(headers).fixed(text.into_bytes())
}

/// The response for any error.
pub fn error(err: &GovernorError, origin: &Origin) -> Response {
    let resp = json_of(err.status(), &err.body(), origin);
    if let GovernorError::Limited(r) = err {
        let h = resp.headers();
        let _ = h.set("retry-after", &r.retry_after_secs().to_string());
        // Millisecond precision for clients that read it (Sync's Python SDK does).
        let _ = h.set("retry-after-ms", &r.retry_after_ms.to_string());
        rate_headers(h, &r.policies);
    }
    if let GovernorError::InProgress { retry_after_ms } = err {
        let _ = resp.headers().set("retry-after", &retry_after_ms.div_ceil(1_000).max(1).to_string());
    }
    if matches!(err, GovernorError::Unavailable(_) | GovernorError::Failed(_)) {
        let _ = resp.headers().set("retry-after", "1");
    }
    if matches!(
        err,
        GovernorError::Internal(_)
            | GovernorError::Misconfigured(_)
            | GovernorError::Unavailable(_)
            | GovernorError::Failed(_)
    ) {
        worker::console_error!("{}", err.message());
    }
    resp
}
