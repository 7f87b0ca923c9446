//! The drained probe (`StatusView.pending`): a delivery, a queued job or a
//! listing is pending until its report comes back, and the probe says when
//! each kind is next due.

use governor_core::account::Effect;
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::operations::drained::PendingView;
use governor_core::queue::job::JobSpec;
use governor_core::rates::class::RateClass;
use governor_core::relay::delivery::Attempt;
use governor_core::relay::delivery::RelayRequest;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

fn pending(acc: &mut MemAccount, l: &Limits, now: u64) -> PendingView {
    match acc.apply(l, now, 0.5, Command::Status) {
        Reply::Status(s) => s.pending,
        other => panic!("status answered {other:?}"),
    }
}

#[test]
fn a_relay_delivery_is_pending_until_its_report_and_then_drained() {
    let l = Limits::for_window(4, 20, 2, 1_000, 0);
    let mut acc = MemAccount::default();
    let fresh = pending(&mut acc, &l, 1);
    assert!(fresh.drained_for(u64::MAX, true), "a new account has nothing pending: {fresh:?}");

    let relay = RelayRequest { url: "https://client.example/hook".into(), body: "{}".into(), headers: Vec::new() };
    let hook = Command::Webhook {
        generation: "g1".into(),
        status: GenerationStatus::Completed,
        relay: Some(relay),
        output_ms: None,
    };
    acc.apply(&l, 10, 0.5, hook);
    let p = pending(&mut acc, &l, 10);
    assert_eq!((p.deliveries, p.next_delivery_in_ms), (1, Some(0)), "{p:?}");
    assert!(!p.drained_for(0, false));

    // Handed out by the alarm: still pending while it is being sent.
    let out = acc.run(&l, 11, 0.5, Command::Tick);
    let Some(Effect::Deliver(d)) = out.effects.iter().find(|e| matches!(e, Effect::Deliver(_))).cloned() else {
        panic!("no delivery handed out: {:?}", out.effects);
    };
    assert!(!pending(&mut acc, &l, 12).drained_for(0, false), "a delivery on its way is pending");

    // A failed attempt: due again later, drained until then.
    acc.apply(&l, 13, 0.5, Command::Delivered { id: d.id, attempt: Attempt::Unreachable });
    let p = pending(&mut acc, &l, 13);
    let next = p.next_delivery_in_ms.expect("retried later");
    assert!(next > 0 && p.drained_for(next - 1, false) && !p.drained_for(next, false), "{p:?}");

    acc.apply(&l, 13 + next, 0.5, Command::Tick);
    acc.apply(&l, 14 + next, 0.5, Command::Delivered { id: d.id, attempt: Attempt::Status(200) });
    let p = pending(&mut acc, &l, 15 + next);
    assert_eq!(p.deliveries, 0);
    assert!(p.drained_for(u64::MAX, false), "{p:?}");
}

#[test]
fn a_queued_job_is_pending_until_submitted_and_its_submission_while_live() {
    let l = Limits::for_window(4, 20, 2, 1_000, 0);
    let mut acc = MemAccount::default();
    let spec =
        JobSpec { client: "c".into(), priority: 0, body: "{}".into(), model: None, idempotency_key: None, cost: None };
    let admit = AdmitRequest { class: RateClass::Generate, permit: true, enqueue: Some(spec), ..Default::default() };
    // Fill the cap first so the job waits in the queue.
    for _ in 0..2 {
        let direct = AdmitRequest { class: RateClass::Generate, permit: true, ..Default::default() };
        assert!(matches!(acc.apply(&l, 1, 0.5, Command::Admit(direct)), Reply::Admitted(_)));
    }
    assert!(matches!(acc.apply(&l, 2, 0.5, Command::Admit(admit)), Reply::Queued(_)));
    let p = pending(&mut acc, &l, 3);
    assert_eq!(p.submissions, 1);
    // A permit held: the listing that frees lost ones is scheduled.
    assert!(p.next_listing_in_ms.is_some(), "{p:?}");
    assert!(!p.drained_for(u64::MAX, true), "a listing is due: {p:?}");
}
