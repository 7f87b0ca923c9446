//! The generation object: statuses, fields, and its JSON form.

use serde::Serialize;
use serde_json::{json, Value};

/// Sync's generation statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Processing,
    Completed,
    Failed,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::Pending, Status::Processing, Status::Completed, Status::Failed, Status::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Processing => "PROCESSING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::Processing)
    }
}

/// How a generation will end, decided from its inputs at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Fail,
    Reject,
}

impl Outcome {
    /// `reject` anywhere in an input url (or uploaded file name) rejects;
    /// `fail` fails; otherwise the generation completes.
    pub fn from_inputs<'a>(urls: impl IntoIterator<Item = &'a str>) -> Outcome {
        let mut out = Outcome::Complete;
        for u in urls {
            let u = u.to_ascii_lowercase();
            if u.contains("reject") {
                return Outcome::Reject;
            }
            if u.contains("fail") {
                out = Outcome::Fail;
            }
        }
        out
    }
}

/// One uploaded file part of a multipart create.
#[derive(Debug, Clone, Serialize)]
pub struct FilePart {
    pub field: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: u64,
    pub sha256: String,
}

/// A generation as stored by the simulator.
#[derive(Debug, Clone)]
pub struct Generation {
    pub id: String,
    /// The API key that owns it.
    pub key: String,
    /// Creation order, for newest-first listing and cursors.
    pub seq: u64,
    pub created_at: String,
    pub status: Status,
    pub model: String,
    pub input: Value,
    pub options: Value,
    pub segments: Value,
    pub webhook_url: Option<String>,
    pub output_file_name: Option<String>,
    pub project_id: Option<String>,
    pub output_url: Option<String>,
    pub output_duration: Option<f64>,
    /// The `outputDuration` it will report when it completes (drawn at
    /// creation, see [`crate::cost`]).
    pub planned_output_seconds: f64,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// Uploaded file parts (multipart creates).
    pub files: Vec<FilePart>,
    /// `api`, `outside` (created through `/_sim/outside`) or `batch`.
    pub source: &'static str,
    /// The batch that spawned it (never shown on the wire: Sync documents
    /// nothing that marks a batch-spawned generation).
    pub batch_id: Option<String>,
}

impl Generation {
    /// The wire form, as Sync returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "createdAt": self.created_at,
            "status": self.status.as_str(),
            "model": self.model,
            "input": self.input,
            "options": self.options,
            "outputUrl": self.output_url,
            "outputDuration": self.output_duration,
            "error": self.error,
            "error_code": self.error_code,
            "segments": self.segments,
            "segmentOutputUrl": null,
            "webhookUrl": self.webhook_url,
            "outputFileName": self.output_file_name,
        })
    }
}

/// Everything a new generation needs.
#[derive(Debug, Clone)]
pub struct NewGeneration {
    pub key: String,
    pub model: String,
    pub input: serde_json::Value,
    pub options: serde_json::Value,
    pub segments: serde_json::Value,
    pub webhook_url: Option<String>,
    pub output_file_name: Option<String>,
    pub project_id: Option<String>,
    pub files: Vec<FilePart>,
    pub source: &'static str,
    /// The batch that spawns it: not charged to the generation cap.
    pub batch_id: Option<String>,
    /// Total duration override (split 10% pending / 90% processing).
    pub duration_ms: Option<u64>,
    pub outcome: Outcome,
    /// The media length the estimate endpoints price ([`crate::cost`]).
    pub media_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::from_inputs(["https://a/x.mp4"]), Outcome::Complete);
        assert_eq!(Outcome::from_inputs(["https://a/fail.mp4", "b"]), Outcome::Fail);
        assert_eq!(Outcome::from_inputs(["https://a/fail", "REJECT"]), Outcome::Reject);
    }

    #[test]
    fn status_parse() {
        assert_eq!(Status::parse("processing"), Some(Status::Processing));
        assert_eq!(Status::parse("nope"), None);
        assert!(Status::Rejected.is_terminal());
    }
}
