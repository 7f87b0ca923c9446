//! Lenient routing, as Sync's router very likely does it: Sync's errors are
//! NestJS-shaped, and NestJS on Express matches routes case-insensitively and
//! ignores one trailing slash. So `POST /v2/Generate/` creates a generation
//! there, and here too (on by default: the simulator must not be kinder than
//! Sync). Parameters keep their case; anything else Express would not match
//! (`//`, `;x`, `%2F`, dot segments) still falls through to a 404.
//!
//! The rewrite runs before routing; the request log keeps the path as sent.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::Sim;

/// The path as the client sent it, before any rewrite (for the request log).
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// Static segments of Sync's routes (matched in any case).
const STATIC_SEGMENTS: [&str; 16] = [
    "v2",
    "generate",
    "generations",
    "estimate-cost",
    "estimate",
    "count",
    "download",
    "analyze",
    "cost",
    "assets",
    "upload",
    "models",
    "errors",
    "batch",
    "batches",
    "result",
];

/// The path an Express router would match `path` as: static segments in
/// lower case, one trailing slash dropped. `None` when nothing changes.
pub fn lenient_path(path: &str) -> Option<String> {
    if path == "/_sim" || path.starts_with("/_sim/") {
        return None;
    }
    let trimmed = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    let out: Vec<String> = trimmed
        .split('/')
        .map(|seg| {
            let lower = seg.to_ascii_lowercase();
            if STATIC_SEGMENTS.contains(&lower.as_str()) {
                lower
            } else {
                seg.to_owned()
            }
        })
        .collect();
    let out = out.join("/");
    (out != path).then_some(out)
}

/// Middleware run before routing: remember the path, and rewrite it when
/// lenient routing is on.
pub async fn lenient(State(sim): State<Arc<Sim>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(OriginalPath(path.clone()));
    if sim.cfg().lenient_routing {
        if let Some(new_path) = lenient_path(&path) {
            let pq = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            if let Ok(uri) = Uri::builder().path_and_query(pq).build() {
                *req.uri_mut() = uri;
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn express_reading() {
        assert_eq!(lenient_path("/v2/generate"), None);
        assert_eq!(lenient_path("/v2/Generate/").as_deref(), Some("/v2/generate"));
        assert_eq!(lenient_path("/V2/GENERATE").as_deref(), Some("/v2/generate"));
        assert_eq!(lenient_path("/v2/generate/AbC-1/").as_deref(), Some("/v2/generate/AbC-1"));
        assert_eq!(lenient_path("/v2/Models").as_deref(), Some("/v2/models"));
        // Only one trailing slash; everything else Express would not match stays as sent.
        assert_eq!(lenient_path("/v2/generate//").as_deref(), Some("/v2/generate/"));
        assert_eq!(lenient_path("/v2//generate"), None);
        assert_eq!(lenient_path("/v2/generate;x"), None);
        assert_eq!(lenient_path("/v2/generate%2F"), None);
        assert_eq!(lenient_path("/"), None);
        assert_eq!(lenient_path("/_sim/requests/"), None);
    }
}
