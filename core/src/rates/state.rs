//! The account's rates part: the exact window of every bucket and what
//! Sync's 429s taught, with their rows (admission stamps, the pacing clocks
//! and the backoffs as meta values) and the writes they make.

use std::collections::BTreeMap;

use crate::config::limits::Limits;
use crate::rates::backoff::Backoff;
use crate::rates::class::RateClass;
use crate::rates::window::WindowLog;
use crate::storage::bound::at_most;
use crate::storage::store::Write;
use crate::Ms;

/// Windows and backoffs by bucket (the class's own and every extra bucket
/// it spends from).
#[derive(Clone, Debug, Default)]
pub struct Rates {
    pub windows: BTreeMap<RateClass, WindowLog>,
    pub backoff: BTreeMap<RateClass, Backoff>,
    /// Admission rows written since the last flush.
    writes: Vec<Write>,
}

impl Rates {
    /// From the stored stamps, pacing clocks (`tat`) and backoffs; buckets
    /// no limit names any more are dropped.
    pub fn restore(
        limits: &Limits,
        stamps: BTreeMap<RateClass, Vec<Ms>>,
        tats: &BTreeMap<RateClass, Ms>,
        backoff: BTreeMap<RateClass, Backoff>,
    ) -> Self {
        let windows = stamps
            .into_iter()
            .filter_map(|(class, s)| {
                let rate = limits.rate(&class)?;
                Some((class.clone(), WindowLog::restore(s, tats.get(&class).copied().unwrap_or(0), rate)))
            })
            .collect();
        Rates { windows, backoff, writes: Vec::new() }
    }

    /// The pacing clocks as their meta value holds them.
    pub fn tats(&self) -> BTreeMap<&RateClass, Ms> {
        self.windows.iter().filter(|(_, w)| w.tat() > 0).map(|(c, w)| (c, w.tat())).collect()
    }

    /// Count one admission of `class` (every bucket it spends from).
    pub fn spend(&mut self, limits: &Limits, class: &RateClass, now: Ms) {
        for bucket in limits.buckets(class) {
            if let Some(rate) = limits.rate(&bucket) {
                let log = self.windows.entry(bucket.clone()).or_default();
                let (at, dropped_before) = log.record(rate, now);
                self.writes.push(Write::Admission { class: bucket.clone(), at });
                if let Some(before) = dropped_before {
                    self.writes.push(Write::PruneAdmissions { class: bucket.clone(), before });
                    if limits.shadow {
                        // Shadow admits past the limit, several in one
                        // millisecond: rows of one time outlive a prune by time.
                        self.writes.push(Write::TrimAdmissions { class: bucket, keep: rate.limit });
                    }
                }
            }
        }
    }

    /// A Sync 429 of `class`'s kind: every bucket it spends from pauses.
    /// Returns when the last of them may go again.
    pub fn strike(&mut self, limits: &Limits, class: &RateClass, now: Ms, jitter: f64, retry_ms: Option<Ms>) -> Ms {
        let mut until = now;
        for bucket in limits.buckets(class) {
            let b = self.backoff.entry(bucket).or_default();
            until = until.max(b.strike(&limits.backoff, now, jitter, retry_ms));
        }
        until
    }

    /// Spent admissions out of every span, idle windows and backoffs.
    pub fn compact(&mut self, limits: &Limits, now: Ms) {
        for (name, log) in self.windows.iter_mut() {
            if let Some(rate) = limits.rate(name) {
                if let Some(before) = log.prune(rate, now) {
                    self.writes.push(Write::PruneAdmissions { class: name.clone(), before });
                }
            }
        }
        self.windows.retain(|name, log| limits.rate(name).is_some_and(|r| !log.is_idle(r, now)));
        self.backoff.retain(|_, b| !b.is_idle(now));
    }

    /// Stored times read back: no admission in the future, no pacing clock
    /// past a burst, no backoff beyond its cap.
    pub fn clamp_times(&mut self, limits: &Limits, now: Ms) {
        for (class, log) in &mut self.windows {
            if let Some(rate) = limits.rate(class) {
                for (from, to) in log.clamp_times(rate, now) {
                    self.writes.push(Write::MoveAdmissions { class: class.clone(), from, to });
                }
                // Rows past the limit (a hostile row, a lowered limit) were not
                // loaded: the table keeps what memory keeps.
                self.writes.push(Write::TrimAdmissions { class: class.clone(), keep: rate.limit });
            }
        }
        for b in self.backoff.values_mut() {
            b.until = at_most(b.until, now.saturating_add(limits.backoff.cap_ms));
        }
    }

    /// The rows to write, in order, since the last call.
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }
}
