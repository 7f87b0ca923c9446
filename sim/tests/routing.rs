//! Lenient routing (the default): paths in any case and with one trailing
//! slash reach the same handler and spend the same budget, as on Express;
//! what Express would not match is still a 404. Strict routing turns it off.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn lenient_by_default_strict_on_request() {
    let sim = start(cfg()).await;
    let base = sim.url();
    let c = client();
    let body = body_for("https://example.com/v.mp4");
    let send = |path: &'static str| {
        let c = c.clone();
        let body = body.clone();
        let url = format!("{base}{path}");
        async move { c.post(url).header("x-api-key", K1).json(&body).send().await.expect("send").status().as_u16() }
    };
    assert_eq!(send("/v2/Generate/").await, 201);
    assert_eq!(send("/v2/GENERATE").await, 201);
    for odd in ["/v2//generate", "/v2/generate;x", "/v2/generate%2F", "/v2/generate//"] {
        assert_eq!(send(odd).await, 404, "{odd}");
    }
    let st = stats(&c, &base).await;
    assert_eq!(st["totals"]["requests"]["generate"], 2, "{st}");
    // The log keeps the path as sent.
    let log = requests_log(&c, &base, 10).await;
    assert_eq!(log[0]["path"], "/v2/Generate/");
    assert_eq!(log[0]["class"], "generate");

    set_config(&c, &base, json!({"lenient_routing": false})).await;
    assert_eq!(send("/v2/Generate/").await, 404);
    assert_eq!(send("/v2/generate").await, 201);
    sim.shutdown().await;
}
