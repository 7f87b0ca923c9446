//! The `/_sim/*` control plane (no auth, not logged): health, stats, request
//! and webhook logs, live configuration, outside usage, reset.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::ConfigPatch;
use crate::errors::ApiError;
use crate::generation::NewGeneration;
use crate::generation::Outcome;
use crate::reqlog::mask_key;
use crate::routes::query;
use crate::state::{lock, Sim};

pub async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

pub async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(crate::stats::render(&sim))
}

fn limit_param(raw: Option<&str>) -> Result<usize, ApiError> {
    let q = query::pairs(raw);
    match query::one(&q, "limit") {
        None => Ok(50),
        Some(v) => query::int_in(v, 0, 1000)
            .map(|n| n as usize)
            .ok_or_else(|| ApiError::invalid("'limit' must be an integer from 0 to 1000")),
    }
}

/// `GET /_sim/requests?limit=N`: the last N requests, oldest first.
pub async fn requests(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let n = limit_param(raw.as_deref())?;
    let entries = lock(&sim.reqlog).last(n);
    Ok(Json(serde_json::to_value(entries).unwrap_or(Value::Null)))
}

/// `GET /_sim/webhooks?limit=N`: the last N deliveries, oldest first.
pub async fn webhooks(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let n = limit_param(raw.as_deref())?;
    let log = lock(&sim.webhooks);
    let skip = log.deliveries.len().saturating_sub(n);
    let items: Vec<&crate::webhook_log::Delivery> = log.deliveries.iter().skip(skip).collect();
    Ok(Json(serde_json::to_value(items).unwrap_or(Value::Null)))
}

pub async fn get_config(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(sim.cfg().to_json())
}

/// `POST /_sim/config`: applies a partial update at once.
pub async fn set_config(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let patch: ConfigPatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("Bad config: {e}")))?;
    let mut cfg = sim.config.write().unwrap_or_else(|e| e.into_inner());
    cfg.apply(patch).map_err(ApiError::invalid)?;
    Ok(Json(cfg.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutsideReq {
    key: String,
    #[serde(default = "one")]
    count: u32,
    duration_ms: Option<u64>,
    /// Create even past the concurrency limit.
    #[serde(default)]
    force: bool,
}

fn one() -> u32 {
    1
}

/// `POST /_sim/outside`: generations created by "another client" of a key.
/// Like a real client they are refused past the key's concurrency limit,
/// unless `force` is set.
pub async fn outside(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: OutsideReq = serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("Bad request: {e}")))?;
    if !sim.is_known_key(&req.key) {
        return Err(ApiError::invalid("Unknown key"));
    }
    if req.count > 1000 {
        return Err(ApiError::invalid("'count' must be at most 1000"));
    }
    let cfg = sim.cfg();
    let mut store = lock(&sim.store);
    let mut ids = Vec::new();
    let mut refused = 0u32;
    for _ in 0..req.count {
        let acct = store.account(&req.key);
        if !req.force && acct.active + acct.reserved >= cfg.concurrency {
            refused += 1;
            continue;
        }
        let ng = NewGeneration {
            key: req.key.clone(),
            model: "lipsync-2".into(),
            input: json!([
                {"type": "video", "url": "https://outside.sync-sim.invalid/video.mp4"},
                {"type": "audio", "url": "https://outside.sync-sim.invalid/audio.wav"}
            ]),
            options: json!({}),
            segments: Value::Null,
            webhook_url: None,
            output_file_name: None,
            project_id: None,
            files: Vec::new(),
            source: "outside",
            batch_id: None,
            duration_ms: req.duration_ms,
            outcome: Outcome::Complete,
            media_seconds: 10.0,
        };
        ids.push(crate::lifecycle::insert_locked(&sim, &mut store, ng, &cfg).id);
    }
    Ok(Json(json!({"ids": ids, "refused": refused})))
}

/// `POST /_sim/reset`.
pub async fn reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.reset();
    Json(json!({"ok": true}))
}

/// `GET /_sim/generations/{id}`: any key's generation, with simulator-only
/// details (owner, source, uploaded file digests).
pub async fn generation(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let store = lock(&sim.store);
    let g = store.gens.get(&id).ok_or_else(|| ApiError::not_found("Unknown generation"))?;
    Ok(Json(json!({
        "generation": g.to_json(),
        "key": mask_key(&g.key),
        "source": g.source,
        "files": g.files,
    })))
}
