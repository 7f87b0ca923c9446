//! The front door, run before routing: request logging (with a streaming
//! body digest), then for limited classes auth → fault injection → rate check.
//! Concurrency is checked by the create handler, which knows about
//! idempotent replays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::generation::FilePart;
use crate::limits::Class;
use crate::reqlog::{headers_json, Entry};
use crate::routing::OriginalPath;
use crate::state::{lock, Sim};

/// The authenticated caller, for handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: String,
}

/// File parts a handler read, passed back to the log through the response.
#[derive(Debug, Clone)]
pub struct FilesSeen(pub Vec<FilePart>);

/// Middleware: see the module doc.
pub async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let class = Class::of(req.method(), req.uri().path());
    if class == Class::Sim {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at_ms = crate::util::now_unix_ms();
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    // As sent, before lenient routing rewrote it.
    let path = parts.extensions.get::<OriginalPath>().map_or_else(|| parts.uri.path().to_string(), |p| p.0.clone());
    let query = parts.uri.query().unwrap_or("").to_string();
    let headers = headers_json(&parts.headers);
    let api_key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let key_index = api_key.as_deref().and_then(|k| sim.key_index(k));
    let (body, digest) = tee(body);
    let mut req = Request::from_parts(parts, body);

    let mut resp = match class {
        Class::Public => next.run(req).await,
        _ => match admit(&sim, class, api_key.as_deref()).await {
            Ok(key) => {
                req.extensions_mut().insert(Caller { key });
                let stall = stall_ms(&sim.cfg(), req.method(), req.uri().path(), class);
                if stall > 0 {
                    // Accepted, then silence: a caller that gives up first
                    // drops this future, and nothing is created.
                    lock(&sim.store).stalled += 1;
                    tokio::time::sleep(Duration::from_millis(stall)).await;
                }
                next.run(req).await
            }
            Err(e) => {
                drop(req);
                e.into_response()
            }
        },
    };
    // The body pump finishes once the body is read to its end (it keeps
    // draining after the handler drops the request).
    let (body_len, body_sha256) = digest.await.unwrap_or((0, String::new()));
    let files = resp.extensions_mut().remove::<FilesSeen>().map(|f| f.0);
    let status = resp.status().as_u16();
    if sim.cfg().log_requests {
        eprintln!(
            "{method} {path} -> {status} class={} {}ms body={body_len}B",
            class.as_str(),
            started.elapsed().as_millis()
        );
    }
    lock(&sim.reqlog).push(Entry {
        method,
        path,
        query,
        headers,
        body_len,
        body_sha256,
        class: class.as_str(),
        key_index,
        status,
        at_ms,
        files,
    });
    resp
}

/// How long a request is held before it is handled (the `stall_*` knobs).
pub fn stall_ms(cfg: &crate::config::Config, method: &axum::http::Method, path: &str, class: Class) -> u64 {
    if class == Class::Generate {
        return cfg.stall_create_ms;
    }
    if method != axum::http::Method::GET {
        return 0;
    }
    if path == "/v2/generations" {
        cfg.stall_list_ms
    } else {
        cfg.stall_read_ms
    }
}

/// Auth, fault injection and the rate check, in that order.
async fn admit(sim: &Arc<Sim>, class: Class, api_key: Option<&str>) -> Result<String, ApiError> {
    let Some(key) = api_key.filter(|k| sim.is_known_key(k)) else {
        lock(&sim.store).unauthorized += 1;
        return Err(ApiError::unauthorized());
    };
    let Some(idx) = class.idx() else {
        return Ok(key.to_string());
    };
    lock(&sim.store).account(key).requests[idx] += 1;

    let cfg = sim.cfg();
    if cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.latency_ms)).await;
    }
    if sim.roll(cfg.error_rate) {
        lock(&sim.store).account(key).injected_5xx += 1;
        return Err(ApiError::unavailable());
    }
    if sim.roll(cfg.inject_429_rate) {
        lock(&sim.store).account(key).injected_429 += 1;
        return Err(ApiError::rate_limited());
    }
    let cfg = sim.cfg();
    let window = Duration::from_millis(cfg.window_ms);
    let limit = class.limit(&cfg);
    let mut store = lock(&sim.store);
    let acct = store.account(key);
    if !acct.logs[idx].try_accept(Instant::now(), window, limit) {
        acct.rate_limited[idx] += 1;
        return Err(ApiError::rate_limited());
    }
    Ok(key.to_string())
}

/// Splits a body into a pass-through body for the handler and a task that
/// hashes every byte (draining the rest if the handler stops reading), so
/// that uploads are digested without being held in memory.
fn tee(body: Body) -> (Body, tokio::task::JoinHandle<(u64, String)>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pump = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut tx = Some(tx);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    hasher.update(&b);
                    len += b.len() as u64;
                    if let Some(t) = &tx {
                        if t.send(Ok(b)).await.is_err() {
                            tx = None;
                        }
                    }
                }
                Err(e) => {
                    if let Some(t) = &tx {
                        let _ = t.send(Err(std::io::Error::other(e.to_string()))).await;
                    }
                    break;
                }
            }
        }
        (len, hex::encode(hasher.finalize()))
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    (Body::from_stream(stream), pump)
}
