//! Reading Sync's batch answers. Everything here is hostile input: bodies
//! over [`MAX_BODY`] are not read, at most [`MAX_SEEN`] batches are taken
//! from one answer, ids must look like ids, and a status the governor does
//! not know keeps the permit (never guess that a batch ended).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lifecycle::status::BatchStatus;

/// Answers larger than this are not parsed (a batch list of 100 is far smaller).
pub const MAX_BODY: usize = 1 << 20;
/// Batches taken from one answer at most.
pub const MAX_SEEN: usize = 500;

/// A batch seen in an answer: its id, whether it ended, and how many of its
/// generations may still run (`metrics.pending_count`, if given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenBatch {
    pub id: String,
    pub terminal: bool,
    #[serde(default)]
    pub pending: Option<u32>,
}

/// What Sync's answer to `POST /v2/batch` means for its permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateAnswer {
    /// A batch was created (possibly already ended).
    Created(SeenBatch),
    /// `dry_run`: validated, nothing created.
    Validated,
    /// A 4xx other than 429 (400, 401, 402, 413): nothing was created.
    Refused { status: u16 },
    /// 429 `concurrency_limit_reached`: the batch cap is lower than thought.
    ConcurrencyLimited,
    /// Another 429: the request rate.
    RateLimited,
    /// 5xx, a timeout, a 2xx without an id: a batch may exist.
    Unknown,
}

fn batch(v: &Value) -> Option<SeenBatch> {
    let id = v.get("id")?.as_str().filter(|id| crate::ids::is_sync_id(id))?;
    let status = v.get("status")?.as_str()?;
    let pending =
        v.pointer("/metrics/pending_count").and_then(Value::as_u64).map(|n| n.min(u64::from(u32::MAX)) as u32);
    Some(SeenBatch { id: id.to_owned(), terminal: BatchStatus::parse(status).is_terminal(), pending })
}

/// The batches in a read's answer: one batch object, an array of them, or
/// an object with a `data` / `batches` array.
pub fn seen(body: &[u8]) -> Vec<SeenBatch> {
    if body.len() > MAX_BODY {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let items = match &v {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => match o.get("data").or_else(|| o.get("batches")) {
            Some(Value::Array(a)) => a.as_slice(),
            _ => std::slice::from_ref(&v),
        },
        _ => &[],
    };
    items.iter().take(MAX_SEEN).filter_map(batch).collect()
}

/// Sync's answer to a batch create.
pub fn after_create(status: u16, body: &[u8]) -> CreateAnswer {
    match status {
        200..=299 => {
            let v: Option<Value> = (body.len() <= MAX_BODY).then(|| serde_json::from_slice(body).ok()).flatten();
            match v {
                Some(v) if v.get("id").is_none() && v.get("status").and_then(Value::as_str) == Some("VALIDATED") => {
                    CreateAnswer::Validated
                }
                Some(v) => batch(&v).map_or(CreateAnswer::Unknown, CreateAnswer::Created),
                None => CreateAnswer::Unknown,
            }
        }
        429 => match crate::lifecycle::limited::limit_kind(body) {
            crate::lifecycle::limited::LimitKind::Concurrency => CreateAnswer::ConcurrencyLimited,
            crate::lifecycle::limited::LimitKind::Rate => CreateAnswer::RateLimited,
        },
        400..=499 => CreateAnswer::Refused { status },
        _ => CreateAnswer::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_answers() {
        let b = br#"{"id":"b-1","status":"PENDING","metrics":{"pending_count":20}}"#;
        assert_eq!(
            after_create(201, b),
            CreateAnswer::Created(SeenBatch { id: "b-1".into(), terminal: false, pending: Some(20) })
        );
        assert_eq!(after_create(200, br#"{"status":"VALIDATED"}"#), CreateAnswer::Validated);
        assert_eq!(after_create(200, b"{}"), CreateAnswer::Unknown);
        assert_eq!(after_create(200, br#"{"id":"../x","status":"PENDING"}"#), CreateAnswer::Unknown);
        assert_eq!(after_create(402, b"{}"), CreateAnswer::Refused { status: 402 });
        let limited = br#"{"statusCode":429,"errorCode":"concurrency_limit_reached"}"#;
        assert_eq!(after_create(429, limited), CreateAnswer::ConcurrencyLimited);
        assert_eq!(after_create(429, br#"{"errorCode":"rate_limit_exceeded"}"#), CreateAnswer::RateLimited);
        assert_eq!(after_create(503, b""), CreateAnswer::Unknown);
    }

    #[test]
    fn reads_are_bounded_and_tolerant() {
        let list = br#"[{"id":"a","status":"COMPLETED"},{"id":"b","status":"PROCESSING"},{"id":7},"x"]"#;
        let s = seen(list);
        assert_eq!(s.len(), 2);
        assert!(s[0].terminal && !s[1].terminal);
        assert_eq!(seen(br#"{"data":[{"id":"a","status":"FAILED"}]}"#).len(), 1);
        assert!(!seen(br#"{"id":"a","status":"weird"}"#)[0].terminal);
        assert!(seen(b"nope").is_empty());
        let many: Vec<Value> =
            (0..600).map(|i| serde_json::json!({"id": format!("b{i}"), "status":"PENDING"})).collect();
        assert_eq!(seen(serde_json::to_string(&many).unwrap().as_bytes()).len(), MAX_SEEN);
    }
}
