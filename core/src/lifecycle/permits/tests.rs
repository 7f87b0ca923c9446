use super::*;

const CFG: ConcurrencyLimit = ConcurrencyLimit { cap: 2, reservation_ttl_ms: 100, lease_ttl_ms: 1_000 };

#[test]
fn reserve_bind_release() {
    let mut p = Permits::default();
    let a = p.reserve(&CFG, 0, None);
    let b = p.reserve(&CFG, 0, None);
    assert!(!p.has_room(&CFG));
    assert!(p.bind(&CFG, a, &"g1".into(), 10));
    assert_eq!(p.release(b).map(|x| x.id), Some(b));
    assert!(p.has_room(&CFG));
    assert!(p.release_generation(&"g1".into()).is_some());
    assert_eq!(p.in_use(), 0);
    assert!(p.release_generation(&"g1".into()).is_none(), "double free is a no-op");
}

#[test]
fn reservations_and_leases_expire() {
    let mut p = Permits::default();
    let a = p.reserve(&CFG, 0, None);
    p.reserve(&CFG, 0, None);
    p.bind(&CFG, a, &"g1".into(), 50);
    assert_eq!(p.expire(100).len(), 1);
    assert_eq!(p.next_expiry(), Some(1_050));
    assert_eq!(p.expire(1_050).len(), 1);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn bind_merges_an_adopted_twin() {
    let mut p = Permits::default();
    let a = p.reserve(&CFG, 0, None);
    p.adopt(&CFG, &"g1".into(), None, 5);
    assert_eq!(p.in_use(), 2);
    assert!(p.bind(&CFG, a, &"g1".into(), 10));
    assert_eq!(p.in_use(), 1);
}

#[test]
fn reconcile_releases_the_gone_and_adopts_the_unknown() {
    let mut p = Permits::default();
    let a = p.reserve(&CFG, 0, None);
    let b = p.reserve(&CFG, 0, None);
    p.bind(&CFG, a, &"old".into(), 10);
    p.bind(&CFG, b, &"fresh".into(), 30);
    p.reserve(&CFG, 40, None);
    let active = vec![("outside".into(), Some("lipsync-2".to_owned()))];
    let (gone, adopted) = p.reconcile(&CFG, &active, 20, 50);
    assert_eq!(gone.iter().filter_map(|g| g.generation()).collect::<Vec<_>>(), vec!["old"]);
    assert_eq!(adopted, 1);
    assert!(p.holds_generation(&"fresh".into()), "bound after the listing began: kept");
    assert!(p.holds_generation(&"outside".into()));
    assert_eq!(p.in_use(), 3, "fresh, outside and the reservation");
}

#[test]
fn a_replayed_generation_holds_one_permit() {
    let mut p = Permits::default();
    let a = p.reserve(&CFG, 0, None);
    p.bind(&CFG, a, &"g1".into(), 1);
    let b = p.reserve(&CFG, 2, None);
    assert!(p.bind(&CFG, b, &"g1".into(), 3));
    assert_eq!(p.in_use(), 1);
}
