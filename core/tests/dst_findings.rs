//! What the deterministic simulation (tests/dst.rs) found in the core, each
//! as the smallest history that shows it. Ignored while the bug stands; the
//! simulation's strict mode (`DST_STRICT=1`, `known_bugs_stay_fixed`) covers
//! the same ground at random.

use governor_core::admission::idempotency::{IdempotencyKey, Replay};
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::ids::PermitId;
use governor_core::lifecycle::limited::LimitKind;
use governor_core::lifecycle::settle;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::DispatchOutcome;
use governor_core::queue::job::JobSpec;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Refusal, Reply};

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn queued(key: Option<&str>) -> AdmitRequest {
    let spec = JobSpec {
        client: "c".into(),
        priority: 0,
        body: "{}".into(),
        model: None,
        idempotency_key: key.map(str::to_owned),
        cost: None,
    };
    AdmitRequest {
        enqueue: Some(spec),
        idempotency: key.map(|k| IdempotencyKey { client: "c".into(), key: k.into() }),
        ..generate()
    }
}

fn permit_of(r: Reply) -> PermitId {
    match r {
        Reply::Admitted(a) => a.permit.expect("a permit"),
        other => panic!("not admitted: {other:?}"),
    }
}

/// A queued job whose submission timed out (or got a 5xx, a dropped
/// connection, a 2xx without an id) may exist at Sync: `Transient` must not
/// free its permit before the generation is found or the reservation ends.
/// Today `dispatched` releases it, and the next create goes to Sync while
/// the account's own generations already fill the cap (DST seed 0, strict).
#[test]
fn a_queued_job_whose_outcome_is_unknown_keeps_its_permit() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut acc = MemAccount::default();
    let p = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Admit(queued(None))), Reply::Queued(_)));
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(job) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!("no job handed out") };
    // Sync created it, but the answer never came back.
    let outcome = DispatchOutcome::Transient;
    acc.apply(&l, 5_004, 0.5, Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome });
    let next = acc.apply(&l, 5_005, 0.5, Command::Admit(generate()));
    assert!(
        matches!(next, Reply::Rejected(_)),
        "a second create while the job's generation may hold the cap: {next:?}"
    );
}

/// The same for a direct create: a 5xx (a gateway error after Sync took the
/// create) frees the permit through `settle::after_create`; so does the
/// Worker on a connection error (src/handler.rs). Keep the reservation, as
/// for a 2xx without an id.
#[test]
fn a_direct_create_answered_5xx_keeps_its_reservation() {
    for status in [500, 502, 503, 504] {
        assert_eq!(
            settle::after_create(PermitId(7), status, b"{}", None, None),
            Some(Command::Unsettled { permit: PermitId(7) }),
            "status {status}"
        );
    }
}

/// A job left SUBMITTING by a restart is sent again at once, without
/// spending rate budget; its first send may have reached Sync, which counts
/// both (DST seed 2: three submissions of `generate` within one window, limit 2).
#[test]
fn a_resumed_submission_spends_budget() {
    let l = Limits::for_window(1, 100, 5, 60_000, 0);
    let mut acc = MemAccount::default();
    // Spend the one generate of the window so that the job queues.
    let p = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Release { permit: p });
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Admit(queued(None))), Reply::Queued(_)));
    let Reply::Dispatch(first) = acc.apply(&l, 60_001, 0.5, Command::Dispatch) else { panic!("no job handed out") };
    // The object restarts while the submission is on the wire.
    acc.restart(&l);
    let again = acc.apply(&l, 60_002, 0.5, Command::Dispatch);
    assert!(
        !matches!(&again, Reply::Dispatch(j) if j.ticket == first.ticket),
        "sent a second time within the window with no budget left: {again:?}"
    );
}

