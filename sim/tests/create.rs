//! Creates: JSON, multipart (streamed digests), idempotency.

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn json_create_returns_the_generation_object() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let body = json!({
        "model": "lipsync-2-pro",
        "input": [{"type": "video", "url": "https://x/v.mp4"}, {"type": "audio", "url": "https://x/a.wav"}],
        "options": {"sync_mode": "loop"},
        "webhookUrl": "http://127.0.0.1:9/hook",
        "outputFileName": "out"
    });
    let raw = serde_json::to_vec(&body).unwrap();
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["id"].as_str().unwrap().len(), 36);
    assert!(g["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(g["status"], "PENDING");
    assert_eq!(g["model"], "lipsync-2-pro");
    assert_eq!(g["input"], body["input"]);
    assert_eq!(g["options"], body["options"]);
    assert_eq!(g["webhookUrl"], "http://127.0.0.1:9/hook");
    assert_eq!(g["outputFileName"], "out");
    for k in ["outputUrl", "outputDuration", "error", "error_code", "segments"] {
        assert!(g[k].is_null(), "{k}");
    }
    let log = requests_log(&c, &base, 1).await;
    assert_eq!(log[0]["body_len"], raw.len());
    assert_eq!(log[0]["body_sha256"], hex::encode(Sha256::digest(&raw)));
    assert_eq!(log[0]["class"], "generate");
    assert_eq!(log[0]["status"], 201);
    s.shutdown().await;
}

fn multipart_body(boundary: &str, video: &[u8], audio: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    let text = |name: &str, value: &str, b: &mut Vec<u8>| {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    };
    text("model", "lipsync-2", &mut b);
    text("webhookUrl", "http://127.0.0.1:9/hook", &mut b);
    for (name, file, data) in [("video", "clip.mp4", video), ("audio", "voice.wav", audio)] {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

#[tokio::test]
async fn multipart_create_digests_files_and_body() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    // ~3 MiB of video: larger than any default body limit, streamed through.
    let video: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let audio: Vec<u8> = b"RIFF fake wav".repeat(1000);
    let boundary = "sim-boundary-1234";
    let raw = multipart_body(boundary, &video, &audio);
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["model"], "lipsync-2");
    assert_eq!(g["webhookUrl"], "http://127.0.0.1:9/hook");
    assert_eq!(g["input"][0]["type"], "video");
    assert_eq!(g["input"][0]["fileName"], "clip.mp4");

    let log = requests_log(&c, &base, 1).await;
    let e = &log[0];
    assert_eq!(e["body_len"], raw.len());
    assert_eq!(e["body_sha256"], hex::encode(Sha256::digest(&raw)));
    let files = e["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["field"], "video");
    assert_eq!(files[0]["filename"], "clip.mp4");
    assert_eq!(files[0]["bytes"], video.len());
    assert_eq!(files[0]["sha256"], hex::encode(Sha256::digest(&video)));
    assert_eq!(files[1]["field"], "audio");
    assert_eq!(files[1]["sha256"], hex::encode(Sha256::digest(&audio)));

    // The same digests are kept on the generation.
    let id = g["id"].as_str().unwrap();
    let d: Value = get_json(&c, format!("{base}/_sim/generations/{id}")).await;
    assert_eq!(d["files"][0]["sha256"], files[0]["sha256"]);
    assert_eq!(d["source"], "api");

    // reqwest's own multipart with an input JSON field also works.
    let form = reqwest::multipart::Form::new()
        .text("model", "sync-3")
        .text("input", r#"[{"type":"video","url":"https://x/v.mp4"},{"type":"audio","url":"https://x/a.wav"}]"#)
        .part("video", reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("v.mp4"));
    let r = c.post(format!("{base}/v2/generate")).header("x-api-key", K1).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    assert_eq!(g["input"][1]["url"], "https://x/a.wav");

    // Multipart without model is refused.
    let form = reqwest::multipart::Form::new()
        .part("video", reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("v.mp4"));
    let r = c.post(format!("{base}/v2/generate")).header("x-api-key", K1).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), 400, "invalid_request");
    s.shutdown().await;
}

#[tokio::test]
async fn unauthorized_uploads_are_still_digested() {
    let s = start(cfg()).await;
    let c = client();
    let base = s.url();
    let raw = vec![7u8; 200_000];
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", "bad")
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let log = requests_log(&c, &base, 1).await;
    assert_eq!(log[0]["body_len"], raw.len());
    assert_eq!(log[0]["body_sha256"], hex::encode(Sha256::digest(&raw)));
    assert_eq!(log[0]["headers"]["x-api-key"], "bad…");
    s.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_replays_without_new_generation_or_slot() {
    let mut conf = cfg();
    conf.concurrency = 1;
    conf.pending_ms = 400;
    let s = start(conf).await;
    let c = client();
    let base = s.url();
    let send = |ik: &'static str, key: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = c
                .post(format!("{base}/v2/generate"))
                .header("x-api-key", key)
                .header("Idempotency-Key", ik)
                .json(&body_for("https://x/v.mp4"))
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let (st1, g1) = send("order-42.a_b~c", K1).await;
    assert_eq!(st1, 201);
    // Replay: same object, 200, even though the only slot is taken.
    let (st2, g2) = send("order-42.a_b~c", K1).await;
    assert_eq!(st2, 200);
    assert_eq!(g2["id"], g1["id"]);
    // A different key (idempotency is per API key) is a new create.
    let (st3, g3) = send("order-42.a_b~c", K2).await;
    assert_eq!(st3, 201);
    assert_ne!(g3["id"], g1["id"]);
    // A new idempotency key on K1 hits the concurrency limit.
    let (st4, v4) = send("other", K1).await;
    assert_eq!(st4, 429);
    assert_error(&v4, 429, "concurrency_limit_exceeded");

    for bad in ["has space", "slash/", "ü"] {
        let r = c
            .post(format!("{base}/v2/generate"))
            .header("x-api-key", K1)
            .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap())
            .json(&body_for("https://x/v.mp4"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_error(&r.json().await.unwrap(), 400, "INVALID_IDEMPOTENCY_KEY");
    }
    let long = "a".repeat(129);
    let r = c
        .post(format!("{base}/v2/generate"))
        .header("x-api-key", K1)
        .header("Idempotency-Key", long)
        .json(&body_for("https://x/v.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["created"], 1);
    assert_eq!(st["keys"][K1]["concurrency_limited"], 1);
    assert_eq!(st["keys"][K1]["requests"]["generate"], 7);
    assert_eq!(st["keys"][K2]["created"], 1);
    s.shutdown().await;
}
