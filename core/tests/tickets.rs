//! Queue tickets (issue 10, finding 8), a key still in flight (finding 6:
//! its 409 says when to retry) and durations learned from reconciliation
//! (finding 3), natively with an injected clock.

use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::AdmitRequest;
use governor_core::config::limits::Limits;
use governor_core::ids::TicketId;
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::lifecycle::status::Observed;
use governor_core::queue::job::{is_reserved_idempotency_key, JobSpec};
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Refusal, Reply};

fn limits() -> Limits {
    Limits::for_window(100, 100, 1, 60_000, 0)
}

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn queued(client: &str, ticket: Option<TicketId>) -> AdmitRequest {
    let spec = JobSpec {
        client: client.into(),
        priority: 0,
        body: "{}".into(),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    AdmitRequest { enqueue: Some(spec), ticket_id: ticket, ..generate() }
}

/// An account whose single permit is held by generation `g0`.
fn full() -> (Limits, MemAccount) {
    let l = limits();
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(generate())) else { panic!() };
    acc.apply(&l, 0, 0.5, Command::Bind { permit: a.permit.unwrap(), generation: "g0".into(), replay: None });
    (l, acc)
}

#[test]
fn a_ticket_carries_the_random_id_the_caller_drew() {
    let (l, mut acc) = full();
    let id = TicketId::random([0xab; 16]);
    assert_eq!(id.as_str(), format!("tk_{}", "ab".repeat(16)));
    assert_eq!(TicketId::parse(id.as_str()), Some(id.clone()));
    let Reply::Queued(t) = acc.apply(&l, 10, 0.5, Command::Admit(queued("c-a", Some(id.clone())))) else { panic!() };
    assert_eq!(t.id, id);
    // An id that is not of that shape is not taken as given.
    let Reply::Queued(t) = acc.apply(&l, 11, 0.5, Command::Admit(queued("c-a", Some("tk_1_2".into())))) else {
        panic!()
    };
    assert_ne!(t.id, "tk_1_2");
    // Nor is one already in use.
    let Reply::Queued(t) = acc.apply(&l, 12, 0.5, Command::Admit(queued("c-a", Some(id.clone())))) else { panic!() };
    assert_ne!(t.id, id);
}

#[test]
fn a_ticket_belongs_to_the_client_that_queued_it() {
    let (l, mut acc) = full();
    let id = TicketId::random([7; 16]);
    let Reply::Queued(_) = acc.apply(&l, 10, 0.5, Command::Admit(queued("c-owner", Some(id.clone())))) else {
        panic!()
    };
    let read = |client: Option<&str>| Command::Ticket { ticket: id.clone(), client: client.map(str::to_owned) };
    let cancel = |client: Option<&str>| Command::Cancel { ticket: id.clone(), client: client.map(str::to_owned) };
    assert!(matches!(acc.apply(&l, 11, 0.5, read(Some("c-owner"))), Reply::Ticket(_)));
    assert!(matches!(acc.apply(&l, 11, 0.5, read(None)), Reply::Ticket(_)), "pass-through: shared by the account");
    assert_eq!(acc.apply(&l, 12, 0.5, read(Some("c-other"))), Reply::Refused(Refusal::UnknownTicket));
    assert_eq!(acc.apply(&l, 13, 0.5, cancel(Some("c-other"))), Reply::Refused(Refusal::UnknownTicket));
    let Reply::Ticket(v) = acc.apply(&l, 14, 0.5, read(Some("c-owner"))) else { panic!() };
    assert_eq!(v.status.as_str(), "QUEUED", "another client's cancel changed nothing");
    let Reply::Ticket(v) = acc.apply(&l, 15, 0.5, cancel(Some("c-owner"))) else { panic!() };
    assert_eq!(v.status.as_str(), "CANCELED");
    // Finished tickets are read from their rows, still by their owner only.
    acc.restart(&l);
    assert!(matches!(acc.apply(&l, 16, 0.5, read(Some("c-owner"))), Reply::Ticket(_)));
    assert_eq!(acc.apply(&l, 16, 0.5, read(Some("c-other"))), Reply::Refused(Refusal::UnknownTicket));
    assert_eq!(acc.apply(&l, 16, 0.5, cancel(Some("c-other"))), Reply::Refused(Refusal::UnknownTicket));
}

#[test]
fn the_queue_idempotency_namespace_is_reserved() {
    assert!(is_reserved_idempotency_key("sync-governor-tk_1_2"));
    assert!(is_reserved_idempotency_key("Sync-Governor-anything"));
    assert!(!is_reserved_idempotency_key("sync-governo"));
    assert!(!is_reserved_idempotency_key("my-sync-governor-key"));
}

#[test]
fn a_key_in_flight_says_when_to_retry() {
    let l = limits();
    let mut acc = MemAccount::default();
    let keyed =
        AdmitRequest { idempotency: Some(IdempotencyKey { client: "c".into(), key: "k".into() }), ..generate() };
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(keyed.clone())) else { panic!() };
    // On its way to Sync: a create answers within seconds.
    let Reply::Refused(Refusal::InProgress { retry_after_ms }) = acc.apply(&l, 10, 0.5, Command::Admit(keyed.clone()))
    else {
        panic!()
    };
    assert!((1..=2_000).contains(&retry_after_ms), "{retry_after_ms}");
    // Its answer was lost: it resolves at the next listing.
    acc.apply(&l, 20, 0.5, Command::Unsettled { permit: a.permit.unwrap() });
    let listing = acc.state.reconciliation.schedule.next_at.expect("a listing is planned");
    let Reply::Refused(Refusal::InProgress { retry_after_ms }) = acc.apply(&l, 30, 0.5, Command::Admit(keyed)) else {
        panic!()
    };
    assert_eq!(retry_after_ms, listing.max(30 + 2_000) - 30);
}

#[test]
fn reconciliation_learns_durations_from_the_statuses_it_reads() {
    let l = limits();
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(generate())) else { panic!() };
    acc.apply(&l, 0, 0.5, Command::Bind { permit: a.permit.unwrap(), generation: "g0".into(), replay: None });
    assert_eq!(acc.state.durations.expected(None), governor_core::lifecycle::durations::PRIOR_MS);
    // A lost webhook: the listing at 2 s no longer shows g0, and its final
    // status was read back.
    let ended = vec![Observed { id: "g0".into(), status: GenerationStatus::Completed, output_ms: None }];
    let reconciled =
        Command::Reconciled { listed_from: 2_000, active: Vec::<ActiveGeneration>::new(), complete: true, ended };
    assert_eq!(acc.apply(&l, 2_100, 0.5, reconciled), Reply::Ack { released: 1 });
    assert_eq!(acc.state.durations.expected(None), 2_000);
}
