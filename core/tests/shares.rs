//! Sharing one account among clients (issue 17),
//! natively: weighted shares of permits and of completed generations,
//! reservations, a greedy client against a light one, client limits in the
//! same decision as the account's, overrides and status per client.

use std::collections::BTreeMap;

use governor_core::admission::request::{AdmitRequest, ClientRef, Hold};
use governor_core::config::limits::Limits;
use governor_core::ids::{PermitId, TicketId};
use governor_core::queue::job::DispatchOutcome;
use governor_core::queue::job::JobSpec;
use governor_core::shares::limits::ClientLimits;
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};

const ACCOUNT: &str = "a-acme";

fn limits(cap: u32, clients: &str) -> Limits {
    let mut l = Limits::for_window(100_000, 100_000, cap, 60_000, 0);
    l.clients = ClientLimits::parse(clients).unwrap();
    l.queue.max_depth = 10_000;
    l.queue.max_bytes = 1 << 30;
    l
}

fn who(client: &str) -> Option<ClientRef> {
    Some(ClientRef { account: ACCOUNT.into(), client: client.into() })
}

fn create(client: &str) -> AdmitRequest {
    AdmitRequest { class: "generate".into(), permit: true, client: who(client), ..AdmitRequest::default() }
}

fn queued(client: &str) -> AdmitRequest {
    queued_in(ACCOUNT, client)
}

/// A pass-through account: the object of one Sync key.
const PASS_ACCOUNT: &str = "k-0123456789abcdef0123456789abcdef";

fn queued_in(account: &str, client: &str) -> AdmitRequest {
    let spec = JobSpec {
        client: client.into(),
        priority: 0,
        body: "{}".into(),
        model: None,
        idempotency_key: None,
        cost: None,
    };
    let who = Some(ClientRef { account: account.into(), client: client.into() });
    AdmitRequest { enqueue: Some(spec), client: who, ..create(client) }
}

/// One account with generations of a fixed duration: every admitted or
/// dispatched create runs `duration` ms, then its webhook arrives and the
/// queue is pumped at once (as the object does).
struct Sim {
    l: Limits,
    st: MemAccount,
    now: u64,
    duration: u64,
    n: u64,
    /// generation → (client, ends at)
    running: BTreeMap<String, (String, u64)>,
    tickets: BTreeMap<TicketId, String>,
    completed: BTreeMap<String, u32>,
    /// When each client's jobs started, with when they were asked for.
    started: Vec<(String, u64, u64)>,
    asked: BTreeMap<TicketId, u64>,
}

impl Sim {
    fn new(l: Limits, duration: u64) -> Self {
        Sim {
            l,
            st: MemAccount::default(),
            now: 1_000,
            duration,
            n: 0,
            running: BTreeMap::new(),
            tickets: BTreeMap::new(),
            completed: BTreeMap::new(),
            started: Vec::new(),
            asked: BTreeMap::new(),
        }
    }

    fn start(&mut self, client: &str, permit: PermitId, asked: u64) {
        self.n += 1;
        let g = format!("g{}", self.n);
        self.st.apply(&self.l, self.now, 0.5, Command::Bind { permit, generation: g.clone().into(), replay: None });
        self.running.insert(g, (client.to_owned(), self.now + self.duration));
        self.started.push((client.to_owned(), asked, self.now));
    }

    fn submit(&mut self, req: AdmitRequest) -> Reply {
        let client = req.client.clone().unwrap().client;
        let reply = self.st.apply(&self.l, self.now, 0.5, Command::Admit(req));
        match &reply {
            Reply::Admitted(a) => self.start(&client, a.permit.unwrap(), self.now),
            Reply::Queued(t) => {
                self.tickets.insert(t.id.clone(), client.clone());
                self.asked.insert(t.id.clone(), self.now);
            }
            _ => {}
        }
        reply
    }

