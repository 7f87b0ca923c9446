//! What an upstream 429 teaches: Sync is the ground truth, so a 429 on a
//! request the governor admitted closes that class for a while. The pause
//! grows exponentially with *full jitter* while 429s repeat and starts over after a
//! quiet spell longer than the cap. An upstream `Retry-After`, if Sync ever sends one, is a floor,
//! itself capped at the policy's cap (a hostile or broken upstream cannot close a class for days).
//! The jitter sample is an input (a number in `[0, 1)`), so this stays pure.

use serde::{Deserialize, Serialize};

use crate::Ms;

/// Backoff policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    pub base_ms: Ms,
    pub cap_ms: Ms,
}

/// Exponential backoff with full jitter: uniform in
/// `[0, min(cap, base · 2^attempt))`, from a `jitter` sample in `[0, 1)`.
pub fn full_jitter(base_ms: Ms, cap_ms: Ms, attempt: u32, jitter: f64) -> Ms {
    let exp = base_ms.saturating_mul(1u64 << attempt.min(20)).min(cap_ms);
    (exp as f64 * jitter.clamp(0.0, 1.0)) as Ms
}

/// The pause an upstream answer asks for, in ms: `retry-after-ms`, else
/// `Retry-After` in whole seconds (an HTTP-date is ignored), capped at
/// `cap_ms`; saturating, so a huge value cannot wrap.
pub fn upstream_retry_ms(retry_after_ms: Option<&str>, retry_after: Option<&str>, cap_ms: Ms) -> Option<Ms> {
    let ms = retry_after_ms
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(|s| s.saturating_mul(1_000)))?;
    Some(ms.min(cap_ms))
}

/// Backoff state of one class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    #[serde(default)]
    pub strikes: u32,
    #[serde(default)]
    pub until: Ms,
}

impl Backoff {
    /// `Err(until)` while the class is paused.
    pub fn check(&self, now: Ms) -> Result<(), Ms> {
        if self.until > now {
            Err(self.until)
        } else {
            Ok(())
        }
    }

    /// Record an upstream 429 and return the time the pause ends.
    pub fn strike(&mut self, policy: &BackoffPolicy, now: Ms, jitter: f64, upstream_retry_ms: Option<Ms>) -> Ms {
        if now > self.until.saturating_add(policy.cap_ms) {
            // Quiet for longer than the cap: this is a new episode.
            self.strikes = 0;
        }
        // Full jitter, but never shorter than a tenth of the base so that a
        // burst of 429s cannot turn into an immediate retry.
        let pause = full_jitter(policy.base_ms, policy.cap_ms, self.strikes, jitter).max(policy.base_ms / 10);
        self.strikes = self.strikes.saturating_add(1);
        let pause = pause.max(upstream_retry_ms.unwrap_or(0).min(policy.cap_ms));
        self.until = self.until.max(now.saturating_add(pause));
        self.until
    }

    pub fn is_idle(&self, now: Ms) -> bool {
        self.strikes == 0 && self.until <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BackoffPolicy = BackoffPolicy { base_ms: 1_000, cap_ms: 30_000 };

    #[test]
    fn grows_with_strikes_and_honours_upstream() {
        let mut b = Backoff::default();
        assert_eq!(b.strike(&P, 0, 0.99999, None), 999);
        assert_eq!(b.check(500), Err(999));
        assert_eq!(b.strike(&P, 1_000, 0.99999, None), 1_000 + 1_999);
        assert_eq!(b.strike(&P, 5_000, 0.0, Some(7_000)), 12_000);
        assert!(b.check(12_000).is_ok());
        b.strike(&P, 12_000 + 30_001, 0.99999, None);
        assert_eq!(b.strikes, 1, "a quiet spell longer than the cap starts over");
    }

    #[test]
    fn capped() {
        let mut b = Backoff { strikes: 40, until: 0 };
        assert_eq!(b.strike(&P, 0, 0.99999, None), 29_999);
    }

    #[test]
    fn upstream_retry_after_is_capped_and_saturates() {
        assert_eq!(upstream_retry_ms(None, Some("2"), 60_000), Some(2_000));
        assert_eq!(upstream_retry_ms(Some("1500"), Some("2"), 60_000), Some(1_500));
        assert_eq!(upstream_retry_ms(None, Some("86400"), 60_000), Some(60_000));
        assert_eq!(upstream_retry_ms(None, Some("18446744073709551615"), 60_000), Some(60_000));
        assert_eq!(upstream_retry_ms(Some("99999999999"), None, 30_000), Some(30_000));
        assert_eq!(upstream_retry_ms(None, Some("Wed, 21 Oct 2015 07:28:00 GMT"), 60_000), None);
        assert_eq!(upstream_retry_ms(None, None, 60_000), None);
        // And the backoff never takes more than the cap from upstream.
        let mut b = Backoff::default();
        assert_eq!(b.strike(&P, 0, 0.0, Some(u64::MAX)), 30_000);
    }
}
