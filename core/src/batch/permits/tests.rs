use super::*;

const CFG: BatchLimit = BatchLimit {
    cap: 2,
    reservation_ttl_ms: 100,
    lease_ttl_ms: 10_000,
    learned_ttl_ms: 1_000,
    lane: crate::batch::lane::LanePolicy::OFF,
};

fn open(id: &str, pending: u32) -> SeenBatch {
    SeenBatch { id: id.into(), terminal: false, pending: Some(pending) }
}

#[test]
fn reserve_bind_end() {
    let mut p = BatchPermits::default();
    let a = p.reserve(&CFG, 0);
    let b = p.reserve(&CFG, 0);
    assert!(!p.has_room(&CFG, 0));
    assert!(p.bind(&CFG, a, &open("x", 20), 1));
    assert!(p.release(b));
    assert_eq!(p.spawned_allowance(), 20);
    assert_eq!(p.seen(&[SeenBatch { id: "x".into(), terminal: true, pending: Some(0) }]), 1);
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.freed, 2);
}

#[test]
fn learned_cap_holds_for_a_while() {
    let mut p = BatchPermits::default();
    let a = p.reserve(&CFG, 0);
    p.bind(&CFG, a, &open("x", 1), 0);
    let b = p.reserve(&CFG, 0);
    p.release(b);
    p.learn_down(&CFG, 10);
    assert_eq!(p.cap(&CFG, 10), 1);
    assert!(!p.has_room(&CFG, 10));
    assert_eq!(p.cap(&CFG, 1_010), 2);
}

#[test]
fn listing_frees_ended_and_binds_lost_creates() {
    let mut p = BatchPermits::default();
    let a = p.reserve(&CFG, 0);
    p.bind(&CFG, a, &open("x", 5), 0);
    let lost = p.reserve(&CFG, 0);
    p.mark_unknown(&CFG, lost, 1);
    // Listing begun at 5 shows only "y": x ended, the lost create made y.
    assert_eq!(p.reconcile(&CFG, &[open("y", 7)], 5, 6), 1);
    assert_eq!(p.held().len(), 1);
    assert_eq!(p.held()[0].holder, BatchHolder::Batch("y".into()));
    assert_eq!(p.spawned_allowance(), 7);
    // A permit bound after the listing began is kept.
    let c = p.reserve(&CFG, 7);
    p.bind(&CFG, c, &open("z", 1), 8);
    p.reconcile(&CFG, &[], 7, 9);
    assert_eq!(p.held().len(), 1);
    assert_eq!(p.held()[0].holder, BatchHolder::Batch("z".into()));
}

#[test]
fn leases_end() {
    let mut p = BatchPermits::default();
    p.reserve(&CFG, 0);
    assert_eq!(p.next_expiry(), Some(100));
    assert_eq!(p.expire(100), 1);
}
