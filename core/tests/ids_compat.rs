//! State stored before ids were types loads unchanged. The rows in
//! `tests/fixtures/ids-3bbe721/rows.json` were written by the core of
//! 3bbe721 (permit ids a `u64`, ticket and generation ids `String`s; the
//! program that wrote them is `capture.rs.txt` beside them): every row
//! reads into today's typed rows and writes back byte for byte, and an
//! account restored from them holds the same permits, ticket, replay and
//! relay dedupe as before.

use std::collections::BTreeMap;

use governor_core::account::AccountState;
use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::ids::{GenerationId, PermitId, TicketId};
use governor_core::lifecycle::permits::Permit;
use governor_core::lifecycle::status::{GenerationStatus, TicketStatus};
use governor_core::operations::metrics::Metrics;
use governor_core::queue::job::Job;
use governor_core::rates::class::RateClass;
use governor_core::relay::delivery::{Delivery, RelayRequest};
use governor_core::storage::mem::MemAccount;
use governor_core::storage::store::IdempotencyRecord;
use governor_core::wire::contract::{Command, Reply};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn fixture() -> Value {
    let path = format!("{}/../tests/fixtures/ids-3bbe721/rows.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present")).expect("fixture is JSON")
}

fn rows(v: &Value, table: &str) -> Vec<String> {
    v[table].as_array().expect(table).iter().map(|r| r.as_str().expect("a row is JSON text").to_owned()).collect()
}

/// Read a stored row as today's type and write it back: the same bytes.
fn same_bytes<T: DeserializeOwned + Serialize>(row: &str) -> T {
    let typed: T = serde_json::from_str(row).unwrap_or_else(|e| panic!("{row}: {e}"));
    assert_eq!(serde_json::to_string(&typed).unwrap(), row, "a row written by 3bbe721 reads and writes back unchanged");
    typed
}

fn limits() -> Limits {
    Limits::for_window(100, 100, 2, 60_000, 0)
}

fn restored() -> (MemAccount, Value) {
    let v = fixture();
    let mut acc = MemAccount::default();
    let meta: BTreeMap<String, String> = serde_json::from_value(v["meta"].clone()).expect("meta");
    acc.store.meta = meta;
    for p in rows(&v, "permits").iter().map(|r| same_bytes::<Permit>(r)) {
        acc.store.permits.insert(p.id, p);
    }
    for j in rows(&v, "jobs").iter().map(|r| same_bytes::<Job>(r)) {
        acc.store.jobs.insert(j.ticket.clone(), j);
    }
    for r in rows(&v, "idempotency").iter().map(|r| same_bytes::<IdempotencyRecord>(r)) {
        acc.store.idempotency.insert(r.key.clone(), r);
    }
    for d in rows(&v, "outbox").iter().map(|r| same_bytes::<Delivery>(r)) {
        acc.store.outbox.insert(d.id, d);
    }
    for r in v["relayed"].as_array().expect("relayed") {
        let (g, s, at) = (r[0].as_str().unwrap(), r[1].as_str().unwrap(), r[2].as_u64().unwrap());
        acc.store.relayed.insert((g.into(), GenerationStatus::parse(s)), at);
    }
    acc.state = AccountState::load(&acc.store, &limits()).expect("the old rows load");
    (acc, v)
}

#[test]
fn rows_written_before_ids_were_types_keep_their_bytes() {
    let v = fixture();
    assert_eq!(v["release"], "3bbe721");
    let permits: Vec<Permit> = rows(&v, "permits").iter().map(|r| same_bytes(r)).collect();
    assert_eq!(permits.iter().map(|p| p.id).collect::<Vec<_>>(), [PermitId(2), PermitId(3)]);
    assert_eq!(permits[0].generation(), Some(&GenerationId::from("gen-2")));
    assert_eq!(permits[0].callback.as_ref().map(TicketId::as_str), v["callback"].as_str());
    let jobs: Vec<Job> = rows(&v, "jobs").iter().map(|r| same_bytes(r)).collect();
    assert_eq!(Some(jobs[0].ticket.as_str()), v["ticket"].as_str());
    for r in rows(&v, "idempotency") {
        same_bytes::<IdempotencyRecord>(&r);
    }
    for r in rows(&v, "outbox") {
        same_bytes::<Delivery>(&r);
    }
    // Metrics keyed by class (counters and the dashboard's series) too.
    let metrics: Metrics = same_bytes(v["meta"]["metrics"].as_str().unwrap());
    assert_eq!(metrics.counters.admitted.get(&RateClass::Generate), Some(&1));
}

#[test]
fn an_account_restored_from_old_rows_keeps_its_permits_ticket_replay_and_relays() {
    let (mut acc, v) = restored();
    let l = limits();
    let now = v["capturedAtMs"].as_u64().unwrap() + 10;
    assert!(acc.state.permits.holds_generation(&"gen-2".into()));
    assert!(acc.state.permits.holds_generation(&"gen-3".into()));
    // The queued job's ticket, read as a client names it.
    let ticket = TicketId::parse(v["ticket"].as_str().unwrap()).expect("a random ticket id");
    let Reply::Ticket(t) = acc.apply(&l, now, 0.5, Command::Ticket { ticket: ticket.clone(), client: None }) else {
        panic!("the ticket is known")
    };
    assert_eq!((t.status, t.generation_id), (TicketStatus::Submitted, Some(GenerationId::from("gen-3"))));
    // The key's first answer is replayed.
    let key = IdempotencyKey { client: "c".into(), key: "k1".into() };
    let retry = AdmitRequest { class: RateClass::Generate, permit: true, idempotency: Some(key), ..Default::default() };
    let Reply::Replay(r) = acc.apply(&l, now, 0.5, Command::Admit(retry)) else { panic!("a replay") };
    assert_eq!((r.status, r.body.as_str()), (201, r#"{"id":"gen-1","status":"PENDING"}"#));
    // gen-1's end was relayed: the same end again is not queued twice.
    let outbox = acc.state.outbox.counters.next_id;
    let relay = RelayRequest { url: "https://client.example/hook".into(), body: "{}".into(), headers: vec![] };
    let again = Command::Webhook {
        generation: "gen-1".into(),
        status: GenerationStatus::Completed,
        relay: Some(relay),
        output_ms: None,
    };
    acc.apply(&l, now, 0.5, again);
    assert_eq!(acc.state.outbox.counters.next_id, outbox, "a relayed end is remembered across the upgrade");
    // gen-3 ends: its permit frees and the ticket takes its end.
    let end = Command::Webhook {
        generation: "gen-3".into(),
        status: GenerationStatus::Completed,
        relay: None,
        output_ms: None,
    };
    acc.apply(&l, now + 1, 0.5, end);
    assert!(!acc.state.permits.holds_generation(&"gen-3".into()));
    let Reply::Ticket(t) = acc.apply(&l, now + 2, 0.5, Command::Ticket { ticket, client: None }) else { panic!() };
    assert_eq!(t.status, TicketStatus::Ended(GenerationStatus::Completed));
}
