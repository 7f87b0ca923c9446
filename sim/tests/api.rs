//! Auth, error shapes, catalogues, estimates, uploads, counts and downloads.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn auth_is_required_and_errors_have_syncs_shape() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();

    let r = c.post(format!("{base}/v2/generate")).json(&body_for("https://x/v.mp4")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_error(&v, 401, "unauthorized");
    assert_eq!(v["error"], "Unauthorized");

    let (st, v) = get(&c, &base, "sk-wrong", "/v2/generations").await;
    assert_eq!(st, 401);
    assert_error(&v, 401, "unauthorized");

    // Catalogues need no key.
    let models: Value = get_json(&c, format!("{base}/v2/models")).await;
    let ids: Vec<&str> = models.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sync-3", "lipsync-2", "lipsync-2-pro", "lipsync-1.9.0-beta", "react-1"]);
    let errors: Value = get_json(&c, format!("{base}/v2/errors")).await;
    let errors = errors.as_array().unwrap();
    assert!(errors.iter().any(|e| e["errorCode"] == "rate_limit_exceeded" && e["statusCode"] == 429));
    assert!(errors.iter().all(|e| e["message"].is_string()));

    let st = stats(&c, &base).await;
    assert_eq!(st["unauthorized"], 2);
    assert_eq!(st["totals"]["requests"]["generate"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_counted_as_other() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    for path in ["/v2/nope", "/v2/assets/abc", "/elsewhere", "/v2/batches"] {
        let (st, v) = get(&c, &base, K1, path).await;
        assert_eq!(st, 404, "{path}");
        assert_error(&v, 404, "not_found");
    }
    // A known path with the wrong method is also a Sync-shaped 404.
    let r = c.put(format!("{base}/v2/generate")).header("x-api-key", K1).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error(&r.json().await.unwrap(), 404, "not_found");

    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["requests"]["other"], 5);
    assert_eq!(st["keys"][K1]["max_in_window"]["other"], 5);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_400_invalid_request() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), 400, "invalid_request");

    for body in [
        json!({"model": "nope", "input": [{"type": "video", "url": "u"}]}),
        json!({"model": "lipsync-2"}),
        json!({"model": "lipsync-2", "input": []}),
        json!({"input": [{"type": "video", "url": "u"}]}),
        json!({"model": "lipsync-2", "input": [{"type": "video", "url": "u"}], "webhookUrl": 5}),
    ] {
        let (st, v) = create(&c, &base, K1, &body).await;
        assert_eq!(st, 400, "{body}");
        assert_error(&v, 400, "invalid_request");
    }
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["created"], 0);
    assert_eq!(st["keys"][K1]["active"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn estimate_upload_count_and_download() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    for path in ["/v2/generations/estimate", "/v2/generate/estimate-cost"] {
        let r = c
            .post(format!("{base}{path}"))
            .header("x-api-key", K1)
            .json(&json!({"model": "lipsync-2", "duration": 30}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["estimatedFrameCount"], 750);
        assert_eq!(v["estimatedGenerationCost"], 1.2);
        assert_eq!(v["estimatedCredits"], 120.0);
    }

    let r = c.post(format!("{base}/v2/assets/upload")).header("x-api-key", K1).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["uploadUrl"].as_str().unwrap().starts_with("https://"));
    assert!(v["assetId"].is_string());

    let (_, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
    let id = g["id"].as_str().unwrap().to_string();
    let r = c.get(format!("{base}/v2/generations/{id}/download")).header("x-api-key", K1).send().await.unwrap();
    assert_eq!(r.status(), 409);

    let (_, counts) = get(&c, &base, K1, "/v2/generations/count").await;
    assert_eq!(counts["PENDING"], 1);
    assert_eq!(counts["COMPLETED"], 0);

    wait_status(&c, &base, K1, &id, "COMPLETED").await;
    let r = c.get(format!("{base}/v2/generations/{id}/download")).header("x-api-key", K1).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(r.text().await.unwrap().contains(&id));

    let (_, counts) = get(&c, &base, K1, "/v2/generations/count").await;
    assert_eq!(counts["COMPLETED"], 1);
    assert_eq!(counts["PENDING"], 0);

    // Other keys cannot see it.
    let (st, _) = get(&c, &base, K2, &format!("/v2/generate/{id}")).await;
    assert_eq!(st, 404);

    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["requests"]["upload"], 1);
    assert_eq!(st["config"]["upload_limit"], 120);
    s.shutdown().await;
}

#[tokio::test]
async fn request_log_masks_keys_and_keeps_raw_query() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    c.get(format!("{base}/v2/generations?status=PENDING&status=FAILED&limit=3"))
        .header("x-api-key", K1)
        .header("x-custom", "Yes")
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/_sim/stats")).send().await.unwrap();
    let log = requests_log(&c, &base, 10).await;
    assert_eq!(log.len(), 1, "control-plane requests are not logged");
    let e = &log[0];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/v2/generations");
    assert_eq!(e["query"], "status=PENDING&status=FAILED&limit=3");
    assert_eq!(e["headers"]["x-api-key"], "sk-t…");
    assert_eq!(e["headers"]["x-custom"], "Yes");
    assert_eq!(e["class"], "other");
    assert_eq!(e["key_index"], 0);
    assert_eq!(e["status"], 200);
    assert_eq!(e["body_len"], 0);
    assert!(e["at_ms"].as_u64().unwrap() > 0);
    assert!(!serde_json::to_string(&log).unwrap().contains(K1));
    s.shutdown().await;
}
