//! Per-key rate (strict sliding window) and concurrency limits.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn rate_limit_after_n_in_window_and_recovery() {
    let mut conf = cfg();
    conf.generate_per_minute = 3;
    conf.other_per_minute = 5;
    conf.window_ms = 500;
    conf.pending_ms = 5;
    conf.processing_ms = 5;
    let s = start(conf).await;
    let c = client();
    let base = s.url();

    for _ in 0..3 {
        let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
        assert_eq!(st, 201);
    }
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .json(&body_for("https://x/v.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none(), "Sync sends no Retry-After");
    let v: Value = r.json().await.unwrap();
    assert_error(&v, 429, "rate_limit_exceeded");
    assert_eq!(v["error"], "Too Many Requests");

    // Other key and other class are independent.
    let (st, _) = create(&c, &base, K2, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);

    // Refused requests consume no budget: after the window, 3 again.
    tokio::time::sleep(Duration::from_millis(550)).await;
    for _ in 0..3 {
        let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
        assert_eq!(st, 201);
    }
    let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 429);

    // Class other: 5 per window (the one above has left the window).
    for _ in 0..5 {
        let (st, _) = get(&c, &base, K1, "/v2/generations/count").await;
        assert_eq!(st, 200);
    }
    let (st, v) = get(&c, &base, K1, "/v2/nope").await;
    assert_eq!(st, 429);
    assert_error(&v, 429, "rate_limit_exceeded");

    let st = stats(&c, &base).await;
    let k = &st["keys"][K1];
    assert_eq!(k["requests"]["generate"], 8);
    assert_eq!(k["rate_limited"]["generate"], 2);
    assert_eq!(k["max_in_window"]["generate"], 3);
    assert_eq!(k["requests"]["other"], 7);
    assert_eq!(k["rate_limited"]["other"], 1);
    assert_eq!(k["max_in_window"]["other"], 5);
    assert_eq!(st["keys"][K2]["max_in_window"]["generate"], 1);
    assert_eq!(st["totals"]["requests"]["generate"], 9);
    assert_eq!(st["totals"]["max_in_window"]["generate"], 3);
    s.shutdown().await;
}

#[tokio::test]
async fn window_is_sliding_not_fixed() {
    let mut conf = cfg();
    conf.other_per_minute = 2;
    conf.window_ms = 400;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let (st, _) = get(&c, &base, K1, "/v2/generations").await; // t=0
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (st, _) = get(&c, &base, K1, "/v2/generations").await; // t=250
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // t=450: the first left the window, the second has not.
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);
    let (st, _) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 429);
    s.shutdown().await;
}

#[tokio::test]
async fn upload_class_has_its_own_limit() {
    let mut conf = cfg();
    conf.other_per_minute = 6; // upload = ceil(6/5) = 2
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let up = || c.post(format!("{base}/v2/assets/upload")).header("x-api-key", K1).json(&json!({})).send();
    assert_eq!(up().await.unwrap().status(), 200);
    assert_eq!(up().await.unwrap().status(), 200);
    let r = up().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_error(&r.json().await.unwrap(), 429, "rate_limit_exceeded");
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["requests"]["upload"], 3);
    assert_eq!(st["keys"][K1]["rate_limited"]["upload"], 1);
    assert_eq!(st["keys"][K1]["requests"]["other"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_and_freeing() {
    let mut conf = cfg();
    conf.concurrency = 2;
    conf.pending_ms = 30;
    conf.processing_ms = 120;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let (_, a) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let (_, _b) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let (st, v) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 429);
    assert_error(&v, 429, "concurrency_limit_exceeded");
    // Another key has its own slots.
    let (st, _) = create(&c, &base, K2, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);
    // Slots free on time, without reads.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["active"], 0);
    let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);
    let (_, v) = get(&c, &base, K1, &format!("/v2/generate/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(v["status"], "COMPLETED");

    let st = stats(&c, &base).await;
    let k = &st["keys"][K1];
    assert_eq!(k["concurrency_limited"], 1);
    assert_eq!(k["peak_concurrency"], 2);
    assert_eq!(k["created"], 3);
    assert_eq!(k["active"], 1);
    assert_eq!(st["totals"]["peak_concurrency"], 2);
    assert_eq!(st["totals"]["created"], 4);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_never_exceed_the_limit() {
    let mut conf = cfg();
    conf.concurrency = 3;
    conf.pending_ms = 300;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let c = c.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move { create(&c, &base, K1, &body_for("https://x/v.mp4")).await.0 }));
    }
    let mut created = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap().as_u16() {
            201 => created += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(limited, 9);
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["peak_concurrency"], 3);
    s.shutdown().await;
}

#[tokio::test]
async fn outside_usage_takes_slots_but_not_requests() {
    let mut conf = cfg();
    conf.concurrency = 3;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let r = c
        .post(format!("{base}/_sim/outside"))
        .json(&json!({"key": K1, "count": 2, "duration_ms": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ids"].as_array().unwrap().len(), 2);
    assert_eq!(v["refused"], 0);
    let (st, _) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 201);
    let (st, v) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    assert_eq!(st, 429);
    assert_error(&v, 429, "concurrency_limit_exceeded");
    // Outside clients are refused past the limit too, unless forced.
    let v: Value = c
        .post(format!("{base}/_sim/outside"))
        .json(&json!({"key": K1, "count": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["refused"], 1);
    let st = stats(&c, &base).await;
    let k = &st["keys"][K1];
    assert_eq!(k["requests"]["generate"], 2);
    assert_eq!(k["created"], 3);
    assert_eq!(k["peak_concurrency"], 3);
    assert_eq!(k["active"], 3);
    // The outside generations are visible to the key.
    assert_eq!(v["ids"].as_array().unwrap().len(), 0);
    let (_, list) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let r = c.post(format!("{base}/_sim/outside")).json(&json!({"key": "nobody", "count": 1})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    s.shutdown().await;
}
