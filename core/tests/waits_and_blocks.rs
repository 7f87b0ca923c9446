//! Issue 10, findings 7 and 11 (part): a held request (`Prefer: wait`) makes
//! a bounded number of calls into the account's object whatever its wait,
//! and queued work that cannot be sent (no Sync key) backs off instead of
//! waking the alarm every millisecond.

use governor_core::account::Effect;
use governor_core::admission::request::{AdmitRequest, Hold, HOLD_MAX_CALLS};
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::JobSpec;
use governor_core::queue::job::{Blocked, DispatchOutcome};
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

fn limits() -> Limits {
    Limits::for_window(100, 100, 1, 60_000, 0)
}

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn hold_permit(l: &Limits, st: &mut MemAccount, now: u64, id: &str) {
    let Reply::Admitted(a) = st.apply(l, now, 0.5, Command::Admit(generate())) else { panic!("not admitted") };
    let permit = a.permit.expect("a permit");
    st.apply(l, now, 0.5, Command::Bind { permit, generation: id.into(), replay: None });
}

/// Drive one held request as the Worker does against an account whose only
/// permit never frees; the times of its admission calls.
fn held_calls(wait_ms: u64) -> Vec<u64> {
    let l = limits();
    let mut st = MemAccount::default();
    hold_permit(&l, &mut st, 0, "g-forever");
    let (start, deadline) = (1_000, 1_000 + wait_ms);
    let mut now = start;
    let mut admit = AdmitRequest { hold: Some(Hold::first(wait_ms)), ..generate() };
    let mut calls = Vec::new();
    loop {
        calls.push(now);
        assert!(calls.len() < 10_000, "runaway polling");
        let Reply::Rejected(r) = st.apply(&l, now, 0.5, Command::Admit(admit.clone())) else { panic!("admitted") };
        let held = admit.hold.clone().expect("held");
        let Some((next, sleep)) = held.next(&r, deadline.saturating_sub(now)) else { break };
        // The place in line lasts past the promised next attempt.
        let place = st.state.line.held.iter().find(|h| Some(h.ticket) == r.hold).map(|h| h.expires_at);
        assert!(place.is_some_and(|exp| exp > now + sleep), "the held place outlives the sleep");
        admit.hold = Some(next);
        now += sleep;
    }
    calls
}

#[test]
fn a_long_wait_costs_a_bounded_number_of_calls() {
    for wait in [1_000, 10_000, 60_000, 600_000] {
        let calls = held_calls(wait);
        assert!(calls.len() as u32 <= HOLD_MAX_CALLS, "wait {wait}: {} calls", calls.len());
        // The last attempt is made at the deadline, not before it.
        assert_eq!(calls.last().copied(), Some(1_000 + wait), "wait {wait}");
    }
    // A 60 s wait: at most ~40 calls (the bound), not one per 100 ms.
    assert!(held_calls(60_000).len() <= 40);
}

#[test]
fn a_short_wait_still_looks_again_promptly() {
    // A permit that frees is noticed within a few hundred ms on a 10 s wait.
    let calls = held_calls(10_000);
    let worst = calls.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(worst <= 10_000 / u64::from(HOLD_MAX_CALLS - 1) + 1, "gap {worst} ms");
    let calls = held_calls(1_000);
    assert!(calls.windows(2).all(|w| w[1] - w[0] <= 100), "{calls:?}");
}

#[test]
fn hold_next_gives_up_when_calls_are_spent() {
    let l = limits();
    let mut st = MemAccount::default();
    hold_permit(&l, &mut st, 0, "g");
    let Reply::Rejected(r) = st.apply(&l, 1, 0.5, Command::Admit(generate())) else { panic!() };
    let spent = Hold { ticket: None, remaining_ms: 50_000, calls: HOLD_MAX_CALLS };
    assert_eq!(spent.next(&r, 50_000), None);
    let last = Hold { calls: HOLD_MAX_CALLS - 1, ..spent };
    assert_eq!(last.next(&r, 50_000).map(|(h, sleep)| (h.calls, sleep)), Some((HOLD_MAX_CALLS, 50_000)));
}

