//! The Batch API: multipart JSONL, dry run, bounds, batch concurrency, the
//! plan's 402, statuses and metrics, spawned generations outside the cap,
//! the result behind a 302, signed batch webhooks and their loss.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn line(i: usize, url: &str, extra: Value) -> String {
    let mut payload = body_for(url);
    payload["options"] = extra;
    json!({"request_id": format!("req-{i}"), "endpoint": "/v2/generate", "payload": payload}).to_string()
}

fn jsonl(n: usize) -> String {
    (0..n).map(|i| line(i, "https://x/v.mp4", json!({})) + "\n").collect()
}

async fn submit(c: &reqwest::Client, base: &str, input: String, hook: Option<&str>, dry: bool) -> (u16, Value) {
    let mut form =
        reqwest::multipart::Form::new().part("input", reqwest::multipart::Part::text(input).file_name("batch.jsonl"));
    if let Some(h) = hook {
        form = form.text("webhook_url", h.to_string());
    }
    if dry {
        form = form.text("dry_run", "true");
    }
    let r = c.post(format!("{base}/v2/batch")).header("x-api-key", K1).multipart(form).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn wait_batch(c: &reqwest::Client, base: &str, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, b) = get(c, base, K1, &format!("/v2/batch/{id}")).await;
        if b["status"] == status {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {status}: {b}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn batch_cfg() -> sync_sim::config::Config {
    sync_sim::config::Config {
        batch_pending_ms: 50,
        batch_generation_ms: 300,
        webhook_secret: Some("whsec_test".into()),
        ..cfg()
    }
}

#[tokio::test]
async fn lifecycle_result_and_cap() {
    let s = start(batch_cfg()).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    let (st, b) = submit(&c, &base, jsonl(20), Some(&rx.url), false).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["status"], "PENDING");
    assert_eq!(b["metrics"]["total_generations"], 20);
    assert_eq!(b["metrics"]["pending_count"], 20);
    assert_eq!(b["webhookUrl"], rx.url.as_str());
    assert!(b["created_at"].is_string());
    let id = b["id"].as_str().unwrap().to_string();
    wait_batch(&c, &base, &id, "PROCESSING").await;
    // The 20 spawned generations are listed, unmarked, and outside the cap of 3.
    let (_, list) = get(&c, &base, K1, "/v2/generations?status=PENDING,PROCESSING").await;
    assert_eq!(list.as_array().unwrap().len(), 20);
    for _ in 0..3 {
        let (st, _) = create(&c, &base, K1, &body_for("https://x/direct.mp4")).await;
        assert_eq!(st, 201);
    }
    let (st, _) = create(&c, &base, K1, &body_for("https://x/direct.mp4")).await;
    assert_eq!(st, 429);
    // Before the end there is no result.
    let (st, v) = get(&c, &base, K1, &format!("/v2/batches/{id}/result")).await;
    assert_eq!(st, 409);
    assert_error(&v, 409, "batch_not_completed");
    let done = wait_batch(&c, &base, &id, "COMPLETED").await;
    assert_eq!(done["metrics"], json!({"total_generations":20,"success_count":20,"failed_count":0,"pending_count":0}));
    assert_eq!(done["outputUrl"], format!("/v2/batches/{id}/result"));
    // The result: a 302 to a signed URL that needs no key.
    let nr = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = nr.get(format!("{base}/v2/batches/{id}/result")).header("x-api-key", K1).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let text = nr.get(&loc).send().await.unwrap().text().await.unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0]["request_id"], "req-0");
    assert_eq!(rows[0]["status"], "COMPLETED");
    assert!(rows[0]["generation_id"].is_string());
    assert_eq!(nr.get(loc.replace("X-Amz-Signature=", "X-Amz-Signature=0")).send().await.unwrap().status(), 403);
    // Signed batch webhooks: JOBS_CREATED, PROCESSING, COMPLETED.
    let hooks = rx.wait_for(3).await;
    let statuses: Vec<String> = hooks
        .iter()
        .map(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["JOBS_CREATED", "PROCESSING", "COMPLETED"]);
    let last = &hooks[2];
    let sig = last.headers["sync-signature"].to_str().unwrap();
    let t: u64 = sig.trim_start_matches("t=").split(',').next().unwrap().parse().unwrap();
    assert_eq!(sig, sync_sim::util::sign_webhook("whsec_test", t, &last.body));
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    for k in ["id", "status", "metrics", "outputUrl", "webhookUrl", "created_at"] {
        assert!(body.get(k).is_some(), "{k} in {body}");
    }
    let k = &stats(&c, &base).await["keys"][K1];
    assert_eq!(k["batches_created"], 1);
    assert_eq!(k["batches_open"], 0);
    assert_eq!(k["batch_active"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrency_plan_bounds_and_dry_run() {
    let s = start(sync_sim::config::Config { batch_pending_ms: 2_000, ..batch_cfg() }).await;
    let c = client();
    let base = s.url();
    let (st, v) = submit(&c, &base, jsonl(20), None, true).await;
    assert_eq!((st, v), (200, json!({"status": "VALIDATED"})));
    for _ in 0..2 {
        assert_eq!(submit(&c, &base, jsonl(20), None, false).await.0, 201);
    }
    let (st, v) = submit(&c, &base, jsonl(20), None, false).await;
    assert_eq!(st, 429);
    assert_error(&v, 429, "concurrency_limit_reached");
    let (_, list) = get(&c, &base, K1, "/v2/batch?status=PENDING").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, none) = get(&c, &base, K1, "/v2/batch?status=COMPLETED").await;
    assert_eq!(none, json!([]));
    let (_, other) = get(&c, &base, K2, "/v2/batch").await;
    assert_eq!(other, json!([]));
    let (st, _) = get(&c, &base, K1, "/v2/batch?created_after=2999-01-01T00:00:00Z").await;
    assert_eq!(st, 200);
    // Bounds: 19 and 501 lines, a bad line, over 5 MB, no file.
    assert_eq!(submit(&c, &base, jsonl(19), None, true).await.0, 400);
    assert_eq!(submit(&c, &base, jsonl(501), None, true).await.0, 400);
    let bad = jsonl(20).replacen("lipsync-2", "nope", 1);
    assert_eq!(submit(&c, &base, bad, None, true).await.0, 400);
    let big = "x".repeat(5 * 1024 * 1024 + 1);
    assert_eq!(submit(&c, &base, big, None, true).await.0, 413);
    let r = c.post(format!("{base}/v2/batch")).header("x-api-key", K1).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A plan without batches.
    set_config(&c, &base, json!({"batches_enabled": false})).await;
    let (st, v) = submit(&c, &base, jsonl(20), None, false).await;
    assert_eq!(st, 402);
    assert_error(&v, 402, "plan_upgrade_required");
    let k = &stats(&c, &base).await["keys"][K1];
    assert_eq!(k["batch_concurrency_limited"], 1);
    assert_eq!(k["batch_plan_refused"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn rejected_lines_and_lost_webhooks() {
    let s = start(batch_cfg()).await;
    let c = client();
    let base = s.url();
    let rx = Receiver::start().await;
    set_config(&c, &base, json!({"batch_webhook_drop_rate": 1.0})).await;
    let mut input = jsonl(20);
    input.push_str(&(line(20, "https://x/v.mp4", json!({"sim_input_ms": 45_000})) + "\n"));
    input.push_str(&(line(21, "https://x/fail.mp4", json!({})) + "\n"));
    let (st, b) = submit(&c, &base, input, Some(&rx.url), false).await;
    assert_eq!(st, 201);
    let id = b["id"].as_str().unwrap().to_string();
    let done = wait_batch(&c, &base, &id, "COMPLETED").await;
    assert_eq!(done["metrics"]["success_count"], 20);
    assert_eq!(done["metrics"]["failed_count"], 2);
    let r = c.get(format!("{base}/v2/batches/{id}/result")).header("x-api-key", K1).send().await.unwrap();
    let rows: Vec<Value> = r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[20]["status"], "REJECTED");
    assert_eq!(rows[20]["error_code"], "input_too_long");
    assert_eq!(rows[20]["generation_id"], Value::Null);
    assert_eq!(rows[21]["status"], "FAILED");
    // Every batch webhook was lost.
    assert!(rx.snapshot().is_empty());
    let log: Value = c.get(format!("{base}/_sim/webhooks")).send().await.unwrap().json().await.unwrap();
    let batch_drops = log.as_array().unwrap().iter().filter(|d| d["kind"] == "batch" && d["dropped"] == true).count();
    assert_eq!(batch_drops, 3);
    s.shutdown().await;
}
