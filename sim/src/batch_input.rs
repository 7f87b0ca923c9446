//! Reading `POST /v2/batch`: a `multipart/form-data` body with the JSONL
//! file in `input` (alias `file`), `webhook_url` and `dry_run`. Bounded:
//! the file at 5 MB, every other field at 4 KiB, 20–500 lines. Each line is
//! `{"request_id", "endpoint": "/v2/generate", "payload": {…generate body…}}`
//! and its payload is validated as a create would be (so a dry run catches
//! what a create would refuse); a bad line refuses the whole batch with 400.

use std::collections::HashSet;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use serde_json::Value;

use crate::batch::Line;
use crate::errors::ApiError;
use crate::routes::generate::{valid_idempotency_key, validate};

/// Largest JSONL file accepted.
pub const MAX_INPUT_BYTES: usize = 5 * 1024 * 1024;
/// Largest other field.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
pub const MIN_LINES: usize = 20;
pub const MAX_LINES: usize = 500;

/// A parsed batch create.
#[derive(Debug)]
pub struct BatchRequest {
    pub lines: Vec<Line>,
    pub webhook_url: Option<String>,
    pub dry_run: bool,
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The batch input exceeds 5 MB")
}

/// Reads and validates the whole request.
pub async fn read(req: Request, key: &str) -> Result<BatchRequest, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::invalid("A batch is a multipart/form-data body with an 'input' JSONL file"));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::invalid(format!("Invalid multipart body: {}", e.body_text()))
    };
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::invalid(format!("Invalid multipart body: {}", e.body_text())))?;
    let mut input: Option<Vec<u8>> = None;
    let mut webhook_url = None;
    let mut dry_run = false;
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let limit = if matches!(name.as_str(), "input" | "file") { MAX_INPUT_BYTES } else { MAX_FIELD_BYTES };
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            if buf.len() + chunk.len() > limit {
                return Err(if limit == MAX_INPUT_BYTES {
                    too_large()
                } else {
                    ApiError::invalid(format!("Field '{name}' is too long"))
                });
            }
            buf.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "input" | "file" => {
                if input.is_some() {
                    return Err(ApiError::invalid("Only one 'input' file is accepted"));
                }
                input = Some(buf);
            }
            "webhook_url" => {
                let u = String::from_utf8(buf).map_err(|_| ApiError::invalid("'webhook_url' must be text"))?;
                let u = u.trim().to_string();
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(ApiError::invalid("'webhook_url' must be an http(s) URL"));
                }
                webhook_url = Some(u);
            }
            "dry_run" => {
                let v = String::from_utf8_lossy(&buf).trim().to_ascii_lowercase();
                dry_run = matches!(v.as_str(), "true" | "1");
            }
            _ => {}
        }
    }
    let input = input.ok_or_else(|| ApiError::invalid("'input' (a JSONL file) is required"))?;
    Ok(BatchRequest { lines: parse_lines(&input, key)?, webhook_url, dry_run })
}

/// Parses and validates the JSONL lines (blank lines are skipped).
pub fn parse_lines(input: &[u8], key: &str) -> Result<Vec<Line>, ApiError> {
    let text = std::str::from_utf8(input).map_err(|_| ApiError::invalid("The batch input must be UTF-8 JSONL"))?;
    let mut lines = Vec::new();
    let mut seen = HashSet::new();
    for (n, raw) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        if lines.len() >= MAX_LINES {
            return Err(ApiError::invalid(format!("A batch has at most {MAX_LINES} lines")));
        }
        let at = |m: &str| ApiError::invalid(format!("Line {}: {m}", n + 1));
        let v: Value = serde_json::from_str(raw).map_err(|e| at(&format!("malformed JSON: {e}")))?;
        let request_id = match v.get("request_id") {
            Some(Value::String(s)) if valid_idempotency_key(s) => s.clone(),
            _ => return Err(at("'request_id' must be 1-128 characters of [A-Za-z0-9._~-]")),
        };
        if !seen.insert(request_id.clone()) {
            return Err(at(&format!("duplicate request_id '{request_id}'")));
        }
        if v.get("endpoint").and_then(Value::as_str) != Some("/v2/generate") {
            return Err(at("'endpoint' must be \"/v2/generate\""));
        }
        let payload = v.get("payload").cloned().unwrap_or(Value::Null);
        let input_ms = payload.pointer("/options/sim_input_ms").and_then(Value::as_u64);
        let generation = validate(payload, &[], key).map_err(|e| at(&e.message))?;
        lines.push(Line { request_id, generation, input_ms, rejected: None, generation_id: None });
    }
    if lines.len() < MIN_LINES {
        return Err(ApiError::invalid(format!("A batch has at least {MIN_LINES} lines, this one has {}", lines.len())));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> String {
        format!(
            r#"{{"request_id":"r-{i}","endpoint":"/v2/generate","payload":{{"model":"lipsync-2","input":[{{"type":"video","url":"https://x/v.mp4"}}]}}}}"#
        )
    }

    #[test]
    fn bounds_and_shape() {
        let ok: String = (0..20).map(|i| line(i) + "\n").collect();
        assert_eq!(parse_lines(ok.as_bytes(), "k").unwrap().len(), 20);
        let few: String = (0..19).map(|i| line(i) + "\n").collect();
        assert!(parse_lines(few.as_bytes(), "k").is_err());
        let many: String = (0..501).map(|i| line(i) + "\n").collect();
        assert!(parse_lines(many.as_bytes(), "k").is_err());
        let dup: String = (0..20).map(|i| line(i.min(18)) + "\n").collect();
        assert!(parse_lines(dup.as_bytes(), "k").is_err());
        let wrong = ok.replacen("/v2/generate", "/v2/assets", 1);
        assert!(parse_lines(wrong.as_bytes(), "k").is_err());
        assert!(parse_lines(b"\xff\xfe", "k").is_err());
    }
}
