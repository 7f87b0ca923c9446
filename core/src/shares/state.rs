//! The account's sharing state: the account's name (to read its
//! `CLIENT_LIMITS`), operator overrides per client, each client's rate
//! logs (in the admissions table as `<class>@<client>`), and the virtual
//! clock of the fair order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fair::VirtualClock;
use super::limits::ClientLimit;
pub use super::status::LimitSource;
use crate::config::limits::Limits;
use crate::rates::class::RateClass;
use crate::rates::window::{RateLimit, WindowLog};
use crate::storage::store::Write;
use crate::Ms;

/// Clients with an operator override at most.
pub const MAX_OVERRIDES: usize = 1_000;
/// Client rate logs kept at most (a log is bounded by its limit).
pub const MAX_CLIENT_LOGS: usize = 1_000;

/// The persisted part (one meta row).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharesRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, ClientLimit>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shares {
    pub row: SharesRow,
    /// `<class>@<client>` → the client's log of that class.
    pub(super) logs: BTreeMap<String, WindowLog>,
    pub clock: VirtualClock,
}

/// The admissions-table class of a client's log.
pub fn log_class(class: &RateClass, client: &str) -> String {
    format!("{class}@{client}")
}

/// The name of a client's own policy of `class` (`client_generate`, `client_other`).
pub fn policy_name(class: &RateClass) -> String {
    format!("client_{class}")
}

/// A client's own rate policy of `class` (`generate` or `other`), shaped
/// as the account's window.
pub fn client_rate(limits: &Limits, limit: &ClientLimit, class: &RateClass) -> Option<RateLimit> {
    let n = limit.rate(class)?;
    let base = limits.rate(class)?;
    Some(RateLimit { limit: n, window_ms: base.window_ms, margin_ms: base.margin_ms, burst: n })
}

impl Shares {
    /// Rebuild from the meta row and the client logs' stamps.
    pub fn restore(row: SharesRow, clock: VirtualClock, stamps: BTreeMap<String, Vec<Ms>>, limits: &Limits) -> Self {
        let mut shares = Shares { row, clock, ..Shares::default() };
        for (class, s) in stamps {
            let Some((base, client)) = class.split_once('@') else { continue };
            let limit = shares.limit(limits, client);
            if let Some(rate) = client_rate(limits, &limit, &RateClass::from(base)) {
                shares.logs.insert(class.clone(), WindowLog::restore(s, 0, &rate));
            }
        }
        shares
    }

    /// Learn the account's name (the Worker sends it with admissions).
    pub fn learn_account(&mut self, account: &str) {
        if self.row.account.as_deref() != Some(account) {
            self.row.account = Some(account.to_owned());
        }
    }

    /// A client's limits: the override, else `CLIENT_LIMITS`, field by field.
    pub fn limit(&self, limits: &Limits, client: &str) -> ClientLimit {
        let var = limits.clients.resolve(self.row.account.as_deref().unwrap_or(""), client);
        self.row.overrides.get(client).copied().unwrap_or_default().or(var)
    }

    /// Where each field of a client's limits came from, in field order
    /// (weight, reserved, concurrency, generatePerMinute, requestsPerMinute,
    /// usdPerDay, usdPerMonth).
    pub fn sources(&self, limits: &Limits, client: &str) -> [LimitSource; 7] {
        let o = self.row.overrides.get(client).copied().unwrap_or_default();
        let v = limits.clients.resolve(self.row.account.as_deref().unwrap_or(""), client);
        let pick = |over: bool, var: bool| match (over, var) {
            (true, _) => LimitSource::Override,
            (false, true) => LimitSource::Var,
            _ => LimitSource::Default,
        };
        [
            pick(o.weight.is_some(), v.weight.is_some()),
            pick(o.reserved.is_some(), v.reserved.is_some()),
            pick(o.concurrency.is_some(), v.concurrency.is_some()),
            pick(o.generate_per_minute.is_some(), v.generate_per_minute.is_some()),
            pick(o.requests_per_minute.is_some(), v.requests_per_minute.is_some()),
            pick(o.usd_per_day.is_some(), v.usd_per_day.is_some()),
            pick(o.usd_per_month.is_some(), v.usd_per_month.is_some()),
        ]
    }

