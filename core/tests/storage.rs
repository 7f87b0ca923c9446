//! The account as tables: restarts at any step change nothing, records stay
//! within their bounds, bodies stay out of memory.

use governor_core::admission::idempotency::{IdempotencyKey, Replay};
use governor_core::admission::request::{AdmitRequest, Reason};
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::lifecycle::status::Observed;
use governor_core::queue::job::DispatchOutcome;
use governor_core::queue::job::JobSpec;
use governor_core::relay::delivery::RelayRequest;
use governor_core::storage::mem::MemAccount;
use governor_core::storage::store::Store;
use governor_core::wire::contract::{Command, Refusal, Reply};
use proptest::prelude::*;

fn limits() -> Limits {
    let mut l = Limits::for_window(4, 20, 2, 1_000, 0);
    l.queue.max_depth = 6;
    l.idempotency.max_records = 5;
    // Small enough that histories expire and evict remembered relays.
    l.relay.dedupe_max = 3;
    l.relay.dedupe_ttl_ms = 3_000;
    l
}

fn relayed_webhook(generation: &str, status: &str) -> Command {
    Command::Webhook {
        generation: generation.into(),
        status: GenerationStatus::parse(status),
        relay: Some(RelayRequest {
            url: "https://client.example/hook".into(),
            body: format!(r#"{{"id":"{generation}","status":"{status}"}}"#),
            headers: Vec::new(),
        }),
        output_ms: None,
    }
}

fn generate() -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() }
}

fn keyed(client: &str, key: &str) -> AdmitRequest {
    AdmitRequest { idempotency: Some(IdempotencyKey { client: client.into(), key: key.into() }), ..generate() }
}

fn queued(client: &str, body: &str) -> AdmitRequest {
    let spec = JobSpec {
        client: client.into(),
        priority: 0,
        body: body.into(),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    AdmitRequest { enqueue: Some(spec), ..generate() }
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Op {
    Other,
    Create,
    Keyed(u8),
    Enqueue(u8),
    /// Bind the oldest unbound permit (Sync created it).
    Bind,
    /// The oldest generation ends (webhook).
    End,
    /// A relayed webhook for one of the generations seen so far (often a
    /// duplicate or a replay of one already relayed).
    Relay(u8),
    /// Ask for a queued job and report how Sync answered.
    Dispatch(u8),
    Cancel(u8),
    Ticket(u8),
    Status,
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Other),
        Just(Op::Create),
        (0u8..4).prop_map(Op::Keyed),
        (0u8..3).prop_map(Op::Enqueue),
        Just(Op::Bind),
        Just(Op::End),
        (0u8..8).prop_map(Op::Relay),
        (0u8..4).prop_map(Op::Dispatch),
        (0u8..8).prop_map(Op::Cancel),
        (0u8..8).prop_map(Op::Ticket),
        Just(Op::Status),
        Just(Op::Tick),
    ]
}

/// What the driver remembers of a history (the same for both twins).
#[derive(Default)]
struct Driver {
    unbound: Vec<governor_core::ids::PermitId>,
    generations: Vec<String>,
    tickets: Vec<governor_core::ids::TicketId>,
    /// Every generation bound so far (ended or not).
    seen: Vec<String>,
    n: u32,
}

