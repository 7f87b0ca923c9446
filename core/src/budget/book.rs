//! The book: spend per scope (the account, each client) and UTC period
//! (day, month). Admission checks every budget that applies and reserves
//! the estimate in all of them in the same turn, or in none; a job's end
//! settles its reservation at what it cost (a failed job settles at 0).
//!
//! A job counts in the periods it was admitted in: a reservation carries
//! their starts, and settling one whose period has since renewed changes
//! nothing in the new period (the ledger keeps the job under its admission).
//!
//! Worst-case overshoot: every admission keeps `settled + reserved ≤ limit`
//! in each budget, so what a period finally spends is at most `limit + Σ
//! (actual − estimate)` over the jobs still in flight at its last
//! admission; with actual ≤ (1 + e) × estimate that is at most
//! `limit + e × reserved` ≤ `(1 + e) × limit` (and, the jobs in flight
//! being permits, ≤ `limit + e × concurrency × largest estimate`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::MicroUsd;
use crate::time::{day_start, month_start, next_month_start};
use crate::Ms;

/// Scopes tracked at most (the account and its clients).
pub const MAX_SCOPES: usize = 4_096;

/// A budget's period, renewed at midnight UTC (a month's on its first day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub const ALL: [Period; 2] = [Period::Day, Period::Month];

    pub fn start(self, now: Ms) -> Ms {
        match self {
            Period::Day => day_start(now),
            Period::Month => month_start(now),
        }
    }

    /// When the period holding `now` renews.
    pub fn renews_at(self, now: Ms) -> Ms {
        match self {
            Period::Day => day_start(now) + 86_400_000,
            Period::Month => next_month_start(now),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "usd_per_day",
            Period::Month => "usd_per_month",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// Whose budget.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Account,
    Client(String),
}

/// One scope's budgets (`None`: unlimited, spend still tracked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLimits {
    pub day: Option<MicroUsd>,
    pub month: Option<MicroUsd>,
}

impl BudgetLimits {
    pub fn of(&self, p: Period) -> Option<MicroUsd> {
        match p {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }

    pub fn is_set(&self) -> bool {
        self.day.is_some() || self.month.is_some()
    }
}

/// One budget's spend in the period that began at `period`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub period: Ms,
    pub settled: MicroUsd,
    pub reserved: MicroUsd,
}

impl Spend {
    pub fn total(&self) -> MicroUsd {
        self.settled.plus(self.reserved)
    }
}

/// What a job reserved, and in which periods (persisted with the job).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub cost: MicroUsd,
    pub day: Ms,
    pub month: Ms,
}

impl Reservation {
    fn period(&self, p: Period) -> Ms {
        match p {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }
}

/// The budget that refused: the one renewing last among those exhausted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exhausted {
    pub scope: Scope,
    pub period: Period,
    pub limit: MicroUsd,
    /// Settled plus reserved in the period.
    pub spent: MicroUsd,
    pub renews_at: Ms,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    scope: Scope,
    spend: [Spend; 2],
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Line>", into = "Vec<Line>")]
pub struct Book(BTreeMap<Scope, [Spend; 2]>);

impl From<Vec<Line>> for Book {
    fn from(lines: Vec<Line>) -> Book {
        Book(lines.into_iter().take(MAX_SCOPES).map(|l| (l.scope, l.spend)).collect())
    }
}

impl From<Book> for Vec<Line> {
    fn from(b: Book) -> Vec<Line> {
        b.0.into_iter().map(|(scope, spend)| Line { scope, spend }).collect()
    }
}

impl Book {
    /// The spend of `scope` in the `period` holding `now` (zero once renewed).
    pub fn spend(&self, scope: &Scope, period: Period, now: Ms) -> Spend {
        let start = period.start(now);
        match self.0.get(scope).map(|s| s[period.idx()]) {
            Some(s) if s.period == start => s,
            _ => Spend { period: start, ..Spend::default() },
        }
    }

    /// May `cost` be reserved in every budget of `budgets`? All of them
    /// are checked; the refusal names the one that renews last.
    pub fn check(&self, budgets: &[(Scope, BudgetLimits)], cost: MicroUsd, now: Ms) -> Result<(), Exhausted> {
        let mut worst: Option<Exhausted> = None;
        for (scope, limits) in budgets {
            let untracked = !self.0.contains_key(scope) && !self.has_room();
            for period in Period::ALL {
                let Some(limit) = limits.of(period) else { continue };
                let spent = self.spend(scope, period, now).total();
                if untracked || spent.plus(cost) > limit {
                    let renews_at = period.renews_at(now);
                    if worst.as_ref().is_none_or(|w| renews_at > w.renews_at) {
                        worst = Some(Exhausted { scope: scope.clone(), period, limit, spent, renews_at });
                    }
                }
            }
        }
        worst.map_or(Ok(()), Err)
    }

    fn has_room(&self) -> bool {
        self.0.len() < MAX_SCOPES
    }

    /// Makes room for a new scope: drops one with nothing reserved and
    /// nothing spent this month. False when every scope is busy.
    fn make_room(&mut self, now: Ms) -> bool {
        if self.has_room() {
            return true;
        }
        let month = Period::Month.start(now);
        let idle = self.0.iter().find(|(s, sp)| {
            **s != Scope::Account && sp.iter().all(|x| x.reserved == MicroUsd::ZERO) && sp[1].period != month
        });
        match idle.map(|(s, _)| s.clone()) {
            Some(s) => self.0.remove(&s).is_some(),
            None => false,
        }
    }

    /// Reserves `cost` in every scope of `scopes` (after a passing
    /// [`Book::check`], in the same turn). A scope the full book cannot
    /// track is skipped (only unbudgeted ones: `check` refuses the others).
    pub fn reserve(&mut self, scopes: &[Scope], cost: MicroUsd, now: Ms) -> Reservation {
        let r = Reservation { cost, day: Period::Day.start(now), month: Period::Month.start(now) };
        for scope in scopes {
            if !self.0.contains_key(scope) && !self.make_room(now) {
                continue;
            }
            let line = self.0.entry(scope.clone()).or_default();
            for period in Period::ALL {
                let s = &mut line[period.idx()];
                if s.period != r.period(period) {
                    *s = Spend { period: r.period(period), ..Spend::default() };
                }
                s.reserved = s.reserved.plus(cost);
            }
        }
        r
    }

    /// The job holding `r` ended costing `actual` (0 releases it).
    pub fn settle(&mut self, scopes: &[Scope], r: &Reservation, actual: MicroUsd) {
        for scope in scopes {
            let Some(line) = self.0.get_mut(scope) else { continue };
            for period in Period::ALL {
                let s = &mut line[period.idx()];
                if s.period == r.period(period) {
                    s.reserved = s.reserved.minus(r.cost);
                    s.settled = s.settled.plus(actual);
                }
            }
        }
    }

    /// Every scope's spend now (for status and metrics).
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> {
        self.0.keys()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
