//! The hostile review's findings on the storage change, each as the
//! smallest history that showed it (they failed before their fixes).
use governor_core::account::Effect;
use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::idempotency::Replay;
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::DispatchOutcome;
use governor_core::queue::job::JobSpec;
use governor_core::relay::delivery::RelayRequest;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::*;

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}
fn keyed(k: &str) -> AdmitRequest {
    AdmitRequest { idempotency: Some(IdempotencyKey { client: "c".into(), key: k.into() }), ..generate() }
}
fn queued(client: &str, body: &str) -> AdmitRequest {
    let spec = JobSpec {
        client: client.into(),
        priority: 0,
        body: body.into(),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    AdmitRequest { enqueue: Some(spec), ..generate() }
}
fn permit(r: Reply) -> governor_core::ids::PermitId {
    match r {
        Reply::Admitted(a) => a.permit.unwrap(),
        other => panic!("{other:?}"),
    }
}

/// F1: a webhook that overtakes `Dispatched{Created}` (the dispatch loop awaits
/// Sync; a webhook fetch interleaves) leaves the queued job's permit bound to an
/// ended generation and the ticket SUBMITTED.
#[test]
fn webhook_before_dispatched_leaks_the_permit() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut acc = MemAccount::default();
    let p = permit(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    let Reply::Queued(t) = acc.apply(&l, 2, 0.5, Command::Admit(queued("a", "{}"))) else { panic!() };
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(job) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!() };
    // Sync created "gq" and it failed at once; its webhook beats the create's answer.
    let r = acc.apply(
        &l,
        5,
        0.5,
        Command::Webhook { generation: "gq".into(), status: GenerationStatus::Failed, relay: None, output_ms: None },
    );
    assert_eq!(r, Reply::Ack { released: 0 });
    let created = DispatchOutcome::Created { generation: "gq".into() };
    acc.apply(&l, 6, 0.5, Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome: created });
    let Reply::Ticket(_v) = acc.apply(&l, 7, 0.5, Command::Ticket { ticket: t.id.clone(), client: None }) else {
        panic!()
    };
    assert_eq!(acc.state.permits.in_use(), 0, "the ended generation still holds the account's only permit");
}

/// F2: a keyed create released in the same command as the sweep is deleted
/// twice: the totals drift below the table (bound bypass).
#[test]
fn released_in_flight_key_is_deleted_twice_by_the_sweep() {
    let mut l = Limits::for_window(100, 100, 10, 60_000, 0);
    l.idempotency.ttl_ms = 1_000; // IDEMPOTENCY_TTL_SECONDS=1 (allowed: min 1s, no cross-check)
    l.idempotency.max_records = 2;
    let mut acc = MemAccount::default();
    let a = permit(acc.apply(&l, 0, 0.5, Command::Admit(keyed("k1"))));
    let replay = Replay {
        key: IdempotencyKey { client: "c".into(), key: "k1".into() },
        status: 201,
        body: r#"{"id":"g1"}"#.into(),
        refetch: None,
    };
    acc.apply(&l, 0, 0.5, Command::Bind { permit: a, generation: "g1".into(), replay: Some(replay) });
    let b = permit(acc.apply(&l, 0, 0.5, Command::Admit(keyed("k2"))));
    // 60 s later (the sweep is due) Sync refuses k2's create.
    acc.apply(&l, 60_000, 0.5, Command::Release { permit: b });
    assert_eq!(acc.state.idempotency.totals.records, acc.store.idempotency.len() as u64, "counter drifted");
}

/// F3: the outbox's next id is not recovered from its rows: when the meta row
/// is behind (partial write / undecodable), a new payload overwrites a pending one.
#[test]
fn outbox_id_reused_when_meta_is_behind() {
    let l = Limits::for_window(100, 100, 10, 60_000, 0);
    let mut acc = MemAccount::default();
    let relay = |b: &str| Some(RelayRequest { url: "https://c/h".into(), body: b.into(), headers: vec![] });
    acc.apply(
        &l,
        0,
        0.5,
        Command::Webhook {
            generation: "g".into(),
            status: GenerationStatus::Completed,
            relay: relay("first"),
            output_ms: None,
        },
    );
    acc.store.meta.remove("relay"); // as if the command's last (meta) write was lost
    acc.restart(&l);
    acc.apply(
        &l,
        1,
        0.5,
        Command::Webhook {
            generation: "h".into(),
            status: GenerationStatus::Completed,
            relay: relay("second"),
            output_ms: None,
        },
    );
    let bodies: Vec<_> = acc.store.outbox.values().map(|d| d.body.clone()).collect();
    assert_eq!(bodies.len(), 2, "the first payload was overwritten");
}

/// F4: an in-flight record whose permit is gone (legacy account, skipped permit
/// row) is never settled nor swept: the key answers InProgress forever.
#[test]
fn orphan_in_flight_key_is_stuck_forever() {
    let l = Limits::for_window(100, 100, 10, 60_000, 0);
    let legacy =
        r#"{"idempotency":{"c\u001fk":{"at":0,"state":"in_flight","permit":7}},"permits":{"held":[],"next_id":7}}"#;
    let m = governor_core::storage::migrate::from_legacy(Some(legacy), &[], None);
    let mut acc = MemAccount::default();
    acc.store.write(&m.writes);
    acc.restart(&l);
    let far = 30 * 86_400_000u64;
    acc.apply(&l, far, 0.5, Command::Tick);
    let r = acc.apply(&l, far + 1, 0.5, Command::Admit(keyed("k")));
    assert!(!matches!(r, Reply::Refused(Refusal::InProgress { .. })), "30 days later the key is still in progress");
}

