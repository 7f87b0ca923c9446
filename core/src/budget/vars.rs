//! The cost vars: `PRICES`, `BUDGET_USD_PER_DAY`, `BUDGET_USD_PER_MONTH`
//! and `LEDGER_RETENTION_DAYS`, parsed and validated (client budgets come
//! from `CLIENT_LIMITS`, see the client limits).

use serde::{Deserialize, Serialize};

use crate::budget::{BudgetLimits, MicroUsd, Prices};

/// `LEDGER_RETENTION_DAYS` unless set.
pub const DEFAULT_RETENTION_DAYS: u32 = 35;
/// The longest retention accepted.
pub const MAX_RETENTION_DAYS: u32 = 400;

/// Everything the cost rules need from configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostConfig {
    pub prices: Prices,
    /// The account's budgets (before admin overrides).
    pub account: BudgetLimits,
    pub retention_days: u32,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            prices: Prices::default(),
            account: BudgetLimits::default(),
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// An invalid var: its name and what is wrong (never its value).
pub type VarError = (&'static str, String);

/// A USD budget: a non-negative number (0 refuses every priced create).
pub fn usd_var(var: &'static str, raw: Option<&str>) -> Result<Option<MicroUsd>, VarError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    raw.parse::<f64>()
        .ok()
        .and_then(MicroUsd::from_usd)
        .map(Some)
        .ok_or((var, "must be a number of USD from 0 to 1e9".to_owned()))
}

impl CostConfig {
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<CostConfig, VarError> {
        let prices = match get("PRICES").filter(|p| !p.trim().is_empty()) {
            Some(raw) => Prices::parse(&raw).map_err(|e| ("PRICES", e))?,
            None => Prices::default(),
        };
        let account = BudgetLimits {
            day: usd_var("BUDGET_USD_PER_DAY", get("BUDGET_USD_PER_DAY").as_deref())?,
            month: usd_var("BUDGET_USD_PER_MONTH", get("BUDGET_USD_PER_MONTH").as_deref())?,
        };
        let retention_days = match get("LEDGER_RETENTION_DAYS").map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()) {
            None => DEFAULT_RETENTION_DAYS,
            Some(raw) => raw.parse::<u32>().ok().filter(|d| (1..=MAX_RETENTION_DAYS).contains(d)).ok_or((
                "LEDGER_RETENTION_DAYS",
                format!("must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"),
            ))?,
        };
        Ok(CostConfig { prices, account, retention_days })
    }
}

/// An admin override of the account's budgets (`null` field: back to the var).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetOverride {
    #[serde(default)]
    pub usd_per_day: Option<f64>,
    #[serde(default)]
    pub usd_per_month: Option<f64>,
}

impl BudgetOverride {
    /// The limits in force: an override where set and valid, else the var.
    pub fn apply(&self, base: BudgetLimits) -> BudgetLimits {
        BudgetLimits {
            day: self.usd_per_day.and_then(MicroUsd::from_usd).or(base.day),
            month: self.usd_per_month.and_then(MicroUsd::from_usd).or(base.month),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse(vars: &[(&str, &str)]) -> Result<CostConfig, VarError> {
        let m: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CostConfig::from_vars(&|k| m.get(k).cloned())
    }

    #[test]
    fn vars() {
        assert_eq!(parse(&[]).unwrap(), CostConfig::default());
        let c =
            parse(&[("PRICES", r#"{"lipsync-2":0.04}"#), ("BUDGET_USD_PER_DAY", "5"), ("LEDGER_RETENTION_DAYS", "7")])
                .unwrap();
        assert_eq!(c.account, BudgetLimits { day: Some(MicroUsd(5_000_000)), month: None });
        assert_eq!(c.retention_days, 7);
        for (var, bad) in [
            ("BUDGET_USD_PER_DAY", "-17.25"),
            ("BUDGET_USD_PER_MONTH", "NaN"),
            ("LEDGER_RETENTION_DAYS", "999999"),
            ("PRICES", "[1]"),
        ] {
            let e = parse(&[(var, bad)]).unwrap_err();
            assert_eq!(e.0, var);
            assert!(!e.1.contains(bad), "{e:?}");
        }
        let o = BudgetOverride { usd_per_day: Some(1.0), usd_per_month: None };
        assert_eq!(o.apply(c.account).day, Some(MicroUsd(1_000_000)));
    }
}
