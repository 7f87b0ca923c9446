//! Budgets and the ledger through the account's `apply`, natively: a create
//! reserves its estimate in the same turn as its permit, a completion
//! settles it at `outputDuration × PRICES`, a failed or refused create is
//! released, a spent budget refuses with `budget_exhausted` until midnight
//! UTC, the ledger's settled costs add up to what the budget consumed, and
//! a restart loses no reservation.

use governor_core::admission::request::{AdmitRequest, Reason};
use governor_core::budget::estimate::CostRequest;
use governor_core::budget::{BudgetLimits, MicroUsd};
use governor_core::config::limits::Limits;
use governor_core::ids::PermitId;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

fn limits() -> Limits {
    let mut l = Limits::for_window(100, 100, 4, 60_000, 0);
    let get = |k: &str| match k {
        "PRICES" => Some(r#"{"lipsync-2": 0.04}"#.to_owned()),
        "BUDGET_USD_PER_DAY" => Some("1.00".to_owned()),
        _ => None,
    };
    l.costs = governor_core::budget::vars::CostConfig::from_vars(&get).unwrap();
    l
}

// 2026-12-03T23:00:00Z
const NOW: u64 = 1_796_338_800_000;
const MIDNIGHT: u64 = 1_796_342_400_000;

fn create(client: &str, sync_estimate: Option<u64>) -> AdmitRequest {
    AdmitRequest {
        class: "generate".into(),
        permit: true,
        model: Some("lipsync-2".into()),
        cost: Some(CostRequest {
            client: client.into(),
            sync_estimate: sync_estimate.map(MicroUsd),
            budgets: BudgetLimits { day: Some(MicroUsd(700_000)), month: None },
            key: None,
        }),
        ..AdmitRequest::default()
    }
}

fn admit(acc: &mut MemAccount, l: &Limits, now: u64, req: AdmitRequest) -> Result<PermitId, (Reason, u64, String)> {
    match acc.apply(l, now, 0.5, Command::Admit(req)) {
        Reply::Admitted(a) => Ok(a.permit.expect("permit")),
        Reply::Rejected(r) => Err((r.reason, r.retry_at_ms, r.policy)),
        other => panic!("{other:?}"),
    }
}

fn ledger(acc: &mut MemAccount, l: &Limits, query: &str, client: Option<&str>) -> serde_json::Value {
    match acc.apply(l, NOW, 0.5, Command::Ledger { query: query.into(), client: client.map(str::to_owned) }) {
        Reply::Ledger(p) => serde_json::from_str(&p.body).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reserve_settle_release_refuse_and_add_up() {
    let l = limits();
    let mut acc = MemAccount::default();
    // Sync estimates 0.40 each: the client's 0.70 budget takes one, the second is refused until midnight.
    let p1 = admit(&mut acc, &l, NOW, create("mobile", Some(400_000))).unwrap();
    let refused = admit(&mut acc, &l, NOW, create("mobile", Some(400_000))).unwrap_err();
    assert_eq!(refused, (Reason::BudgetExhausted, MIDNIGHT, "client_budget.usd_per_day".into()));
    // Another client spends from the account's 1.00: 0.40 + 0.40 fit, a third does not.
    let p2 = admit(&mut acc, &l, NOW, create("web", Some(400_000))).unwrap();
    let refused = admit(&mut acc, &l, NOW, create("batch", Some(400_000))).unwrap_err();
    assert_eq!(refused.0, Reason::BudgetExhausted);
    assert_eq!(refused.2, "budget.usd_per_day");
    acc.apply(&l, NOW + 1, 0.5, Command::Bind { permit: p1, generation: "g1".into(), replay: None });
    // Sync refuses the second create: its reservation is released.
    acc.apply(&l, NOW + 1, 0.5, Command::Release { permit: p2 });
    let p3 = admit(&mut acc, &l, NOW + 2, create("web", Some(400_000))).unwrap();
    acc.apply(&l, NOW + 3, 0.5, Command::Bind { permit: p3, generation: "g3".into(), replay: None });
    // g1 completes with 12 s of output: 0.48 (over its 0.40 estimate); g3 fails.
    acc.apply(
        &l,
        NOW + 10,
        0.5,
        Command::Webhook {
            generation: "g1".into(),
            status: GenerationStatus::Completed,
            relay: None,
            output_ms: Some(12_000),
        },
    );
    acc.apply(
        &l,
        NOW + 11,
        0.5,
        Command::Webhook { generation: "g3".into(), status: GenerationStatus::Failed, relay: None, output_ms: None },
    );
    // A restart between: nothing reserved is lost, the book is as it was.
    acc.restart(&l);
    let all = ledger(&mut acc, &l, "", None);
    let rows = all["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{all}");
    let settled: u64 = rows.iter().filter_map(|r| r["settledMicroUsd"].as_u64()).sum();
    assert_eq!(settled, 480_000);
    assert_eq!(rows[0]["status"], "COMPLETED");
    assert_eq!(rows[0]["outputDuration"], 12.0);
    assert_eq!(rows[0]["settledFrom"], "prices");
    assert_eq!(rows[1]["status"], "REFUSED");
    assert_eq!(rows[2]["status"], "FAILED");
    // What the account's budget consumed equals what the ledger settled: 0.48 of 1.00 left 0.52.
    assert!(admit(&mut acc, &l, NOW + 20, create("web", Some(520_000))).is_ok());
    assert_eq!(admit(&mut acc, &l, NOW + 20, create("web", Some(1))).unwrap_err().0, Reason::BudgetExhausted);
    // A client's page is its own rows; a page of one row says where the next starts.
    let mine = ledger(&mut acc, &l, "limit=1", Some("web"));
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1);
    assert_eq!(mine["rows"][0]["client"], "web");
    assert!(mine["nextCursor"].is_string());
    // After midnight UTC the day budgets renew.
    assert!(admit(&mut acc, &l, MIDNIGHT, create("mobile", Some(400_000))).is_ok());
}

#[test]
fn unpriced_creates_under_a_budget_are_refused_not_guessed_free() {
    let l = limits();
    let mut acc = MemAccount::default();
    let mut req = create("mobile", None);
    req.model = Some("sync-3".into());
    assert_eq!(admit(&mut acc, &l, NOW, req).unwrap_err().0, Reason::CostUnknown);
    // Without Sync's estimate, PRICES x the assumed 60 s prices lipsync-2 (2.40 > 0.70): refused.
    assert_eq!(admit(&mut acc, &l, NOW, create("mobile", None)).unwrap_err().0, Reason::BudgetExhausted);
}

#[test]
fn a_queued_job_waits_for_the_renewal_and_its_ticket_says_so() {
    let l = limits();
    let mut acc = MemAccount::default();
    // The client's 0.70 takes one 0.40 job; the second is queued (respond-async).
    admit(&mut acc, &l, NOW, create("mobile", Some(400_000))).unwrap();
    let mut queued = create("mobile", Some(400_000));
    queued.enqueue = Some(governor_core::queue::job::JobSpec {
        client: "mobile".into(),
        priority: 0,
        body: "{}".into(),
        model: Some("lipsync-2".into()),
        idempotency_key: None,
        cost: queued.cost.clone().map(Box::new),
    });
    let Reply::Queued(ticket) = acc.apply(&l, NOW, 0.5, Command::Admit(queued)) else { panic!("not queued") };
    assert_eq!(ticket.waiting_for.as_deref(), Some("budget_exhausted"));
    // The alarm finds nothing to send until midnight UTC, then sends it.
    assert_eq!(acc.apply(&l, NOW + 1_000, 0.5, Command::Dispatch), Reply::Ack { released: 0 });
    let Reply::Ticket(t) = acc.apply(&l, NOW + 1_000, 0.5, Command::Ticket { ticket: ticket.id.clone(), client: None })
    else {
        panic!()
    };
    assert_eq!(t.estimated_start_at.as_deref(), Some("2026-12-04T00:00:00.000Z"));
    assert!(matches!(acc.apply(&l, MIDNIGHT, 0.5, Command::Dispatch), Reply::Dispatch(_)));
}
