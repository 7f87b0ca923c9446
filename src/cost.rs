//! A create's cost, as the Worker gathers it before admission: its
//! client's budgets (`CLIENT_LIMITS`) and, when a budget applies (the
//! core's rule, [`governor_core::budget::costs::wants_sync_estimate`]),
//! Sync's own estimate — an `other` request, admitted like any other
//! before it is sent. The account decides with it in the turn that takes
//! the permit; nothing here decides.

use governor_core::admission::request::AdmitRequest;
use governor_core::auth::keys::Caller;
use governor_core::auth::secret::Secret;
use governor_core::budget::estimate::CostRequest;
use governor_core::budget::{estimate::parse_sync_estimate, BudgetLimits};
use governor_core::config::Config;
use governor_core::rates::class::RateClass;
use governor_core::wire::calls::{Admit, AdmitReply};
use worker::Env;

use crate::generate::Prepared;

/// The client's budgets from `CLIENT_LIMITS`.
pub fn client_budgets(config: &Config, caller: &Caller, client: &str) -> BudgetLimits {
    let l = config.limits.clients.resolve(&caller.account, client);
    BudgetLimits { day: l.usd_per_day, month: l.usd_per_month }
}

/// The cost part of `admit` (a create), and whether asking Sync's estimate
/// took the account's directory announcement (the estimate's `other`
/// admission was the first in a while): the caller announces then, so an
/// account that only creates under a budget is still listed and scraped.
pub async fn request(
    env: &Env,
    config: &Config,
    caller: &Caller,
    key: Option<&Secret>,
    client: String,
    prepared: Option<&Prepared>,
    admit: &AdmitRequest,
) -> (CostRequest, bool) {
    let budgets = client_budgets(config, caller, &client);
    let key_name =
        admit.ticket_id.as_ref().map(|t| t.to_string()).or_else(|| admit.idempotency.as_ref().map(|k| k.key.clone()));
    let mut cost = CostRequest { client, sync_estimate: None, budgets, key: key_name };
    let wants = governor_core::budget::costs::wants_sync_estimate(&config.limits.costs, &budgets);
    let mut announce = false;
    if let (true, Some(p)) = (wants, prepared) {
        let (estimate, announced) = sync_estimate(env, config, caller, key, p).await;
        (cost.sync_estimate, announce) = (estimate, announced);
    }
    (cost, announce)
}

/// Sync's estimate, if the account admits the `other` request it costs
/// and Sync answers in time; `None` otherwise (the core falls back).
async fn sync_estimate(
    env: &Env,
    config: &Config,
    caller: &Caller,
    key: Option<&Secret>,
    p: &Prepared,
) -> (Option<governor_core::budget::MicroUsd>, bool) {
    let ask = AdmitRequest { class: RateClass::Other, ..AdmitRequest::default() };
    let announce = match crate::account_client::call(env, &caller.account, key, &Admit(&ask)).await {
        Ok(AdmitReply::Admitted(a)) => a.announce,
        // Not admitted now (or no answer): no estimate, the core falls back.
        Ok(AdmitReply::Rejected(_) | AdmitReply::Queued(_) | AdmitReply::Replay(_) | AdmitReply::Refused(_))
        | Err(_) => return (None, false),
    };
    let Ok(body) = std::str::from_utf8(&p.bytes) else { return (None, announce) };
    let answer =
        crate::upstream::analyze_cost(&config.api_base, &caller.upstream_key, body, config.timeouts.read_ms).await;
    (answer.as_deref().and_then(parse_sync_estimate), announce)
}
