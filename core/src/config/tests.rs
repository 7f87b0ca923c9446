use super::*;
use crate::rates::class::RateClass;
use crate::relay::webhook::DEFAULT_TOKEN_TTL_S;
use std::collections::BTreeMap;

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(&move |k| map.get(k).cloned())
}

#[test]
fn defaults_match_sync() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.api_base, DEFAULT_API_BASE);
    assert_eq!(c.limits.generate.limit, 60);
    assert_eq!(c.limits.other.limit, 600);
    assert_eq!(c.limits.generate.window_ms, 60_000);
    assert_eq!(c.limits.concurrency.cap, 1);
    assert_eq!(c.limits.rate(&RateClass::from("upload")).map(|r| r.limit), Some(120));
    assert!(!c.keys.is_managed());
}

#[test]
fn plans_and_conflicts() {
    assert_eq!(parse(&[("SYNC_PLAN", "Growth")]).unwrap().limits.concurrency.cap, 6);
    assert_eq!(parse(&[("MAX_CONCURRENT_GENERATIONS", "40")]).unwrap().limits.concurrency.cap, 40);
    assert_eq!(parse(&[("SYNC_PLAN", "gold")]).unwrap_err().var, "SYNC_PLAN");
    assert!(parse(&[("SYNC_PLAN", "scale"), ("MAX_CONCURRENT_GENERATIONS", "2")]).is_err());
    assert_eq!(parse(&[("GENERATE_PER_MINUTE", "ten")]).unwrap_err().var, "GENERATE_PER_MINUTE");
    assert_eq!(parse(&[("GENERATE_PER_MINUTE", "0")]).unwrap_err().var, "GENERATE_PER_MINUTE");
}

#[test]
fn secrets_never_appear_in_errors() {
    let e = parse(&[("GOVERNOR_CLIENT_KEYS", "{\"ck-very-secret-value\": 5}")]).unwrap_err();
    assert!(!e.to_string().contains("very-secret"), "{e}");
    let e = parse(&[("GOVERNOR_CLIENT_KEYS", "{\"ck-very-secret-value\":\"a\"}")]).unwrap_err();
    assert!(!e.to_string().contains("very-secret"), "{e}");
}

