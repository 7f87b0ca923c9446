//! Errors in Sync's wire shape `{statusCode, errorCode, message, error}`, and
//! the catalogue served by `GET /v2/errors`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API error, rendered in Sync's JSON shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Missing or invalid API key (x-api-key)")
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn rate_limited() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", "Rate limit exceeded, please try again later")
    }
    pub fn concurrency_limited(limit: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "concurrency_limit_exceeded",
            format!("Concurrency limit of {limit} active generations reached for this plan"),
        )
    }
    /// Over the batch concurrency (`POST /v2/batch`).
    pub fn batch_concurrency_limited(limit: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "concurrency_limit_reached",
            format!("Batch concurrency limit of {limit} batches in progress reached for this plan"),
        )
    }
    /// A plan without the Batch API.
    pub fn plan_required() -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "plan_upgrade_required",
            "The Batch API is available on the Scale and Enterprise plans",
        )
    }
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "Service temporarily unavailable")
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16(),
            "errorCode": self.code,
            "message": self.message,
            "error": self.status.canonical_reason().unwrap_or("Error"),
        });
        (self.status, Json(body)).into_response()
    }
}

/// `(errorCode, statusCode, message)` for `GET /v2/errors`.
pub const CATALOGUE: &[(&str, u16, &str)] = &[
    ("invalid_request", 400, "The request is malformed or a parameter is invalid"),
    ("INVALID_IDEMPOTENCY_KEY", 400, "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._~-]"),
    ("unauthorized", 401, "Missing or invalid API key"),
    ("not_found", 404, "The resource does not exist"),
    ("generation_not_deletable_while_processing", 409, "Only terminal generations can be deleted"),
    ("generation_not_completed", 409, "The generation has no output yet"),
    ("plan_upgrade_required", 402, "The Batch API needs a Scale or Enterprise plan"),
    ("payload_too_large", 413, "The batch input exceeds 5 MB"),
    ("batch_not_completed", 409, "The batch has no result yet"),
    ("concurrency_limit_reached", 429, "Too many batches in progress for this plan"),
    ("rate_limit_exceeded", 429, "Too many requests for this API key"),
    ("concurrency_limit_exceeded", 429, "Too many active generations for this plan"),
    ("internal_server_error", 500, "Unexpected server error"),
    ("service_unavailable", 503, "Service temporarily unavailable"),
    ("generation_failed", 500, "The generation failed while processing its inputs"),
    ("generation_rejected", 422, "The inputs were rejected by moderation or validation"),
];

/// The catalogue as JSON.
pub fn catalogue_json() -> serde_json::Value {
    CATALOGUE
        .iter()
        .map(|(code, status, msg)| json!({"errorCode": code, "statusCode": status, "message": msg}))
        .collect()
}
