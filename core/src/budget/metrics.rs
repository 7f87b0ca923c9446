//! Spend in the metrics scrape: the account's budgets in force, and what
//! the account and each of its clients spent (settled) and hold reserved
//! in the current UTC day and month, as Prometheus gauges in USD:
//!
//! - `sync_governor_budget_usd{account, period}`: the limit in force;
//! - `sync_governor_spend_usd{account, period, state}`: the account's spend;
//! - `sync_governor_client_spend_usd{account, client, period, state}`.
//!
//! `state` is `settled` (what Sync reported) or `reserved` (estimates of
//! jobs in flight). Built in the object's turn from the book (exact
//! millionths), rendered by [`render`] after the other families.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::budget::costs::Costs;
use crate::budget::vars::CostConfig;
use crate::budget::{Period, Scope};
use crate::Ms;

/// One scope's spend now, in millionths of a USD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendLine {
    /// The client's name; empty for the account's own line.
    #[serde(default)]
    pub client: String,
    pub day_settled: u64,
    pub day_reserved: u64,
    pub month_settled: u64,
    pub month_reserved: u64,
}

/// An account's spend gauges (part of its metrics snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendGauges {
    /// The limits in force (vars or an operator's override), per period set.
    #[serde(default)]
    pub day_limit: Option<u64>,
    #[serde(default)]
    pub month_limit: Option<u64>,
    #[serde(default)]
    pub account: SpendLine,
    #[serde(default)]
    pub clients: Vec<SpendLine>,
}

fn line(c: &Costs, scope: &Scope, client: &str, now: Ms) -> SpendLine {
    let day = c.book.spend(scope, Period::Day, now);
    let month = c.book.spend(scope, Period::Month, now);
    SpendLine {
        client: client.to_owned(),
        day_settled: day.settled.0,
        day_reserved: day.reserved.0,
        month_settled: month.settled.0,
        month_reserved: month.reserved.0,
    }
}

/// The gauges now (a renewed period reads zero).
pub fn gauges(c: &Costs, cfg: &CostConfig, now: Ms) -> SpendGauges {
    let limits = c.overrides.apply(cfg.account);
    let clients = c
        .book
        .scopes()
        .filter_map(|s| match s {
            Scope::Client(name) => Some(line(c, s, name, now)),
            Scope::Account => None,
        })
        .collect();
    SpendGauges {
        day_limit: limits.day.map(|m| m.0),
        month_limit: limits.month.map(|m| m.0),
        account: line(c, &Scope::Account, "", now),
        clients,
    }
}

/// Millionths of a USD as a decimal, exactly (no float formatting).
fn usd(micro: u64) -> String {
    let s = format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Appends the spend families for every account to a scrape.
pub fn render(out: &mut String, accounts: &[(&str, &SpendGauges)]) {
    let _ = writeln!(
        out,
        "# HELP sync_governor_budget_usd An account's cost budget in force, by UTC period.\n# TYPE sync_governor_budget_usd gauge"
    );
    for (a, g) in accounts {
        for (period, limit) in [("day", g.day_limit), ("month", g.month_limit)] {
            if let Some(l) = limit {
                let _ = writeln!(
                    out,
                    "sync_governor_budget_usd{{account=\"{}\",period=\"{period}\"}} {}",
                    escape(a),
                    usd(l)
                );
            }
        }
    }
    let states = |l: &SpendLine| {
        [
            ("day", "settled", l.day_settled),
            ("day", "reserved", l.day_reserved),
            ("month", "settled", l.month_settled),
            ("month", "reserved", l.month_reserved),
        ]
    };
    let _ = writeln!(
        out,
        "# HELP sync_governor_spend_usd An account's spend this UTC period: settled, or reserved by jobs in flight.\n# TYPE sync_governor_spend_usd gauge"
    );
    for (a, g) in accounts {
        for (period, state, v) in states(&g.account) {
            let labels = format!("account=\"{}\",period=\"{period}\",state=\"{state}\"", escape(a));
            let _ = writeln!(out, "sync_governor_spend_usd{{{labels}}} {}", usd(v));
        }
    }
    let _ = writeln!(
        out,
        "# HELP sync_governor_client_spend_usd A client's spend this UTC period: settled, or reserved by jobs in flight.\n# TYPE sync_governor_client_spend_usd gauge"
    );
    for (a, g) in accounts {
        for c in &g.clients {
            for (period, state, v) in states(c) {
                let labels = format!(
                    "account=\"{}\",client=\"{}\",period=\"{period}\",state=\"{state}\"",
                    escape(a),
                    escape(&c.client)
                );
                let _ = writeln!(out, "sync_governor_client_spend_usd{{{labels}}} {}", usd(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::MicroUsd;

    #[test]
    fn spend_per_client_in_usd_exactly() {
        let mut c = Costs::default();
        let now = 1_795_856_248_123;
        let scopes = [Scope::Account, Scope::Client("mo\"bile".into())];
        let r = c.book.reserve(&scopes, MicroUsd(250_000), now);
        c.book.reserve(&scopes, MicroUsd(120_000), now);
        c.book.settle(&scopes, &r, MicroUsd(300_001));
        let mut cfg = CostConfig::default();
        cfg.account.day = Some(MicroUsd(2_000_000));
        let g = gauges(&c, &cfg, now);
        assert_eq!((g.account.day_settled, g.account.day_reserved), (300_001, 120_000));
        let mut out = String::new();
        render(&mut out, &[("a-acme", &g)]);
        assert!(out.contains("sync_governor_budget_usd{account=\"a-acme\",period=\"day\"} 2\n"), "{out}");
        assert!(!out.contains("period=\"month\"}"), "no month budget set");
        assert!(out.contains("sync_governor_spend_usd{account=\"a-acme\",period=\"day\",state=\"settled\"} 0.300001\n"));
        assert!(out.contains(
            "sync_governor_client_spend_usd{account=\"a-acme\",client=\"mo\\\"bile\",period=\"month\",state=\"reserved\"} 0.12\n"
        ));
        // The next day: the day's spend reads zero, the month's stays.
        let g = gauges(&c, &cfg, now + 86_400_000);
        assert_eq!(g.account.day_settled, 0);
    }
}
