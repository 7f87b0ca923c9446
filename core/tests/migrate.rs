//! An account persisted by the previous release (schema 1: one JSON value
//! plus `job:*` keys, captured from the old code in
//! `tests/fixtures/legacy-v0/`) loads under the new layout with its spent
//! tokens, permits, queued jobs, replays and cursor intact — at the clock
//! of the capture, so nothing has expired yet.

use std::collections::BTreeMap;

use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::{AdmitRequest, Reason};
use governor_core::config::Config;
use governor_core::ids::{GenerationId, TicketId};
use governor_core::storage::mem::MemAccount;
use governor_core::storage::migrate::from_legacy;
use governor_core::storage::store::SCHEMA_VERSION;
use governor_core::wire::contract::{Command, Reply};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/../tests/fixtures/legacy-v0/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present")).expect("fixture is JSON")
}

fn migrated() -> (MemAccount, governor_core::config::limits::Limits, Value, u64) {
    let kv = fixture("kv.json");
    let expected = fixture("expected.json");
    let entries = kv["entries"].as_object().expect("entries");
    let account = entries.get("account").and_then(Value::as_str);
    let jobs: Vec<String> = entries
        .iter()
        .filter(|(k, _)| k.starts_with("job:"))
        .filter_map(|(_, v)| v.as_str().map(str::to_owned))
        .collect();
    let cursor = entries.get("queue-cursor").and_then(Value::as_str).map(str::to_owned);
    let out = from_legacy(account, &jobs, cursor);
    assert_eq!(out.skipped, 0, "every part of the old layout decodes");
    let mut acc = MemAccount::default();
    acc.store.write(&out.writes);
    let vars: BTreeMap<String, String> = expected["vars"]
        .as_object()
        .expect("vars")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let config = Config::from_vars(&|k| vars.get(k).cloned()).expect("the fixture's configuration");
    acc.restart(&config.limits);
    let now = kv["capturedAtMs"].as_u64().expect("capturedAtMs") + 50;
    (acc, config.limits, expected, now)
}

#[test]
fn the_previous_layout_loads_with_everything_in_flight() {
    let (mut acc, limits, expected, now) = migrated();
    assert_eq!(acc.store.meta.get("schema_version"), Some(&SCHEMA_VERSION.to_string()));
    let Reply::Status(status) = acc.apply(&limits, now, 0.5, Command::Status) else { panic!() };
    let inv = &expected["invariants"];
    assert_eq!(u64::from(status.queue.depth), inv["queueDepth"].as_u64().unwrap());
    assert_eq!(u64::from(status.concurrency.in_use), inv["permitsInUse"].as_u64().unwrap());
    let mut gens: Vec<GenerationId> =
        status.concurrency.in_flight.iter().filter_map(|f| f.generation.clone()).collect();
    gens.sort();
    let mut want: Vec<GenerationId> =
        inv["inFlightGenerations"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().into()).collect();
    want.sort();
    assert_eq!(gens, want, "the permits are bound to the same generations");
    // Spent tokens: the same budget left as the old code reported.
    let old: BTreeMap<String, u64> = expected["status"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["remaining"].as_u64().unwrap()))
        .collect();
    for p in &status.policies {
        // While permits are held, clients see `other` less reconciliation's share.
        let reserved = if p.name == "other" { u64::from(limits.reconcile_reserve()) } else { 0 };
        assert_eq!(Some(&(u64::from(p.remaining) + reserved)), old.get(&p.name), "budget of {}", p.name);
    }
    // The queue's service order and round-robin cursor survived.
    let tickets = expected["tickets"].as_object().unwrap();
    let order: Vec<TicketId> = acc.state.queue.service_order().iter().map(|j| j.ticket.clone()).collect();
    let want: Vec<TicketId> = inv["queuedTicketsInServiceOrder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| tickets[name.as_str().unwrap()].as_str().unwrap().into())
        .collect();
    assert_eq!(order, want);
    assert_eq!(acc.state.queue.last_client(), inv["cursor"].as_str());
    // Every ticket reads as the old code showed it (finished ones from their rows).
    for (name, ticket) in tickets {
        let Reply::Ticket(view) =
            acc.apply(&limits, now, 0.5, Command::Ticket { ticket: ticket.as_str().unwrap().into(), client: None })
        else {
            panic!("{name}: ticket lost")
        };
        let old = &expected["ticketViews"][name];
        assert_eq!(view.status.as_str(), old["status"].as_str().unwrap(), "{name}");
        assert_eq!(view.generation_id.as_ref().map(|g| g.as_str()), old["generationId"].as_str(), "{name}");
        assert_eq!(view.client, old["client"].as_str().unwrap(), "{name}");
    }
    // Bodies are in their own rows, not in memory.
    assert!(acc.state.queue.jobs().iter().all(|j| j.spec.body.is_empty() && j.bytes > 0));
    assert_eq!(acc.store.job_bodies.len(), acc.state.queue.jobs().len());
}

#[test]
fn replays_and_the_line_still_hold_after_the_upgrade() {
    let (mut acc, limits, expected, now) = migrated();
    let keys = &expected["idempotencyKeys"];
    for name in ["createA", "createB"] {
        let k = &keys[name];
        let key =
            IdempotencyKey { client: k["client"].as_str().unwrap().into(), key: k["key"].as_str().unwrap().into() };
        let admit =
            AdmitRequest { class: "generate".into(), permit: true, idempotency: Some(key), ..AdmitRequest::default() };
        let Reply::Replay(r) = acc.apply(&limits, now, 0.5, Command::Admit(admit)) else { panic!("{name}: no replay") };
        assert_eq!(u64::from(r.status), k["replayStatus"].as_u64().unwrap());
        assert!(r.body.contains(k["generation"].as_str().unwrap()), "{name}: the first answer");
    }
    // A queued client key maps to its ticket.
    let q = &keys["queuedJ4"];
    let key = IdempotencyKey { client: q["client"].as_str().unwrap().into(), key: q["key"].as_str().unwrap().into() };
    let admit =
        AdmitRequest { class: "generate".into(), permit: true, idempotency: Some(key), ..AdmitRequest::default() };
    let Reply::Queued(t) = acc.apply(&limits, now, 0.5, Command::Admit(admit)) else { panic!("queued key lost") };
    assert_eq!(t.id, q["ticket"].as_str().unwrap());
    // The permits are still held: a new create is refused for concurrency.
    let create = AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() };
    let Reply::Rejected(r) = acc.apply(&limits, now, 0.5, Command::Admit(create)) else { panic!() };
    assert_eq!(r.reason, Reason::Concurrency);
}

#[test]
fn hostile_legacy_values_are_skipped_not_fatal() {
    let out = from_legacy(Some("{not json"), &["[]".to_owned(), "{\"ticket\":1}".to_owned()], None);
    assert_eq!(out.skipped, 3);
    let mut acc = MemAccount::default();
    acc.store.write(&out.writes);
    let limits = governor_core::config::limits::Limits::for_window(5, 5, 1, 1_000, 0);
    acc.restart(&limits);
    assert!(matches!(acc.apply(&limits, 1, 0.5, Command::Status), Reply::Status(_)));
    let windows = r#"{"windows":{"other":{"s":"x"}},"permits":{"held":[{"id":"bad"}]},"idempotency":{"k":{"at":1}}}"#;
    let out = from_legacy(Some(windows), &[], None);
    assert_eq!(out.skipped, 3);
}
