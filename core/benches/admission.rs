//! Native microbenchmark of the admission core: `account::apply` with an
//! `Admit` command, in nanoseconds per decision.
//!
//! Cases:
//! - `admit_generate/empty`: a generate (rate + permit) on an empty account;
//! - `admit_other/full_600_reject`: the `other` bucket (600 per window) holds
//!   600 admissions inside its span, so the decision is a refusal with the
//!   exact retry time;
//! - `admit_other/full_600_slide`: the same window at the moment its oldest
//!   admission leaves the span, so the decision admits (record + prune):
//!   the steady state of a saturated account;
//! - `admit_other/full_600_slide+writes+encode`: the same plus serialising the
//!   account state to JSON, roughly what the Durable Object persists per call.
//!
//! Run with `cargo bench -p governor-core --bench admission`; `scripts/bench.sh`
//! passes a short warm-up and measurement time so the whole run stays well
//! under a minute.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

const WINDOW_MS: u64 = 60_000;
const MARGIN_MS: u64 = 1_000;

fn limits() -> Limits {
    Limits::for_window(60, 600, 3, WINDOW_MS, MARGIN_MS)
}

/// Built through serde so that fields added to `AdmitRequest` later (all
/// `#[serde(default)]`) do not break the benchmark.
fn admit(class: &str, permit: bool) -> Command {
    let req: AdmitRequest = serde_json::from_value(serde_json::json!({
        "class": class,
        "permit": permit,
        "model": if permit { Some("lipsync-2") } else { None },
    }))
    .expect("AdmitRequest from JSON");
    Command::Admit(req)
}

/// An account whose `other` window holds 600 admissions at t = 0, 100, ..., 59 900 ms.
fn full_window(limits: &Limits) -> MemAccount {
    let mut state = MemAccount::default();
    for i in 0..600u64 {
        let reply = state.apply(limits, i * 100, 0.5, admit("other", false));
        assert!(matches!(reply, Reply::Admitted(_)), "setup admission {i} refused");
    }
    state
}

fn bench(c: &mut Criterion) {
    let limits = limits();

    c.bench_function("admit_generate/empty", |b| {
        let empty = MemAccount::default();
        b.iter_batched(
            || (empty.clone(), admit("generate", true)),
            |(mut s, cmd)| black_box(s.apply(&limits, 1_000, 0.5, cmd)),
            BatchSize::SmallInput,
        )
    });

    let full = full_window(&limits);
    // Refusal: still inside the span of the oldest admission.
    let reject_at = 59_950;
    assert!(matches!(full.clone().apply(&limits, reject_at, 0.5, admit("other", false)), Reply::Rejected(_)));
    c.bench_function("admit_other/full_600_reject", |b| {
        b.iter_batched(
            || (full.clone(), admit("other", false)),
            |(mut s, cmd)| black_box(s.apply(&limits, reject_at, 0.5, cmd)),
            BatchSize::SmallInput,
        )
    });

    // Sliding admission: the oldest stamp (t = 0) leaves the span at window + margin.
    let slide_at = WINDOW_MS + MARGIN_MS;
    assert!(matches!(full.clone().apply(&limits, slide_at, 0.5, admit("other", false)), Reply::Admitted(_)));
    c.bench_function("admit_other/full_600_slide", |b| {
        b.iter_batched(
            || (full.clone(), admit("other", false)),
            |(mut s, cmd)| black_box(s.apply(&limits, slide_at, 0.5, cmd)),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("admit_other/full_600_slide+writes+encode", |b| {
        b.iter_batched(
            || (full.clone(), admit("other", false)),
            |(mut s, cmd)| {
                let out = s.run(&limits, slide_at, 0.5, cmd);
                black_box((serde_json::to_vec(&out.reply).unwrap(), out.writes))
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