impl Driver {
    fn command(&mut self, op: &Op, now: u64) -> Command {
        match op {
            Op::Other => Command::Admit(AdmitRequest { class: "other".into(), ..AdmitRequest::default() }),
            Op::Create => Command::Admit(generate()),
            Op::Keyed(k) => Command::Admit(keyed("c", &format!("k{k}"))),
            Op::Enqueue(c) => Command::Admit(queued(&format!("client{c}"), &format!("{{\"n\":{now}}}"))),
            Op::Bind => match self.unbound.first().copied() {
                Some(permit) => {
                    self.unbound.remove(0);
                    self.n += 1;
                    let generation = format!("g{}", self.n);
                    self.generations.push(generation.clone());
                    self.seen.push(generation.clone());
                    let body =
                        format!("{{\"id\":\"{generation}\",\"input\":\"{}\"}}", "x".repeat(self.n as usize * 700));
                    let replay = Replay {
                        key: IdempotencyKey { client: "c".into(), key: "k".into() },
                        status: 201,
                        body,
                        refetch: None,
                    };
                    Command::Bind { permit, generation: generation.into(), replay: Some(replay) }
                }
                None => Command::Tick,
            },
            Op::End => match self.generations.first().cloned() {
                Some(id) => {
                    self.generations.remove(0);
                    Command::Webhook {
                        generation: id.into(),
                        status: GenerationStatus::Completed,
                        relay: None,
                        output_ms: None,
                    }
                }
                None => Command::Tick,
            },
            Op::Relay(i) => match self.seen.get(*i as usize % self.seen.len().max(1)) {
                Some(g) => relayed_webhook(g, if i % 2 == 0 { "COMPLETED" } else { "FAILED" }),
                None => Command::Tick,
            },
            Op::Dispatch(_) => Command::Dispatch,
            Op::Cancel(i) => match self.tickets.get(*i as usize) {
                Some(t) => Command::Cancel { ticket: t.clone(), client: None },
                None => Command::Tick,
            },
            Op::Ticket(i) => match self.tickets.get(*i as usize) {
                Some(t) => Command::Ticket { ticket: t.clone(), client: None },
                None => Command::Status,
            },
            Op::Status => Command::Status,
            Op::Tick => Command::Tick,
        }
    }

    fn observe(&mut self, op: &Op, reply: &Reply) -> Option<Command> {
        match reply {
            Reply::Admitted(a) => self.unbound.extend(a.permit),
            Reply::Queued(t) if !self.tickets.contains(&t.id) => self.tickets.push(t.id.clone()),
            Reply::Dispatch(job) => {
                let outcome = match op {
                    Op::Dispatch(0) => DispatchOutcome::Transient,
                    Op::Dispatch(1) => DispatchOutcome::Limited {
                        kind: governor_core::lifecycle::limited::LimitKind::Rate,
                        retry_after_ms: None,
                    },
                    _ => {
                        self.n += 1;
                        let generation = format!("g{}", self.n);
                        self.generations.push(generation.clone());
                        DispatchOutcome::Created { generation: generation.into() }
                    }
                };
                return Some(Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome });
            }
            _ => {}
        }
        None
    }
}

