//! Batches: the batch object, its lines and metrics, the transitions
//! PENDING → JOBS_CREATED → PROCESSING → COMPLETED | FAILED, the batch
//! webhooks and the JSONL result.
//!
//! A batch's generations are ordinary generations of its key (listed by
//! `GET /v2/generations`, with nothing that marks them) but they are not
//! charged to the key's generation cap: they count in `batch_active`. The
//! batch itself counts against `batch_concurrency` until it is terminal.
//! A line is rejected when its job is created if its input is longer than
//! `batch_max_input_ms` (`options.sim_input_ms`) or by `batch_line_reject_rate`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::generation::{Generation, NewGeneration};
use crate::webhook_log::Hook;

/// Sync's batch statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    Pending,
    JobsCreated,
    Processing,
    Completed,
    Failed,
}

impl BatchStatus {
    pub const ALL: [BatchStatus; 5] = [
        BatchStatus::Pending,
        BatchStatus::JobsCreated,
        BatchStatus::Processing,
        BatchStatus::Completed,
        BatchStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "PENDING",
            BatchStatus::JobsCreated => "JOBS_CREATED",
            BatchStatus::Processing => "PROCESSING",
            BatchStatus::Completed => "COMPLETED",
            BatchStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<BatchStatus> {
        BatchStatus::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, BatchStatus::Completed | BatchStatus::Failed)
    }
}

/// One line of a batch.
#[derive(Debug, Clone)]
pub struct Line {
    pub request_id: String,
    pub generation: NewGeneration,
    /// Input length claimed by `options.sim_input_ms`.
    pub input_ms: Option<u64>,
    /// Why the line was rejected when its job was created.
    pub rejected: Option<&'static str>,
    pub generation_id: Option<String>,
}

/// A batch as stored.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub key: String,
    pub seq: u64,
    pub created_at: String,
    pub created_ms: u64,
    pub status: BatchStatus,
    pub webhook_url: Option<String>,
    pub lines: Vec<Line>,
    pub success: u32,
    pub failed: u32,
}

impl Batch {
    pub fn metrics(&self) -> Value {
        let total = self.lines.len() as u32;
        json!({
            "total_generations": total,
            "success_count": self.success,
            "failed_count": self.failed,
            "pending_count": total.saturating_sub(self.success + self.failed),
        })
    }

    /// The wire form (names mixed case, as Sync's).
    pub fn to_json(&self) -> Value {
        let output = self.status.is_terminal().then(|| format!("/v2/batches/{}/result", self.id));
        json!({
            "id": self.id,
            "status": self.status.as_str(),
            "metrics": self.metrics(),
            "outputUrl": output,
            "webhookUrl": self.webhook_url,
            "created_at": self.created_at,
        })
    }

    pub(crate) fn hook(&self) -> Option<(String, Hook)> {
        let url = self.webhook_url.clone()?;
        Some((
            url,
            Hook {
                kind: "batch",
                id: self.id.clone(),
                status: self.status.as_str(),
                body: self.to_json(),
                drop_rate: 0.0,
            },
        ))
    }

    /// The JSONL result: one line per request, in input order.
    pub fn result_jsonl(&self, gens: &HashMap<String, Generation>) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let g = l.generation_id.as_ref().and_then(|id| gens.get(id));
            let v = match (l.rejected, g) {
                (Some(code), _) => json!({
                    "request_id": l.request_id, "generation_id": null, "status": "REJECTED",
                    "outputUrl": null, "error": "The line was rejected", "error_code": code,
                }),
                (None, Some(g)) => json!({
                    "request_id": l.request_id, "generation_id": g.id, "status": g.status.as_str(),
                    "outputUrl": g.output_url, "error": g.error, "error_code": g.error_code,
                }),
                (None, None) => json!({
                    "request_id": l.request_id, "generation_id": l.generation_id, "status": null,
                    "outputUrl": null, "error": null, "error_code": null,
                }),
            };
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out
    }
}
