//! `POST /v2/generate`: JSON or multipart create, with idempotent replays and
//! the concurrency check.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::cost::is_model;
use crate::errors::ApiError;
use crate::gate::{Caller, FilesSeen};
use crate::generation::NewGeneration;
use crate::generation::{FilePart, Outcome};
use crate::routes::body::read_json;
use crate::state::{lock, Reservation, Sim};

/// Checks an `Idempotency-Key`: 1–128 chars of `[A-Za-z0-9._~-]`.
pub fn valid_idempotency_key(k: &str) -> bool {
    (1..=128).contains(&k.len())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if valid_idempotency_key(k) => Ok(Some(k.to_string())),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._~-]",
        )),
    }
}

/// The handler.
pub async fn create(State(sim): State<Arc<Sim>>, Extension(caller): Extension<Caller>, req: Request) -> Response {
    match create_inner(sim, caller, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn create_inner(sim: Arc<Sim>, caller: Caller, req: Request) -> Result<Response, ApiError> {
    let key = caller.key;
    let ikey = idempotency_key(req.headers())?;
    if let Some(ik) = &ikey {
        if let Some(existing) = replay(&sim, &key, ik) {
            return Ok((StatusCode::OK, Json(existing)).into_response());
        }
    }
    let cfg = sim.cfg();
    let Some(reservation) = Reservation::try_new(&sim, &key, cfg.concurrency) else {
        return Err(ApiError::concurrency_limited(cfg.concurrency));
    };

    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    let (body, files) = if is_multipart { read_multipart(req).await? } else { (read_json(req).await?, Vec::new()) };
    let mut ng = validate(body, &files, &key)?;
    ng.files = files.clone();

    let mut store = lock(&sim.store);
    if let Some(ik) = &ikey {
        let id = store.idempotency.get(&(key.clone(), ik.clone())).cloned();
        if let Some(g) = id.and_then(|id| store.gens.get(&id)) {
            let existing = g.to_json();
            reservation.release_locked(&mut store);
            return Ok((StatusCode::OK, Json(existing)).into_response());
        }
    }
    reservation.release_locked(&mut store);
    let cfg = sim.cfg();
    let g = crate::lifecycle::insert_locked(&sim, &mut store, ng, &cfg);
    if let Some(ik) = ikey {
        store.idempotency.insert((key, ik), g.id.clone());
    }
    drop(store);
    let mut resp = (StatusCode::CREATED, Json(g.to_json())).into_response();
    if !files.is_empty() {
        resp.extensions_mut().insert(FilesSeen(files));
    }
    Ok(resp)
}

fn replay(sim: &Sim, key: &str, ik: &str) -> Option<Value> {
    let store = lock(&sim.store);
    let id = store.idempotency.get(&(key.to_string(), ik.to_string()))?;
    store.gens.get(id).map(|g| g.to_json())
}

/// Streams a multipart body: text fields are kept, file parts are hashed
/// chunk by chunk and only their name, length and sha256 are kept.
async fn read_multipart(req: Request) -> Result<(Value, Vec<FilePart>), ApiError> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::invalid(format!("Invalid multipart body: {}", e.body_text())))?;
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut files = Vec::new();
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::invalid(format!("Invalid multipart body: {}", e.body_text()))
    };
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        if filename.is_some() || matches!(name.as_str(), "video" | "image" | "audio") {
            let content_type = field.content_type().map(str::to_string);
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                hasher.update(&chunk);
                bytes += chunk.len() as u64;
            }
            files.push(FilePart { field: name, filename, content_type, bytes, sha256: hex::encode(hasher.finalize()) });
        } else {
            let text = field.text().await.map_err(bad)?;
            fields.insert(name, text);
        }
    }
    let mut obj = Map::new();
    for (name, text) in fields {
        let value = match name.as_str() {
            // Structured fields arrive as JSON strings.
            "input" | "options" | "segments" => serde_json::from_str::<Value>(&text)
                .map_err(|e| ApiError::invalid(format!("Field '{name}' is not valid JSON: {e}")))?,
            _ => Value::String(text),
        };
        obj.insert(name, value);
    }
    if !obj.contains_key("input") && !files.is_empty() {
        let items: Vec<Value> =
            files.iter().map(|f| json!({"type": f.field, "fileName": f.filename, "size": f.bytes})).collect();
        obj.insert("input".into(), Value::Array(items));
    }
    Ok((Value::Object(obj), files))
}

