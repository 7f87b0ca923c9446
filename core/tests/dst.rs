//! Deterministic simulation of one account (issue 10), after FoundationDB's
//! simulation testing and TigerBeetle's VOPR: a seed draws the account's
//! limits, a hostile world (Sync's faults, lost / duplicated / late /
//! replayed webhooks, traffic outside the governor, restarts) and a long
//! history of client steps; the pure core runs through it over the
//! in-memory store, and the invariants are checked after every step.
//!
//! `cargo test -p governor-core --test dst` runs 32 seeds of 2,000 steps.
//! `DST_SEEDS=N DST_BASE=B DST_STEPS=M` run seeds B..B+N (`scripts/dst.sh N`);
//! `DST_SEED=S` replays one seed; `DST_SEED=S DST_ONLY=3,17,42` replays just
//! those steps of it (the minimal history a failure prints); `DST_TRACE=1`
//! prints every command and reply; `DST_DEBUG=1` adds the account's queue,
//! line and permits to a work-conserving failure.
//! `DST_STRICT=1` also lets the world do what the core once mishandled, or
//! still does (see `known_bugs_stay_fixed` and core/tests/dst_findings.rs):
//! Sync creating generations behind answers the governor cannot read,
//! restarts while a queued job is on the wire, the exact idempotency bound,
//! and listings too long for the budget held to the liveness bound.

#[path = "dst/io.rs"]
mod io;
#[path = "dst/rng.rs"]
mod rng;
#[path = "dst/sync.rs"]
mod sync;
#[path = "dst/world.rs"]
mod world;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use world::{history, Params, Stats, Step, World};

/// A failing run: the index of the step (the history's length for the
/// drain after it) and what broke.
type Failure = (usize, String);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn run(seed: u64, p: &Params, steps: &[Step], drain: bool) -> Result<Stats, Failure> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut w = World::new(p.clone(), seed);
        for (i, s) in steps.iter().enumerate() {
            w.step(s).map_err(|e| (i, e))?;
        }
        if drain {
            w.drain().map_err(|e| (steps.len(), e))?;
        }
        w.finish();
        Ok(w.stats)
    }));
    match outcome {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err((usize::MAX, format!("panic: {msg}")))
        }
    }
}

/// The kind of a violation: the word before the first colon.
fn kind(msg: &str) -> &str {
    msg.split(':').next().unwrap_or(msg)
}

/// Drop steps while the run still fails the same way (chunks, then single
/// steps); deterministic, so the result replays.
fn shrink(seed: u64, p: &Params, steps: &[(usize, Step)], failure: &Failure) -> (Vec<(usize, Step)>, Failure) {
    let want = kind(&failure.1).to_owned();
    let started = Instant::now();
    let fails = |cand: &[(usize, Step)]| -> Option<Failure> {
        let only: Vec<Step> = cand.iter().map(|(_, s)| s.clone()).collect();
        match run(seed, p, &only, true) {
            Err(f) if kind(&f.1) == want => Some(f),
            _ => None,
        }
    };
    let cut = |cand: Vec<(usize, Step)>, f: &Failure| -> Vec<(usize, Step)> {
        if f.0 < cand.len() {
            cand[..=f.0].to_vec()
        } else {
            cand
        }
    };
    let mut best = cut(steps.to_vec(), failure);
    let mut best_failure = failure.clone();
    let mut chunk = (best.len() / 2).max(1);
    let mut progress = true;
    while started.elapsed().as_secs() < 60 && (chunk > 1 || progress) {
        progress = false;
        let mut i = 0;
        while i < best.len() && started.elapsed().as_secs() < 60 {
            let mut cand = best.clone();
            cand.drain(i..(i + chunk).min(best.len()));
            match fails(&cand) {
                Some(f) => {
                    best = cut(cand, &f);
                    best_failure = f;
                    progress = true;
                }
                None => i += chunk,
            }
        }
        if !progress {
            if chunk == 1 {
                break;
            }
            chunk = (chunk / 2).max(1);
            progress = true;
        }
    }
    (best, best_failure)
}

fn report_failure(seed: u64, p: &Params, steps: &[Step], f: &Failure, strict: bool) -> String {
    let indexed: Vec<(usize, Step)> = steps.iter().cloned().enumerate().collect();
    let (min, mf) = shrink(seed, p, &indexed, f);
    let at = if f.0 >= steps.len() { "the drain".to_owned() } else { format!("step {}", f.0) };
    let only: Vec<String> = min.iter().map(|(i, _)| i.to_string()).collect();
    let amb = if strict { " DST_STRICT=1" } else { "" };
    let mut out = format!(
        "\nDST FAILURE seed {seed} at {at} of {}: {}\n\
         replay: DST_SEED={seed} DST_STEPS={}{amb} cargo test -p governor-core --test dst -- --nocapture\n\
         minimal history ({} steps; fails with: {}):\n\
         replay it: DST_SEED={seed} DST_STEPS={}{amb} DST_ONLY={} cargo test -p governor-core --test dst -- --nocapture\n",
        steps.len(),
        f.1,
        steps.len(),
        min.len(),
        mf.1,
        steps.len(),
        only.join(",")
    );
    for (i, s) in &min {
        out.push_str(&format!("  #{i:<5} {s}\n"));
    }
    out.push_str(&format!("limits: {:?}\n", p.limits));
    out
}

