//! The batch lane through the account's `apply` (issue 18): lane work is
//! queued at once and waits for a batch; at 20 waiting a batch goes (at
//! most 500 lines, in fair order), each job's key its `request_id`; the
//! batch's result gives each ticket its generation and final status; a
//! rejected line falls back to the direct queue; a 402 turns the lane off;
//! jobs without the lane are never batched; nothing is lost across restarts.

use governor_core::admission::request::AdmitRequest;
use governor_core::batch::lane::{LaneCommand, LaneStep};
use governor_core::batch::{CreateAnswer, SeenBatch};
use governor_core::config::limits::Limits;
use governor_core::ids::TicketId;
use governor_core::lifecycle::status::{GenerationStatus, TicketStatus};
use governor_core::queue::job::{DispatchOutcome, JobSpec, TicketView};
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};
use governor_core::wire::view::StatusView;

fn limits() -> Limits {
    let mut l = Limits::for_window(60, 600, 3, 60_000, 0);
    l.batches.cap = 2;
    l.batches.lane.enabled = true;
    l.batches.lane.poll_ms = 1_000;
    l.batches.lane.linger_ms = 0;
    l.queue.max_depth = 2_000;
    l.queue.max_bytes = 64 << 20;
    l
}

fn job(client: &str, n: u32, lane: bool) -> AdmitRequest {
    let spec = JobSpec {
        client: client.into(),
        priority: 0,
        body: format!(r#"{{"model":"lipsync-2","input":[{{"type":"video","url":"https://x/{n}.mp4"}}]}}"#),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[4] = u8::from(lane);
    id[5..5 + client.len().min(11)].copy_from_slice(&client.as_bytes()[..client.len().min(11)]);
    AdmitRequest {
        class: "generate".into(),
        permit: true,
        enqueue: Some(spec),
        ticket_id: Some(TicketId::random(id)),
        lane,
        ..AdmitRequest::default()
    }
}

fn queue(acc: &mut MemAccount, l: &Limits, now: u64, req: AdmitRequest) -> TicketId {
    match acc.apply(l, now, 0.5, Command::Admit(req)) {
        Reply::Queued(t) => t.id,
        other => panic!("{other:?}"),
    }
}

fn next(acc: &mut MemAccount, l: &Limits, now: u64) -> LaneStep {
    match acc.apply(l, now, 0.5, Command::Lane(LaneCommand::Next)) {
        Reply::Lane(step) => step,
        other => panic!("{other:?}"),
    }
}

fn status(acc: &mut MemAccount, l: &Limits, now: u64) -> StatusView {
    match acc.apply(l, now, 0.5, Command::Status) {
        Reply::Status(s) => s,
        other => panic!("{other:?}"),
    }
}

fn ticket(acc: &mut MemAccount, l: &Limits, now: u64, t: impl AsRef<str>) -> TicketView {
    match acc.apply(l, now, 0.5, Command::Ticket { ticket: t.as_ref().into(), client: None }) {
        Reply::Ticket(v) => v,
        other => panic!("{other:?}"),
    }
}

fn request_ids(lines: &str) -> Vec<String> {
    lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"].as_str().unwrap().to_owned())
        .collect()
}

fn created(id: &str, pending: u32) -> CreateAnswer {
    CreateAnswer::Created(SeenBatch { id: id.into(), terminal: false, pending: Some(pending) })
}

#[test]
fn six_hundred_lane_jobs_go_in_two_batches_and_each_ticket_gets_its_result() {
    let l = limits();
    let mut acc = MemAccount::default();
    let mut tickets = Vec::new();
    for n in 0..600 {
        // Two clients: the batch takes them in fair order.
        tickets.push(queue(&mut acc, &l, 0, job(if n % 3 == 0 { "a" } else { "b" }, n, true)));
    }
    // The cap is full: a job without the lane is queued for a permit.
    let mut held = Vec::new();
    for _ in 0..3 {
        let plain = AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() };
        let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(plain)) else { panic!() };
        held.push(a.permit.unwrap());
    }
    let direct = queue(&mut acc, &l, 0, job("c", 9_999, false));
    // Every lane job waits for a batch, none took a permit.
    let st = status(&mut acc, &l, 1);
    assert_eq!((st.lane.waiting, st.concurrency.in_use), (600, 3));
    assert_eq!(ticket(&mut acc, &l, 1, &tickets[0]).status, TicketStatus::WaitingForBatch);
    let LaneStep::Submit { permit: p1, lines, count } = next(&mut acc, &l, 2) else { panic!() };
    assert_eq!(count, 500);
    let ids1 = request_ids(&lines);
    assert_eq!(ids1.len(), 500);
    assert!(ids1.iter().all(|id| id.starts_with("sync-governor-tk_")));
    // Fair order: with equal weights both clients are in the first batch alike.
    let a_in_first = ids1.iter().filter(|id| tickets.iter().step_by(3).any(|t| id.ends_with(t.as_str()))).count();
    assert_eq!(a_in_first, 200, "client a (200 jobs) goes in the first batch with b's 300");
    // One create on its way at a time.
    assert_eq!(next(&mut acc, &l, 3), LaneStep::Idle);
    acc.apply(&l, 4, 0.5, Command::Lane(LaneCommand::Created { permit: p1, answer: created("b1", 500) }));
    let LaneStep::Submit { permit: p2, lines: lines2, count: 100 } = next(&mut acc, &l, 5) else { panic!() };
    acc.apply(&l, 6, 0.5, Command::Lane(LaneCommand::Created { permit: p2, answer: created("b2", 100) }));
    let st = status(&mut acc, &l, 7);
    assert_eq!((st.lane.waiting, st.lane.in_flight.len(), st.batches.in_use), (0, 2, 2));
    let t0 = ticket(&mut acc, &l, 7, &tickets[0]);
    assert_eq!(t0.status, TicketStatus::Batched);
    assert!(t0.batch_id.is_some());
    // A restart loses nothing: the jobs are rows, the batches a row.
    acc.restart(&l);
    assert_eq!(status(&mut acc, &l, 8).lane.in_flight.len(), 2);
    // Reads when due; the batch ends; its result is read.
    assert_eq!(next(&mut acc, &l, 500), LaneStep::Idle);
    let LaneStep::Poll { batch } = next(&mut acc, &l, 1_010) else { panic!() };
    let done = SeenBatch { id: batch.clone(), terminal: true, pending: Some(0) };
    acc.apply(&l, 1_011, 0.5, Command::Lane(LaneCommand::Seen { batch: batch.clone(), seen: Some(done) }));
    let LaneStep::Fetch { batch: fetched } = next(&mut acc, &l, 1_012) else { panic!() };
    assert_eq!(fetched, batch);
    let ids = if batch == "b1" { ids1.clone() } else { request_ids(&lines2) };
    let mut body = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i == 0 {
            body += &format!(
                "{{\"request_id\":\"{id}\",\"generation_id\":null,\"status\":\"REJECTED\",\"error_code\":\"input_too_long\"}}\n"
            );
        } else {
            body += &format!("{{\"request_id\":\"{id}\",\"generation_id\":\"g-{i}\",\"status\":\"COMPLETED\"}}\n");
        }
    }
    acc.apply(&l, 1_013, 0.5, Command::Lane(LaneCommand::Result { batch: batch.clone(), body: Some(body) }));
    let st = status(&mut acc, &l, 1_014);
    assert_eq!(st.lane.in_flight.len(), 1);
    assert_eq!(st.lane.fell_back, 1);
    assert_eq!(st.lane.created, ids.len() as u64 - 1);
    assert_eq!(st.batches.in_use, 1, "the ended batch's permit is free");
    let second = ids[1].trim_start_matches("sync-governor-");
    let t = ticket(&mut acc, &l, 1_015, second);
    assert_eq!(t.status, TicketStatus::Ended(GenerationStatus::Completed));
    assert_eq!(t.generation_id.as_ref().map(|g| g.as_str()), Some("g-1"));
    assert_eq!(t.batch_id.as_deref(), Some(batch.as_str()));
    // The rejected line is back in the direct queue and goes as a create.
    let rejected = TicketId::from(ids[0].trim_start_matches("sync-governor-"));
    assert_eq!(ticket(&mut acc, &l, 1_015, &rejected).status, TicketStatus::Queued);
    for permit in held {
        acc.apply(&l, 1_015, 0.5, Command::Release { permit });
    }
    let mut sent = Vec::new();
    for now in 1_016..1_020 {
        if let Reply::Dispatch(d) = acc.apply(&l, now, 0.5, Command::Dispatch) {
            sent.push(d.ticket.clone());
            let outcome = DispatchOutcome::Created { generation: format!("direct-{now}").into() };
            acc.apply(&l, now, 0.5, Command::Dispatched { ticket: d.ticket, permit: d.permit, outcome });
        }
    }
    assert!(sent.contains(&rejected) && sent.contains(&direct), "{sent:?}");
    assert!(!ids1.iter().chain(request_ids(&lines2).iter()).any(|id| id.ends_with(direct.as_str())), "never batched");
}

