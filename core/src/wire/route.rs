//! Which route a request takes, and which rate class it spends from.
//!
//! Sync's error bodies are NestJS/Express-shaped, and Express matches paths
//! case-insensitively and ignores one trailing slash. So a `/v2` path is
//! classified as Sync's router would read it ([`canonical_path`]): ASCII
//! lower-case, one trailing slash dropped. (The `/v2/` prefix itself must be
//! spelled exactly; `/V2/...` is a 404 and never forwarded.) Spellings that another reader
//! (a proxy, a decoding router, a URL normaliser) could take for a different
//! route are refused as [`Route::Ambiguous`] and never forwarded: empty
//! segments, `;` parameters, dot segments, backslashes, and percent-escapes
//! of characters that never need one (`%2F`, `%2E`, `%5C`, `%61`, `%25`, ...).

use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::rates::class::RateClass;
use crate::wire::path::canonical_path;
use crate::wire::path::is_account_name;

/// What the governor does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Forward to Sync after admission.
    Proxy(Proxy),
    /// `GET /governor/v1/status`.
    Status,
    /// `GET /governor/v1/ledger`: the job ledger, paged.
    Ledger,
    /// `GET /governor/v1/health` (no auth).
    Health,
    /// `POST /governor/v1/webhook/{token}`: Sync's callback.
    Webhook(String),
    /// `GET` / `DELETE /governor/v1/queue/{ticket}`.
    Ticket {
        ticket: TicketId,
        cancel: bool,
    },
    /// `/governor/v1/admin/...` (the admin key).
    Admin(AdminRoute),
    /// `GET /governor/v1/metrics` (the admin key).
    Metrics,
    /// CORS preflight.
    Preflight,
    /// A path Sync's router might read differently: refused, never forwarded.
    Ambiguous,
    NotFound,
    MethodNotAllowed,
}

/// A forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// The rate class (`generate`, `other`, or a configured extra class).
    pub class: RateClass,
    pub kind: ProxyKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// `POST /v2/generate`: takes a concurrency permit.
    Create,
    /// A response that may carry generation statuses (one or a list).
    ReadsGenerations,
    /// `POST /v2/batch`: takes a batch permit.
    BatchCreate,
    /// `GET /v2/batch`, `GET /v2/batch/{id}`, `GET /v2/batches/{id}/result`:
    /// answers that may say a batch ended.
    ReadsBatches,
    /// `GET /v2/models` and `GET /v2/errors`: Sync needs no key.
    Public,
    Other,
}

pub fn route(method: &str, path: &str, limits: &Limits) -> Route {
    let method = method.to_ascii_uppercase();
    let method = method.as_str();
    if method == "OPTIONS" {
        let known = path.starts_with("/v2/") || path.starts_with("/governor/v1/");
        return if known { Route::Preflight } else { Route::NotFound };
    }
    match path {
        "/governor/v1/status" => return if method == "GET" { Route::Status } else { Route::MethodNotAllowed },
        "/governor/v1/ledger" => return if method == "GET" { Route::Ledger } else { Route::MethodNotAllowed },
        "/governor/v1/health" => return if method == "GET" { Route::Health } else { Route::MethodNotAllowed },
        "/governor/v1/metrics" => return if method == "GET" { Route::Metrics } else { Route::MethodNotAllowed },
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/governor/v1/admin/") {
        return admin(method, rest);
    }
    if let Some(token) = path.strip_prefix("/governor/v1/webhook/") {
        return match method {
            "POST" if !token.is_empty() && !token.contains('/') => Route::Webhook(token.to_owned()),
            "POST" => Route::NotFound,
            _ => Route::MethodNotAllowed,
        };
    }
    if let Some(ticket) = path.strip_prefix("/governor/v1/queue/") {
        let Some(ticket) = TicketId::from_path(ticket) else { return Route::NotFound };
        return match method {
            "GET" => Route::Ticket { ticket, cancel: false },
            "DELETE" => Route::Ticket { ticket, cancel: true },
            _ => Route::MethodNotAllowed,
        };
    }
    // The governor serves `/v2/` spelled exactly so; other spellings of the
    // prefix are not forwarded at all.
    if !path.starts_with("/v2/") {
        return Route::NotFound;
    }
    let Ok(canonical) = canonical_path(path) else { return Route::Ambiguous };
    if !canonical.starts_with("/v2/") {
        return Route::NotFound;
    }
    let kind = match (method, canonical.as_str()) {
        ("POST", "/v2/generate") => ProxyKind::Create,
        ("GET", "/v2/models" | "/v2/errors") => ProxyKind::Public,
        ("GET", "/v2/generations") => ProxyKind::ReadsGenerations,
        ("GET", p) if is_one_generation(p) => ProxyKind::ReadsGenerations,
        ("POST", "/v2/batch") => ProxyKind::BatchCreate,
        ("GET", p) if is_batch_read(p) => ProxyKind::ReadsBatches,
        _ => ProxyKind::Other,
    };
    let class = if kind == ProxyKind::Create {
        RateClass::Generate
    } else {
        limits
            .extra
            .iter()
            .find(|c| c.method.eq_ignore_ascii_case(method) && canonical_path(&c.path).is_ok_and(|p| p == canonical))
            .map_or(RateClass::Other, |c| c.name.clone())
    };
    Route::Proxy(Proxy { class, kind })
}