fn opt_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("'{name}' must be a string"))),
    }
}

/// Validates a create body (JSON or converted multipart).
pub fn validate(body: Value, files: &[FilePart], key: &str) -> Result<NewGeneration, ApiError> {
    let Value::Object(obj) = body else {
        return Err(ApiError::invalid("Request body must be a JSON object"));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if is_model(m) => m.clone(),
        Some(Value::String(m)) => return Err(ApiError::invalid(format!("Unknown model '{m}'"))),
        _ => return Err(ApiError::invalid("'model' is required")),
    };
    let input = match obj.get("input") {
        Some(Value::Array(items)) if !items.is_empty() => {
            if !items.iter().all(Value::is_object) {
                return Err(ApiError::invalid("Each 'input' item must be an object"));
            }
            Value::Array(items.clone())
        }
        Some(Value::Array(_)) => return Err(ApiError::invalid("'input' must not be empty")),
        Some(_) => return Err(ApiError::invalid("'input' must be an array")),
        None => return Err(ApiError::invalid("'input' is required")),
    };
    let options = match obj.get("options") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::invalid("'options' must be an object")),
    };
    let duration_ms = match options.get("sim_duration_ms") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 && n.is_finite() => Some(n as u64),
            _ => return Err(ApiError::invalid("'options.sim_duration_ms' must be a non-negative number")),
        },
    };
    let webhook_url = opt_string(&obj, "webhookUrl")?;
    if let Some(u) = &webhook_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(ApiError::invalid("'webhookUrl' must be an http(s) URL"));
        }
    }
    let output_file_name = opt_string(&obj, "outputFileName")?;
    let project_id = opt_string(&obj, "projectId")?;
    let urls = input.as_array().into_iter().flatten().filter_map(|i| i.get("url").and_then(Value::as_str));
    let names = files.iter().filter_map(|f| f.filename.as_deref());
    let outcome = Outcome::from_inputs(urls.chain(names));
    let media_seconds = crate::cost::media_seconds(&Value::Object(obj.clone())).map_err(ApiError::invalid)?;
    Ok(NewGeneration {
        key: key.to_string(),
        model,
        input,
        options,
        segments: obj.get("segments").cloned().unwrap_or(Value::Null),
        webhook_url,
        output_file_name,
        project_id,
        files: Vec::new(),
        source: "api",
        batch_id: None,
        duration_ms,
        outcome,
        media_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys() {
        assert!(valid_idempotency_key("abc-._~XYZ09"));
        assert!(valid_idempotency_key(&"a".repeat(128)));
        assert!(!valid_idempotency_key(&"a".repeat(129)));
        assert!(!valid_idempotency_key(""));
        assert!(!valid_idempotency_key("a b"));
        assert!(!valid_idempotency_key("a/b"));
    }

    #[test]
    fn validation() {
        let ok = json!({"model":"lipsync-2","input":[{"type":"video","url":"https://x/fail.mp4"}],
                        "options":{"sim_duration_ms":100}});
        let ng = validate(ok, &[], "k").unwrap();
        assert_eq!(ng.outcome, Outcome::Fail);
        assert_eq!(ng.duration_ms, Some(100));
        assert!(validate(json!({"model":"nope","input":[{}]}), &[], "k").is_err());
        assert!(validate(json!({"model":"sync-3"}), &[], "k").is_err());
        assert!(validate(json!({"model":"sync-3","input":[]}), &[], "k").is_err());
        use crate::routes::body::parse_json_object;
        assert!(parse_json_object(b"{nope").is_err());
        assert!(parse_json_object(b"[1]").is_err());
    }
}
