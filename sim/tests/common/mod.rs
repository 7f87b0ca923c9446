//! Shared helpers for the integration tests: each test starts its own
//! simulator on 127.0.0.1:0 and talks to it over real HTTP.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sync_sim::config::Config;
use sync_sim::Server;

pub const K1: &str = "sk-test-one";
pub const K2: &str = "sk-test-two";

/// A fast configuration: tiny durations, two keys, generous limits.
pub fn cfg() -> Config {
    Config { keys: vec![K1.into(), K2.into()], pending_ms: 20, processing_ms: 40, seed: Some(7), ..Config::default() }
}

pub async fn start(cfg: Config) -> Server {
    sync_sim::start(cfg, "127.0.0.1:0").await.expect("start simulator")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client")
}

pub fn body_for(url: &str) -> Value {
    json!({
        "model": "lipsync-2",
        "input": [{"type": "video", "url": url}, {"type": "audio", "url": "https://example.com/a.wav"}]
    })
}

pub async fn create(c: &reqwest::Client, base: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let r = c.post(format!("{base}/v2/generate")).header("x-api-key", key).json(body).send().await.expect("send");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn get(c: &reqwest::Client, base: &str, key: &str, path: &str) -> (StatusCode, Value) {
    let r = c.get(format!("{base}{path}")).header("x-api-key", key).send().await.expect("send");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// GET a URL without a key and decode its JSON body.
pub async fn get_json(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

pub async fn stats(c: &reqwest::Client, base: &str) -> Value {
    c.get(format!("{base}/_sim/stats")).send().await.expect("stats").json().await.expect("json")
}

pub async fn set_config(c: &reqwest::Client, base: &str, patch: Value) -> Value {
    let r = c.post(format!("{base}/_sim/config")).json(&patch).send().await.expect("config");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

pub async fn requests_log(c: &reqwest::Client, base: &str, n: usize) -> Vec<Value> {
    let v: Value =
        c.get(format!("{base}/_sim/requests?limit={n}")).send().await.expect("requests").json().await.expect("json");
    v.as_array().cloned().expect("array")
}

/// Polls `GET /v2/generate/{id}` until `status` or the deadline.
pub async fn wait_status(c: &reqwest::Client, base: &str, key: &str, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, g) = get(c, base, key, &format!("/v2/generate/{id}")).await;
        if g["status"] == status {
            return g;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {status}: {g}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts Sync's error shape and code.
pub fn assert_error(v: &Value, status: u16, code: &str) {
    assert_eq!(v["statusCode"], status, "{v}");
    assert_eq!(v["errorCode"], code, "{v}");
    assert!(v["message"].is_string(), "{v}");
    assert!(v["error"].is_string(), "{v}");
}

/// A webhook received by the test receiver.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A tiny loopback webhook receiver.
pub struct Receiver {
    pub url: String,
    pub hooks: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let h = hooks.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let h = h.clone();
                async move {
                    h.lock().unwrap().push(Hook { headers, body });
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url: format!("http://{addr}/hook"), hooks }
    }

    pub fn snapshot(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    /// Waits until at least `n` hooks arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Hook> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.snapshot();
            if got.len() >= n {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {} of {n} webhooks arrived", got.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
