//! Catalogues and estimates: `GET /v2/models`, `GET /v2/errors` (no auth),
//! `POST /v2/generations/estimate` and its aliases.

use axum::extract::Request;
use axum::Json;
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::routes::generate::read_json;

/// `(model, description, simulated USD per output second)`.
pub const MODELS: &[(&str, &str, f64)] = &[
    ("sync-3", "Sync's newest studio-grade model", 0.133),
    ("lipsync-2", "Zero-shot lip-sync, natural speaking style", 0.04),
    ("lipsync-2-pro", "lipsync-2 with higher fidelity for close-ups", 0.067),
    ("lipsync-1.9.0-beta", "Fast, earlier generation model", 0.02),
    ("react-1", "Performance editing: emotions and head motion", 0.067),
];

pub fn is_model(m: &str) -> bool {
    MODELS.iter().any(|(id, _, _)| *id == m)
}

/// `GET /v2/models`.
pub async fn models() -> Json<Value> {
    Json(
        MODELS
            .iter()
            .map(|(id, desc, price)| json!({"id": id, "name": id, "description": desc, "pricePerSecond": price}))
            .collect(),
    )
}

/// `GET /v2/errors`.
pub async fn errors() -> Json<Value> {
    Json(crate::errors::catalogue_json())
}

/// Seconds to price: `durationSeconds`, `duration`, `options.duration`
/// (seconds), else 10.
fn duration_s(body: &Value) -> f64 {
    [body.get("durationSeconds"), body.get("duration"), body.get("options").and_then(|o| o.get("duration"))]
        .into_iter()
        .flatten()
        .find_map(Value::as_f64)
        .filter(|d| d.is_finite() && *d >= 0.0)
        .unwrap_or(10.0)
}

/// `POST /v2/generations/estimate` (and `/v2/generate/estimate-cost`,
/// `/v2/analyze/cost`).
pub async fn estimate(req: Request) -> Result<Json<Value>, ApiError> {
    let body = read_json(req).await?;
    let model = match body.get("model") {
        None | Some(Value::Null) => "lipsync-2",
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return Err(ApiError::invalid("'model' must be a string")),
    };
    let price = MODELS
        .iter()
        .find(|(id, _, _)| *id == model)
        .map(|(_, _, p)| *p)
        .ok_or_else(|| ApiError::invalid(format!("Unknown model '{model}'")))?;
    let cost = (price * duration_s(&body) * 10_000.0).round() / 10_000.0;
    Ok(Json(json!({"estimatedCost": cost, "currency": "USD"})))
}
