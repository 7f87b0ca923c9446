//! Workers Analytics Engine output (optional): one data point per decision
//! in the dataset bound as `METRICS`, or nothing when it is unbound (looked
//! up once per isolate). The layout is stable (docs/operations.md, "Analytics
//! Engine"): index1 account (account names are ASCII, cut to the index's 96
//! bytes); blob1..6 account, client, class, outcome, reason, generationId
//! (empty when none); double1..3 waitMs, upstreamStatus, addedLatencyMs (0
//! when none). Names and labels only, never a key, a secret or a body. A
//! write that throws is dropped.
//!
//! The point is built in a few lines of JS: smaller than building it from
//! Rust with `js_sys` (measured; see the commit).

use std::cell::Cell;

use wasm_bindgen::prelude::*;
use worker::Env;

#[wasm_bindgen(
    inline_js = "export function writePoint(e,a,c,k,o,r,g,w,s,l){const d=e.METRICS;if(!d)return false;try{d.writeDataPoint({indexes:[a.slice(0,96)],blobs:[a,c,k,o,r,g],doubles:[w,s,l]})}catch{}return true}"
)]
extern "C" {
    /// False when `METRICS` is unbound.
    #[wasm_bindgen(js_name = writePoint)]
    #[allow(clippy::too_many_arguments)]
    fn write_point(
        env: &Env,
        account: &str,
        client: &str,
        class: &str,
        outcome: &str,
        reason: &str,
        generation: &str,
        wait_ms: f64,
        status: f64,
        added_ms: f64,
    ) -> bool;
}

thread_local! {
    /// Set once a decision found `METRICS` unbound.
    static UNBOUND: Cell<bool> = const { Cell::new(false) };
}

/// One decision, as written.
pub struct Point<'a> {
    pub account: &'a str,
    pub client: &'a str,
    pub class: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub generation: Option<&'a str>,
    pub wait_ms: u64,
    pub status: Option<u16>,
    pub added_ms: u64,
}

#[inline(never)]
pub fn write(env: &Env, p: &Point) {
    if UNBOUND.get() {
        return;
    }
    let bound = write_point(
        env,
        p.account,
        p.client,
        p.class,
        p.outcome,
        p.reason.unwrap_or(""),
        p.generation.unwrap_or(""),
        p.wait_ms as f64,
        p.status.map_or(0.0, f64::from),
        p.added_ms as f64,
    );
    UNBOUND.set(!bound);
}
