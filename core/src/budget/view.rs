//! The costs block of the account's status: the account's budgets and what
//! they have consumed, spend per client in the current UTC day and month,
//! and the ledger's size against its bounds.

use serde::Serialize;

use crate::budget::costs::Costs;
use crate::budget::vars::CostConfig;
use crate::budget::{Period, Scope};
use crate::ledger::{MAX_BYTES, MAX_ROWS};
use crate::Ms;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    pub period: Period,
    pub limit_usd: f64,
    /// Settled in the period (what Sync reported).
    pub settled_usd: f64,
    /// Reserved by jobs still running (their estimates).
    pub reserved_usd: f64,
    pub remaining_usd: f64,
    /// RFC 3339 UTC.
    pub renews_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendView {
    pub client: String,
    pub day_usd: f64,
    pub month_usd: f64,
    pub reserved_usd: f64,
    /// Exact sums, in millionths of a USD.
    pub day_micro_usd: u64,
    pub month_micro_usd: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    pub rows: u64,
    pub max_rows: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub open: usize,
    pub dropped: u64,
    pub retention_days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostsView {
    /// The account's budgets in force (vars, or an operator's override).
    pub budgets: Vec<BudgetView>,
    /// The account's own spend (every client), then each client's.
    pub account: SpendView,
    pub clients: Vec<SpendView>,
    pub ledger: LedgerView,
    /// Models whose cost per job was learned from completed jobs.
    pub learned_models: usize,
}

fn spend(c: &Costs, scope: &Scope, name: &str, now: Ms) -> SpendView {
    let day = c.book.spend(scope, Period::Day, now);
    let month = c.book.spend(scope, Period::Month, now);
    SpendView {
        client: name.to_owned(),
        day_usd: day.total().usd(),
        month_usd: month.total().usd(),
        reserved_usd: month.reserved.usd(),
        day_micro_usd: day.total().0,
        month_micro_usd: month.total().0,
    }
}

pub fn view(c: &Costs, cfg: &CostConfig, now: Ms) -> CostsView {
    let limits = c.overrides.apply(cfg.account);
    let budgets = Period::ALL
        .into_iter()
        .filter_map(|p| {
            let limit = limits.of(p)?;
            let s = c.book.spend(&Scope::Account, p, now);
            Some(BudgetView {
                period: p,
                limit_usd: limit.usd(),
                settled_usd: s.settled.usd(),
                reserved_usd: s.reserved.usd(),
                remaining_usd: limit.minus(s.total()).usd(),
                renews_at: crate::time::rfc3339(p.renews_at(now)),
            })
        })
        .collect();
    let clients = c
        .book
        .scopes()
        .filter_map(|s| match s {
            Scope::Client(name) => Some(spend(c, s, name, now)),
            Scope::Account => None,
        })
        .collect();
    let t = c.ledger.totals;
    CostsView {
        budgets,
        account: spend(c, &Scope::Account, "*", now),
        clients,
        ledger: LedgerView {
            rows: t.rows,
            max_rows: MAX_ROWS,
            bytes: t.bytes,
            max_bytes: MAX_BYTES,
            open: c.ledger.open_rows().count(),
            dropped: t.dropped,
            retention_days: cfg.retention_days,
        },
        learned_models: c.learned.len(),
    }
}
