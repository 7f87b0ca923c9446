//! Workers Analytics Engine output (optional): one data point per decision
//! in the dataset bound as `METRICS`, or nothing when it is unbound (looked
//! up once per isolate). The layout is stable (docs/operations.md, "Analytics
//! Engine"): index1 account; blob1..6 account, client, class, outcome,
//! reason, generationId (empty when none); double1..3 waitMs, upstreamStatus,
//! addedLatencyMs (0 when not forwarded). Names and labels only, never a key,
//! a secret or a body. A failed write is dropped (a debug log line).
//!
//! The point is built in a few lines of JS (smaller than building it with
//! `js_sys` from Rust).

use std::cell::Cell;

use governor_core::config::LogLevel;
use wasm_bindgen::prelude::*;
use worker::Env;

use crate::log::Line;

#[wasm_bindgen(
    inline_js = "export function writePoint(e,i,a,c,k,o,r,g,w,s,l){const d=e.METRICS;if(!d||typeof d.writeDataPoint!='function')return 0;try{d.writeDataPoint({indexes:[i],blobs:[a,c,k,o,r,g],doubles:[w,s,l]});return 1}catch{return 2}}"
)]
extern "C" {
    /// 0: `METRICS` unbound, 1: written, 2: the write threw.
    #[wasm_bindgen(js_name = writePoint)]
    #[allow(clippy::too_many_arguments)]
    fn write_point(
        env: &Env,
        index: &str,
        account: &str,
        client: &str,
        class: &str,
        outcome: &str,
        reason: &str,
        generation: &str,
        wait_ms: f64,
        status: f64,
        added_ms: f64,
    ) -> u8;
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

pub fn write(env: &Env, p: &Point, log_level: LogLevel) {
    if UNBOUND.get() {
        return;
    }
    // An index is at most 96 bytes.
    let mut cut = p.account.len().min(96);
    while !p.account.is_char_boundary(cut) {
        cut -= 1;
    }
    match write_point(
        env,
        &p.account[..cut],
        p.account,
        p.client,
        p.class,
        p.outcome,
        p.reason.unwrap_or(""),
        p.generation.unwrap_or(""),
        p.wait_ms as f64,
        p.status.map_or(0.0, f64::from),
        p.added_ms as f64,
    ) {
        0 => UNBOUND.set(true),
        2 => Line::new(LogLevel::Debug, "analytics_write_failed").emit(log_level),
        _ => {}
    }
}
