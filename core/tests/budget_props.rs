//! Reservation and settle arithmetic of the budget book, checked against a
//! plain model (proptest): the book's reserved and settled amounts are
//! exactly the sums of the jobs admitted in each period, no admission
//! leaves a budget over its limit, and what a period finally spends is
//! within the documented bound `limit + e × reserved-at-last-admission`
//! (≤ `(1 + e) × limit`) when actual ≤ (1 + e) × estimate.

use governor_core::budget::book::Spend;
use governor_core::budget::{Book, BudgetLimits, MicroUsd, Period, Reservation, Scope};
use governor_core::Ms;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Admit { client: u8, est: u64 },
    End { pick: usize, factor_permille: u64 },
    Fail { pick: usize },
    Advance { ms: u64 },
}

fn op(max_factor: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..3, 1u64..400_000).prop_map(|(client, est)| Op::Admit { client, est }),
        3 => (any::<usize>(), 0..=max_factor).prop_map(|(pick, factor_permille)| Op::End { pick, factor_permille }),
        1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => (0u64..30_000_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

struct Job {
    client: Scope,
    r: Reservation,
    open: bool,
    actual: MicroUsd,
}

const ACCOUNT_DAY: MicroUsd = MicroUsd(2_000_000);
const CLIENT_DAY: MicroUsd = MicroUsd(900_000);

fn budgets(client: &Scope) -> Vec<(Scope, BudgetLimits)> {
    vec![
        (Scope::Account, BudgetLimits { day: Some(ACCOUNT_DAY), month: Some(MicroUsd(20_000_000)) }),
        (client.clone(), BudgetLimits { day: Some(CLIENT_DAY), month: None }),
    ]
}

fn model_spend(jobs: &[Job], scope: &Scope, period: Period, now: Ms) -> Spend {
    let start = period.start(now);
    let mut s = Spend { period: start, ..Spend::default() };
    for j in jobs.iter().filter(|j| *scope == Scope::Account || j.client == *scope) {
        let p = if period == Period::Day { j.r.day } else { j.r.month };
        if p != start {
            continue;
        }
        if j.open {
            s.reserved = s.reserved.plus(j.r.cost);
        } else {
            s.settled = s.settled.plus(j.actual);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn book_matches_the_model_and_the_bound_holds(
        start in 1_780_000_000_000u64..1_800_000_000_000,
        error_permille in 0u64..500,
        ops in proptest::collection::vec(op(1_500), 1..120),
    ) {
        let e = error_permille;
        let mut book = Book::default();
        let mut jobs: Vec<Job> = Vec::new();
        let mut now = start;
        // Per (scope, day start): reserved right after the last admission.
        let mut last_reserved: std::collections::BTreeMap<(Scope, Ms), MicroUsd> = Default::default();
        for op in ops {
            match op {
                Op::Admit { client, est } => {
                    let scope = Scope::Client(format!("c{client}"));
                    let b = budgets(&scope);
                    let cost = MicroUsd(est);
                    if book.check(&b, cost, now).is_ok() {
                        let r = book.reserve(&[Scope::Account, scope.clone()], cost, now);
                        jobs.push(Job { client: scope.clone(), r, open: true, actual: MicroUsd::ZERO });
                        for (s, limits) in &b {
                            let day = book.spend(s, Period::Day, now);
                            prop_assert!(day.total() <= limits.day.unwrap(), "admission over the limit");
                            last_reserved.insert((s.clone(), day.period), day.reserved);
                        }
                    } else {
                        let err = book.check(&b, cost, now).unwrap_err();
                        prop_assert!(err.spent.plus(cost) > err.limit);
                        prop_assert!(err.renews_at > now);
                    }
                }
                Op::End { .. } | Op::Fail { .. } if !jobs.is_empty() => {
                    let (pick, factor_permille) = match op {
                        Op::End { pick, factor_permille } => (pick, factor_permille),
                        Op::Fail { pick } => (pick, 0),
                        _ => unreachable!(),
                    };
                    let failed = matches!(op, Op::Fail { .. });
                    let open: Vec<usize> = (0..jobs.len()).filter(|i| jobs[*i].open).collect();
                    if open.is_empty() { continue; }
                    let i = open[pick % open.len()];
                    // actual ≤ (1 + e) × estimate.
                    let f = if failed { 0 } else { factor_permille.min(1_000 + e) };
                    let actual = MicroUsd(jobs[i].r.cost.0 * f / 1_000);
                    book.settle(&[Scope::Account, jobs[i].client.clone()], &jobs[i].r, actual);
                    jobs[i].open = false;
                    jobs[i].actual = actual;
                }
                Op::Advance { ms } => now += ms,
                _ => {}
            }
            for scope in [Scope::Account, Scope::Client("c0".into()), Scope::Client("c1".into()), Scope::Client("c2".into())] {
                for period in Period::ALL {
                    prop_assert_eq!(book.spend(&scope, period, now), model_spend(&jobs, &scope, period, now));
                }
            }
        }
        // Every job ends; each day's final spend stays within the bound.
        for j in jobs.iter_mut().filter(|j| j.open) {
            let actual = MicroUsd(j.r.cost.0 * (1_000 + e) / 1_000);
            book.settle(&[Scope::Account, j.client.clone()], &j.r, actual);
            j.open = false;
            j.actual = actual;
        }
        for ((scope, day), reserved) in &last_reserved {
            let limit = if *scope == Scope::Account { ACCOUNT_DAY } else { CLIENT_DAY };
            let spent: u64 = jobs.iter().filter(|j| j.r.day == *day && (*scope == Scope::Account || j.client == *scope)).map(|j| j.actual.0).sum();
            let bound = limit.0 + reserved.0 * e / 1_000;
            prop_assert!(spent <= bound + 1, "{scope:?}: spent {spent} > bound {bound}");
            prop_assert!(spent <= limit.0 * (1_000 + e) / 1_000 + 1);
        }
    }
}

#[test]
fn renewal_and_refusal_times() {
    let mut book = Book::default();
    let now = governor_core::time::parse_rfc3339("2026-12-03T11:30:00Z").unwrap();
    let c = Scope::Client("mobile".into());
    let b = vec![(c.clone(), BudgetLimits { day: Some(MicroUsd(1_000_000)), month: Some(MicroUsd(1_500_000)) })];
    let r = book.reserve(&[Scope::Account, c.clone()], MicroUsd(900_000), now);
    let err = book.check(&b, MicroUsd(200_000), now).unwrap_err();
    assert_eq!(
        (err.period, governor_core::time::rfc3339(err.renews_at).as_str()),
        (Period::Day, "2026-12-04T00:00:00.000Z")
    );
    book.settle(&[Scope::Account, c.clone()], &r, MicroUsd(1_000_000));
    // The next day: the day budget renewed, the month's has 0.5 left.
    let tomorrow = now + 86_400_000;
    assert!(book.check(&b, MicroUsd(400_000), tomorrow).is_ok());
    let err = book.check(&b, MicroUsd(600_000), tomorrow).unwrap_err();
    assert_eq!(
        (err.period, governor_core::time::rfc3339(err.renews_at).as_str()),
        (Period::Month, "2027-01-01T00:00:00.000Z")
    );
    // A late settle of yesterday's job changes nothing today.
    let r2 = book.reserve(std::slice::from_ref(&c), MicroUsd(100_000), now);
    book.settle(std::slice::from_ref(&c), &r2, MicroUsd(100_000));
    assert_eq!(book.spend(&c, Period::Day, tomorrow).total(), MicroUsd::ZERO);
    // The book survives its JSON.
    let back: Book = serde_json::from_str(&serde_json::to_string(&book).unwrap()).unwrap();
    assert_eq!(back, book);
}
