//! The Batch API: `POST /v2/batch`, `GET /v2/batch/{id}`, `GET /v2/batch`
//! (filters `status`, `created_after`, `created_before`, `limit`; newest
//! first), `GET /v2/batches/{id}/result` (a 302 to a signed URL), and the
//! signed URL itself (`/_sim/files/batches/{id}/result.jsonl`, no key: it
//! stands for the storage host a real result lives on).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::batch::{Batch, BatchStatus};
use crate::errors::ApiError;
use crate::gate::Caller;
use crate::routes::query;
use crate::state::{lock, Sim};

const SIGNING_KEY: &str = "sync-sim-batch-result";

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("Batch {id} not found"))
}

/// `POST /v2/batch`.
pub async fn create(State(sim): State<Arc<Sim>>, Extension(caller): Extension<Caller>, req: Request) -> Response {
    let cfg = sim.cfg();
    if !cfg.batches_enabled {
        lock(&sim.store).account(&caller.key).batch_plan_refused += 1;
        return ApiError::plan_required().into_response();
    }
    let parsed = match crate::batch_input::read(req, &caller.key).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if parsed.dry_run {
        return Json(json!({"status": "VALIDATED"})).into_response();
    }
    let cfg = sim.cfg();
    let mut store = lock(&sim.store);
    let acct = store.account(&caller.key);
    if acct.batches_open >= cfg.batch_concurrency {
        acct.batch_concurrency_limited += 1;
        return ApiError::batch_concurrency_limited(cfg.batch_concurrency).into_response();
    }
    let v = crate::lifecycle::insert_batch_locked(&sim, &mut store, &caller.key, parsed.lines, parsed.webhook_url);
    (StatusCode::CREATED, Json(v)).into_response()
}

/// `GET /v2/batch/{id}`.
pub async fn get_one(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = lock(&sim.store);
    let b = store.batches.get(&id).filter(|b| b.key == caller.key).ok_or_else(|| unknown(&id))?;
    Ok(Json(b.to_json()))
}

/// A `created_after` / `created_before` value: RFC 3339 or Unix ms.
fn instant(v: &str) -> Option<u64> {
    if let Ok(n) = v.trim().parse::<u64>() {
        return Some(n);
    }
    chrono::DateTime::parse_from_rfc3339(v.trim()).ok().map(|d| d.timestamp_millis().max(0) as u64)
}

/// `GET /v2/batch`: the key's batches, newest first.
pub async fn list(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query::pairs(raw.as_deref());
    let mut statuses = Vec::new();
    for s in query::multi(&q, "status") {
        statuses.push(BatchStatus::parse(&s).ok_or_else(|| ApiError::invalid(format!("Unknown status '{s}'")))?);
    }
    let bound = |name: &str| -> Result<Option<u64>, ApiError> {
        match query::one(&q, name) {
            None => Ok(None),
            Some(v) => instant(v).map(Some).ok_or_else(|| ApiError::invalid(format!("'{name}' must be a date"))),
        }
    };
    let after = bound("created_after")?;
    let before = bound("created_before")?;
    let limit = match query::one(&q, "limit") {
        None => 100,
        Some(v) => {
            query::int_in(v, 1, 100).ok_or_else(|| ApiError::invalid("'limit' must be an integer from 1 to 100"))?
        }
    };
    let store = lock(&sim.store);
    let mut items: Vec<&Batch> = store
        .batches
        .values()
        .filter(|b| b.key == caller.key)
        .filter(|b| statuses.is_empty() || statuses.contains(&b.status))
        .filter(|b| after.is_none_or(|t| b.created_ms > t))
        .filter(|b| before.is_none_or(|t| b.created_ms < t))
        .collect();
    items.sort_by_key(|b| std::cmp::Reverse(b.seq));
    Ok(Json(Value::Array(items.into_iter().take(limit as usize).map(Batch::to_json).collect())))
}

/// `GET /v2/batches/{id}/result`: 302 to a signed URL once terminal.
pub async fn result(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = lock(&sim.store);
    let b = store.batches.get(&id).filter(|b| b.key == caller.key).ok_or_else(|| unknown(&id))?;
    if !b.status.is_terminal() {
        return Err(ApiError::conflict(
            "batch_not_completed",
            format!("Batch {id} is {} and has no result yet", b.status.as_str()),
        ));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let expires = crate::util::now_unix_ms() / 1000 + 3600;
    let sig = crate::util::webhook_v1(SIGNING_KEY, expires, id.as_bytes());
    let url =
        format!("http://{host}/_sim/files/batches/{id}/result.jsonl?X-Amz-Expires={expires}&X-Amz-Signature={sig}");
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

/// The signed result file (no key; the signature and expiry are checked).
pub async fn result_file(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query::pairs(raw.as_deref());
    let expires = query::one(&q, "X-Amz-Expires").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let sig = query::one(&q, "X-Amz-Signature").unwrap_or("");
    let forbidden = || ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Signature does not match or has expired");
    if expires < crate::util::now_unix_ms() / 1000
        || sig != crate::util::webhook_v1(SIGNING_KEY, expires, id.as_bytes())
    {
        return Err(forbidden());
    }
    let store = lock(&sim.store);
    let b = store.batches.get(&id).ok_or_else(forbidden)?;
    let body = b.result_jsonl(&store.gens);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
