//! `POST /v2/assets/upload`: a presigned-looking upload URL and an asset id.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::Json;
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::routes::body::read_json;
use crate::state::Sim;

pub async fn upload(State(sim): State<Arc<Sim>>, req: Request) -> Result<Json<Value>, ApiError> {
    let body = read_json(req).await?;
    let id = sim.new_id();
    let name = body.get("fileName").or_else(|| body.get("filename")).and_then(Value::as_str).unwrap_or("upload.bin");
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
    let expires = crate::util::now_unix_ms() / 1000 + 3600;
    let sig = crate::util::webhook_v1("sync-sim-upload", expires, id.as_bytes());
    Ok(Json(json!({
        "uploadUrl": format!(
            "https://uploads.sync-sim.invalid/assets/{id}/{name}?X-Amz-Expires=3600&X-Amz-Date={expires}&X-Amz-Signature={sig}"
        ),
        "assetId": id,
    })))
}