#[test]
fn a_402_turns_the_lane_off_and_its_jobs_go_direct() {
    let l = limits();
    let mut acc = MemAccount::default();
    for n in 0..25 {
        queue(&mut acc, &l, 0, job("a", n, true));
    }
    let LaneStep::Submit { permit, count: 25, .. } = next(&mut acc, &l, 1) else { panic!() };
    let answer = CreateAnswer::Refused { status: 402 };
    acc.apply(&l, 2, 0.5, Command::Lane(LaneCommand::Created { permit, answer }));
    let st = status(&mut acc, &l, 3);
    assert!(!st.lane.enabled);
    assert_eq!(st.lane.off, Some("plan_without_batches"));
    assert_eq!((st.lane.waiting, st.batches.in_use, st.lane.fell_back), (0, 0, 25));
    // New lane work is queued as direct work now.
    let t = queue(&mut acc, &l, 4, job("a", 100, true));
    assert_eq!(ticket(&mut acc, &l, 5, &t).status, TicketStatus::Queued);
    // ... and survives a restart that way.
    acc.restart(&l);
    assert!(!status(&mut acc, &l, 6).lane.enabled);
}

#[test]
fn fewer_than_twenty_wait_then_go_direct_and_a_cut_off_create_waits_for_a_listing() {
    let mut l = limits();
    l.batches.lane.max_wait_ms = 10_000;
    let mut acc = MemAccount::default();
    for n in 0..19 {
        queue(&mut acc, &l, 0, job("a", n, true));
    }
    assert_eq!(next(&mut acc, &l, 1), LaneStep::Idle);
    assert_eq!(next(&mut acc, &l, 10_000), LaneStep::Idle);
    let st = status(&mut acc, &l, 10_001);
    assert_eq!((st.lane.waiting, st.lane.fell_back), (0, 19));
    // A create cut off by a restart: the permit waits for a listing.
    for n in 100..120 {
        queue(&mut acc, &l, 20_000, job("a", n, true));
    }
    let LaneStep::Submit { .. } = next(&mut acc, &l, 20_001) else { panic!() };
    acc.restart(&l);
    assert_eq!(next(&mut acc, &l, 20_002), LaneStep::Idle);
    let st = status(&mut acc, &l, 20_003);
    assert_eq!((st.lane.in_flight.len(), st.batches.in_use), (1, 1));
    assert_eq!(st.lane.in_flight[0].batch_id, None);
}