    fn pump(&mut self) {
        for _ in 0..10_000 {
            let Reply::Dispatch(job) = self.st.apply(&self.l, self.now, 0.5, Command::Dispatch) else { return };
            self.n += 1;
            let g = format!("g{}", self.n);
            let outcome = DispatchOutcome::Created { generation: g.clone().into() };
            let cmd = Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome };
            self.st.apply(&self.l, self.now, 0.5, cmd);
            let client = self.tickets[&job.ticket].clone();
            self.running.insert(g, (client.clone(), self.now + self.duration));
            self.started.push((client, self.asked[&job.ticket], self.now));
        }
    }

    /// Run until `until`, ending generations in time order.
    fn run_until(&mut self, until: u64) {
        self.pump();
        loop {
            let next = self.running.iter().map(|(g, (_, end))| (*end, g.clone())).min();
            let Some((end, g)) = next.filter(|(end, _)| *end <= until) else { break };
            self.now = end;
            let (client, _) = self.running.remove(&g).unwrap();
            *self.completed.entry(client).or_default() += 1;
            let cmd = Command::Webhook {
                generation: g.into(),
                status: governor_core::lifecycle::status::GenerationStatus::Completed,
                relay: None,
                output_ms: None,
            };
            self.st.apply(&self.l, self.now, 0.5, cmd);
            self.pump();
        }
        self.now = until;
    }

    fn in_use(&self, client: &str) -> usize {
        self.running.values().filter(|(c, _)| c == client).count()
    }
}

fn shares(completed: &BTreeMap<String, u32>, clients: &[&str]) -> Vec<f64> {
    let total: u32 = clients.iter().map(|c| completed.get(*c).copied().unwrap_or(0)).sum();
    clients.iter().map(|c| f64::from(completed.get(*c).copied().unwrap_or(0)) / f64::from(total.max(1))).collect()
}

const WEIGHTS: &str = r#"{"acme":{"one":{"weight":1},"two":{"weight":2},"four":{"weight":4}}}"#;

#[test]
fn weights_one_two_four_share_a_cap_of_seven() {
    let mut sim = Sim::new(limits(7, WEIGHTS), 1_000);
    for _ in 0..300 {
        for c in ["one", "two", "four"] {
            sim.submit(queued(c));
        }
    }
    sim.run_until(1_000 + 30 * 1_000);
    let got = shares(&sim.completed, &["one", "two", "four"]);
    for (g, want) in got.iter().zip([1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]) {
        assert!((g - want).abs() <= 0.05 * want, "shares {got:?}");
    }
    assert_eq!((sim.in_use("one"), sim.in_use("two"), sim.in_use("four")), (1, 2, 4));
}

