//! The lives of generations and batches. A generation: inserted (its slot
//! taken), then timers that drive it PENDING → PROCESSING → terminal, so
//! that webhooks fire and concurrency frees on time, not lazily on read. A
//! batch: stored, its jobs created after `batch_pending_ms` (lines rejected
//! by length or by `batch_line_reject_rate`), terminal with its last
//! generation; its webhook at each status change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::batch::{Batch, BatchStatus, Line};
use crate::config::Config;
use crate::generation::{Generation, NewGeneration, Outcome, Status};
use crate::state::{lock, Sim, Store};
use crate::webhook_log::Hook;

/// Starts the timers of one generation.
pub fn spawn(sim: Arc<Sim>, id: String, pending: Duration, processing: Duration, outcome: Outcome) {
    let epoch = sim.current_epoch();
    tokio::spawn(async move {
        tokio::time::sleep(pending).await;
        if sim.current_epoch() != epoch {
            return;
        }
        if outcome == Outcome::Reject {
            // Rejection happens at intake: straight from PENDING.
            finish(&sim, &id, outcome);
            return;
        }
        if !start_processing(&sim, &id) {
            return;
        }
        tokio::time::sleep(processing).await;
        if sim.current_epoch() != epoch {
            return;
        }
        finish(&sim, &id, outcome);
    });
}

/// Inserts an active generation (the caller checked concurrency and holds
/// the store lock) and starts its timers. Returns its JSON.
pub fn insert_locked(sim: &Arc<Sim>, store: &mut Store, ng: NewGeneration, cfg: &Config) -> Generation {
    let id = sim.new_id();
    let seq = store.next_seq;
    store.next_seq += 1;
    let (pending, processing) = match ng.duration_ms {
        Some(total) => (total / 10, total - total / 10),
        None => (cfg.pending_ms, cfg.processing_ms),
    };
    let draw = sim.random_upto(2_000_000) as f64 / 1_000_000.0 - 1.0;
    let planned = crate::cost::actual_seconds(ng.media_seconds, cfg.estimate_bias, cfg.estimate_error, draw);
    let g = Generation {
        id: id.clone(),
        key: ng.key.clone(),
        seq,
        created_at: crate::util::now_rfc3339(),
        status: Status::Pending,
        model: ng.model,
        input: ng.input,
        options: ng.options,
        segments: ng.segments,
        webhook_url: ng.webhook_url,
        output_file_name: ng.output_file_name,
        project_id: ng.project_id,
        output_url: None,
        output_duration: None,
        planned_output_seconds: planned,
        error: None,
        error_code: None,
        files: ng.files,
        source: ng.source,
        batch_id: ng.batch_id.clone(),
    };
    if ng.batch_id.is_some() {
        store.account(&ng.key).activate_batch();
    } else {
        store.account(&ng.key).activate();
    }
    store.gens.insert(id.clone(), g.clone());
    spawn(sim.clone(), id, Duration::from_millis(pending), Duration::from_millis(processing), ng.outcome);
    sim.notify();
    g
}

/// PENDING → PROCESSING. False if the generation is gone.
pub fn start_processing(sim: &Sim, id: &str) -> bool {
    let mut store = lock(&sim.store);
    let Some(g) = store.gens.get_mut(id) else {
        return false;
    };
    if g.status != Status::Pending {
        return false;
    }
    g.status = Status::Processing;
    drop(store);
    sim.notify();
    true
}

/// Makes a generation terminal, frees its slot and fires its webhook.
pub fn finish(sim: &Arc<Sim>, id: &str, outcome: Outcome) {
    let report = sim.cfg().report_output_duration;
    let mut store = lock(&sim.store);
    let Some(g) = store.gens.get_mut(id) else {
        return;
    };
    if g.status.is_terminal() {
        return;
    }
    match outcome {
        Outcome::Complete => {
            g.status = Status::Completed;
            let name = g.output_file_name.clone().unwrap_or_else(|| "output".into());
            g.output_url = Some(format!("https://cdn.sync-sim.invalid/generations/{}/{}.mp4", g.id, name));
            g.output_duration = report.then_some(g.planned_output_seconds);
        }
        Outcome::Fail => {
            g.status = Status::Failed;
            g.error = Some("Simulated failure: an input url contains 'fail'".into());
            g.error_code = Some("generation_failed".into());
        }
        Outcome::Reject => {
            g.status = Status::Rejected;
            g.error = Some("Simulated rejection: an input url contains 'reject'".into());
            g.error_code = Some("generation_rejected".into());
        }
    }
    let snapshot = g.clone();
    let acct = store.account(&snapshot.key);
    if snapshot.batch_id.is_some() {
        acct.batch_active = acct.batch_active.saturating_sub(1);
    } else {
        acct.active = acct.active.saturating_sub(1);
    }
    match outcome {
        Outcome::Complete => acct.completed += 1,
        Outcome::Fail => acct.failed += 1,
        Outcome::Reject => acct.rejected += 1,
    }
    if let Some(b) = snapshot.batch_id.as_deref() {
        generation_done(sim, &mut store, b, outcome == Outcome::Complete);
    }
    drop(store);
    sim.notify();
    if let Some(url) = snapshot.webhook_url.clone() {
        crate::webhooks::dispatch(sim, url, &snapshot);
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
pub fn insert_batch_locked(
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
    spawn_batch(sim.clone(), id);
    v
}

fn spawn_batch(sim: Arc<Sim>, id: String) {
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
        l.generation_id = Some(insert_locked(sim, &mut store, ng, &cfg).id);
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
