//! Reconciliation as a conversation with the core: it asks for each page
//! and lookup (spending the reserved `other` budget first), interprets
//! Sync's answers, and converges the permits; the object only fetches.

use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::ids::GenerationId;
use governor_core::lifecycle::pages::{ListStep, ListedPage};
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::lifecycle::status::Observed;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

fn limits() -> Limits {
    let mut l = Limits::for_window(100, 100, 3, 60_000, 0);
    l.reconcile.page_size = 2;
    l
}

fn held(acc: &mut MemAccount, l: &Limits, now: u64, id: &str) {
    let admit = AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() };
    let Reply::Admitted(a) = acc.apply(l, now, 0.5, Command::Admit(admit)) else { panic!() };
    acc.apply(l, now, 0.5, Command::Bind { permit: a.permit.unwrap(), generation: id.into(), replay: None });
}

fn active(ids: &[&str]) -> Vec<ActiveGeneration> {
    ids.iter().map(|i| ActiveGeneration { id: (*i).into(), model: None }).collect()
}

#[test]
fn pages_then_lookup_then_converge() {
    let l = limits();
    let mut acc = MemAccount::default();
    held(&mut acc, &l, 0, "gone");
    held(&mut acc, &l, 0, "a");
    let Reply::List(ListStep::Page { cursor: None, limit: 2 }) = acc.apply(&l, 10, 0.5, Command::ListStart) else {
        panic!("first page")
    };
    let page = ListedPage::Items { items: active(&["a", "outside"]), count: 2 };
    let Reply::List(ListStep::Page { cursor: Some(c), .. }) = acc.apply(&l, 11, 0.5, Command::Listed { page }) else {
        panic!("a full page asks for the next")
    };
    assert_eq!(c, "outside");
    let page = ListedPage::Items { items: vec![], count: 0 };
    let Reply::List(ListStep::Lookup { ids }) = acc.apply(&l, 12, 0.5, Command::Listed { page }) else {
        panic!("the presumed ended are looked up")
    };
    assert_eq!(ids, vec![GenerationId::from("gone")]);
    let ended = vec![Observed { id: "gone".into(), status: GenerationStatus::Completed, output_ms: None }];
    assert_eq!(acc.apply(&l, 13, 0.5, Command::LookedUp { ended }), Reply::List(ListStep::Done));
    let gens: Vec<GenerationId> = acc.state.permits.held().iter().filter_map(|p| p.generation().cloned()).collect();
    assert_eq!(gens, vec![GenerationId::from("a"), "outside".into()], "gone released, outside adopted");
    // Three internal `other` requests were spent: two pages and a lookup.
    let other = acc.state.policies(&l, 13, &governor_core::rates::class::RateClass::Other, false)[0].remaining;
    assert_eq!(other, 100 - 3 - l.reconcile_reserve());
}

#[test]
fn a_sync_429_or_a_missing_key_postpones_the_run() {
    let l = limits();
    let mut acc = MemAccount::default();
    held(&mut acc, &l, 0, "a");
    acc.apply(&l, 10, 0.5, Command::ListStart);
    let page = ListedPage::Limited { body: r#"{"statusCode":429,"errorCode":"rate_limit_exceeded"}"#.into() };
    assert_eq!(acc.apply(&l, 11, 0.5, Command::Listed { page }), Reply::List(ListStep::Done));
    let Reply::Status(s) = acc.apply(&l, 12, 0.5, Command::Status) else { panic!() };
    assert_eq!(s.backoff.first().map(|b| b.class.as_str()), Some("other"), "Sync's 429 pauses `other`");
    assert!(s.reconcile.next_in_ms.is_some_and(|n| n >= l.reconcile.min_ms - 2));
    acc.apply(&l, 100_000, 0.5, Command::ListStart);
    assert_eq!(acc.apply(&l, 100_001, 0.5, Command::Listed { page: ListedPage::NoKey }), Reply::List(ListStep::Done));
    let Reply::Status(s) = acc.apply(&l, 100_002, 0.5, Command::Status) else { panic!() };
    assert!(s.reconcile.next_in_ms.is_some_and(|n| n > 0), "{:?}", s.reconcile);
    assert_eq!(s.concurrency.in_use, 1, "nothing is released without a listing");
}

#[test]
fn a_listing_past_its_page_bound_only_adopts() {
    let mut l = limits();
    l.reconcile.page_size = 1;
    let mut acc = MemAccount::default();
    held(&mut acc, &l, 0, "kept");
    acc.apply(&l, 10, 0.5, Command::ListStart);
    let mut reply = Reply::List(ListStep::Done);
    for i in 0..governor_core::lifecycle::pages::MAX_PAGES {
        let page = ListedPage::Items { items: active(&[&format!("o{i}")]), count: 1 };
        reply = acc.apply(&l, 11 + u64::from(i), 0.5, Command::Listed { page });
    }
    assert_eq!(reply, Reply::List(ListStep::Done));
    assert!(acc.state.permits.holds_generation(&"kept".into()), "a partial list proves no absence");
    assert!(acc.state.permits.holds_generation(&"o0".into()));
}
