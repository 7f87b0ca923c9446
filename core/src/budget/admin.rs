//! An operator's override of the account's budgets
//! (`PUT|DELETE /governor/v1/admin/accounts/{account}/budget`): the body is
//! `{"usdPerDay": n, "usdPerMonth": n}`, each optional (`null` or absent: the
//! var, `BUDGET_USD_PER_DAY` / `BUDGET_USD_PER_MONTH`); set fields win from
//! the next decision on, `DELETE` goes back to the vars. Persisted with the
//! account (meta `cost_overrides`). The answer is the costs block of the
//! status (the budgets in force, spend, the ledger's size).

use crate::account::AccountState;
use crate::budget::vars::BudgetOverride;
use crate::budget::MicroUsd;
use crate::config::limits::Limits;
use crate::operations::admin::AdminReply;
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

const EXPECTED: &str = "expected {\"usdPerDay\", \"usdPerMonth\"} (USD, each optional; null: the var)";

/// Largest override body read.
const MAX_BODY: usize = 1_024;

impl AccountState {
    pub(crate) fn budget_admin(&mut self, limits: &Limits, now: Ms, body: Option<&str>) -> Reply {
        let invalid = |m: &str| Reply::Refused(Refusal::Invalid(m.to_owned()));
        let o = match body {
            None => BudgetOverride::default(),
            Some(b) if b.len() > MAX_BODY => return invalid("the body is over 1024 bytes"),
            // An object only (serde would read a struct from an array too).
            Some(b) if !b.trim_start().starts_with('{') => return invalid(EXPECTED),
            Some(b) => match crate::wire::json::from_str::<BudgetOverride>(b) {
                Ok(o) => o,
                Err(_) => return invalid(EXPECTED),
            },
        };
        if [o.usd_per_day, o.usd_per_month].into_iter().flatten().any(|usd| MicroUsd::from_usd(usd).is_none()) {
            return invalid("a budget is a number of USD from 0 to 1e9");
        }
        self.costs.overrides = o;
        Reply::Admin(AdminReply::Costs { costs: crate::budget::costs::view(&self.costs, &limits.costs, now) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Period;

    fn limits() -> Limits {
        let mut l = Limits::for_window(60, 600, 3, 60_000, 0);
        l.costs.account.day = Some(MicroUsd(2_000_000));
        l
    }

    #[test]
    fn an_override_wins_over_the_var_and_delete_goes_back() {
        let (l, mut a) = (limits(), AccountState::default());
        let now = 1_795_856_248_123;
        let Reply::Admin(AdminReply::Costs { costs }) = a.budget_admin(&l, now, Some(r#"{"usdPerDay": 0.5}"#)) else {
            panic!()
        };
        assert_eq!(costs.budgets.iter().find(|b| b.period == Period::Day).map(|b| b.limit_usd), Some(0.5));
        let Reply::Admin(AdminReply::Costs { costs }) = a.budget_admin(&l, now, None) else { panic!() };
        assert_eq!(costs.budgets.iter().find(|b| b.period == Period::Day).map(|b| b.limit_usd), Some(2.0));
        for bad in [r#"{"usdPerDay": -1}"#, r#"{"usdPerWeek": 1}"#, "[]", r#"{"usdPerDay": "1"}"#] {
            assert!(matches!(a.budget_admin(&l, now, Some(bad)), Reply::Refused(Refusal::Invalid(_))), "{bad}");
        }
        assert_eq!(a.costs.overrides, BudgetOverride::default(), "a refused body changes nothing");
    }
}