/// A keyed `Prefer: respond-async` create that goes through at once takes an
/// idempotency record without the table's bound check (admit.rs checks
/// `has_room` only when `enqueue` is `None`).
#[test]
fn a_keyed_async_create_admitted_at_once_respects_the_idempotency_bound() {
    let mut l = Limits::for_window(100, 100, 5, 60_000, 0);
    l.idempotency.max_records = 1;
    let mut acc = MemAccount::default();
    let keyed =
        AdmitRequest { idempotency: Some(IdempotencyKey { client: "c".into(), key: "a".into() }), ..generate() };
    permit_of(acc.apply(&l, 0, 0.5, Command::Admit(keyed)));
    let second = acc.apply(&l, 1, 0.5, Command::Admit(queued(Some("b"))));
    assert!(
        acc.store.idempotency.len() as u32 <= l.idempotency.max_records,
        "{} records, bound {} ({second:?})",
        acc.store.idempotency.len(),
        l.idempotency.max_records
    );
}

/// An idempotency record still in flight goes stale after the key's TTL
/// even while its reservation (longer) is held: a retry is admitted next to
/// the first request, and when the first settles it deletes the row the
/// retry now owns, so the table's counters drift from its rows (DST seeds
/// 1140 and 1207 of the long run, with IDEMPOTENCY_TTL below RESERVATION_TTL).
#[test]
fn an_in_flight_key_stays_in_flight_until_its_permit_ends() {
    let mut l = Limits::for_window(100, 100, 5, 60_000, 0);
    l.idempotency.ttl_ms = 1_000;
    l.concurrency.reservation_ttl_ms = 10_000;
    let mut acc = MemAccount::default();
    let key = IdempotencyKey { client: "c".into(), key: "k".into() };
    let keyed = AdmitRequest { idempotency: Some(key.clone()), ..generate() };
    let first = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(keyed.clone())));
    let retry = acc.apply(&l, 1_500, 0.5, Command::Admit(keyed));
    if let Reply::Admitted(a) = &retry {
        // The first request fails, the retry is created: the counters drift.
        acc.apply(&l, 1_600, 0.5, Command::Release { permit: first });
        let replay = Replay { key, status: 201, body: r#"{"id":"g1"}"#.into(), refetch: None };
        let bind = Command::Bind { permit: a.permit.unwrap(), generation: "g1".into(), replay: Some(replay) };
        acc.apply(&l, 1_700, 0.5, bind);
        assert_eq!(
            acc.state.idempotency.totals.records,
            acc.store.idempotency.len() as u64,
            "the counters no longer match the table"
        );
    }
    assert!(
        matches!(retry, Reply::Refused(Refusal::InProgress { .. })),
        "a retry admitted while the first is in flight: {retry:?}"
    );
}

/// A job left SUBMITTING by a restart is sent again with the same Sync
/// `Idempotency-Key`. When Sync answers that resend 429, the first send may
/// still have created the generation: the permit must wait for a listing (as
/// for `Transient`), and the job can no longer be canceled. Today
/// `dispatched` frees it and requeues the job as never sent, so the next
/// create reaches Sync while the job's generation fills the cap (DST strict
/// seed 1266 of the long run), or the job is canceled although its key
/// created a generation (strict seed 1457).
#[test]
fn a_resumed_submission_answered_429_keeps_its_permit() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut acc = MemAccount::default();
    let p = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Admit(queued(None))), Reply::Queued(_)));
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(first) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!("no job handed out") };
    // The object restarts while the first send is on the wire (and creates it).
    acc.restart(&l);
    let Reply::Dispatch(again) = acc.apply(&l, 5, 0.5, Command::Dispatch) else { panic!("not resumed") };
    assert_eq!(again.ticket, first.ticket);
    let outcome = DispatchOutcome::Limited { kind: LimitKind::Rate, retry_after_ms: None };
    let ticket = again.ticket.clone();
    acc.apply(&l, 6, 0.5, Command::Dispatched { ticket: again.ticket, permit: again.permit, outcome });
    assert_eq!(acc.state.permits.in_use(), 1, "the permit of a job that may exist at Sync was freed");
    let cancel = acc.apply(&l, 7, 0.5, Command::Cancel { ticket, client: None });
    assert!(matches!(cancel, Reply::Refused(_)), "a job that may exist at Sync was canceled: {cancel:?}");
}