fn queued_ready(l: &Limits, st: &mut MemAccount) {
    hold_permit(l, st, 0, "g0");
    let spec =
        JobSpec { client: "c".into(), priority: 0, body: "{}".into(), model: None, idempotency_key: None, cost: None };
    let queued = st.apply(l, 10, 0.5, Command::Admit(AdmitRequest { enqueue: Some(spec), ..generate() }));
    assert!(matches!(queued, Reply::Queued(_)), "{queued:?}");
    st.apply(
        l,
        20,
        0.5,
        Command::Webhook { generation: "g0".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
}

fn blocked_view(l: &Limits, st: &mut MemAccount, now: u64) -> (Option<Blocked>, Option<u64>) {
    let Reply::Status(s) = st.apply(l, now, 0.5, Command::Status) else { panic!() };
    (s.queue.blocked, s.queue.blocked_retry_in_ms)
}

#[test]
fn queued_work_without_a_sync_key_backs_off_and_says_so() {
    let l = limits();
    let mut st = MemAccount::default();
    queued_ready(&l, &mut st);
    let now = 30;
    assert_eq!(st.state.next_wake(&l, now), Some(now), "ready work wants the alarm now");
    let tick = st.run(&l, now, 0.5, Command::Tick);
    assert!(tick.effects.contains(&Effect::Dispatch));
    // The object has no key: it says so instead of returning with the job ready.
    let out = st.run(&l, now, 0.5, Command::DispatchBlocked { reason: Blocked::NoSyncKey });
    let wake = out.wake.expect("a wake");
    assert!(wake >= now + l.queue.retry_ms, "no spin: wake at {wake}");
    assert_eq!(blocked_view(&l, &mut st, now), (Some(Blocked::NoSyncKey), Some(l.queue.retry_ms)));
    // Each further failed attempt doubles the pause, up to RECONCILE_MAX_MS.
    let mut t = now;
    let mut pauses = Vec::new();
    for _ in 0..12 {
        t = st.state.sending.block.as_ref().map(|b| b.until).expect("blocked");
        let tick = st.run(&l, t, 0.5, Command::Tick);
        assert!(tick.effects.contains(&Effect::Dispatch), "tried again once the pause ends");
        st.run(&l, t, 0.5, Command::DispatchBlocked { reason: Blocked::NoSyncKey });
        pauses.push(blocked_view(&l, &mut st, t).1.expect("retry time"));
    }
    assert_eq!(&pauses[..4], &[200, 400, 800, 1_600]);
    assert_eq!(pauses.last().copied(), Some(l.reconcile.max_ms));
    // While blocked, an alarm that fires for another reason does not try.
    let tick = st.run(&l, t + 1, 0.5, Command::Tick);
    assert!(!tick.effects.contains(&Effect::Dispatch));
    // A request brings the key: the queue may go at once.
    let out = st.run(&l, t + 2, 0.5, Command::DispatchUnblocked);
    assert!(out.wake.is_some_and(|w| w <= t + 2), "{:?}", out.wake);
    assert_eq!(blocked_view(&l, &mut st, t + 2), (None, None));
    let Reply::Dispatch(_) = st.apply(&l, t + 2, 0.5, Command::Dispatch) else { panic!("the job goes") };
}

#[test]
fn the_block_ends_with_the_queue() {
    let l = limits();
    let mut st = MemAccount::default();
    queued_ready(&l, &mut st);
    st.run(&l, 30, 0.5, Command::DispatchBlocked { reason: Blocked::NoSyncKey });
    let Reply::Dispatch(job) = st.apply(&l, 31, 0.5, Command::Dispatch) else { panic!("no job") };
    let created = DispatchOutcome::Created { generation: "g1".into() };
    st.apply(&l, 32, 0.5, Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome: created });
    assert_eq!(blocked_view(&l, &mut st, 33), (None, None));
}
