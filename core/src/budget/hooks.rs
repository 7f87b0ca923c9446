//! Where the account calls its costs part: the budget check and the
//! reservation at admission (the same turn as the permit), and the ends
//! Sync reports. The rules are in [`crate::budget::costs`]; this is glue.

use crate::account::AccountState;
use crate::admission::request::Reason;
use crate::budget::costs::{CostAsk, CostRefusal};
use crate::budget::estimate::CostRequest;
use crate::budget::Estimate;
use crate::config::limits::Limits;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::Observed;
use crate::Ms;

/// A cost refusal as the admission's terms: reason, policy name, when.
pub struct CostBlock {
    pub reason: Reason,
    pub policy: String,
    pub retry_at: Ms,
}

/// How long a create whose cost is unknown is told to wait (Sync's
/// estimate may answer again, or an operator adds a price).
pub const UNKNOWN_RETRY_MS: Ms = 60_000;

impl AccountState {
    /// What the create asks of the costs part. The client's budgets are the
    /// ones in force: the operator's override of that client
    /// (`PUT .../clients/{client}/limits`) where set, else what the Worker
    /// read from `CLIENT_LIMITS`.
    fn ask<'a>(&self, req: &'a CostRequest, model: Option<&'a str>) -> CostAsk<'a> {
        let o = self.shares.row.overrides.get(&req.client).copied().unwrap_or_default();
        let client_limits = crate::budget::BudgetLimits {
            day: o.usd_per_day.or(req.budgets.day),
            month: o.usd_per_month.or(req.budgets.month),
        };
        CostAsk { client: &req.client, model, sync_estimate: req.sync_estimate, client_limits }
    }
}

impl AccountState {
    /// May the create's estimate be reserved now? `Ok` carries the estimate.
    pub(crate) fn cost_check(
        &self,
        limits: &Limits,
        req: Option<&CostRequest>,
        model: Option<&str>,
        now: Ms,
    ) -> Result<Option<Estimate>, CostBlock> {
        let Some(req) = req else { return Ok(None) };
        match self.costs.check(&limits.costs, &self.ask(req, model), now) {
            Ok(e) => Ok(e),
            Err(CostRefusal::Exhausted(x)) => {
                let who = match &x.scope {
                    crate::budget::Scope::Account => "budget".to_owned(),
                    crate::budget::Scope::Client(_) => "client_budget".to_owned(),
                };
                Err(CostBlock {
                    reason: Reason::BudgetExhausted,
                    policy: format!("{who}.{}", x.period.name()),
                    retry_at: x.renews_at,
                })
            }
            Err(CostRefusal::Unknown) => {
                Err(CostBlock { reason: Reason::CostUnknown, policy: "cost".into(), retry_at: now + UNKNOWN_RETRY_MS })
            }
        }
    }

    /// The create was admitted with `permit`: open its ledger row and
    /// reserve its estimate (same turn as the permit).
    pub(crate) fn cost_admitted(
        &mut self,
        limits: &Limits,
        req: Option<&CostRequest>,
        model: Option<&str>,
        permit: PermitId,
        received: Ms,
        now: Ms,
    ) {
        let Some(req) = req else { return };
        let estimate = self.cost_check(limits, Some(req), model, now).ok().flatten();
        let row = self.costs.arrived(&req.client, model, req.key.clone(), received);
        self.costs.admitted(row, estimate, permit, now.saturating_sub(received), now);
    }

    /// Generations seen ending: settle their jobs.
    pub(crate) fn costs_saw(&mut self, limits: &Limits, ended: &[Observed], now: Ms) {
        for o in ended {
            self.costs.saw_end(&limits.costs, &o.id, &o.status, o.output_ms, now);
        }
    }
}
