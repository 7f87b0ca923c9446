use super::*;

#[test]
fn limited_body_carries_retry_and_policy() {
    let r = Rejection {
        reason: Reason::Concurrency,
        policy: "concurrency".into(),
        limit: 3,
        retry_at_ms: 10_500,
        retry_after_ms: 500,
        policies: vec![],
        hold: None,
    };
    assert_eq!(r.retry_after_secs(), 1);
    let b = serde_json::to_value(GovernorError::Limited(r).body()).unwrap();
    assert_eq!(b["statusCode"], 429);
    assert_eq!(b["errorCode"], "concurrency_limit_exceeded");
    assert_eq!(b["retryAfterMs"], 500);
    assert_eq!(b["limit"], 3);
}

#[test]
fn upstream_timeout_is_a_504_json_error() {
    let e = GovernorError::UpstreamTimeout { ms: 1_500 };
    assert_eq!(e.status(), 504);
    let b = serde_json::to_value(e.body()).unwrap();
    assert_eq!(b["statusCode"], 504);
    assert_eq!(b["errorCode"], "upstream_timeout");
    assert_eq!(b["error"], "Gateway Timeout");
    assert!(b["message"].as_str().is_some_and(|m| m.contains("1500 ms")));
}

#[test]
fn ambiguous_path_is_a_400_json_error() {
    let e = GovernorError::AmbiguousPath;
    assert_eq!(e.status(), 400);
    let b = serde_json::to_value(e.body()).unwrap();
    assert_eq!(b["statusCode"], 400);
    assert_eq!(b["errorCode"], "ambiguous_path");
    assert_eq!(b["error"], "Bad Request");
}
