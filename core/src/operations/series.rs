//! The dashboard's last 15 minutes per class (admitted, refused, held per
//! 10-second step) and the recent waits behind the percentiles: bounded
//! rings, updated by [`crate::operations::metrics::Metrics`].

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::rates::class::RateClass;
use crate::Ms;

/// The dashboard's series: 90 steps of 10 seconds (15 minutes).
pub const STEP_MS: Ms = 10_000;
pub const STEPS: usize = 90;
/// Waits kept for the percentiles.
pub const RECENT_WAITS: usize = 1_024;
/// Classes the series tracks (the configured ones; a bound all the same).
const MAX_SERIES_CLASSES: usize = 32;
/// One class's last 15 minutes: admitted, refused, held per step.
type Ring = VecDeque<[u32; 3]>;

/// The last [`STEPS`] steps per class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The step that `back()` of every ring counts.
    end: u64,
    classes: Vec<(RateClass, Ring)>,
}

/// Which of a step's three numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Admitted = 0,
    Refused = 1,
    Held = 2,
}

impl Series {
    fn advance(&mut self, now: Ms) {
        let step = now / STEP_MS;
        if step <= self.end {
            return;
        }
        let n = (step - self.end).min(STEPS as u64) as usize;
        for (_, ring) in self.classes.iter_mut() {
            for _ in 0..n {
                ring.pop_front();
                ring.push_back([0; 3]);
            }
        }
        self.end = step;
    }

    pub fn record(&mut self, class: &RateClass, outcome: Outcome, now: Ms) {
        self.advance(now);
        let i = match self.classes.iter().position(|(c, _)| c == class) {
            Some(i) => i,
            None if self.classes.len() >= MAX_SERIES_CLASSES => return,
            None => {
                self.classes.push((class.clone(), VecDeque::from(vec![[0; 3]; STEPS])));
                self.classes.len() - 1
            }
        };
        if let Some(last) = self.classes[i].1.back_mut() {
            last[outcome as usize] = last[outcome as usize].saturating_add(1);
        }
    }

    pub fn view(&self, now: Ms) -> SeriesView {
        let mut s = self.clone();
        s.advance(now);
        let classes = s
            .classes
            .iter()
            .map(|(name, ring)| {
                let col = |i: usize| ring.iter().map(|r| r[i]).collect();
                (name.clone(), ClassSeries { admitted: col(0), refused: col(1), held: col(2) })
            })
            .collect();
        SeriesView { step_ms: STEP_MS, ends_at: (s.end + 1) * STEP_MS, classes }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub step_ms: Ms,
    /// The end of the last step (epoch ms); the first starts 15 minutes before.
    pub ends_at: Ms,
    /// By class name (a JSON object).
    #[serde(serialize_with = "as_map")]
    pub classes: Vec<(RateClass, ClassSeries)>,
}

fn as_map<S: serde::Serializer>(v: &[(RateClass, ClassSeries)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, c)| (k, c)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassSeries {
    pub admitted: Vec<u32>,
    pub refused: Vec<u32>,
    pub held: Vec<u32>,
}

/// The last [`RECENT_WAITS`] waits, for percentiles (memory only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recent(VecDeque<u32>);

impl Recent {
    pub fn push(&mut self, ms: Ms) {
        if self.0.len() >= RECENT_WAITS {
            self.0.pop_front();
        }
        self.0.push_back(u32::try_from(ms).unwrap_or(u32::MAX));
    }

    /// Nearest-rank percentiles of the waits kept.
    pub fn view(&self) -> WaitView {
        let mut v: Vec<u32> = self.0.iter().copied().collect();
        v.sort_unstable();
        let rank = |p: f64| -> Option<Ms> {
            if v.is_empty() {
                return None;
            }
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(Ms::from(v[i]))
        };
        WaitView { count: v.len() as u32, p50_ms: rank(0.5), p90_ms: rank(0.9), p99_ms: rank(0.99) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitView {
    pub count: u32,
    pub p50_ms: Option<Ms>,
    pub p90_ms: Option<Ms>,
    pub p99_ms: Option<Ms>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitsView {
    pub held: WaitView,
    pub queue: WaitView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_slides_and_keeps_fifteen_minutes() {
        let mut s = Series::default();
        s.record(&RateClass::Generate, Outcome::Admitted, 1_000_000);
        s.record(&RateClass::Generate, Outcome::Refused, 1_000_500);
        let v = s.view(1_000_900);
        let class =
            |v: &SeriesView| v.classes.iter().find(|(c, _)| *c == RateClass::Generate).map(|(_, s)| s.clone()).unwrap();
        let g = &class(&v);
        assert_eq!((g.admitted.len(), g.admitted[STEPS - 1], g.refused[STEPS - 1]), (STEPS, 1, 1));
        let later = s.view(1_000_000 + 3 * STEP_MS);
        assert_eq!(class(&later).admitted[STEPS - 4], 1);
        let gone = s.view(1_000_000 + 100 * STEP_MS);
        assert!(class(&gone).admitted.iter().all(|n| *n == 0));
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_last_waits() {
        let mut r = Recent::default();
        assert_eq!(r.view().p50_ms, None);
        for ms in 1..=100 {
            r.push(ms);
        }
        let v = r.view();
        assert_eq!((v.p50_ms, v.p90_ms, v.p99_ms), (Some(50), Some(90), Some(99)));
        for _ in 0..RECENT_WAITS {
            r.push(7);
        }
        assert_eq!(r.view().p99_ms, Some(7));
    }
}
