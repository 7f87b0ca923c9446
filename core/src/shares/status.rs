//! The shapes status, the admin API and the scrape show per client (types
//! only: built in [`super::view`]).

use serde::{Deserialize, Serialize};

/// Where a client's value of a field came from (for status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// `PUT /governor/v1/admin/accounts/{account}/clients/{client}/limits`.
    Override,
    /// The `CLIENT_LIMITS` var.
    Var,
    /// Not set: the default (weight 1, no reservation, no cap).
    Default,
}

/// Where each of a client's limits came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourcesView {
    pub weight: LimitSource,
    pub reserved: LimitSource,
    pub concurrency: LimitSource,
    pub generate_per_minute: LimitSource,
    pub requests_per_minute: LimitSource,
    pub usd_per_day: LimitSource,
    pub usd_per_month: LimitSource,
}

/// One client of the account in `GET /governor/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub client: String,
    pub weight: u32,
    pub reserved: u32,
    pub concurrency: Option<u32>,
    pub generate_per_minute: Option<u32>,
    pub requests_per_minute: Option<u32>,
    pub usd_per_day: Option<f64>,
    pub usd_per_month: Option<f64>,
    pub sources: SourcesView,
    /// Permits it holds now.
    pub in_use: u32,
    /// Its jobs waiting in the queue (QUEUED or SUBMITTING).
    pub queued: u32,
    /// Its requests held in line (`Prefer: wait`).
    pub held: u32,
    /// Its share of the account's permits now (`inUse / cap`).
    pub share: f64,
    /// The share its weight gives it among the clients with work now
    /// (0 when it has none: its share is lent).
    pub target_share: f64,
    /// Its permits, queued jobs and held requests together: queued and
    /// held work counts toward its client's usage.
    pub usage: u32,
    /// Its usage over every client's (0 when none has any).
    pub usage_share: f64,
    /// Left of its own generate budget in the window, if it has one.
    pub generate_remaining: Option<u32>,
}