fn check_invariants(l: &Limits, acc: &MemAccount) -> Result<(), TestCaseError> {
    let st = &acc.state;
    prop_assert!(st.permits.in_use() <= l.concurrency.cap, "permits over the cap");
    prop_assert!(st.queue.depth() <= l.queue.max_depth);
    prop_assert!(st.queue.bytes() <= l.queue.max_bytes);
    let totals = &st.idempotency.totals;
    prop_assert!(totals.records <= u64::from(l.idempotency.max_records));
    prop_assert_eq!(totals.records as usize, acc.store.idempotency.len(), "record count matches the table");
    prop_assert!(st.queue.jobs().iter().all(|j| j.spec.body.is_empty()), "no queued body in memory");
    prop_assert_eq!(acc.store.permits.len() as u32, st.permits.in_use(), "the permits table is the memory's permits");
    let remembered = st.outbox.counters.remembered;
    prop_assert_eq!(remembered as usize, acc.store.relayed.len(), "remembered relays match the table");
    prop_assert!(remembered <= u64::from(l.relay.dedupe_max), "remembered relays within their bound");
    for job in st.queue.jobs() {
        prop_assert!(acc.store.job_bodies.contains_key(&job.ticket), "a waiting job has its body row");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any history, restarted at any steps, answers exactly as the same
    /// history without restarts, and both keep every invariant.
    #[test]
    fn restarts_change_nothing(
        steps in prop::collection::vec((op(), 0u64..400, any::<bool>()), 1..160),
    ) {
        let l = limits();
        let mut steady = MemAccount::default();
        let mut restarted = MemAccount::default();
        let (mut d1, mut d2) = (Driver::default(), Driver::default());
        let mut now = 1_000u64;
        for (op, gap, restart) in steps {
            now += gap;
            if restart {
                restarted.restart(&l);
            }
            let c1 = d1.command(&op, now);
            let c2 = d2.command(&op, now);
            prop_assert_eq!(&c1, &c2);
            let r1 = steady.apply(&l, now, 0.5, c1);
            let r2 = restarted.apply(&l, now, 0.5, c2);
            prop_assert_eq!(without_metrics(&r1), without_metrics(&r2), "a restart changed a reply");
            if let (Some(f1), Some(f2)) = (d1.observe(&op, &r1), d2.observe(&op, &r2)) {
                let r1 = steady.apply(&l, now, 0.5, f1);
                let r2 = restarted.apply(&l, now, 0.5, f2);
                prop_assert_eq!(r1, r2);
            }
            check_invariants(&l, &steady)?;
            check_invariants(&l, &restarted)?;
        }
        restarted.restart(&l);
        prop_assert_eq!(steady.store.meta.get("seq"), restarted.store.meta.get("seq"));
    }
}

#[test]
fn a_large_replay_is_kept_as_its_generation_and_read_back() {
    let l = limits();
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(keyed("c", "big"))) else { panic!() };
    let key = IdempotencyKey { client: "c".into(), key: "big".into() };
    let body = format!("{{\"id\":\"g1\",\"input\":\"{}\"}}", "x".repeat(30_000));
    let replay = Replay { key: key.clone(), status: 201, body, refetch: None };
    acc.apply(&l, 1, 0.5, Command::Bind { permit: a.permit.unwrap(), generation: "g1".into(), replay: Some(replay) });
    assert!(acc.store.bytes() < 1_000, "the 30 KB body is not stored: {}", acc.store.bytes());
    let Reply::Replay(r) = acc.apply(&l, 2, 0.5, Command::Admit(keyed("c", "big"))) else { panic!() };
    assert_eq!((r.status, r.refetch.as_ref().map(|g| g.as_str()), r.body.as_str()), (201, Some("g1"), ""));
    let small = Replay { key, status: 201, body: "{\"id\":\"g2\"}".into(), refetch: None };
    let Reply::Admitted(b) = acc.apply(&l, 3, 0.5, Command::Admit(keyed("c", "small"))) else { panic!() };
    let mut small = small;
    small.key.key = "small".into();
    acc.apply(
        &l,
        4,
        0.5,
        Command::Bind { permit: b.permit.unwrap(), generation: "g2".into(), replay: Some(small.clone()) },
    );
    assert_eq!(acc.apply(&l, 5, 0.5, Command::Admit(keyed("c", "small"))), Reply::Replay(small));
}

#[test]
fn the_idempotency_table_is_bounded_and_expires() {
    let mut l = limits();
    l.concurrency.cap = 100;
    l.generate.limit = 100;
    l.generate.burst = 100;
    l.idempotency.ttl_ms = 10_000;
    let mut acc = MemAccount::default();
    for i in 0..5 {
        let Reply::Admitted(a) = acc.apply(&l, i, 0.5, Command::Admit(keyed("c", &format!("k{i}")))) else { panic!() };
        acc.apply(&l, i, 0.5, Command::Release { permit: a.permit.unwrap() });
        let again = acc.apply(&l, i, 0.5, Command::Admit(keyed("c", &format!("k{i}"))));
        let Reply::Admitted(a) = again else { panic!("{again:?}") };
        let replay = Replay {
            key: IdempotencyKey { client: "c".into(), key: format!("k{i}") },
            status: 201,
            body: format!("{{\"id\":\"g{i}\"}}"),
            refetch: None,
        };
        let bind =
            Command::Bind { permit: a.permit.unwrap(), generation: format!("g{i}").into(), replay: Some(replay) };
        acc.apply(&l, i, 0.5, bind);
    }
    assert_eq!(acc.store.idempotency.len(), 5);
    let Reply::Rejected(r) = acc.apply(&l, 100, 0.5, Command::Admit(keyed("c", "one-too-many"))) else { panic!() };
    assert_eq!((r.reason, r.policy.as_str()), (Reason::IdempotencyFull, "idempotency_records"));
    assert!(matches!(acc.apply(&l, 100, 0.5, Command::Admit(generate())), Reply::Admitted(_)), "unkeyed still pass");
    // Past the TTL, a record whose generation still runs stays...
    acc.apply(&l, 70_000, 0.5, Command::Tick);
    assert_eq!(acc.store.idempotency.len(), 5, "their generations still run");
    // ...and the sweep frees the table once they ended.
    for i in 0..5 {
        let end = Command::Webhook {
            generation: format!("g{i}").into(),
            status: GenerationStatus::Completed,
            relay: None,
            output_ms: None,
        };
        acc.apply(&l, 70_000, 0.5, end);
    }
    acc.apply(&l, 140_000, 0.5, Command::Tick);
    assert!(acc.store.idempotency.is_empty());
    assert_eq!(acc.state.idempotency.totals.records, 0);
    assert!(matches!(acc.apply(&l, 140_001, 0.5, Command::Admit(keyed("c", "k0"))), Reply::Admitted(_)));
}

