use super::*;
use crate::wire::path::AmbiguousPath;

fn r(m: &str, p: &str) -> Route {
    route(m, p, &Limits::for_window(60, 600, 3, 60_000, 0))
}

#[test]
fn classes() {
    assert_eq!(r("POST", "/v2/generate"), Route::Proxy(Proxy { class: "generate".into(), kind: ProxyKind::Create }));
    assert_eq!(
        r("GET", "/v2/generate/abc"),
        Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::ReadsGenerations })
    );
    assert_eq!(
        r("GET", "/v2/generations"),
        Route::Proxy(Proxy { class: "other".into(), kind: ProxyKind::ReadsGenerations })
    );
    assert_eq!(r("POST", "/v2/assets/upload"), Route::Proxy(Proxy { class: "upload".into(), kind: ProxyKind::Other }));
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
