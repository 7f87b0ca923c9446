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
        ticket: String,
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
        if ticket.is_empty() || ticket.contains('/') {
            return Route::NotFound;
        }
        return match method {
            "GET" => Route::Ticket { ticket: ticket.to_owned(), cancel: false },
            "DELETE" => Route::Ticket { ticket: ticket.to_owned(), cancel: true },
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
            .map_or(RateClass::Other, |c| RateClass::Extra(c.name.clone()))
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
        ticket: String,
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
        ("DELETE", ["accounts", _, "queue", t]) => AdminRoute::CancelJob { account: a(), ticket: (*t).to_owned() },
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
mod tests {
    use super::*;
    use crate::wire::path::AmbiguousPath;

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
    fn batch_routes() {
        let kind = |m: &str, p: &str| match r(m, p) {
            Route::Proxy(Proxy { class, kind }) => {
                assert_eq!(class, RateClass::Other);
                kind
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(kind("POST", "/v2/batch"), ProxyKind::BatchCreate);
        assert_eq!(kind("POST", "/v2/Batch/"), ProxyKind::BatchCreate);
        assert_eq!(kind("GET", "/v2/batch"), ProxyKind::ReadsBatches);
        assert_eq!(kind("GET", "/v2/batch/b-1"), ProxyKind::ReadsBatches);
        assert_eq!(kind("GET", "/v2/batches/b-1/result"), ProxyKind::ReadsBatches);
        assert_eq!(kind("GET", "/v2/Batches/b-1/Result/"), ProxyKind::ReadsBatches);
        assert_eq!(kind("GET", "/v2/batches/b-1"), ProxyKind::Other);
        assert_eq!(kind("POST", "/v2/batch/b-1"), ProxyKind::Other);
    }

    #[test]
    fn outside_v2_is_not_found() {
        assert_eq!(r("GET", "/"), Route::NotFound);
        assert_eq!(r("GET", "/v1/generate"), Route::NotFound);
        assert_eq!(r("GET", "/v2"), Route::NotFound);
        assert_eq!(r("GET", "/v2/../admin"), Route::Ambiguous);
        assert_eq!(r("POST", "/governor/v1/status"), Route::MethodNotAllowed);
        assert_eq!(r("GET", "/governor/v1/status"), Route::Status);
        assert_eq!(r("GET", "/governor/v1/ledger"), Route::Ledger);
        assert_eq!(r("POST", "/governor/v1/ledger"), Route::MethodNotAllowed);
        assert_eq!(r("OPTIONS", "/v2/generate"), Route::Preflight);
        assert_eq!(r("OPTIONS", "/nowhere"), Route::NotFound);
        assert_eq!(r("POST", "/governor/v1/webhook/abc.def"), Route::Webhook("abc.def".into()));
        assert_eq!(r("GET", "/governor/v1/webhook/abc.def"), Route::MethodNotAllowed);
        assert_eq!(r("POST", "/governor/v1/webhook/"), Route::NotFound);
        assert_eq!(r("DELETE", "/governor/v1/queue/tk_1"), Route::Ticket { ticket: "tk_1".into(), cancel: true });
        assert_eq!(r("POST", "/governor/v1/queue/tk_1"), Route::MethodNotAllowed);
    }

    fn create() -> Route {
        Route::Proxy(Proxy { class: "generate".into(), kind: ProxyKind::Create })
    }

    #[test]
    fn create_spellings_sync_would_route_take_a_permit() {
        for p in ["/v2/generate", "/v2/generate/", "/v2/Generate", "/v2/GENERATE/", "/v2/gEnErAtE"] {
            assert_eq!(r("POST", p), create(), "{p}");
        }
        // Another spelling of the prefix is not served at all.
        assert_eq!(r("POST", "/V2/generate"), Route::NotFound);
        assert_eq!(r("POST", "//v2/generate"), Route::NotFound);
        assert_eq!(r("post", "/v2/generate"), create());
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for p in [
            "/v2//generate",
            "/v2/generate//",
            "/v2/generate;x",
            "/v2/generate%2F",
            "/v2/generate%2f",
            "/v2/%2E/generate",
            "/v2/%2e%2e/v2/generate",
            "/v2/generate%5C",
            "/v2/generate%5c",
            "/v2/./generate",
            "/v2/x/../generate",
            "/v2/generate/.",
            "/v2/generate\\",
            "/v2/gener%61te",
            "/v2/generate%25",
            "/v2/generate%",
            "/v2/generate%2",
            "/v2/generate%zz",
            "/v2/generate%+1",
            "/v2/generations/abc;jsessionid=1",
        ] {
            assert_eq!(r("POST", p), Route::Ambiguous, "{p}");
            assert_eq!(r("GET", p), Route::Ambiguous, "{p}");
        }
        // Hazards in the prefix: not served at all.
        for p in ["/v2;x/generate", "/v2%2Fgenerate", "/v2\\generate", "/v2%2F", "/v2/"] {
            assert_eq!(r("POST", p), Route::NotFound, "{p}");
        }
        // Escapes that a path needs are fine.
        assert_eq!(r("GET", "/v2/generate/a%20b"), r("GET", "/v2/generate/ab"));
        assert_eq!(r("GET", "/v2/generate/%C3%A9"), r("GET", "/v2/generate/ab"));
    }

    #[test]
    fn every_kind_and_class_routes_case_insensitively_with_one_trailing_slash() {
        let reads = Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::ReadsGenerations });
        let public = Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::Public });
        let upload = Route::Proxy(Proxy { class: "upload".into(), kind: ProxyKind::Other });
        assert_eq!(r("GET", "/v2/Generations/"), reads);
        assert_eq!(r("GET", "/v2/GENERATE/AbC/"), reads);
        assert_eq!(r("GET", "/v2/Models/"), public);
        assert_eq!(r("GET", "/v2/ERRORS"), public);
        assert_eq!(r("POST", "/v2/Assets/Upload/"), upload);
        assert_eq!(
            r("POST", "/v2/generate/Estimate-Cost/"),
            Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::Other })
        );
        // A configured class matches the same way, whatever its own spelling.
        let mut limits = Limits::for_window(60, 600, 3, 60_000, 0);
        limits.extra[0].path = "/v2/Assets/upload/".into();
        limits.extra[0].method = "post".into();
        assert_eq!(route("POST", "/v2/assets/UPLOAD", &limits), upload);
        assert_eq!(route("POST", "/v2/assets//upload", &limits), Route::Ambiguous);
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canonical_path("/"), Ok("/".into()));
        assert_eq!(canonical_path("/V2/Generate/"), Ok("/v2/generate".into()));
        assert_eq!(canonical_path("v2/generate"), Err(AmbiguousPath));
        assert_eq!(canonical_path("/v2/generate//"), Err(AmbiguousPath));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// `/v2/generate` with random case and an optional trailing slash.
        fn spelling() -> impl Strategy<Value = String> {
            (proptest::collection::vec(any::<bool>(), 8), any::<bool>()).prop_map(|(upper, slash)| {
                let s: String = "/v2/".to_owned()
                    + &"generate"
                        .chars()
                        .zip(upper.iter().cycle())
                        .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
                        .collect::<String>();
                if slash {
                    s + "/"
                } else {
                    s
                }
            })
        }

        /// How Express matches a path: lower-case, one trailing slash ignored
        /// (an independent model, not `canonical_path`).
        fn express_reading(p: &str) -> String {
            let l = p.to_ascii_lowercase();
            l.strip_suffix('/').map_or(l.clone(), str::to_owned)
        }

        const HAZARDS: [&str; 14] =
            ["/", ";", ";x=1", "%2F", "%2f", "%2E", "%2e", "%5C", "%5c", "\\", "/.", "/..", "%25", "%65"];

        proptest! {
            #[test]
            fn every_sync_spelling_of_create_takes_a_permit(p in spelling()) {
                prop_assert_eq!(r("POST", &p), create());
            }

            /// A hazard inserted anywhere into a create spelling never makes
            /// it a forwarded request of another class.
            #[test]
            fn a_hazard_anywhere_is_refused_or_still_a_create(
                p in spelling(),
                at in 0usize..14,
                h in 0usize..HAZARDS.len(),
            ) {
                let at = at.min(p.len());
                let q = format!("{}{}{}", &p[..at], HAZARDS[h], &p[at..]);
                match r("POST", &q) {
                    Route::Ambiguous | Route::NotFound => {}
                    Route::Proxy(x) if x.kind == ProxyKind::Create => {}
                    Route::Proxy(x) => prop_assert!(
                        express_reading(&q) != "/v2/generate",
                        "{} forwarded as {:?}", q, x
                    ),
                    other => prop_assert!(false, "{} routed as {:?}", q, other),
                }
            }

            /// Anything forwarded has a canonical form, and its class is
            /// decided by that form alone.
            #[test]
            fn forwarded_paths_are_classified_by_their_canonical_form(
                segs in proptest::collection::vec("[a-zA-Z0-9%;.\\\\-]{0,9}", 1..4),
                slash in any::<bool>(),
            ) {
                let p = format!("/v2/{}{}", segs.join("/"), if slash { "/" } else { "" });
                if let Route::Proxy(x) = r("POST", &p) {
                    let c = canonical_path(&p).map_err(|_| TestCaseError::fail(format!("{p} forwarded but ambiguous")))?;
                    prop_assert_eq!(r("POST", &c), Route::Proxy(x));
                    prop_assert!(!p.contains(';') && !p.contains('\\') && !p.contains("//"));
                }
            }
        }
    }
}
