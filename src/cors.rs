//! Browser access: only the origins in `ALLOWED_ORIGINS` may call the
//! governor from a page. Requests without an `Origin` (servers, SDKs) are
//! not browser requests and pass.

use worker::Headers;

use crate::request::Request;

const ALLOW_HEADERS: &str =
    "x-api-key, authorization, content-type, idempotency-key, prefer, x-governor-client, x-governor-priority, \
     x-governor-admin-key";
const EXPOSE_HEADERS: &str =
    "ratelimit, ratelimit-policy, retry-after, retry-after-ms, location, preference-applied, idempotent-replayed";

/// The browser origin of a request, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No `Origin` header: not a browser request.
    None,
    Allowed(String),
    Refused,
}

pub fn check(req: &Request, allowed: &[String]) -> Origin {
    match crate::request::header(req, "origin") {
        None => Origin::None,
        Some(o) if allowed.iter().any(|a| a == "*" || *a == o) => Origin::Allowed(o),
        Some(_) => Origin::Refused,
    }
}

/// Add the CORS response headers for an allowed origin.
pub fn decorate(headers: &Headers, origin: &Origin) {
    if let Origin::Allowed(o) = origin {
        let _ = headers.set("access-control-allow-origin", o);
        let _ = headers.append("vary", "Origin");
        let _ = headers.set("access-control-expose-headers", EXPOSE_HEADERS);
    }
}

/// Headers of a successful preflight answer.
pub fn preflight(origin: &Origin) -> Headers {
    let h = Headers::new();
    decorate(&h, origin);
    let _ = h.set("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS");
    let _ = h.set("access-control-allow-headers", ALLOW_HEADERS);
    let _ = h.set("access-control-max-age", "600");
    h
}
