//! Reading and deleting generations: get (with long-poll), list, count,
//! download, delete. A generation of another key is reported as unknown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::gate::Caller;
use crate::generation::{Generation, Status};
use crate::routes::query;
use crate::state::{lock, Sim};

/// Default long-poll timeout (seconds) when `wait=true` has no `timeout`.
pub const DEFAULT_WAIT_S: u64 = 10;

fn find(sim: &Sim, key: &str, id: &str) -> Option<Generation> {
    lock(&sim.store).gens.get(id).filter(|g| g.key == key).cloned()
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("Generation {id} not found"))
}

/// `GET /v2/generate/{id}[?wait=true&timeout=1..10]`.
pub async fn get_one(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query::pairs(raw.as_deref());
    let wait = matches!(query::one(&q, "wait"), Some(v) if v.eq_ignore_ascii_case("true") || v == "1");
    let timeout = match query::one(&q, "timeout") {
        None => DEFAULT_WAIT_S,
        Some(v) => {
            query::int_in(v, 1, 10).ok_or_else(|| ApiError::invalid("'timeout' must be an integer from 1 to 10"))?
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut changes = sim.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let g = find(&sim, &caller.key, &id).ok_or_else(|| unknown(&id))?;
        if !wait || g.status.is_terminal() {
            return Ok(Json(g.to_json()));
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(Json(g.to_json()));
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let g = find(&sim, &caller.key, &id).ok_or_else(|| unknown(&id))?;
                return Ok(Json(g.to_json()));
            }
        }
    }
}

/// `GET /v2/generations?status=&ids=&limit=&cursor=`: newest first.
pub async fn list(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query::pairs(raw.as_deref());
    let mut statuses = Vec::new();
    for s in query::multi(&q, "status") {
        statuses.push(Status::parse(&s).ok_or_else(|| ApiError::invalid(format!("Unknown status '{s}'")))?);
    }
    let ids = query::multi(&q, "ids");
    let limit = match query::one(&q, "limit") {
        None => None,
        Some(v) => Some(
            query::int_in(v, 1, 100).ok_or_else(|| ApiError::invalid("'limit' must be an integer from 1 to 100"))?,
        ),
    };
    let cursor = query::one(&q, "cursor").filter(|c| !c.is_empty());
    if cursor.is_some() && limit.is_none() {
        return Err(ApiError::invalid("'cursor' requires 'limit'"));
    }
    let project = query::one(&q, "projectId");

    let store = lock(&sim.store);
    let before = match cursor {
        None => u64::MAX,
        Some(c) => match store.gens.get(c).filter(|g| g.key == caller.key) {
            Some(g) => g.seq,
            None => return Err(ApiError::invalid(format!("Unknown cursor '{c}'"))),
        },
    };
    let mut items: Vec<&Generation> = store
        .gens
        .values()
        .filter(|g| g.key == caller.key && g.seq < before)
        .filter(|g| statuses.is_empty() || statuses.contains(&g.status))
        .filter(|g| ids.is_empty() || ids.contains(&g.id))
        .filter(|g| project.is_none() || g.project_id.as_deref() == project)
        .collect();
    items.sort_by_key(|g| std::cmp::Reverse(g.seq));
    let n = limit.map(|l| l as usize).unwrap_or(usize::MAX);
    Ok(Json(Value::Array(items.into_iter().take(n).map(Generation::to_json).collect())))
}

/// `GET /v2/generations/count`: `{"PENDING":n,...}` for all statuses.
pub async fn count(State(sim): State<Arc<Sim>>, Extension(caller): Extension<Caller>) -> Json<Value> {
    let store = lock(&sim.store);
    let mut out = Map::new();
    for st in Status::ALL {
        let n = store.gens.values().filter(|g| g.key == caller.key && g.status == st).count();
        out.insert(st.as_str().into(), json!(n));
    }
    Json(Value::Object(out))
}

/// `GET /v2/generations/{id}/download`: a signed-looking URL as text.
pub async fn download(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let g = find(&sim, &caller.key, &id).ok_or_else(|| unknown(&id))?;
    if g.status != Status::Completed {
        return Err(ApiError::conflict(
            "generation_not_completed",
            format!("Generation {id} is {} and has no output", g.status.as_str()),
        ));
    }
    let expires = crate::util::now_unix_ms() / 1000 + 3600;
    let sig = crate::util::webhook_v1("sync-sim-download", expires, id.as_bytes());
    let url = format!(
        "https://cdn.sync-sim.invalid/generations/{id}/output.mp4?X-Amz-Expires=3600&X-Amz-Date={expires}&X-Amz-Signature={sig}"
    );
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], url).into_response())
}

/// `DELETE /v2/generations/{id}`: only terminal generations.
pub async fn remove(
    State(sim): State<Arc<Sim>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut store = lock(&sim.store);
    let g = store.gens.get(&id).filter(|g| g.key == caller.key).ok_or_else(|| unknown(&id))?;
    if !g.status.is_terminal() {
        return Err(ApiError::conflict(
            "generation_not_deletable_while_processing",
            format!("Generation {id} is {} and cannot be deleted yet", g.status.as_str()),
        ));
    }
    store.gens.remove(&id);
    Ok(Json(json!({})))
}
