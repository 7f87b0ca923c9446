//! Fault knobs through `/_sim/config`, and reset.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn injected_5xx_and_429() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let conf = set_config(&c, &base, json!({"error_rate": 1.0})).await;
    assert_eq!(conf["error_rate"], 1.0);
    let (st, v) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 503);
    assert_error(&v, 503, "service_unavailable");
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 503);
    // No fault before auth, none on the catalogues.
    let (st, _) = get(&c, &base, "bad", "/v2/generations").await;
    assert_eq!(st, 401);
    assert_eq!(c.get(format!("{base}/v2/models")).send().await.unwrap().status(), 200);

    set_config(&c, &base, json!({"error_rate": 0.0, "inject_429_rate": 1.0})).await;
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .json(&body_for("https://x/v.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert_error(&r.json().await.unwrap(), 429, "rate_limit_exceeded");

    set_config(&c, &base, json!({"inject_429_rate": 0.0})).await;
    let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);

    let st = stats(&c, &base).await;
    let k = &st["keys"][K1];
    assert_eq!(k["injected_5xx"], 2);
    assert_eq!(k["injected_429"], 1);
    assert_eq!(k["rate_limited"]["generate"], 0);
    assert_eq!(k["requests"]["generate"], 3);
    assert_eq!(k["requests"]["other"], 1);
    // Injected faults consume no rate budget.
    assert_eq!(k["max_in_window"]["generate"], 1);
    assert_eq!(k["max_in_window"]["other"], 0);
    assert_eq!(k["created"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn latency_knob() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    set_config(&c, &base, json!({"latency_ms": 150})).await;
    let t = Instant::now();
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    s.shutdown().await;
}

#[tokio::test]
async fn config_validation_and_limits_apply_at_once() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    for bad in [json!({"error_rate": 1.5}), json!({"no_such_knob": 1}), json!({"window_ms": 0})] {
        let r = c.post(format!("{base}/_sim/config")).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_error(&r.json().await.unwrap(), 400, "invalid_request");
    }
    let conf = set_config(&c, &base, json!({"other_per_minute": 1, "window_ms": 10_000, "concurrency": 1})).await;
    assert_eq!(conf["other_per_minute"], 1);
    assert_eq!(conf["upload_limit"], 1);
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 429);
    let got: Value = get_json(&c, format!("{base}/_sim/config")).await;
    assert_eq!(got["concurrency"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn webhook_drop_and_dup() {
    let mut conf = cfg();
    conf.webhook_secret = Some("whsec_x".into());
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    let mut body = body_for("https://x/v.mp4");
    body["webhookUrl"] = json!(rx.url);

    set_config(&c, &base, json!({"webhook_drop_rate": 1.0})).await;
    let (_, g) = create(&c, &base, K1, &body).await;
    wait_status(&c, &base, K1, g["id"].as_str().unwrap(), "COMPLETED").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rx.snapshot().len(), 0, "dropped webhooks are not sent");

    set_config(&c, &base, json!({"webhook_drop_rate": 0.0, "webhook_dup_rate": 1.0})).await;
    let (_, g) = create(&c, &base, K1, &body).await;
    let hooks = rx.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rx.snapshot().len(), 2);
    assert_eq!(hooks[0].body, hooks[1].body);
    assert_eq!(hooks[0].headers["sync-signature"], hooks[1].headers["sync-signature"]);
    let p: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(p["id"], g["id"]);

    let st = stats(&c, &base).await;
    let w = &st["webhooks"];
    assert_eq!(w["scheduled"], 2);
    assert_eq!(w["dropped"], 1);
    assert_eq!(w["duplicated"], 1);
    assert_eq!(w["sent"], 2);
    assert_eq!(w["delivered"], 2);
    assert_eq!(w["failed"], 0);

    let log: Value = get_json(&c, format!("{base}/_sim/webhooks")).await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0]["dropped"], true);
    assert_eq!(log[2]["copy"], 2);
    assert_eq!(log[2]["status"], 200);
    s.shutdown().await;
}