/// A queued job whose create Sync answers with a generation that already
/// ended (its key replayed an old create) frees its permit at once and shows
/// the final status, as a direct create does (`settle::ended_in_create`).
#[test]
fn a_queued_job_answered_with_an_ended_generation_frees_its_permit() {
    let l = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut acc = MemAccount::default();
    let p = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
    acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: "g0".into(), replay: None });
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Admit(queued(None))), Reply::Queued(_)));
    acc.apply(
        &l,
        3,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Dispatch(job) = acc.apply(&l, 4, 0.5, Command::Dispatch) else { panic!("no job handed out") };
    let outcome = DispatchOutcome::Ended { generation: "g9".into(), status: GenerationStatus::Failed };
    let ticket = job.ticket.clone();
    acc.apply(&l, 5, 0.5, Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome });
    assert_eq!(acc.state.permits.in_use(), 0, "the ended generation's permit is still held");
    match acc.apply(&l, 6, 0.5, Command::Ticket { ticket, client: None }) {
        Reply::Ticket(v) => {
            assert_eq!(
                (v.status.as_str(), v.generation_id.as_ref().map(|g| g.as_str())),
                ("FAILED", Some("g9")),
                "{v:?}"
            );
        }
        other => panic!("no ticket: {other:?}"),
    }
    assert!(matches!(acc.apply(&l, 7, 0.5, Command::Admit(generate())), Reply::Admitted(_)));
}

/// Reconciliation has a reserved share of `other` (at least 1 a window), so
/// clients polling at the limit cannot stop it from starting; but a run
/// needs one unit per page, and when a later page is refused its budget the
/// run is abandoned and the next starts again from the first page. A
/// listing longer than the share never completes while clients spend the
/// rest, and a lost webhook's permit is never freed (DST seeds 1176 and 1369
/// of the long run, page size 1; by default the simulation counts such runs
/// like faults, `DST_STRICT=1` holds them to the bound).
#[test]

fn a_listing_longer_than_the_reserved_share_completes() {
    use governor_core::lifecycle::pages::{ListStep, ListedPage};
    use governor_core::lifecycle::reconcile::ActiveGeneration;
    let window = 6_000;
    let mut l = Limits::for_window(100, 5, 3, window, 0);
    l.reconcile.page_size = 1;
    let mut acc = MemAccount::default();
    for g in ["g1", "g2"] {
        let p = permit_of(acc.apply(&l, 0, 0.5, Command::Admit(generate())));
        acc.apply(&l, 1, 0.5, Command::Bind { permit: p, generation: g.into(), replay: None });
    }
    // g2 ends and its webhook is lost; g1 runs on. Clients poll at the
    // limit (whenever a unit frees, a client takes it); the alarm starts a
    // run when the schedule says, and each page takes Sync 50 ms.
    let other = AdmitRequest { class: "other".into(), ..AdmitRequest::default() };
    let mut page: Option<(u64, Option<String>)> = None;
    let mut runs = 0;
    for now in 2..=5 * window {
        while matches!(acc.apply(&l, now, 0.5, Command::Admit(other.clone())), Reply::Admitted(_)) {}
        let step = match &page {
            Some((at, cursor)) if *at <= now => {
                let items: Vec<ActiveGeneration> = match cursor {
                    None => vec![ActiveGeneration { id: "g1".into(), model: None }],
                    Some(_) => Vec::new(),
                };
                let count = items.len();
                acc.apply(&l, now, 0.5, Command::Listed { page: ListedPage::Items { items, count } })
            }
            None if acc.state.reconciliation.schedule.next_at.is_none_or(|at| at <= now) => {
                runs += 1;
                acc.apply(&l, now, 0.5, Command::ListStart)
            }
            _ => continue,
        };
        page = match step {
            Reply::List(ListStep::Page { cursor, .. }) => Some((now + 50, cursor)),
            _ => None,
        };
    }
    assert!(runs > 1, "{runs} runs");
    assert!(
        !acc.state.permits.holds_generation(&"g2".into()),
        "five windows on, the ended generation's permit is still held: {:?}",
        acc.state.permits.held()
    );
}
