//! Which route a request takes, and which rate class it spends from.

use crate::config::Limits;

/// What the governor does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Forward to Sync after admission.
    Proxy(Proxy),
    /// `GET /governor/v1/status`.
    Status,
    /// `GET /governor/v1/health` (no auth).
    Health,
    /// `POST /governor/v1/webhook/{token}`: Sync's callback.
    Webhook(String),
    /// `GET` / `DELETE /governor/v1/queue/{ticket}`.
    Ticket {
        ticket: String,
        cancel: bool,
    },
    /// CORS preflight.
    Preflight,
    NotFound,
    MethodNotAllowed,
}

/// A forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// The rate class (`generate`, `other`, or a configured extra class).
    pub class: String,
    pub kind: ProxyKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// `POST /v2/generate`: takes a concurrency permit.
    Create,
    /// A response that may carry generation statuses (one or a list).
    ReadsGenerations,
    /// `GET /v2/models` and `GET /v2/errors`: Sync needs no key.
    Public,
    Other,
}

pub fn route(method: &str, path: &str, limits: &Limits) -> Route {
    if method == "OPTIONS" {
        let known = path.starts_with("/v2/") || path.starts_with("/governor/v1/");
        return if known { Route::Preflight } else { Route::NotFound };
    }
    match path {
        "/governor/v1/status" => return if method == "GET" { Route::Status } else { Route::MethodNotAllowed },
        "/governor/v1/health" => return if method == "GET" { Route::Health } else { Route::MethodNotAllowed },
        _ => {}
    }
    if let Some(token) = path.strip_prefix("/governor/v1/webhook/") {
        return match method {
            "POST" if !token.is_empty() && !token.contains('/') => Route::Webhook(token.to_owned()),
            "POST" => Route::NotFound,
            _ => Route::MethodNotAllowed,
        };
    }
    if let Some(ticket) = path.strip_prefix("/governor/v1/queue/") {
        if ticket.is_empty() || ticket.contains('/') {
            return Route::NotFound;
        }
        return match method {
            "GET" => Route::Ticket { ticket: ticket.to_owned(), cancel: false },
            "DELETE" => Route::Ticket { ticket: ticket.to_owned(), cancel: true },
            _ => Route::MethodNotAllowed,
        };
    }
    if !path.starts_with("/v2/") || path.contains("/../") || path.ends_with("/..") {
        return Route::NotFound;
    }
    let kind = match (method, path) {
        ("POST", "/v2/generate") => ProxyKind::Create,
        ("GET", "/v2/models" | "/v2/errors") => ProxyKind::Public,
        ("GET", "/v2/generations") => ProxyKind::ReadsGenerations,
        ("GET", p) if is_one_generation(p) => ProxyKind::ReadsGenerations,
        _ => ProxyKind::Other,
    };
    let class = if kind == ProxyKind::Create {
        "generate".to_owned()
    } else {
        limits
            .extra
            .iter()
            .find(|c| c.method == method && c.path == path)
            .map_or_else(|| "other".to_owned(), |c| c.name.clone())
    };
    Route::Proxy(Proxy { class, kind })
}

fn is_one_generation(path: &str) -> bool {
    path.strip_prefix("/v2/generate/").is_some_and(|id| !id.is_empty() && !id.contains('/') && id != "estimate-cost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: &str, p: &str) -> Route {
        route(m, p, &Limits::for_window(60, 600, 3, 60_000, 0))
    }

    #[test]
    fn classes() {
        assert_eq!(
            r("POST", "/v2/generate"),
            Route::Proxy(Proxy { class: "generate".into(), kind: ProxyKind::Create })
        );
        assert_eq!(
            r("GET", "/v2/generate/abc"),
            Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::ReadsGenerations })
        );
        assert_eq!(
            r("GET", "/v2/generations"),
            Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::ReadsGenerations })
        );
        assert_eq!(
            r("POST", "/v2/assets/upload"),
            Route::Proxy(Proxy { class: "upload".into(), kind: ProxyKind::Other })
        );
        assert_eq!(
            r("POST", "/v2/generate/estimate-cost"),
            Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::Other })
        );
        assert_eq!(r("GET", "/v2/models"), Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::Public }));
    }

    #[test]
    fn outside_v2_is_not_found() {
        assert_eq!(r("GET", "/"), Route::NotFound);
        assert_eq!(r("GET", "/v1/generate"), Route::NotFound);
        assert_eq!(r("GET", "/v2"), Route::NotFound);
        assert_eq!(r("GET", "/v2/../admin"), Route::NotFound);
        assert_eq!(r("POST", "/governor/v1/status"), Route::MethodNotAllowed);
        assert_eq!(r("GET", "/governor/v1/status"), Route::Status);
        assert_eq!(r("OPTIONS", "/v2/generate"), Route::Preflight);
        assert_eq!(r("OPTIONS", "/nowhere"), Route::NotFound);
        assert_eq!(r("POST", "/governor/v1/webhook/abc.def"), Route::Webhook("abc.def".into()));
        assert_eq!(r("GET", "/governor/v1/webhook/abc.def"), Route::MethodNotAllowed);
        assert_eq!(r("POST", "/governor/v1/webhook/"), Route::NotFound);
        assert_eq!(r("DELETE", "/governor/v1/queue/tk_1"), Route::Ticket { ticket: "tk_1".into(), cancel: true });
        assert_eq!(r("POST", "/governor/v1/queue/tk_1"), Route::MethodNotAllowed);
    }
}