#[test]
fn a_partial_batch_goes_once_arrivals_pause_or_the_oldest_waited_ten_lingers() {
    let mut l = limits();
    l.batches.lane.linger_ms = 1_000;
    // Arrivals pause: 25 jobs in 2.4 s, then none for the linger.
    let mut acc = MemAccount::default();
    for n in 0..25u32 {
        queue(&mut acc, &l, u64::from(n) * 100, job("a", n, true));
    }
    assert_eq!(next(&mut acc, &l, 3_399), LaneStep::Idle, "the backlog may still grow");
    let LaneStep::Submit { count, .. } = next(&mut acc, &l, 3_400) else { panic!("no batch after the pause") };
    assert_eq!(count, 25);
    // A steady trickle (one job every 400 ms) never pauses: the batch
    // goes once the oldest waited ten lingers.
    let mut acc = MemAccount::default();
    for n in 0..40u32 {
        let now = u64::from(n) * 400;
        queue(&mut acc, &l, now, job("b", n, true));
        let step = next(&mut acc, &l, now);
        if now < 10_000 {
            assert_eq!(step, LaneStep::Idle, "trickle at {now}");
        } else {
            let LaneStep::Submit { count, .. } = step else { panic!("the ceiling passed at {now}: {step:?}") };
            assert_eq!((now, count), (10_000, 26));
            return;
        }
    }
    panic!("no batch went");
}