#[test]
fn managed_keys() {
    let c =
        parse(&[("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#), ("SYNC_API_KEY", "sk-live")]).unwrap();
    let caller = c.keys.resolve(Some("ck-0123456789abcdef")).unwrap();
    assert_eq!(caller.upstream_key.expose(), "sk-live");
    assert!(parse(&[("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#)]).is_err());
    assert!(parse(&[
        ("GOVERNOR_CLIENT_KEYS", r#"{"ck-0123456789abcdef":"acme"}"#),
        ("SYNC_API_KEYS", r#"{"other":"sk"}"#)
    ])
    .is_err());
}

#[test]
fn named_clients_and_client_limits() {
    let keys = r#"{"ck-0123456789abcdef":{"account":"acme","client":"mobile-app"},"ck-fedcba9876543210":"acme"}"#;
    let c = parse(&[("GOVERNOR_CLIENT_KEYS", keys), ("SYNC_API_KEY", "sk-live")]).unwrap();
    assert_eq!(c.keys.resolve(Some("ck-0123456789abcdef")).unwrap().client, "mobile-app");
    let fp = c.keys.resolve(Some("ck-fedcba9876543210")).unwrap();
    assert_eq!((fp.account.as_str(), fp.client.len()), ("a-acme", 10));
    assert!(fp.client.starts_with("c-"));
    for bad in [
        r#"{"ck-0123456789abcdef":{"account":"acme","client":"c-12345678"}}"#,
        r#"{"ck-0123456789abcdef":{"account":"acme","client":"has space"}}"#,
        r#"{"ck-0123456789abcdef":{"client":"x"}}"#,
        r#"{"ck-0123456789abcdef":{"account":"acme","client":"ck-0123456789abcdef x"}}"#,
    ] {
        let e = parse(&[("GOVERNOR_CLIENT_KEYS", bad), ("SYNC_API_KEY", "sk-live")]).unwrap_err();
        assert_eq!(e.var, "GOVERNOR_CLIENT_KEYS", "{bad}");
        assert!(!e.to_string().contains("0123456789abcdef"), "{e}");
    }
    let c = parse(&[("CLIENT_LIMITS", r#"{"*":{"*":{"weight":2,"usdPerMonth":100}}}"#)]).unwrap();
    assert_eq!(c.limits.clients.resolve("k-00", "h-x").weight, Some(2));
    let e = parse(&[("CLIENT_LIMITS", r#"{"*":{"ck-secret-0123456789":{"weight":0}}}"#)]).unwrap_err();
    assert_eq!(e.var, "CLIENT_LIMITS");
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[test]
fn extra_classes() {
    let c =
        parse(&[("RATE_CLASSES", r#"[{"name":"assets","method":"get","path":"/v2/assets","perMinute":30}]"#)]).unwrap();
    assert_eq!(c.limits.extra[0].method, "GET");
    assert_eq!(c.limits.buckets(&RateClass::from("assets")), vec![RateClass::from("assets"), RateClass::Other]);
    assert!(parse(&[("RATE_CLASSES", r#"[{"name":"generate","method":"GET","path":"/v2/x","perMinute":3}]"#)]).is_err());
    for path in ["/v2//assets", "/v2/assets;x", "/v2/./assets", "/v2/assets%2Fupload"] {
        let spec = format!(r#"[{{"name":"a","method":"GET","path":"{path}","perMinute":3}}]"#);
        assert_eq!(parse(&[("RATE_CLASSES", &spec)]).unwrap_err().var, "RATE_CLASSES", "{path}");
    }
}

#[test]
fn webhook_key_rotation_and_token_lifetime() {
    let (current, previous) = ("current-key-0123456789", "previous-key-0123456789");
    let c = parse(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", previous)]).unwrap();
    assert_eq!(c.webhooks.token_keys(), vec![current.as_bytes(), previous.as_bytes()]);
    assert_eq!(c.webhooks.token_ttl_s, DEFAULT_TOKEN_TTL_S);
    assert_eq!(c.limits.relay.dedupe_ttl_ms, (DEFAULT_TOKEN_TTL_S + 300) * 1_000);
    let var = |pairs: &[(&str, &str)]| parse(pairs).unwrap_err().var;
    assert_eq!(var(&[("GOVERNOR_WEBHOOK_KEY_PREVIOUS", previous)]), "GOVERNOR_WEBHOOK_KEY_PREVIOUS");
    assert_eq!(
        var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "short")]),
        "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
    );
    assert_eq!(
        var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", current)]),
        "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
    );
    assert_eq!(
        var(&[("GOVERNOR_WEBHOOK_KEY", current), ("GOVERNOR_WEBHOOK_KEY_PREVIOUS", "")]),
        "GOVERNOR_WEBHOOK_KEY_PREVIOUS"
    );
    assert_eq!(var(&[("WEBHOOK_TOKEN_TTL_SECONDS", "0")]), "WEBHOOK_TOKEN_TTL_SECONDS");
    let short = parse(&[("WEBHOOK_TOKEN_TTL_SECONDS", "60")]).unwrap();
    assert_eq!(short.webhooks.token_ttl_s, 60);
}

#[test]
fn local_mode_is_in_effect_only_on_loopback() {
    let on = parse(&[("LOCAL_MODE", "true")]).unwrap();
    assert!(on.webhooks.local_for("127.0.0.1") && on.webhooks.local_for("localhost") && on.webhooks.local_for("[::1]"));
    assert!(!on.webhooks.local_for("governor.example.com"));
    assert!(!on.webhooks.local_for("10.0.0.1"));
    assert!(!parse(&[]).unwrap().webhooks.local_for("127.0.0.1"));
}

#[test]
fn blank_secrets_are_errors_not_pass_through() {
    let clients = r#"{"ck-0123456789abcdef":"acme"}"#;
    assert_eq!(parse(&[("GOVERNOR_CLIENT_KEYS", "")]).unwrap_err().var, "GOVERNOR_CLIENT_KEYS");
    assert_eq!(
        parse(&[("GOVERNOR_CLIENT_KEYS", "  "), ("SYNC_API_KEY", "sk")]).unwrap_err().var,
        "GOVERNOR_CLIENT_KEYS"
    );
    assert_eq!(parse(&[("GOVERNOR_CLIENT_KEYS", clients), ("SYNC_API_KEY", "")]).unwrap_err().var, "SYNC_API_KEY");
    assert_eq!(parse(&[("GOVERNOR_CLIENT_KEYS", clients), ("SYNC_API_KEYS", "")]).unwrap_err().var, "SYNC_API_KEYS");
    assert_eq!(parse(&[("SYNC_WEBHOOK_SECRET", "")]).unwrap_err().var, "SYNC_WEBHOOK_SECRET");
    assert_eq!(parse(&[("SYNC_WEBHOOK_SECRET", " \t")]).unwrap_err().var, "SYNC_WEBHOOK_SECRET");
    assert_eq!(parse(&[("GOVERNOR_WEBHOOK_KEY", "")]).unwrap_err().var, "GOVERNOR_WEBHOOK_KEY");
    // Set with a value, or not set at all, is fine.
    assert!(parse(&[("SYNC_WEBHOOK_SECRET", "whsec_x")]).unwrap().webhooks.sync_secret.is_some());
    assert!(parse(&[]).unwrap().webhooks.sync_secret.is_none());
    // Ordinary vars may still be left empty for their default.
    assert_eq!(parse(&[("GENERATE_PER_MINUTE", "")]).unwrap().limits.generate.limit, 60);
}

#[test]
fn a_sync_key_without_client_keys_is_an_error() {
    let e = parse(&[("SYNC_API_KEY", "sk-live-secret")]).unwrap_err();
    assert_eq!(e.var, "SYNC_API_KEY");
    assert!(!e.to_string().contains("sk-live-secret"), "{e}");
}

#[test]
fn upstream_timeouts_have_defaults_and_bounds() {
    let t = parse(&[]).unwrap().timeouts;
    assert_eq!(t, Timeouts { create_ms: 60_000, read_ms: 30_000, list_ms: 30_000, relay_ms: 10_000 });
    let t = parse(&[
        ("UPSTREAM_TIMEOUT_CREATE_MS", "1500"),
        ("UPSTREAM_TIMEOUT_READ_MS", "700"),
        ("UPSTREAM_TIMEOUT_LIST_MS", "800"),
        ("RELAY_TIMEOUT_MS", "900"),
    ])
    .unwrap()
    .timeouts;
    assert_eq!(t, Timeouts { create_ms: 1_500, read_ms: 700, list_ms: 800, relay_ms: 900 });
    assert_eq!(t.forward_ms("POST", "/v2/generate", true), 1_500);
    assert_eq!(t.forward_ms("GET", "/v2/generations", false), 800);
    assert_eq!(t.forward_ms("get", "/v2/Generations/", false), 800);
    assert_eq!(t.forward_ms("GET", "/v2/generate/abc", false), 700);
    assert_eq!(t.forward_ms("POST", "/v2/assets/upload", false), 700);
    for var in
        ["UPSTREAM_TIMEOUT_CREATE_MS", "UPSTREAM_TIMEOUT_READ_MS", "UPSTREAM_TIMEOUT_LIST_MS", "RELAY_TIMEOUT_MS"]
    {
        for bad in ["0", "99", "900001", "soon"] {
            assert_eq!(parse(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
    }
}

#[test]
fn seconds_become_milliseconds_without_wrapping() {
    let c = parse(&[("MAX_WAIT_SECONDS", "600"), ("RESERVATION_TTL_SECONDS", "86400")]).unwrap();
    assert_eq!(c.max_wait_ms, 600_000);
    assert_eq!(c.limits.concurrency.reservation_ttl_ms, 86_400_000);
    let huge = (u64::MAX / 1_000 + 1).to_string();
    let lookup = move |_: &str| Some(huge.clone());
    let e = Vars(&lookup).seconds("X_SECONDS", 1, 0, u64::MAX).unwrap_err();
    assert_eq!(e.var, "X_SECONDS");
    assert_eq!(Vars(&|_| Some("7".into())).seconds("X_SECONDS", 1, 0, 10), Ok(7_000));
}
