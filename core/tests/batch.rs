//! Batch permits through the account's `apply` (issue 18): taken at
//! admission with the `other` token, held until the batch is terminal,
//! freed by reads, by the batch listing and by leases; Sync's
//! `concurrency_limit_reached` teaches a lower cap and becomes the
//! governor's refusal; spawned generations are never adopted; the part
//! survives a restart.

use governor_core::admission::request::{AdmitRequest, Reason};
use governor_core::batch::{CreateAnswer, SeenBatch};
use governor_core::config::limits::Limits;
use governor_core::lifecycle::pages::{ListStep, ListedPage};
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

fn batch() -> AdmitRequest {
    AdmitRequest { class: "other".into(), batch: true, ..AdmitRequest::default() }
}

fn limits() -> Limits {
    let mut l = Limits::for_window(60, 600, 3, 60_000, 0);
    l.batches.cap = 2;
    l
}

fn open(id: &str, pending: u32) -> SeenBatch {
    SeenBatch { id: id.into(), terminal: false, pending: Some(pending) }
}

fn admit(acc: &mut MemAccount, l: &Limits, now: u64) -> Result<u64, governor_core::admission::request::Rejection> {
    match acc.apply(l, now, 0.5, Command::Admit(batch())) {
        Reply::Admitted(a) => Ok(a.batch_permit.expect("a batch permit")),
        Reply::Rejected(r) => Err(r),
        other => panic!("{other:?}"),
    }
}

