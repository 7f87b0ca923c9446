//! The costs block of the account's status: the account's budgets and what
//! they have consumed, spend per client in the current UTC day and month,
//! and the ledger's size against its bounds. The view types only: they
//! are built by [`crate::budget::costs::view`].

use serde::Serialize;

use crate::budget::Period;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    pub period: Period,
    pub limit_usd: f64,
    /// Where the limit came from: `var` (`BUDGET_USD_PER_DAY` /
    /// `_PER_MONTH`) or `override` (`PUT .../admin/accounts/{account}/budget`).
    pub source: BudgetSource,
    /// Settled in the period (what Sync reported).
    pub settled_usd: f64,
    /// Reserved by jobs still running (their estimates).
    pub reserved_usd: f64,
    pub remaining_usd: f64,
    /// RFC 3339 UTC.
    pub renews_at: String,
}

/// Where an account budget's limit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    Var,
    Override,
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
