//! The lane's JSONL both ways: the input lines it builds from queued
//! bodies, and the result it reads back. The result is hostile input:
//! bodies over [`MAX_RESULT_BYTES`] are not read, at most
//! [`MAX_RESULT_LINES`] lines are taken, a line that does not parse or
//! names no `request_id` is skipped, and ids must look like ids.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ids::GenerationId;
use crate::lifecycle::status::GenerationStatus;

/// A result larger than this is not parsed (500 lines of a few hundred bytes).
pub const MAX_RESULT_BYTES: usize = 4 << 20;
/// Result lines read at most (Sync's batch maximum).
pub const MAX_RESULT_LINES: usize = 500;

/// One input line: the job's key as `request_id`, its body as `payload`.
/// `None` when the body is not a JSON object (it goes direct instead).
pub fn input_line(request_id: &str, body: &str) -> Option<String> {
    let payload: &RawValue = serde_json::from_str(body).ok()?;
    if !payload.get().trim_start().starts_with('{') {
        return None;
    }
    #[derive(serde::Serialize)]
    struct Line<'a> {
        request_id: &'a str,
        endpoint: &'static str,
        payload: &'a RawValue,
    }
    serde_json::to_string(&Line { request_id, endpoint: "/v2/generate", payload }).ok()
}

/// What one result line says of its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    pub request_id: String,
    /// The generation the batch made for it (none: the line was rejected).
    pub generation: Option<GenerationId>,
    pub status: Option<GenerationStatus>,
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    request_id: Option<String>,
    #[serde(default)]
    generation_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
}

/// The lines of a result JSONL (bounded; bad lines skipped).
pub fn result_lines(body: &str) -> Vec<ResultLine> {
    if body.len() > MAX_RESULT_BYTES {
        return Vec::new();
    }
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Raw>(l).ok())
        .filter_map(|r| {
            let request_id = r.request_id.filter(|id| crate::ids::is_sync_id(id))?;
            let generation = r.generation_id.as_deref().and_then(GenerationId::parse);
            let status = r.status.as_deref().map(GenerationStatus::parse);
            let error = r.error_code.map(|c| c.chars().filter(|c| c.is_ascii_graphic()).take(64).collect());
            Some(ResultLine { request_id, generation, status, error })
        })
        .take(MAX_RESULT_LINES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_carry_the_body_as_it_is() {
        let l = input_line("sync-governor-tk_1", r#"{"model":"m","input":[]}"#).unwrap();
        assert_eq!(
            l,
            r#"{"request_id":"sync-governor-tk_1","endpoint":"/v2/generate","payload":{"model":"m","input":[]}}"#
        );
        assert_eq!(input_line("k", "[1]"), None);
        assert_eq!(input_line("k", "nope"), None);
    }

    #[test]
    fn results_are_bounded_and_tolerant() {
        let body = concat!(
            r#"{"request_id":"a","generation_id":"g1","status":"COMPLETED"}"#,
            "\n",
            r#"{"request_id":"b","generation_id":null,"status":"REJECTED","error_code":"input_too_long"}"#,
            "\n",
            "not json\n",
            r#"{"request_id":"../x","generation_id":"g"}"#,
            "\n",
            r#"{"request_id":"c","generation_id":"../g","status":"FAILED"}"#,
        );
        let lines = result_lines(body);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].generation.as_ref().map(GenerationId::as_str), Some("g1"));
        assert_eq!(lines[0].status, Some(GenerationStatus::Completed));
        assert_eq!(lines[1].generation, None);
        assert_eq!(lines[1].error.as_deref(), Some("input_too_long"));
        assert_eq!(lines[2].generation, None);
        let big = "x".repeat(MAX_RESULT_BYTES + 1);
        assert!(result_lines(&big).is_empty());
    }
}