fn in_use(acc: &mut MemAccount, l: &Limits, now: u64) -> u32 {
    match acc.apply(l, now, 0.5, Command::Status) {
        Reply::Status(s) => s.batches.in_use,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batch_permit_per_batch_in_flight_freed_when_a_read_shows_it_ended() {
    let l = limits();
    let mut acc = MemAccount::default();
    let a = admit(&mut acc, &l, 0).unwrap();
    let b = admit(&mut acc, &l, 1).unwrap();
    let r = admit(&mut acc, &l, 2).unwrap_err();
    assert_eq!((r.reason, r.policy.as_str()), (Reason::Concurrency, "batches"));
    assert!(r.retry_after_ms >= 1_000);
    acc.apply(
        &l,
        3,
        0.5,
        Command::BatchCreated { permit: a, answer: CreateAnswer::Created(open("x", 20)), retry_after_ms: None },
    );
    // A dry run frees its permit at once.
    acc.apply(&l, 4, 0.5, Command::BatchCreated { permit: b, answer: CreateAnswer::Validated, retry_after_ms: None });
    assert_eq!(in_use(&mut acc, &l, 5), 1);
    // Restart: the batch permit is a row.
    acc.restart(&l);
    assert_eq!(in_use(&mut acc, &l, 6), 1);
    let seen = vec![SeenBatch { id: "x".into(), terminal: true, pending: Some(0) }];
    assert_eq!(acc.apply(&l, 7, 0.5, Command::BatchesSeen { batches: seen }), Reply::Ack { released: 1 });
    assert_eq!(in_use(&mut acc, &l, 8), 0);
}

#[test]
fn syncs_concurrency_refusal_teaches_a_lower_cap_and_is_the_governors_429() {
    let l = limits();
    let mut acc = MemAccount::default();
    let a = admit(&mut acc, &l, 0).unwrap();
    acc.apply(
        &l,
        1,
        0.5,
        Command::BatchCreated { permit: a, answer: CreateAnswer::Created(open("x", 20)), retry_after_ms: None },
    );
    let b = admit(&mut acc, &l, 2).unwrap();
    let reply = acc.apply(
        &l,
        3,
        0.5,
        Command::BatchCreated { permit: b, answer: CreateAnswer::ConcurrencyLimited, retry_after_ms: None },
    );
    let Reply::Rejected(r) = reply else { panic!("{reply:?}") };
    assert_eq!(r.policy, "batches");
    assert_eq!(r.limit, 1, "Sync had accepted one");
    assert!(admit(&mut acc, &l, 4).is_err(), "the learned cap holds");
}

#[test]
fn the_listing_frees_batches_whose_webhooks_were_lost_and_spawned_generations_are_not_adopted() {
    let mut l = limits();
    l.reconcile.min_ms = 1_000;
    let mut acc = MemAccount::default();
    let a = admit(&mut acc, &l, 0).unwrap();
    acc.apply(
        &l,
        1,
        0.5,
        Command::BatchCreated { permit: a, answer: CreateAnswer::Created(open("x", 3)), retry_after_ms: None },
    );
    // A run while a batch permit is held asks for Sync's open batches first.
    let step = acc.apply(&l, 2_000, 0.5, Command::ListStart);
    assert!(matches!(step, Reply::List(ListStep::Batches { .. })), "{step:?}");
    let step = acc.apply(
        &l,
        2_001,
        0.5,
        Command::Listed { page: ListedPage::Batches { open: vec![open("x", 3)], complete: true } },
    );
    assert!(matches!(step, Reply::List(ListStep::Page { .. })), "{step:?}");
    // Sync lists the batch's 3 generations and one from another client.
    let items: Vec<ActiveGeneration> =
        ["s1", "s2", "s3", "outside"].iter().map(|g| ActiveGeneration { id: (*g).into(), model: None }).collect();
    acc.apply(&l, 2_002, 0.5, Command::Listed { page: ListedPage::Items { items, count: 4 } });
    let Reply::Status(s) = acc.apply(&l, 2_003, 0.5, Command::Status) else { panic!() };
    assert_eq!(s.concurrency.in_use, 1, "only the outside generation is adopted");
    assert_eq!(s.batches.in_use, 1);
    // Next run: the batch is no longer open (its webhooks were all lost).
    acc.apply(&l, 5_000, 0.5, Command::ListStart);
    acc.apply(&l, 5_001, 0.5, Command::Listed { page: ListedPage::Batches { open: vec![], complete: true } });
    let Reply::Status(s) = acc.apply(&l, 5_002, 0.5, Command::Status) else { panic!() };
    assert_eq!(s.batches.in_use, 0);
}

#[test]
fn an_unknown_answer_keeps_the_permit_until_a_listing_and_a_lease_ends_it() {
    let mut l = limits();
    l.batches.lease_ttl_ms = 10_000;
    l.batches.reservation_ttl_ms = 100;
    let mut acc = MemAccount::default();
    let a = admit(&mut acc, &l, 0).unwrap();
    acc.apply(&l, 1, 0.5, Command::BatchCreated { permit: a, answer: CreateAnswer::Unknown, retry_after_ms: None });
    assert_eq!(in_use(&mut acc, &l, 5_000), 1);
    acc.apply(&l, 10_002, 0.5, Command::Tick);
    assert_eq!(in_use(&mut acc, &l, 10_003), 0, "the lease is the backstop");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Admit,
        Answer(u8),
        End(u8),
        List,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Admit),
            3 => (0u8..6).prop_map(Op::Answer),
            2 => (0u8..8).prop_map(Op::End),
            1 => Just(Op::List),
            1 => Just(Op::Restart),
        ]
    }

    proptest! {
        /// Whatever Sync answers and whenever batches end (no webhook ever
        /// arrives): batch permits never exceed the cap, and once every batch
        /// ended, one complete listing leaves none held.
        #[test]
        fn batch_permits_are_bounded_and_never_leak(ops in proptest::collection::vec(op(), 1..60)) {
            let l = limits();
            let mut acc = MemAccount::default();
            let mut now = 10u64;
            let mut waiting: Vec<u64> = Vec::new(); // permits whose create awaits an answer
            let mut open_at_sync: Vec<String> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                now += 7;
                match op {
                    Op::Admit => {
                        if let Ok(p) = admit(&mut acc, &l, now) {
                            waiting.push(p);
                        }
                    }
                    Op::Answer(kind) => {
                        let Some(p) = waiting.pop() else { continue };
                        next += 1;
                        let id = format!("b{next}");
                        let answer = match kind {
                            0 | 1 => {
                                open_at_sync.push(id.clone());
                                CreateAnswer::Created(open(&id, 20))
                            }
                            2 => CreateAnswer::Validated,
                            3 => CreateAnswer::Refused { status: 402 },
                            4 => CreateAnswer::ConcurrencyLimited,
                            _ => {
                                // Lost answer: Sync may or may not have it.
                                if next.is_multiple_of(2) {
                                    open_at_sync.push(id);
                                }
                                CreateAnswer::Unknown
                            }
                        };
                        acc.apply(&l, now, 0.5, Command::BatchCreated { permit: p, answer, retry_after_ms: None });
                    }
                    Op::End(i) => {
                        if !open_at_sync.is_empty() {
                            let id = open_at_sync.remove(i as usize % open_at_sync.len());
                            if i.is_multiple_of(2) {
                                let seen = vec![SeenBatch { id, terminal: true, pending: Some(0) }];
                                acc.apply(&l, now, 0.5, Command::BatchesSeen { batches: seen });
                            }
                        }
                    }
                    Op::List => {
                        acc.apply(&l, now, 0.5, Command::ListStart);
                        let open: Vec<SeenBatch> = open_at_sync.iter().map(|id| super::open(id, 20)).collect();
                        acc.apply(&l, now + 1, 0.5, Command::Listed { page: ListedPage::Batches { open, complete: true } });
                    }
                    Op::Restart => acc.restart(&l),
                }
                let held = in_use(&mut acc, &l, now);
                prop_assert!(held <= l.batches.cap, "{held} batch permits over the cap");
            }
            // The requests still waiting got no answer (the Worker died): unknown.
            for p in waiting.drain(..) {
                acc.apply(&l, now, 0.5, Command::BatchCreated { permit: p, answer: CreateAnswer::Unknown, retry_after_ms: None });
            }
            open_at_sync.clear();
            now += l.reconcile.min_ms + 100;
            acc.apply(&l, now, 0.5, Command::ListStart);
            acc.apply(&l, now + 1, 0.5, Command::Listed { page: ListedPage::Batches { open: vec![], complete: true } });
            prop_assert_eq!(in_use(&mut acc, &l, now + 2), 0);
        }
    }
}
