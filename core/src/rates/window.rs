//! The exact rate limiter: at most `limit` admissions in *any* span of
//! `window + margin` milliseconds.
//!
//! Sync does not say whether "N per minute" is a fixed or a sliding window.
//! A sliding log of the last `limit` admission times is safe under both
//! readings (a fixed window is a special case of a span) and still admits a
//! whole burst whenever the span has room. The `margin` widens the span so
//! that transit jitter between the governor and Sync cannot squeeze two
//! admissions that the governor saw one window apart into one upstream window.
//!
//! Optional pacing (`burst < limit`) adds a GCRA on top: the emission
//! interval is `window / limit` and at most `burst` requests pass back to back.
//!
//! Like the `governor` crate's GCRA, every decision is a pure function of
//! (state, now, config) and a refusal is a value carrying the earliest time
//! at which the same request would pass.

use serde::{Deserialize, Serialize};

use crate::Ms;

/// Configuration of one rate bucket (the *policy*).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Admissions allowed per window.
    pub limit: u32,
    /// The upstream window, in milliseconds (60 000 for Sync).
    pub window_ms: Ms,
    /// Extra span added to the window to absorb transit jitter.
    pub margin_ms: Ms,
    /// Largest back-to-back burst; `>= limit` disables pacing.
    pub burst: u32,
}

impl RateLimit {
    pub fn per_window(limit: u32, window_ms: Ms, margin_ms: Ms) -> Self {
        Self { limit, window_ms, margin_ms, burst: limit }
    }

    /// The span in which at most `limit` admissions may fall.
    pub fn span_ms(&self) -> Ms {
        self.window_ms + self.margin_ms
    }

    fn paced(&self) -> bool {
        self.burst < self.limit
    }

    /// GCRA emission interval (only used when paced).
    fn interval_ms(&self) -> Ms {
        (self.span_ms() / u64::from(self.limit.max(1))).max(1)
    }
}

/// The mutable state of one bucket: admission times, oldest first, at most
/// `limit` of them, plus the GCRA theoretical arrival time when paced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowLog {
    #[serde(default, rename = "s", with = "deltas")]
    stamps: Vec<Ms>,
    #[serde(default, rename = "t", skip_serializing_if = "is_zero")]
    tat: Ms,
}

fn is_zero(v: &Ms) -> bool {
    *v == 0
}

impl WindowLog {
    /// Earliest time at which one more admission fits, or `Ok` when it fits now.
    pub fn check(&self, cfg: &RateLimit, now: Ms) -> Result<(), Ms> {
        self.check_reserving(cfg, now, 0)
    }

    /// As [`WindowLog::check`], leaving the last `reserve` units of the span
    /// to someone else (the governor's own reconciliation).
    pub fn check_reserving(&self, cfg: &RateLimit, now: Ms, reserve: u32) -> Result<(), Ms> {
        let mut earliest = now;
        if cfg.limit == 0 {
            return Err(Ms::MAX);
        }
        let n = self.stamps.len();
        let limit = cfg.limit.saturating_sub(reserve).max(1) as usize;
        if n >= limit {
            // The limit-th most recent admission must have left the span.
            let kth = self.stamps[n - limit];
            earliest = earliest.max(kth.saturating_add(cfg.span_ms()));
        }
        if cfg.paced() {
            let tau = cfg.interval_ms() * u64::from(cfg.burst.saturating_sub(1));
            earliest = earliest.max(self.tat.saturating_sub(tau));
        }
        if earliest <= now {
            Ok(())
        } else {
            Err(earliest)
        }
    }

    /// Rebuild from stored admission times (any order, possibly more than
    /// `limit` of them) and the pacing arrival time.
    pub fn restore(mut stamps: Vec<Ms>, tat: Ms, cfg: &RateLimit) -> Self {
        stamps.sort_unstable();
        let excess = stamps.len().saturating_sub(cfg.limit as usize);
        stamps.drain(..excess);
        WindowLog { stamps, tat }
    }

    /// The GCRA theoretical arrival time (0 when not paced).
    pub fn tat(&self) -> Ms {
        self.tat
    }

    /// The admission times kept, oldest first.
    pub fn stamps(&self) -> &[Ms] {
        &self.stamps
    }

