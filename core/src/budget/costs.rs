//! The costs part of an account: the book, the learned costs and the
//! ledger, with the narrow hooks the account calls at admission, bind,
//! upstream 429 and each job's end. Every rule is here; the account only
//! calls the hooks in the turn the event happens.

use crate::budget::estimate::{choose, settle, Ending};
use crate::budget::learned::LearnedCosts;
use crate::budget::vars::{BudgetOverride, CostConfig};
use crate::budget::view::{BudgetSource, BudgetView, CostsView, LedgerView, SpendView};
use crate::budget::Period;
use crate::budget::{Book, BudgetLimits, CostSource, Estimate, Exhausted, MicroUsd, Scope};
use crate::ids::GenerationId;
use crate::ledger::{FinalStatus, Ledger};
use crate::ledger::{MAX_BYTES, MAX_ROWS};
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::Ms;

/// Why a create's cost cannot be admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CostRefusal {
    /// A budget cannot cover the estimate until it renews.
    Exhausted(Exhausted),
    /// A budget applies but nothing can estimate the job (no answer from
    /// Sync, nothing learned, no `PRICES` entry for the model).
    Unknown,
}

/// Does a create need Sync's estimate (a budget applies: the account's
/// vars or the client's)? The Worker then spends an `other` request on it.
/// An admin override of the account's budgets is the object's: a create
/// the Worker did not price this way is priced by what was learned or
/// `PRICES`.
pub fn wants_sync_estimate(cfg: &CostConfig, client: &BudgetLimits) -> bool {
    cfg.account.is_set() || client.is_set()
}

/// What the admission knows of a create, for its cost.
#[derive(Clone, Debug, Default)]
pub struct CostAsk<'a> {
    pub client: &'a str,
    pub model: Option<&'a str>,
    /// Sync's estimate, when the caller asked Sync and it answered.
    pub sync_estimate: Option<MicroUsd>,
    /// The client's own budgets (`CLIENT_LIMITS` usdPerDay / usdPerMonth).
    pub client_limits: BudgetLimits,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Costs {
    pub book: Book,
    pub learned: LearnedCosts,
    pub ledger: Ledger,
    /// The operator's override of the account's budgets (persisted).
    pub overrides: BudgetOverride,
}

impl Costs {
    pub fn restore(book: Book, learned: LearnedCosts, overrides: BudgetOverride, ledger: Ledger) -> Costs {
        Costs { book, learned, ledger, overrides }
    }

    /// A generation was seen ending (a webhook, a read, a lookup): settle
    /// its job at what Sync reported.
    pub fn saw_end(
        &mut self,
        cfg: &CostConfig,
        generation: &GenerationId,
        status: &GenerationStatus,
        output_ms: Option<u64>,
        now: Ms,
    ) {
        if !status.is_terminal() {
            return;
        }
        if let Some(row) = self.ledger.by_generation(generation) {
            let seconds = output_ms.map(|ms| ms as f64 / 1000.0);
            self.ended(cfg, row, FinalStatus::Sync(status.clone()), seconds, now);
        }
    }

    /// A permit ended with its job's row still open (Sync refused the
    /// create, a 429, an expiry, a reconciliation that found it gone, an
    /// operator's release): a create never bound and never in doubt was
    /// not made (released); otherwise the outcome is unknown and the job
    /// counts at its estimate.
    pub fn permit_gone(&mut self, cfg: &CostConfig, permit: &crate::lifecycle::permits::Permit, now: Ms) {
        let Some(row) = self.ledger.by_permit(permit.id) else { return };
        let status = if permit.generation().is_none() && permit.unknown_since.is_none() {
            FinalStatus::Refused
        } else {
            FinalStatus::Unknown
        };
        self.ended(cfg, row, status, None, now);
    }

    /// A page of the ledger (the query was checked by the Worker; one that
    /// does not parse here is answered as an empty page).
    pub fn page(
        &self,
        store: &dyn crate::ledger::LedgerStore,
        query: &str,
        client: Option<&str>,
    ) -> crate::storage::row::StoreResult<crate::ledger::LedgerPage> {
        let q = crate::ledger::LedgerQuery::parse(query, client)
            .unwrap_or(crate::ledger::LedgerQuery { client: Some(String::new()), ..Default::default() });
        let (rows, next) = crate::ledger::read_page(store, &q)?;
        Ok(crate::ledger::LedgerPage {
            content_type: q.format.content_type().to_owned(),
            body: crate::ledger::encode::page(&rows, next, q.format),
            next_cursor: next.map(|n| n.to_string()),
        })
    }

    /// The budgets a create of `ask.client` spends from.
    pub fn budgets(&self, cfg: &CostConfig, ask: &CostAsk) -> Vec<(Scope, BudgetLimits)> {
        let mut b = Vec::with_capacity(2);
        let account = self.overrides.apply(cfg.account);
        if account.is_set() {
            b.push((Scope::Account, account));
        }
        if ask.client_limits.is_set() {
            b.push((Scope::Client(ask.client.to_owned()), ask.client_limits));
        }
        b
    }

