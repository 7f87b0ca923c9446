//! Issue 19 (hostile review of the operations work): one test per finding
//! the core decides, each named after it. The runtime's part of a finding
//! is shown in workerd (tests/e2e/issue19.test.mjs).

use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::operations::admin::AdminCommand;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

const MINUTE: u64 = 60_000;

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), ..AdmitRequest::default() }
}

fn admitted(acc: &mut MemAccount, l: &Limits, now: u64, req: AdmitRequest) -> bool {
    matches!(acc.apply(l, now, 0.5, Command::Admit(req)), Reply::Admitted(_))
}

#[test]
fn finding_1_a_raised_rate_override_survives_a_reload() {
    // The var says 5 a minute; the operator raised it to 10.
    let l = Limits::for_window(5, 100, 10, MINUTE, 0);
    let mut acc = MemAccount::default();
    acc.apply(&l, 0, 0.5, Command::Admin(AdminCommand::SetLimits { body: r#"{"generatePerMinute":10}"#.into() }));
    let first = (0..10).filter(|i| admitted(&mut acc, &l, 1 + i, generate())).count();
    assert_eq!(first, 10, "the override admits 10");
    // The runtime restarts inside the window, with the vars' limits.
    acc.restart(&l);
    let after = (0..5).filter(|i| admitted(&mut acc, &l, 100 + i, generate())).count();
    assert_eq!(after, 0, "{} more admitted in the same window after a reload: the limit is 10", after);
    // The window still ends on time.
    assert!(admitted(&mut acc, &l, MINUTE + 1, generate()));
}

#[test]
fn finding_6_a_config_error_never_prints_a_client_key() {
    use governor_core::config::Config;
    // GOVERNOR_CLIENT_KEYS written the wrong way round: account -> client key.
    let client_key = "ck_live_9f8e7d6c5b4a39281706";
    let vars: std::collections::BTreeMap<&str, String> = [
        ("GOVERNOR_CLIENT_KEYS", format!(r#"{{"acme-production-account":"{client_key}"}}"#)),
        ("SYNC_API_KEYS", r#"{"acme-production-account":"sk_sync_0123456789"}"#.to_owned()),
    ]
    .into_iter()
    .collect();
    let Err(e) = Config::from_vars(&|k| vars.get(k).cloned()) else { panic!("a backwards map is refused") };
    let text = format!("{e} {e:?}");
    assert!(!text.contains(client_key), "the configuration error prints a client key: {text}");
    assert!(!text.contains("sk_sync_0123456789"), "nor a Sync key: {text}");
    assert!(text.contains("SYNC_API_KEYS") || text.contains("GOVERNOR_CLIENT_KEYS"), "it names the var: {text}");
}

#[test]
fn finding_10_a_line_longer_than_its_bound_answers_a_bounded_retry_after() {
    use governor_core::admission::request::Hold;
    use governor_core::queue::job::JobSpec;
    let l = Limits::for_window(1, 100, 100, MINUTE, 0);
    let mut acc = MemAccount::default();
    assert!(admitted(&mut acc, &l, 0, generate()), "the window's one admission");
    // Two queued jobs and 9,999 held requests: the next one is 10,002nd in line.
    for i in 0..2 {
        let spec = JobSpec {
            client: "c".into(),
            priority: 0,
            body: "{}".into(),
            model: None,
            idempotency_key: None,
            cost: None,
        };
        let q = AdmitRequest { enqueue: Some(spec), permit: true, ..generate() };
        assert!(matches!(acc.apply(&l, 1 + i, 0.5, Command::Admit(q)), Reply::Queued(_)));
    }
    let patient = |ticket| Hold { ticket, remaining_ms: 1 << 40, calls: 1 };
    for _ in 0..9_999 {
        let req = AdmitRequest { hold: Some(patient(None)), ..generate() };
        let Reply::Rejected(r) = acc.apply(&l, 10, 0.5, Command::Admit(req)) else { panic!("not refused") };
        assert!(r.hold.is_some(), "held");
    }
    let req = AdmitRequest { hold: Some(patient(None)), ..generate() };
    let Reply::Rejected(r) = acc.apply(&l, 20, 0.5, Command::Admit(req)) else { panic!("not refused") };
    assert!(r.retry_after_ms <= 600_000, "Retry-After {} ms for a line past its bound", r.retry_after_ms);
    assert!(r.retry_after_ms >= 1_000, "and not an invitation to retry at once: {} ms", r.retry_after_ms);
    assert_eq!(r.retry_at_ms, 20 + r.retry_after_ms);
    assert_eq!(r.reason.name(), "line_full", "the reason says why");
}

#[test]
fn finding_4_shadow_mode_with_pacing_does_not_lock_the_account_out_after_the_switch_to_enforce() {
    // 10 a minute, paced: at most 2 back to back.
    let mut enforce = Limits::for_window(10, 100, 100, MINUTE, 0);
    enforce.generate.burst = 2;
    let shadow = Limits { shadow: true, ..enforce.clone() };
    let mut acc = MemAccount::default();
    // Shadow: 200 requests over two minutes, all admitted.
    for i in 0..200u64 {
        assert!(admitted(&mut acc, &shadow, i * 600, generate()), "shadow admits everything");
    }
    // The traffic stops; two minutes later the account is switched to enforce
    // (and reloaded by the new deployment).
    acc.restart(&enforce);
    let later = 120_000 + 2 * MINUTE;
    match acc.apply(&enforce, later, 0.5, Command::Admit(generate())) {
        Reply::Admitted(_) => {}
        Reply::Rejected(r) => {
            panic!("locked out after the switch: Retry-After {} s", r.retry_after_secs())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn finding_7_stored_times_far_in_the_future_never_wedge_the_account() {
    use governor_core::lifecycle::permits::{Holder, Permit};
    use governor_core::storage::store::Write;
    const Y2100: u64 = 4_102_444_800_000;
    let now = 1_000_000_000_000; // 2001
    let l = Limits::for_window(10, 1, 1, MINUTE, 0);
    let mut acc = MemAccount::default();
    // Hostile rows (a migration, a bad write): a backoff, a reservation and a stamp in 2100.
    acc.store.write(&[
        Write::Meta { key: "backoff", value: format!(r#"{{"generate":{{"strikes":1,"until":{Y2100}}}}}"#) },
        Write::PutPermit(Permit {
            id: 1.into(),
            holder: Holder::Request,
            since: Y2100,
            bound_at: None,
            expires: Y2100,
            model: None,
            unknown_since: None,
            client: None,
            callback: None,
        }),
        Write::Admission { class: "other".into(), at: Y2100 },
    ]);
    acc.restart(&l);
    let other = AdmitRequest { class: "other".into(), ..AdmitRequest::default() };
    let permit = AdmitRequest { permit: true, ..generate() };
    // The backoff: at most the policy's cap.
    let out = acc.run(&l, now, 0.5, Command::Admit(generate()));
    let Reply::Rejected(r) = &out.reply else { panic!("the backoff refuses for now: {:?}", out.reply) };
    assert!(r.retry_after_ms <= l.backoff.cap_ms, "backoff refuses for {} days", r.retry_after_ms / 86_400_000);
    // The alarm arms within a day (a time in 2100 would wrap the runtime's offset).
    if let Some(w) = out.wake {
        assert!(w <= now + 86_400_000, "wake at {w}");
    }
    // The stamp: it fills the window for one span at most.
    let Reply::Rejected(r) = acc.apply(&l, now, 0.5, Command::Admit(other.clone())) else { panic!("refused") };
    assert!(r.retry_after_ms <= MINUTE, "a stamp in 2100 fills the window for {} s", r.retry_after_ms / 1000);
    // The reservation: at most its TTL, and an honest Retry-After (never 0).
    let after_backoff = now + l.backoff.cap_ms + 1;
    match acc.apply(&l, after_backoff, 0.5, Command::Admit(permit.clone())) {
        Reply::Rejected(r) => {
            assert!(r.retry_after_ms > 0, "429 Retry-After: 0 (clients spin)");
            assert!(
                r.retry_after_ms <= l.concurrency.reservation_ttl_ms,
                "reservation held {} s",
                r.retry_after_ms / 1000
            );
        }
        Reply::Admitted(_) => {}
        other => panic!("{other:?}"),
    }
    let later = now + l.concurrency.reservation_ttl_ms + MINUTE + 1;
    assert!(admitted(&mut acc, &l, later, permit), "the account works again");
    assert!(admitted(&mut acc, &l, later, other), "the window works again");
}

#[test]
fn finding_8_force_releasing_an_unbound_permit_keeps_its_idempotency_key_until_a_listing() {
    use governor_core::admission::idempotency::IdempotencyKey;
    use governor_core::wire::contract::Refusal;
    let l = Limits::for_window(100, 100, 1, MINUTE, 0);
    let keyed = || AdmitRequest {
        permit: true,
        idempotency: Some(IdempotencyKey { client: "c".into(), key: "order-17".into() }),
        ..generate()
    };
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(keyed())) else { panic!("admitted") };
    let permit = a.permit.expect("a permit");
    // The create is on its way (or its answer was lost); the operator frees the slot.
    let target = format!("permit-{permit}");
    acc.apply(&l, 10, 0.5, Command::Admin(AdminCommand::ReleasePermit { target }));
    // A retry with the same key must not create a second generation.
    match acc.apply(&l, 20, 0.5, Command::Admit(keyed())) {
        Reply::Refused(Refusal::InProgress { retry_after_ms }) => assert!(retry_after_ms > 0),
        other => panic!("the same Idempotency-Key is admitted again after a force-release: {other:?}"),
    }
    acc.restart(&l);
    assert!(
        matches!(acc.apply(&l, 30, 0.5, Command::Admit(keyed())), Reply::Refused(Refusal::InProgress { .. })),
        "still kept after a restart"
    );
    // A complete listing that began after the release shows Sync has nothing: the key may go again.
    let listed = Command::Reconciled { listed_from: 40, active: Vec::new(), complete: true, ended: Vec::new() };
    acc.apply(&l, 50, 0.5, listed);
    assert!(admitted(&mut acc, &l, 60, keyed()), "after the listing the key is free");
}

#[test]
fn finding_3_a_callback_frees_only_its_own_generation_and_swallows_no_other_webhook() {
    use governor_core::relay::delivery::RelayRequest;
    use governor_core::wire::contract::Refusal;
    let l = Limits::for_window(100, 100, 2, MINUTE, 0);
    let mut acc = MemAccount::default();
    let create = |acc: &mut MemAccount, now, callback: &str, generation: &str| {
        let req = AdmitRequest { permit: true, callback: Some(callback.into()), ..generate() };
        let Reply::Admitted(a) = acc.apply(&l, now, 0.5, Command::Admit(req)) else { panic!("admitted") };
        let permit = a.permit.expect("a permit");
        acc.apply(&l, now, 0.5, Command::Bind { permit, generation: generation.into(), replay: None });
    };
    create(&mut acc, 0, "cb-a", "gen-a");
    create(&mut acc, 1, "cb-b", "gen-b");
    let hook = |url: &str| Some(RelayRequest { url: url.into(), body: "{}".into(), headers: vec![] });
    let on = |callback: &str, generation: &str, url: &str| Command::Callback {
        callback: callback.into(),
        generation: generation.into(),
        status: GenerationStatus::Completed,
        relay: hook(url),
        output_ms: None,
    };
    // A's callback posts B's id: refused, B's permit stays, nothing relayed.
    let forged = acc.apply(&l, 2, 0.5, on("cb-a", "gen-b", "https://a.example/hook"));
    assert!(matches!(forged, Reply::Refused(Refusal::Invalid(_))), "A's callback freed or relayed B: {forged:?}");
    assert_eq!(acc.state.permits.in_use(), 2, "B's permit is still held");
    // B's own callback: B's permit frees, B's hook gets it.
    assert_eq!(acc.apply(&l, 3, 0.5, on("cb-b", "gen-b", "https://b.example/hook")), Reply::Ack { released: 1 });
}

#[test]
fn finding_3_a_forged_end_on_one_callback_never_makes_another_generations_webhook_a_duplicate() {
    use governor_core::relay::delivery::RelayRequest;
    let l = Limits::for_window(100, 100, 2, MINUTE, 0);
    let mut acc = MemAccount::default();
    for (now, cb, generation) in [(0, "cb-a", "gen-a"), (1, "cb-b", "gen-b")] {
        let req = AdmitRequest { permit: true, callback: Some(cb.into()), ..generate() };
        let Reply::Admitted(a) = acc.apply(&l, now, 0.5, Command::Admit(req)) else { panic!("admitted") };
        let permit = a.permit.expect("a permit");
        acc.apply(&l, now, 0.5, Command::Bind { permit, generation: generation.into(), replay: None });
    }
    let on = |callback: &str, generation: &str, url: &str| Command::Callback {
        callback: callback.into(),
        generation: generation.into(),
        status: GenerationStatus::Completed,
        relay: Some(RelayRequest { url: url.into(), body: "{}".into(), headers: vec![] }),
        output_ms: None,
    };
    // Both permits end without their webhooks (A's own callback, B by a listing).
    assert_eq!(acc.apply(&l, 2, 0.5, on("cb-a", "gen-a", "https://a.example/hook")), Reply::Ack { released: 1 });
    let active = vec![];
    acc.apply(&l, 10, 0.5, Command::Reconciled { listed_from: 5, active, complete: true, ended: vec![] });
    assert_eq!(acc.state.permits.in_use(), 0);
    // Now A's URL cannot tell B's end from a forgery: it reaches A's own hook ...
    assert_eq!(acc.apply(&l, 11, 0.5, on("cb-a", "gen-b", "https://a.example/hook")), Reply::Ack { released: 0 });
    // ... but B's real webhook on B's callback is still relayed to B's hook.
    acc.apply(&l, 12, 0.5, on("cb-b", "gen-b", "https://b.example/hook"));
    let Reply::Status(s) = acc.apply(&l, 13, 0.5, Command::Status) else { panic!() };
    assert_eq!(s.relay.duplicates, 0, "B's real webhook was dropped as a duplicate of the forged one");
    assert_eq!(s.relay.pending, 3);
}

#[test]
fn finding_2_bodies_past_one_row_are_refused_when_queued_and_dropped_when_relayed() {
    use governor_core::queue::job::{JobSpec, MAX_QUEUED_BODY_BYTES};
    use governor_core::relay::delivery::RelayRequest;
    use governor_core::wire::contract::Refusal;
    let l = Limits::for_window(1, 100, 2, MINUTE, 0);
    let mut acc = MemAccount::default();
    let big = "x".repeat(MAX_QUEUED_BODY_BYTES as usize + 1);
    let spec =
        JobSpec { client: "c".into(), priority: 0, body: big.clone(), model: None, idempotency_key: None, cost: None };
    let q = AdmitRequest { enqueue: Some(spec), permit: true, ..generate() };
    let out = acc.run(&l, 0, 0.5, Command::Admit(q));
    assert_eq!(out.reply, Reply::Refused(Refusal::BodyTooLarge { limit: MAX_QUEUED_BODY_BYTES }));
    let job_rows = out.writes.iter().filter(|w| matches!(w, governor_core::storage::store::Write::PutJob(_))).count();
    assert_eq!(job_rows, 0, "no job row for a refused body");
    // A relayed payload that would not fit one row: the permit frees, the relay is dropped and counted.
    let req = AdmitRequest { permit: true, callback: Some("cb".into()), ..generate() };
    let Reply::Admitted(a) = acc.apply(&l, 1, 0.5, Command::Admit(req)) else { panic!("admitted") };
    acc.apply(&l, 2, 0.5, Command::Bind { permit: a.permit.expect("permit"), generation: "g".into(), replay: None });
    let relay = Some(RelayRequest { url: "https://a.example/h".into(), body: big, headers: vec![] });
    let cmd = Command::Callback {
        callback: "cb".into(),
        generation: "g".into(),
        status: GenerationStatus::Completed,
        relay,
        output_ms: None,
    };
    assert_eq!(acc.apply(&l, 3, 0.5, cmd), Reply::Ack { released: 1 });
    let Reply::Status(s) = acc.apply(&l, 4, 0.5, Command::Status) else { panic!() };
    assert_eq!((s.relay.pending, s.relay.dropped), (0, 1));
}

/// Finding 9: rotating `X-Governor-Client` names must not game the queue.
/// Fairness goes by the caller's key first: with managed keys the client a
/// request counts for is its key's, whatever the header says
/// (`shares::client::request_client`), so a key sending ten names is one
/// client beside an honest key, and the fair order serves the two alike.
/// (Counting each name as a client gave the honest key 2 of 22 turns.) In
/// pass-through mode the account is the one key every caller holds, and the
/// header splits it (advisory).
#[test]
fn finding_9_rotating_x_governor_client_names_gain_no_share_over_the_callers_key() {
    use governor_core::admission::request::ClientRef;
    use governor_core::queue::job::{DispatchOutcome, JobSpec};
    use governor_core::shares::client::request_client;
    let mut l = Limits::for_window(100_000, 100_000, 100, MINUTE, 0);
    l.queue.max_depth = 1_000;
    l.queue.max_bytes = 1 << 30;
    let queued = |client: String| {
        let spec = JobSpec {
            client: client.clone(),
            priority: 0,
            body: "{}".into(),
            model: None,
            idempotency_key: None,
            cost: None,
        };
        let who = Some(ClientRef { account: "a-acme".into(), client });
        AdmitRequest { enqueue: Some(spec), client: who, permit: true, ..generate() }
    };
    let mut acc = MemAccount::default();
    acc.apply(&l, 1, 0.5, Command::Admin(AdminCommand::Pause { body: String::new() }));
    let mut owner = std::collections::BTreeMap::new();
    for i in 0..20 {
        let mut ask = |client: String, who: &str| {
            let Reply::Queued(t) = acc.apply(&l, 2 + i, 0.5, Command::Admit(queued(client))) else { panic!("queued") };
            owner.insert(t.id, who.to_owned());
        };
        ask(request_client(true, "honest", None), "honest");
        for n in 0..10 {
            ask(request_client(true, "rotator", Some(&format!("name-{n}"))), "rotator");
        }
    }
    acc.apply(&l, 100, 0.5, Command::Admin(AdminCommand::Resume));
    let mut honest = 0;
    for i in 0..22 {
        let Reply::Dispatch(job) = acc.apply(&l, 101 + i, 0.5, Command::Dispatch) else { panic!("dispatch {i}") };
        honest += usize::from(owner[&job.ticket] == "honest");
        let outcome = DispatchOutcome::Created { generation: format!("g-{i}").into() };
        acc.apply(&l, 101 + i, 0.5, Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome });
    }
    assert!(honest >= 10, "the honest key got {honest} of 22 turns beside a key rotating ten names");
    // Pass-through: the header's client splits the one key; no header is the key's label.
    assert_eq!(request_client(false, "c-01234567", Some("name-3")), "h-name-3");
    assert_eq!(request_client(false, "c-01234567", None), "c-01234567");
    assert_eq!(request_client(false, "c-01234567", Some("\t")), "c-01234567");
}