#[test]
fn a_reservation_that_never_heard_back_frees_its_key() {
    let mut l = limits();
    l.concurrency.reservation_ttl_ms = 1_000;
    let mut acc = MemAccount::default();
    assert!(matches!(acc.apply(&l, 0, 0.5, Command::Admit(keyed("c", "k"))), Reply::Admitted(_)));
    assert!(matches!(
        acc.apply(&l, 10, 0.5, Command::Admit(keyed("c", "k"))),
        Reply::Refused(Refusal::InProgress { .. })
    ));
    assert!(matches!(acc.apply(&l, 1_001, 0.5, Command::Admit(keyed("c", "k"))), Reply::Admitted(_)));
}

#[test]
fn queued_bodies_live_in_their_rows_and_the_queue_is_bounded_in_bytes() {
    let mut l = limits();
    l.queue.max_bytes = 10_000;
    let mut acc = MemAccount::default();
    // Fill the permits so everything queues.
    for i in 0..2 {
        let Reply::Admitted(a) = acc.apply(&l, i, 0.5, Command::Admit(generate())) else { panic!() };
        acc.apply(
            &l,
            i,
            0.5,
            Command::Bind { permit: a.permit.unwrap(), generation: format!("g{i}").into(), replay: None },
        );
    }
    let body = "b".repeat(4_000);
    for i in 0..2 {
        assert!(matches!(acc.apply(&l, 10 + i, 0.5, Command::Admit(queued("a", &body))), Reply::Queued(_)));
    }
    let Reply::Rejected(r) = acc.apply(&l, 20, 0.5, Command::Admit(queued("a", &body))) else { panic!() };
    assert_eq!((r.reason, r.policy.as_str()), (Reason::QueueFull, "queue_bytes"));
    assert_eq!(acc.state.queue.bytes(), 8_000);
    assert!(acc.state.queue.jobs().iter().all(|j| j.spec.body.is_empty()));
    // A generation ends: the next job is handed out with its body read from its row.
    acc.restart(&l);
    acc.apply(
        &l,
        30,
        0.5,
        Command::Observe {
            generations: vec![Observed { id: "g0".into(), status: GenerationStatus::Completed, output_ms: None }],
        },
    );
    let Reply::Dispatch(job) = acc.apply(&l, 31, 0.5, Command::Dispatch) else { panic!("no job handed out") };
    assert_eq!(job.body, body);
    let created = DispatchOutcome::Created { generation: "g9".into() };
    acc.apply(&l, 32, 0.5, Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome: created });
    assert!(acc.store.job_body(&job.ticket).unwrap().is_none(), "a submitted job's body is deleted");
    assert_eq!(acc.state.queue.bytes(), 4_000);
    let Reply::Ticket(t) = acc.apply(&l, 33, 0.5, Command::Ticket { ticket: job.ticket.clone(), client: None }) else {
        panic!()
    };
    assert_eq!((t.status.as_str(), t.generation_id.as_ref().map(|g| g.as_str())), ("SUBMITTED", Some("g9")));
    acc.apply(
        &l,
        34,
        0.5,
        Command::Webhook { generation: "g9".into(), status: GenerationStatus::Completed, relay: None, output_ms: None },
    );
    let Reply::Ticket(t) = acc.apply(&l, 35, 0.5, Command::Ticket { ticket: job.ticket, client: None }) else {
        panic!()
    };
    assert_eq!(t.status.as_str(), "COMPLETED", "a finished ticket is read from its row");
}