/// Run `seeds`, in parallel; returns the summed figures or the first failure's report.
fn simulate(seeds: Vec<u64>, steps: usize, strict: bool, only: Option<Vec<usize>>) -> Result<Stats, String> {
    let threads = env_u64("DST_THREADS")
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let chunks: Vec<Vec<u64>> =
        (0..threads).map(|t| seeds.iter().copied().skip(t).step_by(threads).collect()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|mine| {
            let only = only.clone();
            std::thread::spawn(move || -> (Stats, Vec<String>) {
                let mut total = Stats::default();
                let mut failed = Vec::new();
                for seed in mine {
                    let p = Params::from_seed(seed, strict);
                    let mut h = history(seed, steps, &p);
                    if let Some(only) = &only {
                        h = only.iter().filter_map(|i| h.get(*i).cloned()).collect();
                    }
                    match run(seed, &p, &h, true) {
                        Ok(s) => total.add(&s),
                        Err(f) => failed.push(report_failure(seed, &p, &h, &f, strict)),
                    }
                }
                (total, failed)
            })
        })
        .collect();
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for h in handles {
        let (s, failed) = h.join().expect("a simulation thread");
        total.add(&s);
        failures.extend(failed);
    }
    if failures.is_empty() {
        Ok(total)
    } else {
        Err(format!("{} of the seeds failed (the others: {total})\n{}", failures.len(), failures.join("\n")))
    }
}

fn seeds_from_env(default_seeds: u64) -> (Vec<u64>, usize, Option<Vec<usize>>) {
    let steps = env_u64("DST_STEPS").unwrap_or(2_000) as usize;
    let only: Option<Vec<usize>> =
        std::env::var("DST_ONLY").ok().map(|v| v.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let seeds = match env_u64("DST_SEED") {
        Some(s) => vec![s],
        None => {
            let base = env_u64("DST_BASE").unwrap_or(0);
            (base..base + env_u64("DST_SEEDS").unwrap_or(default_seeds)).collect()
        }
    };
    (seeds, steps, only)
}

#[test]
fn simulated_histories_keep_every_invariant() {
    let (seeds, steps, only) = seeds_from_env(32);
    let strict = env_u64("DST_STRICT").is_some_and(|v| v > 0);
    let (first, last, n) = (seeds[0], seeds[seeds.len() - 1], seeds.len());
    let started = Instant::now();
    match simulate(seeds, steps, strict, only) {
        Ok(total) => eprintln!(
            "\nDST: {n} seeds ({first}..={last}), {steps} steps each{}, {:.1} s\n{total}\n",
            if strict { ", strict (known-bug triggers on)" } else { "" },
            started.elapsed().as_secs_f64()
        ),
        Err(report) => panic!("{report}"),
    }
}

/// The same simulation with the known-bug triggers on (`DST_STRICT=1`):
/// Sync creates generations behind answers the governor cannot read (a 5xx
/// or a dropped connection after the create; for queued jobs also a timeout
/// or a 2xx without an id), the object restarts while a queued job is on the
/// wire, and the idempotency table is held to its bound exactly. The bugs
/// these found are fixed (core/tests/dst_findings.rs has one small test
/// apiece), and these seeds pass. Longer strict runs (`DST_STRICT=1
/// scripts/dst.sh N`) still find two open gaps, each an ignored test in
/// dst_findings.rs: a resumed submission answered 429 frees its permit, and
/// a listing longer than the reconciliation's budget share starves.
#[test]
fn known_bugs_stay_fixed() {
    let (seeds, steps, only) = seeds_from_env(16);
    if let Err(report) = simulate(seeds, steps, true, only) {
        panic!("{report}");
    }
}

/// The mutation check, kept: the invariants catch a broken executor. An
/// object whose relay reports an accepted delivery as failed (what a driver
/// that dropped its `Delivered` report does) sends the payload again, and a
/// few seeds show it.
#[test]
fn a_broken_relay_report_is_caught() {
    for seed in 0..16 {
        let mut p = Params::from_seed(seed, false);
        p.lying_relay = true;
        let h = history(seed, 500, &p);
        if let Err((_, msg)) = run(seed, &p, &h, true) {
            assert!(msg.starts_with("relay: delivery"), "caught, but as: {msg}");
            return;
        }
    }
    panic!("no seed caught an object that drops its relay reports");
}

/// The mutation check of the shipped driver itself: built with a mutant
/// feature of governor-core (test-only, off by default, never in the
/// Worker's build), `Driver` breaks one of its rules, and some seed of the
/// ordinary simulation must catch it. `bash scripts/dst-mutants.sh` builds
/// and runs each mutant; this prints the first seed that caught it.
///  - `mutant-drop-delivered`: the relay's `Delivered` report is lost.
///  - `mutant-skip-freed-dispatch`: no dispatch when a webhook or a settle
///    frees a permit; the job waits for the next alarm, which the
///    work-conserving invariant (`World::work_conserving`) does not allow.
#[cfg(any(feature = "mutant-skip-freed-dispatch", feature = "mutant-drop-delivered"))]
#[test]
fn a_driver_mutant_is_caught() {
    let steps = env_u64("DST_STEPS").unwrap_or(2_000) as usize;
    let base = env_u64("DST_BASE").unwrap_or(0);
    for seed in base..base + env_u64("DST_SEEDS").unwrap_or(64) {
        let p = Params::from_seed(seed, false);
        let h = history(seed, steps, &p);
        if let Err((step, msg)) = run(seed, &p, &h, true) {
            eprintln!("\nDST mutant caught: seed {seed}, step {step} of {steps}: {msg}\n(replay: DST_SEED={seed} DST_STEPS={steps} with the same --features)\n");
            return;
        }
    }
    panic!("no seed caught the driver mutant");
}
