//! Loading an account persisted by the previous layout (schema 1): one JSON
//! value under `account` (window logs, permits, backoff, durations,
//! reconciliation, the relay outbox, idempotency replays), one value per
//! queued job under `job:<ticket>`, and the round-robin cursor under
//! `queue-cursor`. [`from_legacy`] turns them into rows of the tables, so an
//! upgrade keeps spent tokens, held permits, queued jobs, pending relays and
//! replays. Hostile input is tolerated: a part that does not decode is
//! skipped (and counted), never a reason to brick the account.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ids::PermitId;
use crate::lifecycle::permits::Permit;
use crate::queue::job::Job;
use crate::rates::class::RateClass;
use crate::rates::window::WindowLog;
use crate::relay::delivery::Delivery;
use crate::relay::RelayCounters;
use crate::storage::store::{IdempotencyRecord, IdempotencyState, Write};
use crate::Ms;

#[derive(Deserialize, Default)]
struct LegacyPermits {
    #[serde(default)]
    held: Vec<Box<RawValue>>,
    #[serde(default)]
    next_id: u64,
}

#[derive(Deserialize, Default)]
struct LegacyOutbox {
    #[serde(default)]
    items: Vec<Box<RawValue>>,
    #[serde(default)]
    next_id: u64,
    #[serde(default)]
    delivered: u64,
    #[serde(default)]
    abandoned: u64,
}

/// A remembered `Idempotency-Key` of the previous layout: internally
/// tagged by `state` (`in_flight` with `permit`, `done` with `status` and
/// `body`), read flat (no buffering of tagged enums in the Worker).
#[derive(Deserialize)]
struct LegacyEntry {
    at: Ms,
    state: String,
    #[serde(default)]
    permit: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<String>,
}

/// What migrating produced, and what it had to skip.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub writes: Vec<Write>,
    pub skipped: u32,
}

/// The previous layout's top-level value: its parts, still as JSON text.
type Parts = BTreeMap<String, Box<RawValue>>;

fn present<'a>(v: &'a Parts, key: &str) -> Option<&'a str> {
    v.get(key).map(|raw| raw.get()).filter(|raw| *raw != "null")
}

fn part<T: for<'de> Deserialize<'de> + Default>(v: &Parts, key: &str, skipped: &mut u32) -> T {
    match present(v, key) {
        None => T::default(),
        Some(x) => crate::wire::json::from_str(x).unwrap_or_else(|_| {
            *skipped += 1;
            T::default()
        }),
    }
}

fn meta(key: &'static str, value: &impl serde::Serialize) -> Write {
    Write::Meta { key, value: serde_json::to_string(value).unwrap_or_default() }
}

/// Rows for the tables from the previous layout's values.
pub fn from_legacy(account: Option<&str>, jobs: &[String], cursor: Option<String>) -> Migrated {
    let mut out = Migrated::default();
    let skipped = &mut out.skipped;
    let mut writes = Vec::new();
    let state: Parts = match account.map(crate::wire::json::from_str::<Parts>) {
        Some(Ok(v)) => v,
        None => Parts::new(),
        Some(Err(_)) => {
            *skipped += 1;
            Parts::new()
        }
    };
    let windows: BTreeMap<RateClass, Box<RawValue>> = part(&state, "windows", skipped);
    let mut tats = BTreeMap::new();
    for (class, raw) in windows {
        let Ok(log) = crate::wire::json::from_str::<WindowLog>(raw.get()) else {
            *skipped += 1;
            continue;
        };
        for at in log.stamps() {
            writes.push(Write::Admission { class: class.clone(), at: *at });
        }
        if log.tat() > 0 {
            tats.insert(class, log.tat());
        }
    }
    writes.push(meta("tat", &tats));
    let permits: LegacyPermits = part(&state, "permits", skipped);
    for raw in permits.held {
        match crate::wire::json::from_str::<Permit>(raw.get()) {
            Ok(p) => writes.push(Write::PutPermit(p)),
            Err(_) => *skipped += 1,
        }
    }
    writes.push(meta("permit_next_id", &permits.next_id));
    for key in ["backoff", "durations", "reconcile"] {
        if let Some(v) = present(&state, key) {
            let key: &'static str = match key {
                "backoff" => "backoff",
                "durations" => "durations",
                _ => "reconcile",
            };
            writes.push(Write::Meta { key, value: v.to_owned() });
        }
    }
    let outbox: LegacyOutbox = part(&state, "outbox", skipped);
    for raw in outbox.items {
        match crate::wire::json::from_str::<Delivery>(raw.get()) {
            Ok(d) => writes.push(Write::PutDelivery(d)),
            Err(_) => *skipped += 1,
        }
    }
    let counters = RelayCounters {
        next_id: outbox.next_id,
        delivered: outbox.delivered,
        abandoned: outbox.abandoned,
        ..RelayCounters::default()
    };
    writes.push(meta("relay", &counters));
    let idempotency: BTreeMap<String, Box<RawValue>> = part(&state, "idempotency", skipped);
    let (mut records, mut bytes) = (0u64, 0u64);
    for (key, raw) in idempotency {
        let Ok(entry) = crate::wire::json::from_str::<LegacyEntry>(raw.get()) else {
            *skipped += 1;
            continue;
        };
        let state = match (entry.state.as_str(), entry.permit, entry.status, entry.body) {
            ("in_flight", Some(permit), _, _) => IdempotencyState::InFlight { permit: PermitId(permit) },
            ("done", _, Some(status), Some(body)) => {
                let generation = crate::lifecycle::answer::created_id(body.as_bytes());
                IdempotencyState::Done { status, generation, body: Some(body) }
            }
            _ => {
                *skipped += 1;
                continue;
            }
        };
        let record = IdempotencyRecord { key, at: entry.at, state };
        records += 1;
        bytes += record.bytes();
        writes.push(Write::PutIdempotency(record));
    }
    writes.push(meta("idempotency", &crate::admission::idempotency::Totals { records, bytes }));
    let next_seq: u64 = part(&state, "next_seq", skipped);
    let sealed_key: Option<String> = part(&state, "sealed_key", skipped);
    for raw in jobs {
        let Ok(mut job) = crate::wire::json::from_str::<Job>(raw) else {
            *skipped += 1;
            continue;
        };
        let body = std::mem::take(&mut job.spec.body);
        job.bytes = body.len() as u64;
        let ticket = job.ticket.clone();
        let waiting = job.is_waiting();
        writes.push(Write::PutJob(job));
        if waiting {
            writes.push(Write::PutJobBody { ticket, body });
        }
    }
    writes.push(meta("seq", &next_seq));
    writes.push(meta("sealed_key", &sealed_key));
    writes.push(meta("queue_cursor", &cursor));
    writes.push(meta("schema_version", &crate::storage::store::SCHEMA_VERSION));
    out.writes = writes;
    out
}
