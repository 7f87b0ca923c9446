//! What one admitted read costs the account object, outside workerd: the
//! command's JSON decoded, `account::apply`, the reply's JSON encoded (the
//! object's side of `serve_command`), plus the Worker's encode and decode,
//! on the configuration of BENCHMARKS.md section 2 (limits out of reach,
//! window 1000 ms). Counts the rows each admission writes, by kind, so the
//! SQL statements per admission can be read off.
//!
//! `cargo run --release -p governor-core --example admit_profile -- <n> [step_ms]`
//! Instruction counts (independent of the machine's load):
//! `valgrind --tool=callgrind --toggle-collect='*admit_profile*one*' target/release/examples/admit_profile 2000`
//! and divide `Ir` by n.

use std::collections::BTreeMap;

use governor_core::admission::request::{AdmitRequest, ClientRef};
use governor_core::config::Config;
use governor_core::rates::class::RateClass;
use governor_core::storage::mem::MemAccount;
use governor_core::storage::store::Write;
use governor_core::wire::calls::AdmitReply;
use governor_core::wire::contract::Command;

fn config() -> Config {
    let vars: BTreeMap<&str, &str> = [
        ("SYNC_API_BASE", "http://127.0.0.1:1"),
        ("MAX_CONCURRENT_GENERATIONS", "100"),
        ("GENERATE_PER_MINUTE", "100000"),
        ("REQUESTS_PER_MINUTE", "100000"),
        ("RATE_WINDOW_MS", "1000"),
        ("RATE_MARGIN_MS", "0"),
    ]
    .into_iter()
    .collect();
    Config::from_vars(&|k| vars.get(k).map(|v| (*v).to_owned())).expect("config")
}

/// The command the Worker builds for `GET /v2/generations?limit=1`.
fn command() -> Command {
    Command::Admit(AdmitRequest {
        class: RateClass::Other,
        report_in_flight: true,
        client: Some(ClientRef { account: "k-0123456789abcdef".into(), client: "k-0123456789abcdef".into() }),
        ..AdmitRequest::default()
    })
}

fn kind(w: &Write) -> String {
    match w {
        Write::Meta { key, .. } => format!("Meta {key}"),
        other => format!("{other:?}").split([' ', '(', '{']).next().unwrap_or("?").to_owned(),
    }
}

/// One admission as the Worker and the object run it; the writes it made.
#[inline(never)]
fn one(config: &Config, account: &mut MemAccount, now: u64) -> Vec<Write> {
    let body = serde_json::to_string(&command()).expect("encode");
    let command: Command = governor_core::wire::json::from_str(&body).expect("decode");
    let out = account.run(&config.limits, now, 0.5, command);
    let reply = serde_json::to_string(&out.reply).expect("encode reply");
    let back: AdmitReply = governor_core::wire::json::from_str(&reply).expect("decode reply");
    assert!(matches!(back, AdmitReply::Admitted(_)), "not admitted: {reply}");
    out.writes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let step: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let config = config();
    let mut account = MemAccount::default();
    let start = 1_800_000_000_000;
    // Warm: the window fills (step 1 ms: about a second of admissions).
    for i in 0..2_000 {
        one(&config, &mut account, start + i * step);
    }
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let writes = one(&config, &mut account, start + (2_000 + i) * step);
        rows += writes.len() as u64;
        for w in &writes {
            *kinds.entry(kind(w)).or_default() += 1;
            if let Write::Meta { value, .. } = w {
                bytes += value.len() as u64;
            }
        }
    }
    let el = t0.elapsed();
    let per = |v: u64| v as f64 / n.max(1) as f64;
    println!("admissions {n}, step {step} ms: {:.2} µs each (native, this machine)", el.as_secs_f64() * 1e6 / n as f64);
    println!("rows written per admission: {:.2}; meta bytes per admission: {:.1}", per(rows), per(bytes));
    for (k, v) in &kinds {
        println!("  {k}: {:.3} per admission", per(*v));
    }
    println!("command JSON: {}", serde_json::to_string(&command()).unwrap_or_default());
    let out = account.run(&config.limits, start + (2_000 + n) * step, 0.5, command());
    println!("reply JSON: {}", serde_json::to_string(&out.reply).unwrap_or_default());
}
