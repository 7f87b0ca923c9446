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

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::state::{lock, NewGeneration, Sim, Store};
use crate::webhooks::Hook;

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

    fn hook(&self) -> Option<(String, Hook)> {
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
    pub fn result_jsonl(&self, store: &Store) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let g = l.generation_id.as_ref().and_then(|id| store.gens.get(id));
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

/// Sends a batch's webhook (if it has a url) with the batch drop fault.
fn notify(sim: &Arc<Sim>, hook: Option<(String, Hook)>) {
    if let Some((url, mut hook)) = hook {
        hook.drop_rate = sim.cfg().batch_webhook_drop_rate;
        crate::webhooks::send(sim, hook, url);
    }
}

/// Stores a new batch (the caller checked the batch concurrency under the
/// same lock) and starts its timer. Returns its JSON.
pub fn insert_locked(
    sim: &Arc<Sim>,
    store: &mut Store,
    key: &str,
    lines: Vec<Line>,
    webhook_url: Option<String>,
) -> Value {
    let id = sim.new_id();
    let seq = store.next_seq;
    store.next_seq += 1;
    let b = Batch {
        id: id.clone(),
        key: key.to_string(),
        seq,
        created_at: crate::util::now_rfc3339(),
        created_ms: crate::util::now_unix_ms(),
        status: BatchStatus::Pending,
        webhook_url,
        lines,
        success: 0,
        failed: 0,
    };
    let v = b.to_json();
    let acct = store.account(key);
    acct.batches_open += 1;
    acct.batches_created += 1;
    store.batches.insert(id.clone(), b);
    spawn(sim.clone(), id);
    v
}

fn spawn(sim: Arc<Sim>, id: String) {
    let epoch = sim.current_epoch();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(sim.cfg().batch_pending_ms)).await;
        if sim.current_epoch() != epoch {
            return;
        }
        create_jobs(&sim, &id);
    });
}

/// PENDING → JOBS_CREATED → PROCESSING (or FAILED if every line is rejected).
fn create_jobs(sim: &Arc<Sim>, id: &str) {
    let cfg = sim.cfg();
    let mut store = lock(&sim.store);
    let Some(b) = store.batches.get(id) else {
        return;
    };
    let mut lines = b.lines.clone();
    for l in &mut lines {
        if l.input_ms.is_some_and(|ms| ms > cfg.batch_max_input_ms) {
            l.rejected = Some("input_too_long");
        } else if sim.roll(cfg.batch_line_reject_rate) {
            l.rejected = Some("input_rejected");
        }
    }
    let rejected = lines.iter().filter(|l| l.rejected.is_some()).count() as u32;
    for l in lines.iter_mut().filter(|l| l.rejected.is_none()) {
        let mut ng = l.generation.clone();
        ng.batch_id = Some(id.to_string());
        ng.source = "batch";
        ng.duration_ms = Some(ng.duration_ms.unwrap_or(cfg.batch_generation_ms));
        l.generation_id = Some(sim.insert_locked(&mut store, ng, &cfg).id);
    }
    let mut hooks = Vec::new();
    let mut terminal = false;
    if let Some(b) = store.batches.get_mut(id) {
        b.lines = lines;
        b.failed += rejected;
        b.status = BatchStatus::JobsCreated;
        hooks.push(b.hook());
        b.status = if b.failed as usize == b.lines.len() { BatchStatus::Failed } else { BatchStatus::Processing };
        terminal = b.status.is_terminal();
        hooks.push(b.hook());
    }
    if terminal {
        if let Some(key) = store.batches.get(id).map(|b| b.key.clone()) {
            let acct = store.account(&key);
            acct.batches_open = acct.batches_open.saturating_sub(1);
        }
    }
    drop(store);
    for h in hooks {
        notify(sim, h);
    }
}

/// One of the batch's generations turned terminal (`success` if COMPLETED),
/// under the store lock; the batch turns terminal with its last one.
pub fn generation_done(sim: &Arc<Sim>, store: &mut Store, id: &str, success: bool) {
    let Some(b) = store.batches.get_mut(id) else {
        return;
    };
    if b.status.is_terminal() {
        return;
    }
    if success {
        b.success += 1;
    } else {
        b.failed += 1;
    }
    if ((b.success + b.failed) as usize) < b.lines.len() {
        return;
    }
    b.status = if b.success > 0 { BatchStatus::Completed } else { BatchStatus::Failed };
    let hook = b.hook();
    let key = b.key.clone();
    let acct = store.account(&key);
    acct.batches_open = acct.batches_open.saturating_sub(1);
    notify(sim, hook);
}
