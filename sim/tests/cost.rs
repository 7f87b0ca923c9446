//! Cost estimates (`POST /v2/analyze/cost`, `POST /v2/generations/estimate`)
//! and their knobs: the error between estimate and actual `outputDuration`,
//! failing estimate endpoints, and completions without `outputDuration`.

mod common;

use common::*;
use serde_json::{json, Value};

fn body(seconds: f64) -> Value {
    json!({
        "model": "lipsync-2",
        "input": [{"type": "video", "url": "https://x/v.mp4"}, {"type": "audio", "url": "https://x/a.wav"}],
        "options": {"sim_output_seconds": seconds}
    })
}

async fn post(c: &reqwest::Client, base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = c.post(format!("{base}{path}")).header("x-api-key", K1).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn analyze_cost_prices_the_generate_body_and_spends_other() {
    let s = start(cfg()).await;
    let (c, base) = (client(), s.url());
    let (st, v) = post(&c, &base, "/v2/analyze/cost", &body(10.0)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!([{"estimatedFrameCount": 250, "estimatedGenerationCost": 0.4}]));
    // Without the knob, the length comes from the input urls (3..30 s), the same each time.
    let plain = body_for("https://x/v.mp4");
    let (_, a) = post(&c, &base, "/v2/analyze/cost", &plain).await;
    let (_, b) = post(&c, &base, "/v2/analyze/cost", &plain).await;
    assert_eq!(a, b);
    let usd = a[0]["estimatedGenerationCost"].as_f64().unwrap();
    assert!((0.12..=1.2).contains(&usd), "{a}");
    // A body a create would refuse is refused here too.
    let (st, v) = post(&c, &base, "/v2/analyze/cost", &json!({"model": "nope", "input": [{}]})).await;
    assert_eq!(st, 400);
    assert_error(&v, 400, "invalid_request");
    let (st, _) = post(&c, &base, "/v2/generations/estimate", &json!({"model": "lipsync-2"})).await;
    assert_eq!(st, 400);
    let st = stats(&c, &base).await;
    assert_eq!(st["keys"][K1]["created"], 0);
    let log = requests_log(&c, &base, 10).await;
    assert!(log.iter().any(|r| r["path"] == "/v2/analyze/cost" && r["class"] == "other"), "{log:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn actual_output_duration_follows_the_error_knobs() {
    let s = start(cfg()).await;
    let (c, base) = (client(), s.url());
    // Exact by default: outputDuration is what the estimate priced.
    let (_, g) = create(&c, &base, K1, &body(10.0)).await;
    let done = wait_status(&c, &base, K1, g["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(done["outputDuration"], 10.0);
    // Bias: the output is 20 % longer than estimated.
    set_config(&c, &base, json!({"estimate_bias": 0.2})).await;
    let (_, g) = create(&c, &base, K1, &body(10.0)).await;
    let done = wait_status(&c, &base, K1, g["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(done["outputDuration"], 12.0);
    // Random error within ±10 % around the bias.
    set_config(&c, &base, json!({"estimate_bias": 0.0, "estimate_error": 0.1})).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (_, g) = create(&c, &base, K1, &body(10.0)).await;
        let done = wait_status(&c, &base, K1, g["id"].as_str().unwrap(), "COMPLETED").await;
        let d = done["outputDuration"].as_f64().unwrap();
        assert!((9.0..=11.0).contains(&d), "{d}");
        seen.push(d);
    }
    assert!(seen.iter().any(|d| *d != seen[0]), "{seen:?}");
    // Completions without outputDuration.
    set_config(&c, &base, json!({"report_output_duration": false})).await;
    let (_, g) = create(&c, &base, K1, &body(10.0)).await;
    let done = wait_status(&c, &base, K1, g["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(done["outputDuration"], Value::Null);
    s.shutdown().await;
}

#[tokio::test]
async fn estimate_endpoints_fail_on_the_knob() {
    let s = start(cfg()).await;
    let (c, base) = (client(), s.url());
    set_config(&c, &base, json!({"estimate_status": 503})).await;
    for path in ["/v2/analyze/cost", "/v2/generations/estimate"] {
        let (st, v) = post(&c, &base, path, &json!({"model": "lipsync-2", "duration": 3})).await;
        assert_eq!(st, 503, "{path}");
        assert_error(&v, 503, "estimate_unavailable");
    }
    set_config(&c, &base, json!({"estimate_status": 0})).await;
    let (st, v) =
        post(&c, &base, "/v2/generations/estimate", &json!({"model": "sync-3", "duration": 3, "fps": 30})).await;
    assert_eq!(st, 200);
    assert_eq!(v["estimatedFrameCount"], 90);
    assert_eq!(v["estimatedGenerationCost"], 0.399);
    s.shutdown().await;
}
