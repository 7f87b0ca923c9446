//! The `/_sim/stats` document: per-key counters, totals, webhook counters and
//! the current configuration.

use serde_json::{json, Map, Value};

use crate::limits::Account;
use crate::state::{lock, Sim};

fn per_class(v: [u64; 3]) -> Value {
    json!({"generate": v[0], "other": v[1], "upload": v[2]})
}

fn account_json(a: &Account) -> Value {
    json!({
        "requests": per_class(a.requests),
        "rate_limited": per_class(a.rate_limited),
        "concurrency_limited": a.concurrency_limited,
        "injected_429": a.injected_429,
        "injected_5xx": a.injected_5xx,
        "max_in_window": per_class([
            a.logs[0].max_in_window,
            a.logs[1].max_in_window,
            a.logs[2].max_in_window,
        ]),
        "peak_concurrency": a.peak_concurrency,
        "active": a.active,
        "created": a.created,
        "completed": a.completed,
        "failed": a.failed,
        "rejected": a.rejected,
        "batch_active": a.batch_active,
        "batches_open": a.batches_open,
        "batches_created": a.batches_created,
        "batch_concurrency_limited": a.batch_concurrency_limited,
        "batch_plan_refused": a.batch_plan_refused,
    })
}

/// Sums accounts; `peak_concurrency` and `max_in_window` take the maximum
/// (a sum of per-key maxima would describe no real moment).
fn totals(accounts: &[&Account]) -> Value {
    let mut t = Account::default();
    for a in accounts {
        for i in 0..3 {
            t.requests[i] += a.requests[i];
            t.rate_limited[i] += a.rate_limited[i];
            t.logs[i].max_in_window = t.logs[i].max_in_window.max(a.logs[i].max_in_window);
        }
        t.concurrency_limited += a.concurrency_limited;
        t.injected_429 += a.injected_429;
        t.injected_5xx += a.injected_5xx;
        t.peak_concurrency = t.peak_concurrency.max(a.peak_concurrency);
        t.active += a.active;
        t.created += a.created;
        t.completed += a.completed;
        t.failed += a.failed;
        t.rejected += a.rejected;
        t.batch_active += a.batch_active;
        t.batches_open += a.batches_open;
        t.batches_created += a.batches_created;
        t.batch_concurrency_limited += a.batch_concurrency_limited;
        t.batch_plan_refused += a.batch_plan_refused;
    }
    account_json(&t)
}

/// Renders the whole document.
pub fn render(sim: &Sim) -> Value {
    let cfg = sim.cfg();
    let store = lock(&sim.store);
    let empty = Account::default();
    let mut keys = Map::new();
    let mut all: Vec<&Account> = Vec::new();
    let mut names: Vec<&String> = cfg.keys.iter().collect();
    let mut extra: Vec<&String> = store.accounts.keys().filter(|k| !cfg.keys.contains(k)).collect();
    extra.sort();
    names.extend(extra);
    for k in names {
        let a = store.accounts.get(k).unwrap_or(&empty);
        keys.insert(k.clone(), account_json(a));
        all.push(a);
    }
    let webhooks = lock(&sim.webhooks).stats.clone();
    json!({
        "keys": keys,
        "totals": totals(&all),
        "unauthorized": store.unauthorized,
        "stalled": store.stalled,
        "webhooks": webhooks,
        "config": cfg.to_json(),
    })
}
