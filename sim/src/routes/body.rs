//! Reading a JSON object body, bounded.

use axum::extract::Request;
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 32 * 1024 * 1024;

/// Reads a JSON object body.
pub async fn read_json(req: Request) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|_| ApiError::invalid("Request body could not be read or is too large"))?;
    parse_json_object(&bytes)
}

/// Parses bytes as a JSON object (an empty body is an empty object).
pub fn parse_json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::invalid("Request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("Malformed JSON: {e}"))),
    }
}