    /// The estimate, and whether every budget can cover it now (no change).
    pub fn check(&self, cfg: &CostConfig, ask: &CostAsk, now: Ms) -> Result<Option<Estimate>, CostRefusal> {
        let estimate = choose(ask.sync_estimate, &self.learned, &cfg.prices, ask.model.unwrap_or(""));
        let budgets = self.budgets(cfg, ask);
        if budgets.is_empty() {
            return Ok(estimate);
        }
        let Some(e) = estimate else { return Err(CostRefusal::Unknown) };
        self.book.check(&budgets, e.cost, now).map_err(CostRefusal::Exhausted)?;
        Ok(Some(e))
    }

    fn scopes(client: &str) -> [Scope; 2] {
        [Scope::Account, Scope::Client(client.to_owned())]
    }

    /// A job's row opens when it arrives (a direct create at admission, a
    /// queued one when it is queued).
    pub fn arrived(&mut self, client: &str, model: Option<&str>, key: Option<String>, now: Ms) -> u64 {
        self.ledger.open(client, now, key, model.map(str::to_owned))
    }

    /// Admission (the same turn as the permit): reserve the estimate in
    /// the account's and the client's books, and record it.
    pub fn admitted(&mut self, row: u64, estimate: Option<Estimate>, permit: PermitId, waited_ms: Ms, now: Ms) {
        let Some(client) = self.ledger.get(row).map(|r| r.client.clone()) else { return };
        let reservation = estimate.map(|e| self.book.reserve(&Self::scopes(&client), e.cost, now));
        self.ledger.update(row, |r| {
            r.admitted = Some(now);
            r.estimate = estimate;
            r.reservation = reservation;
            r.permit = Some(permit);
            r.waited_ms = waited_ms;
        });
    }

    /// Sync created the generation.
    pub fn bound(&mut self, permit: PermitId, generation: &GenerationId, now: Ms) {
        if let Some(id) = self.ledger.by_permit(permit) {
            self.ledger.update(id, |r| {
                r.generation = Some(generation.to_owned());
                r.submitted = Some(now);
            });
        }
    }

    /// Sync answered 429 to this job's create.
    pub fn upstream_429(&mut self, permit: PermitId) {
        if let Some(id) = self.ledger.by_permit(permit) {
            self.ledger.update(id, |r| r.upstream_429s = r.upstream_429s.saturating_add(1));
        }
    }

    /// The row of a job by its permit, else by its generation.
    pub fn row_of(&self, permit: Option<PermitId>, generation: Option<&GenerationId>) -> Option<u64> {
        permit.and_then(|p| self.ledger.by_permit(p)).or_else(|| generation.and_then(|g| self.ledger.by_generation(g)))
    }

    /// The job ended: settle its reservation at what Sync reports, learn
    /// from a completed job, close its row. Returns what it settled at.
    pub fn ended(
        &mut self,
        cfg: &CostConfig,
        row: u64,
        status: FinalStatus,
        output_seconds: Option<f64>,
        now: Ms,
    ) -> Option<MicroUsd> {
        let r = self.ledger.get(row)?.clone();
        let model = r.model.clone().unwrap_or_default();
        let estimate = r.estimate.map_or(MicroUsd::ZERO, |e| e.cost);
        let (cost, from) = match &status {
            FinalStatus::Sync(GenerationStatus::Completed) => {
                settle(Ending::Completed { output_seconds }, &model, &cfg.prices, estimate)
            }
            // The governor does not know whether it ran: it counts as estimated.
            FinalStatus::Unknown => (estimate, CostSource::Estimate),
            _ => (MicroUsd::ZERO, CostSource::Released),
        };
        if let Some(res) = r.reservation {
            self.book.settle(&Self::scopes(&r.client), &res, cost);
        }
        if from == CostSource::Prices {
            self.learned.learn(&model, cost, now);
        }
        let output_ms = output_seconds.filter(|s| s.is_finite() && *s >= 0.0).map(|s| (s * 1000.0).round() as u64);
        let settled = r.reservation.map(|_| cost).or((from == CostSource::Prices).then_some(cost));
        self.ledger.close(row, now, |r| {
            r.status = Some(status);
            r.output_ms = output_ms;
            r.settled = settled;
            r.settled_from = settled.map(|_| from);
        });
        settled
    }
}

// The costs block of the status view ([`crate::budget::view`]).

fn spend_view(c: &Costs, scope: &Scope, name: &str, now: Ms) -> SpendView {
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
            let overridden = match p {
                Period::Day => c.overrides.usd_per_day.is_some(),
                Period::Month => c.overrides.usd_per_month.is_some(),
            };
            Some(BudgetView {
                period: p,
                limit_usd: limit.usd(),
                source: if overridden { BudgetSource::Override } else { BudgetSource::Var },
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
            Scope::Client(name) => Some(spend_view(c, s, name, now)),
            Scope::Account => None,
        })
        .collect();
    let t = c.ledger.totals;
    CostsView {
        budgets,
        account: spend_view(c, &Scope::Account, "*", now),
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

#[cfg(test)]
mod tests;