/// Finding 5 of issue 10: one signed body posted six times reached the
/// client six times. Each (generation, status) is relayed once; replays are
/// acknowledged, dropped and counted; the memory of it is bounded and
/// expires, and survives a restart.
#[test]
fn each_end_is_relayed_once_and_replays_are_dropped() {
    let mut l = limits();
    l.relay.dedupe_max = 3;
    l.relay.dedupe_ttl_ms = 10_000;
    let mut acc = MemAccount::default();
    for t in 0..6 {
        assert_eq!(acc.apply(&l, t, 0.5, relayed_webhook("g1", "COMPLETED")), Reply::Ack { released: 0 });
        if t == 2 {
            acc.restart(&l);
        }
    }
    assert_eq!(acc.store.outbox.len(), 1, "one delivery for six copies");
    let Reply::Status(st) = acc.apply(&l, 7, 0.5, Command::Status) else { panic!() };
    assert_eq!((st.relay.pending, st.relay.duplicates), (1, 5));
    // Another status of the same generation is another end.
    acc.apply(&l, 8, 0.5, relayed_webhook("g1", "FAILED"));
    assert_eq!(acc.store.outbox.len(), 2);
    // Bounded: at the bound the oldest remembered end goes.
    for g in ["g2", "g3"] {
        acc.apply(&l, 9, 0.5, relayed_webhook(g, "COMPLETED"));
    }
    assert_eq!(acc.store.relayed.len(), 3);
    assert!(!acc.store.relayed.contains_key(&("g1".into(), GenerationStatus::Completed)), "the oldest was evicted");
    // Expired: past the TTL (a token that old no longer opens) the table empties.
    acc.apply(&l, 80_000, 0.5, Command::Tick);
    assert!(acc.store.relayed.is_empty());
    assert_eq!(acc.state.outbox.counters.remembered, 0);
}

#[test]
fn admissions_are_rows_pruned_as_they_leave_the_span() {
    let l = limits();
    let mut acc = MemAccount::default();
    for t in 0..20 {
        assert!(matches!(
            acc.apply(
                &l,
                t * 10,
                0.5,
                Command::Admit(AdmitRequest { class: "other".into(), internal: true, ..AdmitRequest::default() })
            ),
            Reply::Admitted(_)
        ));
    }
    let rows = acc.store.admissions().unwrap().len();
    assert_eq!(rows, 20);
    acc.apply(&l, 1_150, 0.5, Command::Tick);
    let rows = acc.store.admissions().unwrap().len();
    assert!(rows <= 5, "{rows} rows left after most left the span");
}

#[test]
fn a_webhook_that_overtakes_its_bind_still_frees_the_permit() {
    let l = limits();
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(generate())) else { panic!() };
    let webhook =
        Command::Webhook { generation: "g1".into(), status: GenerationStatus::Completed, relay: None, output_ms: None };
    assert_eq!(acc.apply(&l, 5, 0.5, webhook), Reply::Ack { released: 0 });
    let bind = Command::Bind { permit: a.permit.unwrap(), generation: "g1".into(), replay: None };
    assert_eq!(acc.apply(&l, 6, 0.5, bind), Reply::Ack { released: 1 });
    assert_eq!(acc.state.permits.in_use(), 0);
}

/// A reply less the metrics in it (they are written every few seconds, not
/// per command, so a restart may lose the last of them: a counter reset) and
/// the drained probe's due times.
fn without_metrics(r: &Reply) -> Reply {
    let mut r = r.clone();
    if let Reply::Status(s) = &mut r {
        s.counters = Default::default();
        s.waits = governor_core::operations::metrics::Metrics::default().waits();
        s.series = governor_core::operations::series::Series::default().view(0);
        // When work is next due rests on memory-only state too (a running
        // listing, the queue's block): only what is pending must survive.
        s.pending.next_listing_in_ms = None;
        s.pending.next_submission_in_ms = None;
    }
    r
}