#[tokio::test]
async fn webhook_delay_reorder_and_failed_delivery() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    set_config(&c, &base, json!({"webhook_delay_ms": 200})).await;
    let mut body = body_for("https://x/v.mp4");
    body["webhookUrl"] = json!(rx.url);
    let (_, g) = create(&c, &base, K1, &body).await;
    let (_, done) =
        get(&c, &base, K1, &format!("/v2/generate/{}?wait=true&timeout=5", g["id"].as_str().unwrap())).await;
    assert_eq!(done["status"], "COMPLETED");
    let t = Instant::now();
    rx.wait_for(1).await;
    assert!(t.elapsed() >= Duration::from_millis(120), "{:?}", t.elapsed());

    // Reorder: random extra delay; all still arrive.
    set_config(&c, &base, json!({"webhook_delay_ms": 0, "webhook_reorder_ms": 100})).await;
    for _ in 0..3 {
        create(&c, &base, K1, &body).await;
    }
    rx.wait_for(4).await;

    // A receiver that is not there: recorded as failed, never retried.
    set_config(&c, &base, json!({"webhook_reorder_ms": 0})).await;
    let mut dead = body_for("https://x/v.mp4");
    dead["webhookUrl"] = json!("http://127.0.0.1:9/nothing-here");
    create(&c, &base, K1, &dead).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = stats(&c, &base).await;
        if st["webhooks"]["failed"] == 1 {
            assert_eq!(st["webhooks"]["sent"], 5);
            assert_eq!(st["webhooks"]["delivered"], 4);
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log: Value = get_json(&c, format!("{base}/_sim/webhooks")).await;
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert!(last["error"].is_string());
    assert!(last["status"].is_null());
    s.shutdown().await;
}

#[tokio::test]
async fn reset_clears_everything_but_config() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    set_config(&c, &base, json!({"pending_ms": 5000})).await;
    create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let r = c.post(format!("{base}/_sim/reset")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["created"], 0);
    assert_eq!(st["keys"][K1]["active"], 0);
    assert_eq!(st["keys"][K1]["requests"]["generate"], 0);
    assert_eq!(st["config"]["pending_ms"], 5000);
    assert!(requests_log(&c, &base, 50).await.is_empty());
    let (_, list) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(list, json!([]));
    let h: Value = get_json(&c, format!("{base}/_sim/health")).await;
    assert_eq!(h, json!({"ok": true}));
    s.shutdown().await;
}

#[tokio::test]
async fn stall_knobs_hold_answers_and_a_caller_that_gives_up_leaves_nothing() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let conf = set_config(&c, &base, json!({"stall_create_ms": 60_000, "stall_list_ms": 300})).await;
    assert_eq!(conf["stall_create_ms"], 60_000);
    // A create that is never answered within the caller's patience.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let t = Instant::now();
    let r = impatient
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .json(&body_for("https://x/v.mp4"))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "no answer");
    assert!(t.elapsed() < Duration::from_secs(5));
    // The list answers, late; reads are untouched.
    let t = Instant::now();
    let (st, v) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(v.as_array().map(Vec::len), Some(0), "the abandoned create made nothing");
    let t = Instant::now();
    let (st, _) = get(&c, &base, K1, "/v2/generate/nope").await;
    assert_eq!(st, 404);
    assert!(t.elapsed() < Duration::from_millis(300));
    // A shorter stall: answered late, and created.
    set_config(&c, &base, json!({"stall_create_ms": 200, "stall_read_ms": 200})).await;
    let t = Instant::now();
    let (st, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let t = Instant::now();
    let (st, _) = get(&c, &base, K1, &format!("/v2/generate/{}", g["id"].as_str().unwrap())).await;
    assert_eq!(st, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let st = stats(&c, &base).await;
    assert_eq!(st["stalled"], 4);
    assert_eq!(st["keys"][K1]["created"], 1);
    s.shutdown().await;
}