/// `/v2/batch`, `/v2/batch/{id}` or `/v2/batches/{id}/result`.
fn is_batch_read(p: &str) -> bool {
    let one = |s: &str| !s.is_empty() && !s.contains('/');
    p == "/v2/batch"
        || p.strip_prefix("/v2/batch/").is_some_and(one)
        || p.strip_prefix("/v2/batches/").and_then(|r| r.strip_suffix("/result")).is_some_and(one)
}

/// An operator's route (see docs/operations.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRoute {
    Accounts,
    Account(String),
    SetLimits(String),
    ClearLimits(String),
    Pause(String),
    Resume(String),
    Queue(String),
    Drain(String),
    CancelJob {
        account: String,
        ticket: TicketId,
    },
    ReleasePermit {
        account: String,
        target: String,
    },
    /// `PUT` (`set`) or `DELETE` a client's limit overrides.
    ClientLimits {
        account: String,
        client: String,
        set: bool,
    },
    /// `PUT` (`set`) or `DELETE` the account's budget overrides.
    Budget {
        account: String,
        set: bool,
    },
    /// `GET` the account's job ledger, every client's rows.
    Ledger(String),
}

fn admin(method: &str, rest: &str) -> Route {
    let parts: Vec<&str> = rest.split('/').collect();
    let plain = |s: &str| !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'%');
    if parts.iter().any(|p| !plain(p)) {
        return Route::NotFound;
    }
    if parts.len() >= 2 && (parts[0] != "accounts" || !is_account_name(parts[1])) {
        return Route::NotFound;
    }
    let a = || parts[1].to_owned();
    let r = match (method, parts.as_slice()) {
        ("GET", ["accounts"]) => AdminRoute::Accounts,
        ("GET", ["accounts", _]) => AdminRoute::Account(a()),
        ("PUT", ["accounts", _, "limits"]) => AdminRoute::SetLimits(a()),
        ("DELETE", ["accounts", _, "limits"]) => AdminRoute::ClearLimits(a()),
        ("POST", ["accounts", _, "pause"]) => AdminRoute::Pause(a()),
        ("POST", ["accounts", _, "resume"]) => AdminRoute::Resume(a()),
        ("GET", ["accounts", _, "queue"]) => AdminRoute::Queue(a()),
        ("DELETE", ["accounts", _, "queue"]) => AdminRoute::Drain(a()),
        ("DELETE", ["accounts", _, "queue", t]) => match TicketId::from_path(t) {
            Some(ticket) => AdminRoute::CancelJob { account: a(), ticket },
            None => return Route::NotFound,
        },
        (m @ ("PUT" | "DELETE"), ["accounts", _, "clients", c, "limits"]) => {
            AdminRoute::ClientLimits { account: a(), client: (*c).to_owned(), set: m == "PUT" }
        }
        (_, ["accounts", _, "clients", _, "limits"]) => return Route::MethodNotAllowed,
        (m @ ("PUT" | "DELETE"), ["accounts", _, "budget"]) => AdminRoute::Budget { account: a(), set: m == "PUT" },
        ("GET", ["accounts", _, "ledger"]) => AdminRoute::Ledger(a()),
        (_, ["accounts", _, "budget" | "ledger"]) => return Route::MethodNotAllowed,
        ("DELETE", ["accounts", _, "permits", g]) => {
            AdminRoute::ReleasePermit { account: a(), target: (*g).to_owned() }
        }
        (_, ["accounts"] | ["accounts", _] | ["accounts", _, "limits" | "pause" | "resume" | "queue"])
        | (_, ["accounts", _, "queue" | "permits", _]) => return Route::MethodNotAllowed,
        _ => return Route::NotFound,
    };
    Route::Admin(r)
}

fn is_one_generation(path: &str) -> bool {
    path.strip_prefix("/v2/generate/").is_some_and(|id| !id.is_empty() && !id.contains('/') && id != "estimate-cost")
}

#[cfg(test)]
mod tests;
