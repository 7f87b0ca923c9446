//! The cost per job learned from completed jobs, per model: an exponential
//! moving average (weight 1/8) of what they settled at. Bounded: the model
//! updated longest ago makes room for a new one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::MicroUsd;
use crate::Ms;

/// Models remembered at most.
pub const MAX_MODELS: usize = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    pub mean: MicroUsd,
    pub jobs: u64,
    pub at: Ms,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LearnedCosts(BTreeMap<String, Learned>);

impl LearnedCosts {
    /// A completed job of `model` settled at `cost`.
    pub fn learn(&mut self, model: &str, cost: MicroUsd, now: Ms) {
        if model.is_empty() || model.len() > crate::budget::prices::MAX_MODEL_LEN {
            return;
        }
        if !self.0.contains_key(model) && self.0.len() >= MAX_MODELS {
            if let Some(oldest) = self.0.iter().min_by_key(|(_, l)| l.at).map(|(m, _)| m.clone()) {
                self.0.remove(&oldest);
            }
        }
        let e = self.0.entry(model.to_owned()).or_default();
        e.mean = if e.jobs == 0 { cost } else { MicroUsd((e.mean.0.saturating_mul(7).saturating_add(cost.0)) / 8) };
        e.jobs = e.jobs.saturating_add(1);
        e.at = now;
    }

    /// The learned cost of one job of `model`, once a job completed.
    pub fn cost(&self, model: &str) -> Option<MicroUsd> {
        self.0.get(model).filter(|l| l.jobs > 0).map(|l| l.mean)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_bounds() {
        let mut l = LearnedCosts::default();
        assert_eq!(l.cost("m"), None);
        l.learn("m", MicroUsd(800), 1);
        assert_eq!(l.cost("m"), Some(MicroUsd(800)));
        l.learn("m", MicroUsd(1_600), 2);
        assert_eq!(l.cost("m"), Some(MicroUsd(900)));
        for i in 0..100 {
            l.learn(&format!("x{i}"), MicroUsd(1), 10 + i);
        }
        assert_eq!(l.len(), MAX_MODELS);
        assert_eq!(l.cost("m"), None);
    }
}
