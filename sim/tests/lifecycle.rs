//! Lifecycle timers, outcomes, signed webhooks, long-poll, delete.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "whsec_test_secret";

fn verify(sig_header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in sig_header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

#[tokio::test]
async fn completes_on_time_and_webhook_is_signed() {
    let mut conf = cfg();
    conf.webhook_secret = Some(SECRET.into());
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    let mut body = body_for("https://x/v.mp4");
    body["webhookUrl"] = json!(rx.url);
    let (st, g) = create(&c, &base, K1, &body).await;
    assert_eq!(st, 201);
    let id = g["id"].as_str().unwrap().to_string();

    let p = wait_status(&c, &base, K1, &id, "PROCESSING").await;
    assert!(p["outputUrl"].is_null());
    let done = wait_status(&c, &base, K1, &id, "COMPLETED").await;
    assert!(done["outputUrl"].as_str().unwrap().starts_with("https://"));
    assert!(done["outputDuration"].as_f64().unwrap() > 0.0);

    // The webhook arrives without anyone reading the generation.
    let hooks = rx.wait_for(1).await;
    let h = &hooks[0];
    assert_eq!(h.headers["content-type"], "application/json");
    let sig = h.headers["sync-signature"].to_str().unwrap();
    assert!(sig.starts_with("t="), "{sig}");
    assert!(verify(sig, &h.body), "signature must verify");
    assert!(!verify(sig, b"{\"tampered\":true}"));
    let payload: Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(payload["id"], id.as_str());
    assert_eq!(payload["status"], "COMPLETED");
    assert_eq!(payload, done);

    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["completed"], 1);
    assert_eq!(st["keys"][K1]["active"], 0);
    assert_eq!(st["webhooks"]["scheduled"], 1);
    assert_eq!(st["webhooks"]["sent"], 1);
    assert_eq!(st["webhooks"]["delivered"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn fail_and_reject_inputs_end_accordingly() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    let mut fail = body_for("https://x/please-fail.mp4");
    fail["webhookUrl"] = json!(rx.url);
    let (_, f) = create(&c, &base, K1, &fail).await;
    let (_, r) = create(&c, &base, K1, &body_for("https://x/reject-me.mp4")).await;
    let f = wait_status(&c, &base, K1, f["id"].as_str().unwrap(), "FAILED").await;
    assert!(f["error"].is_string());
    assert_eq!(f["error_code"], "generation_failed");
    assert!(f["outputUrl"].is_null());
    let r = wait_status(&c, &base, K1, r["id"].as_str().unwrap(), "REJECTED").await;
    assert_eq!(r["error_code"], "generation_rejected");
    // Unsigned without a secret, still delivered.
    let hooks = rx.wait_for(1).await;
    assert!(hooks[0].headers.get("sync-signature").is_none());
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["failed"], 1);
    assert_eq!(st["keys"][K1]["rejected"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn long_poll_returns_on_completion_early() {
    let mut conf = cfg();
    conf.pending_ms = 50;
    conf.processing_ms = 250;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let (_, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let id = g["id"].as_str().unwrap();
    let t = Instant::now();
    let (st, v) = get(&c, &base, K1, &format!("/v2/generate/{id}?wait=true&timeout=5")).await;
    let took = t.elapsed();
    assert_eq!(st, 200);
    assert_eq!(v["status"], "COMPLETED");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(2), "returned at completion, not at timeout: {took:?}");

    // Timeout bounds.
    for bad in ["0", "11", "x"] {
        let (st, v) = get(&c, &base, K1, &format!("/v2/generate/{id}?wait=true&timeout={bad}")).await;
        assert_eq!(st, 400, "{bad}");
        assert_error(&v, 400, "invalid_request");
    }
    // Unknown id.
    let (st, v) = get(&c, &base, K1, "/v2/generate/does-not-exist?wait=true&timeout=1").await;
    assert_eq!(st, 404);
    assert_error(&v, 404, "not_found");
    s.shutdown().await;
}

#[tokio::test]
async fn long_poll_times_out_with_current_state() {
    let mut conf = cfg();
    conf.pending_ms = 5_000;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let (_, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let id = g["id"].as_str().unwrap();
    let t = Instant::now();
    let (st, v) = get(&c, &base, K1, &format!("/v2/generate/{id}?wait=true&timeout=1")).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "PENDING");
    assert!(t.elapsed() >= Duration::from_millis(950));
    s.shutdown().await;
}

#[tokio::test]
async fn delete_only_terminal() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let (_, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let id = g["id"].as_str().unwrap();
    let del = |key: &'static str| {
        let c = c.clone();
        let url = format!("{base}/v2/generations/{id}");
        async move {
            let r = c.delete(url).header("x-api-key", key).send().await.unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, v) = del(K1).await;
    assert_eq!(st, 409);
    assert_error(&v, 409, "generation_not_deletable_while_processing");
    let (st, _) = del(K2).await;
    assert_eq!(st, 404);
    wait_status(&c, &base, K1, id, "COMPLETED").await;
    let (st, v) = del(K1).await;
    assert_eq!(st, 200);
    assert_eq!(v, json!({}));
    let (st, _) = get(&c, &base, K1, &format!("/v2/generate/{id}")).await;
    assert_eq!(st, 404);
    let (st, _) = del(K1).await;
    assert_eq!(st, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn sim_duration_override_splits_10_90() {
    let mut conf = cfg();
    conf.pending_ms = 10_000;
    conf.processing_ms = 10_000;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let mut body = body_for("https://x/v.mp4");
    body["options"] = json!({"sim_duration_ms": 1000});
    let (_, g) = create(&c, &base, K1, &body).await;
    let id = g["id"].as_str().unwrap();
    let t = Instant::now();
    wait_status(&c, &base, K1, id, "PROCESSING").await;
    let to_processing = t.elapsed();
    assert!(to_processing < Duration::from_millis(600), "{to_processing:?}");
    let (_, v) = get(&c, &base, K1, &format!("/v2/generate/{id}?wait=true&timeout=5")).await;
    assert_eq!(v["status"], "COMPLETED");
    let total = t.elapsed();
    assert!(total >= Duration::from_millis(800) && total < Duration::from_secs(3), "{total:?}");
    s.shutdown().await;
}
