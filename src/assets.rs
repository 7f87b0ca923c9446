//! The two static files (`public/`): the operator dashboard and the OpenAPI
//! document, compiled into the Worker and answered before anything else, as
//! the static-assets router answered them when it ran in front of the Worker
//! (it cost every API request a hop: BENCHMARKS.md section 2b). Their
//! headers are `public/_headers` (the dashboard's CSP is generated there by
//! `scripts/dashboard-csp.mjs`), compiled in too. `GET` and `HEAD`
//! only, any other method a bare 405 (as the asset server answered); an
//! `ETag` and `If-None-Match` so a `no-cache` page is revalidated, not
//! downloaded again. Anything else is not a file and goes to the Worker.

use worker::{Headers, Response};

use crate::request::Request;

const HEADERS_FILE: &str = include_str!("../public/_headers");

/// One file: its path(s), type and bytes, and its bytes' hash (its ETag).
struct File {
    paths: &'static [&'static str],
    content_type: &'static str,
    body: &'static str,
    hash: u64,
}

/// A strong validator of a file's bytes (FNV-1a, 64 bits: a cache key, not
/// a secret), computed when the Worker is compiled.
const fn fnv1a(body: &str) -> u64 {
    let bytes = body.as_bytes();
    let (mut h, mut i) = (0xcbf2_9ce4_8422_2325_u64, 0);
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const DASHBOARD: &str = include_str!("../public/governor/v1/dashboard.html");
const OPENAPI: &str = include_str!("../public/governor/v1/openapi.json");

const FILES: &[File] = &[
    File {
        paths: &["/governor/v1/dashboard", "/governor/v1/dashboard.html"],
        content_type: "text/html; charset=utf-8",
        body: DASHBOARD,
        hash: fnv1a(DASHBOARD),
    },
    File {
        paths: &["/governor/v1/openapi.json"],
        content_type: "application/json; charset=utf-8",
        body: OPENAPI,
        hash: fnv1a(OPENAPI),
    },
];

/// The file at `path`, if any (exact paths only: no prefix is a file).
fn file(path: &str) -> Option<&'static File> {
    if !path.starts_with("/governor/v1/") {
        return None;
    }
    FILES.iter().find(|f| f.paths.contains(&path))
}

/// `public/_headers`' rules for `path` (its exact-path blocks): name, value.
fn rules(path: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut here = false;
    for line in HEADERS_FILE.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            here = line.trim() == path;
        } else if here {
            if let Some((name, value)) = line.trim().split_once(':') {
                out.push((name.trim(), value.trim()));
            }
        }
    }
    out
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag)
}

/// The answer for a static file's path, or `None` (not a file: the Worker's).
pub fn serve(req: &Request) -> Option<Response> {
    let path = req.path();
    let f = file(&path)?;
    let method = req.inner().method();
    let head = method.eq_ignore_ascii_case("HEAD");
    if !head && !method.eq_ignore_ascii_case("GET") {
        let headers = Headers::new();
        let _ = headers.set("allow", "GET, HEAD");
        return Some(Response::builder().with_status(405).with_headers(headers).empty());
    }
    let etag = format!("\"{:016x}\"", f.hash);
    let headers = Headers::new();
    let _ = headers.set("content-type", f.content_type);
    let _ = headers.set("etag", &etag);
    for (name, value) in rules(&path) {
        let _ = headers.set(name, value);
    }
    let fresh = crate::request::header(req, "if-none-match").is_some_and(|v| matches(&v, &etag));
    let builder = Response::builder().with_headers(headers);
    Some(match (fresh, head) {
        (true, _) => builder.with_status(304).empty(),
        (false, true) => builder.with_status(200).empty(),
        (false, false) => builder.with_status(200).fixed(f.body.as_bytes().to_vec()),
    })
}