    /// Admission times kept.
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// Record an admission at `now`. Call only after `check` passed.
    /// Returns the time recorded and, when older admissions stopped
    /// mattering, the time before which the stored ones can go.
    pub fn record(&mut self, cfg: &RateLimit, now: Ms) -> (Ms, Option<Ms>) {
        let at = self.stamps.last().map_or(now, |last| now.max(*last));
        self.stamps.push(at);
        let limit = cfg.limit as usize;
        let mut dropped = false;
        if self.stamps.len() > limit {
            let excess = self.stamps.len() - limit;
            self.stamps.drain(..excess);
            dropped = true;
        }
        if cfg.paced() {
            // Never past what `burst` back-to-back admissions at `now` leave:
            // an admission `check` did not pass (shadow mode) cannot push the
            // clock on without bound and lock enforce out later.
            let most = now.saturating_add(cfg.interval_ms().saturating_mul(u64::from(cfg.burst.max(1))));
            self.tat = self.tat.max(now).saturating_add(cfg.interval_ms()).min(most);
        }
        let pruned = self.prune(cfg, now);
        let before = if dropped { self.stamps.first().copied() } else { pruned };
        (at, before)
    }

    /// Stored times read back: no admission in the future, the pacing
    /// clock at most a burst ahead (see [`crate::storage::clamp`]).
    /// Returns the stamps moved, as (from, to).
    pub fn clamp_times(&mut self, cfg: &RateLimit, now: Ms) -> Vec<(Ms, Ms)> {
        let mut moved = Vec::new();
        for s in &mut self.stamps {
            let to = crate::storage::bound::at_most(*s, now);
            if to != *s && !moved.iter().any(|(from, _)| *from == *s) {
                moved.push((*s, to));
            }
            *s = to;
        }
        self.stamps.sort_unstable();
        let most = now.saturating_add(cfg.interval_ms().saturating_mul(u64::from(cfg.burst.max(1))));
        self.tat = crate::storage::bound::at_most(self.tat, most);
        moved
    }

    /// Forget admissions that can no longer matter; returns the time before
    /// which stored admissions can go, when any were forgotten.
    pub fn prune(&mut self, cfg: &RateLimit, now: Ms) -> Option<Ms> {
        let span = cfg.span_ms();
        let keep_from = self.stamps.iter().position(|s| s.saturating_add(span) > now).unwrap_or(self.stamps.len());
        if keep_from == 0 {
            return None;
        }
        self.stamps.drain(..keep_from);
        Some(self.stamps.first().copied().unwrap_or(now.saturating_sub(span) + 1))
    }

    /// Admissions still counting against the span ending at `now`.
    pub fn used(&self, cfg: &RateLimit, now: Ms) -> u32 {
        let span = cfg.span_ms();
        self.stamps.iter().filter(|s| s.saturating_add(span) > now).count() as u32
    }

    /// Admissions left right now (ignoring pacing).
    pub fn remaining(&self, cfg: &RateLimit, now: Ms) -> u32 {
        cfg.limit.saturating_sub(self.used(cfg, now))
    }

    /// Milliseconds until the next unit of quota comes back (0 when the
    /// bucket is untouched).
    pub fn reset_in(&self, cfg: &RateLimit, now: Ms) -> Ms {
        let span = cfg.span_ms();
        self.stamps.iter().map(|s| s.saturating_add(span)).find(|end| *end > now).map_or(0, |end| end - now)
    }

    /// Whether the bucket holds nothing worth persisting.
    pub fn is_idle(&self, cfg: &RateLimit, now: Ms) -> bool {
        self.used(cfg, now) == 0 && self.tat <= now
    }
}

/// Stamps persisted as one string of deltas (`"1795856248123,12,0,340"`):
/// a full 600-entry log is a few KB instead of 8, and is written on every
/// admission.
mod deltas {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Ms;

    pub fn serialize<S: Serializer>(stamps: &[Ms], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(stamps.len() * 4);
        let mut prev = 0;
        for (i, t) in stamps.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&t.saturating_sub(prev).to_string());
            prev = *t;
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ms>, D::Error> {
        let raw = String::deserialize(d)?;
        let mut prev: Ms = 0;
        raw.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let delta: Ms = p.parse().map_err(serde::de::Error::custom)?;
                prev = prev.saturating_add(delta);
                Ok(prev)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