/// Pass-through mode: the account is one Sync key's object and its clients
/// are named by `X-Governor-Client`: the header `one` (or `h-one`, the name
/// the governor shows: the same client) is the client `h-one`, and it takes
/// the `CLIENT_LIMITS` entry written either way (`h-one` first, then `one`),
/// here under `*` as an operator writes it for every key. Weights 1:2:4
/// then take 1/7, 2/7, 4/7 of a cap of 7.
#[test]
fn pass_through_header_clients_share_by_the_client_limits_entries_of_their_names() {
    use governor_core::shares::client::header_client;
    let l = limits(7, r#"{"*":{"one":{"weight":1},"two":{"weight":2},"h-four":{"weight":4},"h-two":{"reserved":1}}}"#);
    for (header, client, weight) in [
        ("one", "h-one", 1),
        ("h-one", "h-one", 1),
        ("two", "h-two", 2),
        ("h-two", "h-two", 2),
        ("four", "h-four", 4),
        ("h-four", "h-four", 4),
    ] {
        let name = header_client(header).unwrap();
        assert_eq!(name, client, "{header}");
        assert_eq!(l.clients.resolve(PASS_ACCOUNT, &name).weight, Some(weight), "{header}");
    }
    // Field by field: `h-two`'s own entry and `two`'s both count.
    assert_eq!(l.clients.resolve(PASS_ACCOUNT, "h-two").reserved, Some(1));
    let mut sim = Sim::new(l, 1_000);
    for _ in 0..300 {
        for header in ["one", "h-two", "four"] {
            sim.submit(queued_in(PASS_ACCOUNT, &header_client(header).unwrap()));
        }
    }
    sim.run_until(1_000 + 30 * 1_000);
    let got = shares(&sim.completed, &["h-one", "h-two", "h-four"]);
    for (g, want) in got.iter().zip([1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]) {
        assert!((g - want).abs() <= 0.05 * want, "shares {got:?}");
    }
    assert_eq!((sim.in_use("h-one"), sim.in_use("h-two"), sim.in_use("h-four")), (1, 2, 4));
}

#[test]
fn an_idle_clients_share_is_split_in_the_others_ratio() {
    let mut sim = Sim::new(limits(7, WEIGHTS), 1_000);
    for _ in 0..300 {
        for c in ["one", "two"] {
            sim.submit(queued(c));
        }
    }
    sim.run_until(1_000 + 30 * 1_000);
    let got = shares(&sim.completed, &["one", "two"]);
    for (g, want) in got.iter().zip([1.0 / 3.0, 2.0 / 3.0]) {
        assert!((g - want).abs() <= 0.05 * want, "shares {got:?}");
    }
    // Never over the account's cap.
    assert!(sim.st.state.permits.in_use() <= 7);
}

#[test]
fn a_reserved_client_gets_the_next_permits_that_free() {
    let l = limits(7, r#"{"acme":{"vip":{"reserved":2},"greedy":{"weight":100}}}"#);
    let mut sim = Sim::new(l, 10_000);
    for _ in 0..200 {
        sim.submit(queued("greedy"));
    }
    sim.run_until(3_000);
    assert_eq!(sim.in_use("greedy"), 7);
    // Generations of the greedy client end one by one from here.
    sim.run_until(10_500);
    let asked = sim.now;
    sim.submit(queued("vip"));
    sim.submit(queued("vip"));
    sim.run_until(asked + 10_000);
    let vip: Vec<u64> = sim.started.iter().filter(|(c, _, _)| c == "vip").map(|(_, a, s)| s - a).collect();
    assert_eq!(vip.len(), 2);
    assert!(vip.iter().all(|w| *w <= 10_000), "vip waits {vip:?}");
    assert_eq!(sim.in_use("vip"), 2);
}

#[test]
fn a_light_client_waits_at_most_about_one_slot_behind_a_greedy_one() {
    let mut sim = Sim::new(limits(3, "{}"), 3_000);
    for _ in 0..200 {
        sim.submit(queued("greedy"));
    }
    let mut t = 1_000;
    for _ in 0..10 {
        t += 2_500;
        sim.run_until(t);
        sim.submit(queued("light"));
    }
    sim.run_until(t + 10_000);
    let waits: Vec<u64> = sim.started.iter().filter(|(c, _, _)| c == "light").map(|(_, a, s)| s - a).collect();
    assert_eq!(waits.len(), 10);
    assert!(waits.iter().all(|w| *w <= 3_000), "light waits {waits:?}");
}

#[test]
fn a_clients_own_concurrency_is_its_own_refusal_and_lends_nothing_it_cannot_use() {
    let l = limits(4, r#"{"acme":{"capped":{"concurrency":1}}}"#);
    let mut sim = Sim::new(l, 10_000);
    assert!(matches!(sim.submit(create("capped")), Reply::Admitted(_)));
    let Reply::Rejected(r) = sim.submit(create("capped")) else { panic!("a second permit for a capped client") };
    assert_eq!((r.policy.as_str(), r.limit), ("client_concurrency", 1));
    assert!(r.retry_after_ms > 0);
    // Its queued work does not hold back another client's.
    for _ in 0..5 {
        sim.submit(queued("capped"));
    }
    assert!(matches!(sim.submit(create("other")), Reply::Admitted(_)));
    sim.run_until(2_000);
    assert_eq!(sim.in_use("capped"), 1);
}

#[test]
fn a_clients_own_rate_binds_before_the_accounts_and_says_so() {
    let l = limits(100, r#"{"*":{"*":{"generatePerMinute":2}}}"#);
    let mut sim = Sim::new(l, 10);
    for _ in 0..2 {
        assert!(matches!(sim.submit(create("a")), Reply::Admitted(_)));
    }
    let Reply::Rejected(r) = sim.submit(create("a")) else { panic!("over the client's rate") };
    assert_eq!((r.policy.as_str(), r.limit), ("client_generate", 2));
    assert!(r.retry_after_ms > 50_000 && r.retry_after_ms <= 60_000, "{}", r.retry_after_ms);
    // Another client has its own budget.
    assert!(matches!(sim.submit(create("b")), Reply::Admitted(_)));
    // It survives a restart.
    sim.st.restart(&sim.l);
    assert!(matches!(sim.submit(create("a")), Reply::Rejected(_)));
}

#[test]
fn held_requests_follow_the_shares_too() {
    let l = limits(1, "{}");
    let mut sim = Sim::new(l, 1_000);
    for _ in 0..20 {
        sim.submit(queued("greedy"));
    }
    let hold = |ticket| AdmitRequest { hold: Some(Hold { ticket, remaining_ms: 10_000, calls: 1 }), ..create("light") };
    let Reply::Rejected(r) = sim.submit(hold(None)) else { panic!() };
    let ticket = r.hold.expect("held");
    // The permit frees: the queue does not take it, the held light request does.
    sim.run_until(2_000);
    assert!(matches!(sim.submit(hold(Some(ticket))), Reply::Admitted(_)));
}

#[test]
fn status_lists_clients_with_their_limits_sources_and_work() {
    let mut sim = Sim::new(limits(7, WEIGHTS), 1_000);
    for _ in 0..10 {
        sim.submit(queued("four"));
    }
    sim.run_until(1_500);
    let Reply::Status(s) = sim.st.apply(&sim.l, sim.now, 0.5, Command::Status) else { panic!() };
    let four = s.clients.iter().find(|c| c.client == "four").unwrap();
    assert_eq!((four.weight, four.in_use, four.queued), (4, 7, 3));
    assert_eq!(four.target_share, 1.0);
    let one = s.clients.iter().find(|c| c.client == "one").unwrap();
    assert_eq!((one.in_use, one.target_share), (0, 0.0));
    let json = serde_json::to_value(&s.clients).unwrap();
    assert_eq!(json[0]["sources"]["weight"], "var");
    assert_eq!(json[0]["sources"]["concurrency"], "default");
}

/// Queued and held work counts toward its client's usage in status: a
/// client holding no permit but with jobs queued and a request held in
/// line uses the account as much as one running that many.
#[test]
fn queued_and_held_work_counts_toward_its_clients_usage_in_status() {
    let mut sim = Sim::new(limits(2, "{}"), 1_000);
    for _ in 0..2 {
        sim.submit(create("runner"));
    }
    for _ in 0..2 {
        sim.submit(queued("waiter"));
    }
    let hold = AdmitRequest { hold: Some(Hold { ticket: None, remaining_ms: 10_000, calls: 1 }), ..create("waiter") };
    let Reply::Rejected(r) = sim.submit(hold) else { panic!("held") };
    assert!(r.hold.is_some(), "held in line");
    let Reply::Status(s) = sim.st.apply(&sim.l, sim.now, 0.5, Command::Status) else { panic!() };
    let view = |c: &str| s.clients.iter().find(|v| v.client == c).unwrap().clone();
    let (runner, waiter) = (view("runner"), view("waiter"));
    assert_eq!((runner.in_use, runner.usage), (2, 2));
    assert_eq!((waiter.in_use, waiter.queued, waiter.held, waiter.usage), (0, 2, 1, 3));
    assert!((waiter.usage_share - 0.6).abs() < 1e-9 && (runner.usage_share - 0.4).abs() < 1e-9);
    let json = serde_json::to_value(&waiter).unwrap();
    assert_eq!((json["usage"].as_u64(), json["usageShare"].as_f64()), (Some(3), Some(0.6)));
}

#[test]
fn operator_overrides_per_client_win_over_the_var_and_show_their_source() {
    use governor_core::operations::admin::AdminCommand;
    let mut sim = Sim::new(limits(7, WEIGHTS), 1_000);
    sim.submit(create("one"));
    let set = |body: Option<&str>, client: &str| {
        Command::Admin(AdminCommand::ClientLimits { client: client.into(), body: body.map(str::to_owned) })
    };
    let r = sim.st.apply(&sim.l, sim.now, 0.5, set(Some(r#"{"weight":9,"concurrency":1}"#), "one"));
    let Reply::Admin(governor_core::operations::admin::AdminReply::Client { client }) = r else { panic!("{r:?}") };
    assert_eq!((client.weight, client.concurrency, client.reserved), (9, Some(1), 0));
    let json = serde_json::to_value(&client).unwrap();
    assert_eq!(
        (json["sources"]["weight"].as_str(), json["sources"]["reserved"].as_str()),
        (Some("override"), Some("default"))
    );
    // The override binds the next decision, and survives a restart.
    sim.st.restart(&sim.l);
    let Reply::Rejected(r) = sim.submit(create("one")) else { panic!("over the overridden concurrency") };
    assert_eq!(r.policy, "client_concurrency");
    // DELETE: back to the var.
    let Reply::Admin(governor_core::operations::admin::AdminReply::Client { client }) =
        sim.st.apply(&sim.l, sim.now, 0.5, set(None, "one"))
    else {
        panic!()
    };
    assert_eq!((client.weight, client.concurrency), (1, None));
    // Hostile input: a clear 4xx that quotes nothing.
    for (body, name) in [
        (Some(r#"{"weight":0}"#), "one"),
        (Some(r#"{"ck-secret-0123456789":1}"#), "one"),
        (Some("not json"), "one"),
        (Some(r#"{"weight":1}"#), "bad name"),
    ] {
        let r = sim.st.apply(&sim.l, sim.now, 0.5, set(body, name));
        let Reply::Refused(governor_core::wire::contract::Refusal::Invalid(m)) = r else { panic!("{r:?}") };
        assert!(!m.contains("secret"), "{m}");
    }
}

#[test]
fn metrics_carry_a_series_per_client() {
    let mut sim = Sim::new(limits(7, WEIGHTS), 10_000);
    for _ in 0..10 {
        sim.submit(queued("four"));
    }
    sim.submit(queued("one"));
    let Reply::Metrics(m) =
        sim.st.apply(&sim.l, sim.now, 0.5, Command::Admin(governor_core::operations::admin::AdminCommand::Metrics))
    else {
        panic!()
    };
    let text = governor_core::operations::prometheus::render(&[("a-acme".to_owned(), *m)]);
    for line in [
        r#"sync_governor_client_permits_in_use{account="a-acme",client="four"} 7"#,
        r#"sync_governor_client_queued_jobs{account="a-acme",client="four"} 3"#,
        r#"sync_governor_client_queued_jobs{account="a-acme",client="one"} 1"#,
        r#"sync_governor_client_weight{account="a-acme",client="four"} 4"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// Issue 19 finding 7 for a client's own rate logs: a stored stamp far in
/// the future (a migration, a hostile row) is clamped on load like the
/// account's, so it fills the client's window for one span at most, and
/// the row is moved in the table too (a second restart reads it clamped).
#[test]
fn a_clients_stamps_in_the_future_are_clamped_on_load() {
    use governor_core::storage::store::Write;
    const Y2100: u64 = 4_102_444_800_000;
    let now = 1_000_000_000_000; // 2001
    let l = limits(100, r#"{"*":{"*":{"generatePerMinute":1}}}"#);
    let mut st = MemAccount::default();
    st.apply(&l, now, 0.5, Command::Admit(create("a")));
    st.store.write(&[Write::Admission { class: "generate@b".into(), at: Y2100 }]);
    st.restart(&l);
    let Reply::Rejected(r) = st.apply(&l, now + 1, 0.5, Command::Admit(create("b"))) else {
        panic!("the clamped stamp still counts for one span")
    };
    assert_eq!(r.policy, "client_generate");
    assert!(r.retry_after_ms <= 60_000, "a stamp in 2100 fills b's window for {} days", r.retry_after_ms / 86_400_000);
    st.restart(&l);
    let later = now + 60_000 + 2;
    assert!(matches!(st.apply(&l, later, 0.5, Command::Admit(create("b"))), Reply::Admitted(_)), "b passes again");
}

/// Ticket positions follow the order the dispatcher serves, not
/// round-robin: with weights 1:2:4, queued while the account is paused,
/// each ticket's position (its view, and the admin list's) is the place its
/// job takes when the account resumes and the dispatcher sends them.
#[test]
fn ticket_positions_are_the_order_the_dispatcher_serves() {
    use governor_core::operations::admin::{AdminCommand, AdminReply};
    let mut sim = Sim::new(limits(21, WEIGHTS), 1_000_000);
    let pause = Command::Admin(AdminCommand::Pause { body: String::new() });
    assert!(matches!(sim.st.apply(&sim.l, sim.now, 0.5, pause), Reply::Admin(_)));
    for _ in 0..7 {
        for c in ["one", "two", "four"] {
            sim.submit(queued(c));
        }
    }
    let mut by_position: Vec<(u32, TicketId)> = sim
        .tickets
        .keys()
        .map(|t| {
            let Reply::Ticket(v) =
                sim.st.apply(&sim.l, sim.now, 0.5, Command::Ticket { ticket: t.clone(), client: None })
            else {
                panic!("ticket {t}")
            };
            (v.position.expect("queued"), t.clone())
        })
        .collect();
    by_position.sort();
    let positions: Vec<u32> = by_position.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (0..21).collect::<Vec<u32>>(), "each place once");
    let Reply::Admin(AdminReply::Jobs(jobs)) = sim.st.apply(&sim.l, sim.now, 0.5, Command::Admin(AdminCommand::Queue))
    else {
        panic!("the admin list")
    };
    let listed: Vec<&str> = jobs.jobs.iter().map(|j| j.ticket.as_str()).collect();
    let expected: Vec<&str> = by_position.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(listed, expected, "the admin list is in line order");
    assert_eq!(jobs.jobs.iter().map(|j| j.position.unwrap()).collect::<Vec<_>>(), positions);
    // Resume: the dispatcher sends them (nothing ends meanwhile), in its order.
    sim.st.apply(&sim.l, sim.now, 0.5, Command::Admin(AdminCommand::Resume));
    let mut sent = Vec::new();
    for _ in 0..21 {
        let Reply::Dispatch(job) = sim.st.apply(&sim.l, sim.now, 0.5, Command::Dispatch) else { panic!("dispatch") };
        let outcome = DispatchOutcome::Created { generation: format!("g-{}", job.ticket).into() };
        sim.st.apply(
            &sim.l,
            sim.now,
            0.5,
            Command::Dispatched { ticket: job.ticket.clone(), permit: job.permit, outcome },
        );
        sent.push(job.ticket.clone());
    }
    assert_eq!(sent, expected, "positions promised the order the dispatcher served");
    // Not round-robin: the heavier client's jobs are ahead.
    let first7: Vec<&str> = sent[..7].iter().map(|t| sim.tickets[t].as_str()).collect();
    assert_eq!(first7.iter().filter(|c| **c == "four").count(), 4, "{first7:?}");
}