    /// The client's own rate buckets a request of `class` spends from
    /// (`generate` and `other`; extra classes have none of their own).
    fn buckets(limits: &Limits, class: &RateClass) -> Vec<RateClass> {
        limits.buckets(class).into_iter().filter(|b| !matches!(b, RateClass::Extra(_))).collect()
    }

    /// Would the client's own rates let one more `class` request pass?
    /// `Err` is the earliest time, the policy name and its limit.
    pub fn check_rate(
        &self,
        limits: &Limits,
        client: &str,
        class: &RateClass,
        now: Ms,
    ) -> Result<(), (Ms, String, u32)> {
        let limit = self.limit(limits, client);
        let mut worst: Option<(Ms, String, u32)> = None;
        for b in Self::buckets(limits, class) {
            let Some(rate) = client_rate(limits, &limit, &b) else { continue };
            let log = self.logs.get(&log_class(&b, client));
            if let Err(at) = log.map_or(Ok(()), |l| l.check(&rate, now)) {
                if worst.as_ref().is_none_or(|w| at > w.0) {
                    worst = Some((at, policy_name(&b), rate.limit));
                }
            }
            if log.is_none() && self.logs.len() >= MAX_CLIENT_LOGS {
                // Every log is live and the bound is reached: wait for one to empty.
                worst = Some((now + rate.span_ms(), policy_name(&b), rate.limit));
            }
        }
        worst.map_or(Ok(()), Err)
    }

    /// Count one admission of `class` for `client` (its own logs).
    pub fn spend(&mut self, limits: &Limits, client: &str, class: &RateClass, now: Ms, journal: &mut Vec<Write>) {
        let limit = self.limit(limits, client);
        for b in Self::buckets(limits, class) {
            let Some(rate) = client_rate(limits, &limit, &b) else { continue };
            let name = log_class(&b, client);
            let log = self.logs.entry(name.clone()).or_default();
            let (at, dropped) = log.record(&rate, now);
            journal.push(Write::Admission { class: RateClass::from(name.as_str()), at });
            if let Some(before) = dropped {
                journal.push(Write::PruneAdmissions { class: RateClass::from(name), before });
            }
        }
    }

    /// (remaining, reset in ms, limit) of a client's own `class` log.
    pub fn rate_state(&self, limits: &Limits, client: &str, class: &RateClass, now: Ms) -> Option<(u32, Ms, u32)> {
        let rate = client_rate(limits, &self.limit(limits, client), class)?;
        let log = self.logs.get(&log_class(class, client));
        Some((
            log.map_or(rate.limit, |l| l.remaining(&rate, now)),
            log.map_or(0, |l| l.reset_in(&rate, now)),
            rate.limit,
        ))
    }

    /// Drop what left every span; forget idle logs.
    pub fn compact(&mut self, limits: &Limits, now: Ms, journal: &mut Vec<Write>) {
        let mut idle = Vec::new();
        for (name, log) in self.logs.iter_mut() {
            let Some((base, client)) = name.split_once('@') else { continue };
            let limit = self
                .row
                .overrides
                .get(client)
                .copied()
                .unwrap_or_default()
                .or(limits.clients.resolve(self.row.account.as_deref().unwrap_or(""), client));
            match client_rate(limits, &limit, &RateClass::from(base)) {
                Some(rate) => {
                    if let Some(before) = log.prune(&rate, now) {
                        journal.push(Write::PruneAdmissions { class: RateClass::from(name.as_str()), before });
                    }
                    if log.is_idle(&rate, now) {
                        idle.push(name.clone());
                    }
                }
                None => {
                    journal.push(Write::PruneAdmissions {
                        class: RateClass::from(name.as_str()),
                        before: now.saturating_add(1),
                    });
                    idle.push(name.clone());
                }
            }
        }
        for name in idle {
            self.logs.remove(&name);
        }
    }

    /// Set or clear an operator's override. Refused past the bound.
    pub fn set_override(&mut self, client: &str, limit: Option<ClientLimit>) -> Result<(), &'static str> {
        match limit {
            Some(l) if !l.is_empty() => {
                if !self.row.overrides.contains_key(client) && self.row.overrides.len() >= MAX_OVERRIDES {
                    return Err("too many client overrides (at most 1000)");
                }
                self.row.overrides.insert(client.to_owned(), l);
            }
            _ => {
                self.row.overrides.remove(client);
            }
        }
        Ok(())
    }

    pub fn logs(&self) -> usize {
        self.logs.len()
    }
}
