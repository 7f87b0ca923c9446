//! Catalogues and estimates: `GET /v2/models`, `GET /v2/errors` (no auth),
//! `POST /v2/analyze/cost`, `POST /v2/generations/estimate` and its alias.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::cost::{self, MODELS};
use crate::errors::ApiError;
use crate::routes::body::read_json;
use crate::state::Sim;

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

/// The `estimate_status` knob: the estimate endpoints fail as configured.
fn knob_failure(sim: &Sim) -> Result<(), ApiError> {
    let status = sim.cfg().estimate_status;
    if status == 0 {
        return Ok(());
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    Err(ApiError::new(code, "estimate_unavailable", "Simulated estimate failure (estimate_status)"))
}

/// `POST /v2/analyze/cost`: the generate body unchanged (validated as a
/// create is) → `[{"estimatedFrameCount", "estimatedGenerationCost"}]` for
/// its media length ([`crate::cost`]).
pub async fn analyze_cost(State(sim): State<Arc<Sim>>, req: Request) -> Result<Json<Value>, ApiError> {
    knob_failure(&sim)?;
    let body = read_json(req).await?;
    let ng = crate::routes::generate::validate(body, &[], "")?;
    let (frames, cost) = cost::estimate(&ng.model, ng.media_seconds)
        .ok_or_else(|| ApiError::invalid(format!("Unknown model '{}'", ng.model)))?;
    Ok(Json(json!([{"estimatedFrameCount": frames, "estimatedGenerationCost": cost}])))
}

/// `POST /v2/generations/estimate` (and `/v2/generate/estimate-cost`):
/// `{model, duration, fps?}` (seconds) → `{estimatedFrameCount,
/// estimatedGenerationCost, estimatedCredits}`.
pub async fn estimate(State(sim): State<Arc<Sim>>, req: Request) -> Result<Json<Value>, ApiError> {
    knob_failure(&sim)?;
    let body = read_json(req).await?;
    let model = match body.get("model") {
        Some(Value::String(m)) => m.as_str(),
        None | Some(Value::Null) => return Err(ApiError::invalid("'model' is required")),
        Some(_) => return Err(ApiError::invalid("'model' must be a string")),
    };
    let duration = match body.get("duration").map(Value::as_f64) {
        Some(Some(d)) if d.is_finite() && (0.0..=cost::MAX_SECONDS).contains(&d) => d,
        Some(_) => return Err(ApiError::invalid("'duration' must be a number of seconds")),
        None => return Err(ApiError::invalid("'duration' is required")),
    };
    let fps = match body.get("fps") {
        None | Some(Value::Null) => cost::FPS,
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite() && *f > 0.0 && *f <= 240.0)
            .ok_or_else(|| ApiError::invalid("'fps' must be a number from 1 to 240"))?,
    };
    let (_, usd) =
        cost::estimate(model, duration).ok_or_else(|| ApiError::invalid(format!("Unknown model '{model}'")))?;
    let frames = (duration * fps).round() as u64;
    Ok(Json(
        json!({"estimatedFrameCount": frames, "estimatedGenerationCost": usd, "estimatedCredits": (usd * 100.0).round()}),
    ))
}