#[test]
fn a_client_whose_limits_say_lane_batch_has_all_its_queued_jobs_batched() {
    let mut l = limits();
    l.clients = governor_core::shares::limits::ClientLimits::parse(
        r#"{"*": {"bulk": {"lane": "batch"}, "live": {"lane": "direct"}}}"#,
    )
    .unwrap();
    let mut acc = MemAccount::default();
    // Fill the cap so that work without the lane queues.
    for _ in 0..3 {
        let plain = AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() };
        let Reply::Admitted(_) = acc.apply(&l, 0, 0.5, Command::Admit(plain)) else { panic!() };
    }
    let bulk: Vec<TicketId> = (0..20).map(|n| queue(&mut acc, &l, 0, job("bulk", n, false))).collect();
    let live = queue(&mut acc, &l, 0, job("live", 100, false));
    let other = queue(&mut acc, &l, 0, job("other", 101, false));
    assert!(bulk.iter().all(|t| ticket(&mut acc, &l, 1, t).status == TicketStatus::WaitingForBatch));
    assert_eq!(ticket(&mut acc, &l, 1, &live).status, TicketStatus::Queued);
    assert_eq!(ticket(&mut acc, &l, 1, &other).status, TicketStatus::Queued);
    let LaneStep::Submit { lines, count: 20, .. } = next(&mut acc, &l, 2) else { panic!("no batch") };
    let ids = request_ids(&lines);
    assert!(bulk.iter().all(|t| ids.contains(&format!("sync-governor-{t}"))));
    // With SYNC_BATCH off, nothing is lane work, whatever the client's limits say.
    let mut off = l.clone();
    off.batches.lane.enabled = false;
    let mut acc = MemAccount::default();
    let Reply::Admitted(a) = acc.apply(&off, 0, 0.5, Command::Admit(job("bulk", 200, false))) else {
        panic!("a free cap admits it directly")
    };
    assert!(a.permit.is_some());
    assert_eq!(status(&mut acc, &off, 1).lane.waiting, 0);
}

#[test]
fn lane_work_in_an_account_whose_key_is_unproven_goes_direct() {
    // A provisional account (its key not yet accepted by Sync) arms no
    // alarm: nothing may wait there for a batch.
    let l = limits();
    let mut acc = MemAccount::default();
    let unproven = |n| AdmitRequest { key_unproven: true, ..job("a", n, true) };
    let Reply::Admitted(a) = acc.apply(&l, 0, 0.5, Command::Admit(unproven(0))) else { panic!("a free cap sends it") };
    assert!(a.permit.is_some());
    for _ in 0..2 {
        let plain = AdmitRequest { class: "generate".into(), permit: true, ..AdmitRequest::default() };
        let Reply::Admitted(_) = acc.apply(&l, 0, 0.5, Command::Admit(plain)) else { panic!() };
    }
    let t = queue(&mut acc, &l, 0, unproven(1));
    assert_eq!(ticket(&mut acc, &l, 1, &t).status, TicketStatus::Queued, "queued as direct work");
    // Once the key is proven, lane work waits for a batch again.
    let t = queue(&mut acc, &l, 1, job("a", 2, true));
    assert_eq!(ticket(&mut acc, &l, 2, &t).status, TicketStatus::WaitingForBatch);
}
