//! The operator's commands and the modes of the operations issue, natively
//! with an injected clock: pause and resume (and the line after a resume),
//! overrides read back from a hostile row, shadow mode, load shedding, and
//! what FAIL_MODE=open asks of reconciliation.

use governor_core::admission::request::{AdmitRequest, Hold, Reason};
use governor_core::config::limits::Limits;
use governor_core::operations::admin::AdminCommand;
use governor_core::operations::metrics::Tally;
use governor_core::storage::mem::MemAccount;
use governor_core::storage::store::Write;
use governor_core::wire::contract::{Command, Reply};

fn limits() -> Limits {
    Limits::for_window(2, 100, 1, 60_000, 0)
}

fn other() -> AdmitRequest {
    AdmitRequest { class: "other".into(), ..AdmitRequest::default() }
}

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn admin(acc: &mut MemAccount, l: &Limits, now: u64, cmd: AdminCommand) -> Reply {
    acc.apply(l, now, 0.5, Command::Admit(other())); // the account exists
    acc.apply(l, now, 0.5, Command::Admin(cmd))
}

#[test]
fn a_resume_restores_service_at_once_even_with_requests_held_during_the_pause() {
    let l = limits();
    let mut acc = MemAccount::default();
    admin(&mut acc, &l, 0, AdminCommand::Pause { body: r#"{"retryAfterSeconds":30}"#.into() });
    // Paused: a plain request is refused (503 account_paused), a held one keeps a place.
    let Reply::Rejected(r) = acc.apply(&l, 1, 0.5, Command::Admit(other())) else { panic!("not refused") };
    assert_eq!((r.reason, r.retry_after_ms), (Reason::Paused, 30_000));
    let held = AdmitRequest { hold: Some(Hold::first(60_000)), ..other() };
    let Reply::Rejected(h) = acc.apply(&l, 2, 0.5, Command::Admit(held)) else { panic!("not held") };
    assert!(h.hold.is_some(), "a held request keeps its place while paused");
    assert!(Hold::first(60_000).sleep_ms(&h) <= 2_000, "it looks again soon, not after the pause's Retry-After");
    acc.apply(&l, 1_000, 0.5, Command::Admin(AdminCommand::Resume));
    // Right after the resume, a newcomer is not held back by a place taken during the pause.
    assert!(matches!(acc.apply(&l, 1_001, 0.5, Command::Admit(other())), Reply::Admitted(_)));
}

#[test]
fn queued_work_waits_while_paused_and_goes_after_the_resume() {
    let l = limits();
    let mut acc = MemAccount::default();
    admin(&mut acc, &l, 0, AdminCommand::Pause { body: String::new() });
    let spec = governor_core::queue::job::JobSpec {
        client: "c".into(),
        priority: 0,
        body: "{}".into(),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    let q = AdmitRequest { enqueue: Some(spec), ..generate() };
    assert!(matches!(acc.apply(&l, 1, 0.5, Command::Admit(q)), Reply::Queued(_)));
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Dispatch), Reply::Ack { .. }), "nothing is sent while paused");
    assert_eq!(acc.state.next_wake(&l, 2).filter(|w| *w <= 2), None, "no alarm loop while paused");
    acc.apply(&l, 3, 0.5, Command::Admin(AdminCommand::Resume));
    assert!(matches!(acc.apply(&l, 4, 0.5, Command::Dispatch), Reply::Dispatch(_)), "the job goes after the resume");
}

#[test]
fn a_hostile_overrides_row_never_wedges_the_account() {
    let l = limits();
    let mut acc = MemAccount::default();
    acc.store.write(&[Write::Meta {
        key: "overrides",
        value: r#"{"generatePerMinute":0,"generateBurst":0,"concurrency":0}"#.into(),
    }]);
    acc.restart(&l);
    // Loads, and decides: a zero limit reads as one, never a panic.
    assert!(matches!(acc.apply(&l, 0, 0.5, Command::Admit(generate())), Reply::Admitted(_)));
    assert!(matches!(acc.apply(&l, 1, 0.5, Command::Admit(generate())), Reply::Rejected(_)));
}

#[test]
fn shadow_mode_refuses_nothing_and_counts_what_it_would_have_refused() {
    let l = Limits { shadow: true, ..limits() };
    let mut acc = MemAccount::default();
    for now in 0..4 {
        let r =
            acc.apply(&l, now, 0.5, Command::Admit(AdmitRequest { class: "generate".into(), ..Default::default() }));
        assert!(matches!(r, Reply::Admitted(_)), "shadow mode refused at {now}");
    }
    let Reply::Status(s) = acc.apply(&l, 5, 0.5, Command::Status) else { panic!() };
    assert_eq!(s.counters.would_refuse.get("rate"), Some(&2));
    assert_eq!(s.mode, "shadow");
}

#[test]
fn a_wait_that_cannot_be_met_is_shed_at_once_with_the_estimate() {
    let l = limits();
    let mut acc = MemAccount::default();
    let gen = || AdmitRequest { class: "generate".into(), ..AdmitRequest::default() };
    assert!(matches!(acc.apply(&l, 0, 0.5, Command::Admit(gen())), Reply::Admitted(_)));
    assert!(matches!(acc.apply(&l, 0, 0.5, Command::Admit(gen())), Reply::Admitted(_)));
    // The window frees at 60 s: a 5 s wait cannot be met, a 90 s one can.
    let short = AdmitRequest { hold: Some(Hold::first(5_000)), ..gen() };
    let Reply::Rejected(r) = acc.apply(&l, 1_000, 0.5, Command::Admit(short)) else { panic!() };
    assert!(r.hold.is_none(), "shed, not held");
    assert!(r.retry_after_ms >= 59_000, "with the estimate: {}", r.retry_after_ms);
    let long = AdmitRequest { hold: Some(Hold::first(90_000)), ..gen() };
    let Reply::Rejected(r) = acc.apply(&l, 1_000, 0.5, Command::Admit(long)) else { panic!() };
    assert!(r.hold.is_some(), "held");
    let Reply::Status(s) = acc.apply(&l, 1_001, 0.5, Command::Status) else { panic!() };
    assert_eq!((s.counters.shed, s.counters.held), (1, 1));
}

#[test]
fn requests_forwarded_undecided_make_the_account_list_sync_soon() {
    let l = limits();
    let mut acc = MemAccount::default();
    acc.apply(&l, 0, 0.5, Command::Admit(other()));
    assert_eq!(acc.state.reconciliation.schedule.next_at, None, "nothing held, nothing to list");
    let tally = Tally { fail_open: 1, ..Tally::default() };
    acc.apply(&l, 10, 0.5, Command::Admit(AdmitRequest { tally: Some(tally), ..other() }));
    assert!(acc.state.reconciliation.schedule.next_at.is_some(), "a create may be running at Sync unseen: list it");
}
