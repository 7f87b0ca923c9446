//! How long generations take on this account, per model: a small running
//! statistic (count and exponentially weighted mean) that turns the ages of
//! in-flight generations into an honest estimate of when a permit frees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Ms;

/// The estimate used before anything was observed (Sync: "30 s to 3 min").
pub const PRIOR_MS: Ms = 60_000;
const WEIGHT: f64 = 0.2;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub n: u64,
    pub mean_ms: f64,
}

impl Stat {
    fn add(&mut self, sample: Ms) {
        self.n += 1;
        let w = if self.n < 5 { 1.0 / self.n as f64 } else { WEIGHT };
        self.mean_ms += (sample as f64 - self.mean_ms) * w;
    }
}

/// Observed durations by model (`""` is the account-wide statistic).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations(BTreeMap<String, Stat>);

impl Durations {
    pub fn observe(&mut self, model: Option<&str>, duration: Ms) {
        self.0.entry(String::new()).or_default().add(duration);
        if let Some(m) = model {
            self.0.entry(m.to_owned()).or_default().add(duration);
        }
    }

    /// Expected total duration of a generation of `model`.
    pub fn expected(&self, model: Option<&str>) -> Ms {
        model
            .and_then(|m| self.0.get(m))
            .or_else(|| self.0.get(""))
            .filter(|s| s.n > 0)
            .map_or(PRIOR_MS, |s| s.mean_ms.max(1.0) as Ms)
    }

    /// Has any generation's duration been observed (so that estimates are
    /// more than the prior)?
    pub fn observed(&self) -> bool {
        self.0.get("").is_some_and(|s| s.n > 0)
    }

    /// Expected end of a generation that started at `since`, seen at `now`.
    /// An overdue generation is expected to end within a tenth of its
    /// expected duration from now (at least a second).
    pub fn expected_end(&self, model: Option<&str>, since: Ms, now: Ms) -> Ms {
        let expected = self.expected(model);
        let end = since.saturating_add(expected);
        if end > now {
            end
        } else {
            now + (expected / 10).max(1_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_per_model_and_falls_back() {
        let mut d = Durations::default();
        assert_eq!(d.expected(Some("lipsync-2")), PRIOR_MS);
        d.observe(Some("lipsync-2"), 10_000);
        d.observe(Some("lipsync-2"), 20_000);
        assert_eq!(d.expected(Some("lipsync-2")), 15_000);
        assert_eq!(d.expected(Some("sync-3")), 15_000, "falls back to the account");
        assert_eq!(d.expected_end(Some("lipsync-2"), 0, 1_000), 15_000);
        assert_eq!(d.expected_end(Some("lipsync-2"), 0, 20_000), 21_500);
    }
}
