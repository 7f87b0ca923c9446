//! The account's line (held requests, queued jobs) and idempotency, natively
//! with an injected clock.

use governor_core::admission::idempotency::{IdempotencyKey, Replay};
use governor_core::admission::request::{AdmitRequest, Hold};
use governor_core::config::limits::Limits;
use governor_core::ids::PermitId;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::DispatchOutcome;
use governor_core::queue::job::JobSpec;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Refusal, Reply};

fn limits() -> Limits {
    Limits::for_window(100, 100, 1, 60_000, 0)
}

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn held(ticket: Option<u64>) -> AdmitRequest {
    AdmitRequest { hold: Some(Hold { ticket, remaining_ms: 10_000, calls: 1 }), ..generate() }
}

fn permit_of(r: Reply) -> PermitId {
    match r {
        Reply::Admitted(a) => a.permit.expect("a permit"),
        other => panic!("not admitted: {other:?}"),
    }
}

fn bind(l: &Limits, st: &mut MemAccount, now: u64, permit: PermitId, id: &str) {
    st.apply(l, now, 0.5, Command::Bind { permit, generation: id.into(), replay: None });
}

fn end(l: &Limits, st: &mut MemAccount, now: u64, id: &str) {
    st.apply(
        l,
        now,
        0.5,
        Command::Webhook { generation: id.into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
}

#[test]
fn held_requests_are_served_in_arrival_order() {
    let l = limits();
    let mut st = MemAccount::default();
    let p = permit_of(st.apply(&l, 0, 0.5, Command::Admit(generate())));
    bind(&l, &mut st, 0, p, "g0");
    let Reply::Rejected(a) = st.apply(&l, 10, 0.5, Command::Admit(held(None))) else { panic!() };
    let Reply::Rejected(b) = st.apply(&l, 20, 0.5, Command::Admit(held(None))) else { panic!() };
    let (ta, tb) = (a.hold.unwrap(), b.hold.unwrap());
    assert!(ta < tb);
    end(&l, &mut st, 30, "g0");
    // B polls first but A is ahead; a newcomer without a hold is behind both.
    assert!(matches!(st.apply(&l, 40, 0.5, Command::Admit(held(Some(tb)))), Reply::Rejected(_)));
    assert!(matches!(st.apply(&l, 40, 0.5, Command::Admit(generate())), Reply::Rejected(_)));
    let pa = permit_of(st.apply(&l, 50, 0.5, Command::Admit(held(Some(ta)))));
    bind(&l, &mut st, 50, pa, "ga");
    end(&l, &mut st, 60, "ga");
    permit_of(st.apply(&l, 70, 0.5, Command::Admit(held(Some(tb)))));
}

#[test]
fn an_abandoned_hold_stops_blocking_once_its_lease_ends() {
    let l = limits();
    let mut st = MemAccount::default();
    let p = permit_of(st.apply(&l, 0, 0.5, Command::Admit(generate())));
    bind(&l, &mut st, 0, p, "g0");
    let Reply::Rejected(a) = st.apply(&l, 10, 0.5, Command::Admit(held(None))) else { panic!() };
    end(&l, &mut st, 20, "g0");
    assert!(matches!(st.apply(&l, 30, 0.5, Command::Admit(generate())), Reply::Rejected(_)));
    // The holder never came back: past its poll interval and grace, the line moves.
    let later = 10 + Hold::first(10_000).sleep_ms(&a) + 1_000 + 1;
    permit_of(st.apply(&l, later, 0.5, Command::Admit(generate())));
}

#[test]
fn idempotency_keys_replay_and_never_spend_twice() {
    let l = limits();
    let mut st = MemAccount::default();
    let key = IdempotencyKey { client: "c1".into(), key: "order-1".into() };
    let req = AdmitRequest { idempotency: Some(key.clone()), ..generate() };
    let p = permit_of(st.apply(&l, 0, 0.5, Command::Admit(req.clone())));
    assert!(matches!(st.apply(&l, 1, 0.5, Command::Admit(req.clone())), Reply::Refused(Refusal::InProgress { .. })));
    let replay = Replay { key: key.clone(), status: 201, body: "{\"id\":\"g1\"}".into(), refetch: None };
    st.apply(&l, 2, 0.5, Command::Bind { permit: p, generation: "g1".into(), replay: Some(replay.clone()) });
    let remaining = st.state.policies(&l, 3, &governor_core::rates::class::RateClass::Generate, false)[0].remaining;
    assert_eq!(st.apply(&l, 3, 0.5, Command::Admit(req.clone())), Reply::Replay(replay));
    assert_eq!(
        st.state.policies(&l, 3, &governor_core::rates::class::RateClass::Generate, false)[0].remaining,
        remaining,
        "a replay spends nothing"
    );
    assert_eq!(st.state.permits.in_use(), 1);
    // Another client's same key is its own.
    let other =
        AdmitRequest { idempotency: Some(IdempotencyKey { client: "c2".into(), key: "order-1".into() }), ..generate() };
    assert!(matches!(st.apply(&l, 4, 0.5, Command::Admit(other)), Reply::Rejected(_)));
}

#[test]
fn queued_jobs_are_submitted_as_permits_free_and_take_their_final_status() {
    let l = limits();
    let mut st = MemAccount::default();
    let p = permit_of(st.apply(&l, 0, 0.5, Command::Admit(generate())));
    bind(&l, &mut st, 0, p, "g0");
    let spec =
        JobSpec { client: "c".into(), priority: 0, body: "{}".into(), model: None, idempotency_key: None, cost: None };
    let Reply::Queued(ticket) =
        st.apply(&l, 10, 0.5, Command::Admit(AdmitRequest { enqueue: Some(spec), ..generate() }))
    else {
        panic!()
    };
    assert_eq!((ticket.status.as_str(), ticket.position), ("QUEUED", Some(0)));
    assert_eq!(st.apply(&l, 20, 0.5, Command::Dispatch), Reply::Ack { released: 0 }, "no room yet");
    assert_eq!(st.state.next_wake(&l, 20).map(|w| w > 20), Some(true));
    end(&l, &mut st, 30, "g0");
    assert_eq!(st.state.next_wake(&l, 30), Some(30), "the queue wants the alarm now");
    let Reply::Dispatch(job) = st.apply(&l, 30, 0.5, Command::Dispatch) else { panic!() };
    assert_eq!(job.idempotency_key, format!("sync-governor-{}", ticket.id));
    // While it is on its way, nothing else is sent and the alarm is not wanted at once.
    assert_eq!(st.apply(&l, 31, 0.5, Command::Dispatch), Reply::Ack { released: 0 });
    assert!(st.state.next_wake(&l, 31).is_none_or(|w| w > 31), "no alarm loop while the send is live");
    // A restart here leaves it SUBMITTING: the next Dispatch resends it with the same permit and key.
    st.restart(&l);
    let Reply::Dispatch(again) = st.apply(&l, 31, 0.5, Command::Dispatch) else { panic!() };
    assert_eq!((again.permit, &again.idempotency_key), (job.permit, &job.idempotency_key));
    let created = DispatchOutcome::Created { generation: "g1".into() };
    st.apply(&l, 40, 0.5, Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome: created });
    let Reply::Ticket(v) = st.apply(&l, 41, 0.5, Command::Ticket { ticket: job.ticket.clone(), client: None }) else {
        panic!()
    };
    assert_eq!((v.status.as_str(), v.generation_id.as_ref().map(|g| g.as_str())), ("SUBMITTED", Some("g1")));
    end(&l, &mut st, 50, "g1");
    let Reply::Ticket(v) = st.apply(&l, 51, 0.5, Command::Ticket { ticket: job.ticket, client: None }) else {
        panic!()
    };
    assert_eq!(v.status.as_str(), "COMPLETED");
    assert_eq!(st.state.permits.in_use(), 0);
}

/// One reading of Sync's create answers: what a direct create's proxy
/// settles (`settle::after_create`) and what a queued job's submission
/// records (`DispatchOutcome::from(answer::read_create(..))`) agree for every
/// answer: bound, freed, kept unsettled, or backed off.
#[test]
fn direct_and_queued_creates_read_sync_alike() {
    use governor_core::lifecycle::answer::read_create;
    use governor_core::lifecycle::limited::LimitKind;
    use governor_core::lifecycle::settle::after_create;
    let answers: [(u16, &[u8]); 9] = [
        (201, br#"{"id":"g1","status":"PENDING"}"#),
        (200, br#"{"id":"g2","status":"COMPLETED"}"#),
        (200, b"{}"),
        (200, br#"[{"id":"g3"}]"#),
        (429, br#"{"errorCode":"concurrency_limit_exceeded"}"#),
        (429, b"not json"),
        (422, br#"{"message":"bad input"}"#),
        (503, b""),
        (302, b""),
    ];
    for (status, body) in answers {
        let direct = after_create(PermitId(7), status, body, Some(2_000), None);
        let queued = DispatchOutcome::from(read_create(status, body, Some(2_000)));
        let agree = match (&direct, &queued) {
            (Some(Command::Bind { generation: a, .. }), DispatchOutcome::Created { generation: b })
            | (Some(Command::Bind { generation: a, .. }), DispatchOutcome::Ended { generation: b, .. }) => a == b,
            (
                Some(Command::UpstreamLimited { kind: a, retry_after_ms: ra, .. }),
                DispatchOutcome::Limited { kind: b, retry_after_ms: rb },
            ) => a == b && ra == rb,
            (Some(Command::Release { .. }), DispatchOutcome::Refused { status: s, .. }) => *s == status,
            (Some(Command::Unsettled { .. }), DispatchOutcome::Transient) => true,
            _ => false,
        };
        assert!(agree, "{status} {}: direct {direct:?}, queued {queued:?}", String::from_utf8_lossy(body));
    }
    let ended = DispatchOutcome::from(read_create(200, br#"{"id":"g2","status":"COMPLETED"}"#, None));
    assert_eq!(ended, DispatchOutcome::Ended { generation: "g2".into(), status: GenerationStatus::Completed });
    let limited = read_create(429, b"not json", None);
    assert_eq!(
        DispatchOutcome::from(limited),
        DispatchOutcome::Limited { kind: LimitKind::Rate, retry_after_ms: None }
    );
}