/// F5: one Tick read every due delivery's body into memory at once.
#[test]
fn tick_loads_every_due_body_at_once() {
    let mut l = Limits::for_window(100, 100, 10, 60_000, 0);
    l.relay.max_pending = 1_000;
    l.relay.max_bytes = 64 << 20;
    l.relay.max_age_ms = 86_400_000;
    let mut acc = MemAccount::default();
    let body = "x".repeat(60_000);
    for i in 0..1_000 {
        acc.apply(
            &l,
            0,
            0.5,
            Command::Webhook {
                generation: format!("g{i}").into(),
                status: GenerationStatus::Completed,
                relay: Some(RelayRequest { url: "https://c/h".into(), body: body.clone(), headers: vec![] }),
                output_ms: None,
            },
        );
    }
    let out = acc.run(&l, 1, 0.5, Command::Tick);
    let bytes: usize = out
        .effects
        .iter()
        .map(|e| match e {
            Effect::Deliver(d) => d.body.len(),
            _ => 0,
        })
        .sum();
    assert!(bytes < 8 << 20, "bodies in memory at once: {bytes}");
}

#[test]
fn hostile_legacy_values() {
    let l = Limits::for_window(60, 600, 3, 60_000, 1_000);
    let cases = [
        r#"{"windows":{"generate":{"s":"18446744073709551615,5"}}}"#,
        r#"{"permits":{"held":[{"id":18446744073709551615,"holder":"request","since":0,"expires":18446744073709551615}],"next_id":18446744073709551615}}"#,
        r#"{"windows":{"generate":{"s":"1,2,3","t":18446744073709551615}}}"#,
        r#"{"outbox":{"items":[{"id":18446744073709551615,"url":"u","body":"b","headers":[],"attempts":0,"next_at":0,"deadline":1}],"next_id":18446744073709551615}}"#,
        r#"{"idempotency":{"k":{"at":18446744073709551615,"state":"done","status":201,"body":"{}"}}}"#,
        r#"{"reconcile":{"next_at":18446744073709551615},"backoff":{"generate":{"until":18446744073709551615,"strikes":4294967295}}}"#,
    ];
    for (i, c) in cases.iter().enumerate() {
        let r = std::panic::catch_unwind(|| {
            let m = governor_core::storage::migrate::from_legacy(Some(c), &[], None);
            let mut acc = MemAccount::default();
            acc.store.write(&m.writes);
            acc.restart(&l);
            let now = 1_800_000_000_000;
            for cmd in [
                Command::Admit(generate()),
                Command::Tick,
                Command::Status,
                Command::Admit(keyed("k")),
                Command::Webhook {
                    generation: "g".into(),
                    status: GenerationStatus::Completed,
                    relay: Some(RelayRequest { url: "u".into(), body: "b".into(), headers: vec![] }),
                    output_ms: None,
                },
            ] {
                acc.apply(&l, now, 0.5, cmd);
            }
            m.skipped
        });
        assert!(r.is_ok(), "hostile legacy case {i} panicked");
    }
}

#[test]
fn interrupted_submission_is_not_in_next_wake() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut acc = MemAccount::default();
    let p = permit(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    acc.apply(&l, 2, 0.5, Command::Admit(queued("a", "{}")));
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(_) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!() };
    acc.restart(&l); // died mid-submit
    let out = acc.run(&l, 10, 0.5, Command::Status);
    assert_eq!(out.wake, Some(10), "a submission cut off by a restart resumes at once");
}

#[test]
fn interrupted_submission_whose_permit_expired_becomes_cancelable() {
    let mut l = Limits::for_window(100, 100, 2, 60_000, 0);
    l.concurrency.reservation_ttl_ms = 60_000;
    let mut acc = MemAccount::default();
    for g in ["a", "b"] {
        let p = permit(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
        acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: g.into(), replay: None });
    }
    let Reply::Queued(t) = acc.apply(&l, 2, 0.5, Command::Admit(queued("q", "{}"))) else { panic!() };
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "a".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(_) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!() };
    acc.restart(&l); // died while the POST was on its way: Sync may have created it
    let now = 70_000; // the reservation expired before the object came back
    let p = permit(acc.apply(&l, now, 0.5, Command::Admit(generate())));
    acc.apply(&l, now, 0.5, Command::Bind { permit: p, generation: "c".into(), replay: None });
    acc.apply(&l, now, 0.5, Command::Dispatch);
    let r = acc.apply(&l, now + 1, 0.5, Command::Cancel { ticket: t.id, client: None });
    assert_eq!(r, Reply::Refused(Refusal::AlreadySubmitted));
}

/// Finished (canceled) jobs count toward no bound, cost no budget, and the
/// sweep removes at most 256 a minute: enqueue+cancel churn at 10/s grows
/// the jobs table without bound, far past its retention.
#[test]
fn canceled_jobs_outgrow_the_sweep() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0); // retention 60 s
    let mut acc = MemAccount::default();
    let p = permit(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 0, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    let mut now = 1;
    for _ in 0..6_000 {
        // 10 minutes at 10 a second
        now += 100;
        let Reply::Queued(t) = acc.apply(&l, now, 0.5, Command::Admit(queued("a", "{}"))) else { panic!() };
        acc.apply(&l, now, 0.5, Command::Cancel { ticket: t.id, client: None });
        acc.apply(&l, now, 0.5, Command::Tick);
    }
    let rows = acc.store.jobs.len();
    assert!(rows < 1_000);
}
