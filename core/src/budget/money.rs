//! Money as an integer count of micro-dollars, so that reserving, settling
//! and summing are exact (a ledger's rows add up to the book to the unit).

use serde::{Deserialize, Serialize};

/// USD in millionths. Arithmetic saturates: never wraps, never panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MicroUsd(pub u64);

/// The largest amount read from configuration or from Sync: one billion USD.
pub const MAX_USD: f64 = 1e9;

impl MicroUsd {
    pub const ZERO: MicroUsd = MicroUsd(0);

    /// A finite, non-negative USD amount up to [`MAX_USD`], rounded to the
    /// nearest micro-dollar; `None` otherwise.
    pub fn from_usd(usd: f64) -> Option<MicroUsd> {
        (usd.is_finite() && (0.0..=MAX_USD).contains(&usd)).then(|| MicroUsd((usd * 1e6).round() as u64))
    }

    /// As USD (for JSON and display).
    pub fn usd(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub fn plus(self, o: MicroUsd) -> MicroUsd {
        MicroUsd(self.0.saturating_add(o.0))
    }

    pub fn minus(self, o: MicroUsd) -> MicroUsd {
        MicroUsd(self.0.saturating_sub(o.0))
    }

    /// `self × seconds`, for a price per second; `None` for a negative, not
    /// finite or absurd duration.
    pub fn times_seconds(self, seconds: f64) -> Option<MicroUsd> {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return None;
        }
        let v = (self.0 as f64 * seconds).round();
        (v <= MAX_USD * 1e6).then_some(MicroUsd(v as u64))
    }
}

impl std::fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(MicroUsd::from_usd(0.04), Some(MicroUsd(40_000)));
        assert_eq!(MicroUsd::from_usd(-0.01), None);
        assert_eq!(MicroUsd::from_usd(f64::NAN), None);
        assert_eq!(MicroUsd::from_usd(2e9), None);
        assert_eq!(MicroUsd(40_000).times_seconds(12.5), Some(MicroUsd(500_000)));
        assert_eq!(MicroUsd(40_000).times_seconds(-1.0), None);
        assert_eq!(MicroUsd(u64::MAX).times_seconds(2.0), None);
        assert_eq!(MicroUsd(5).minus(MicroUsd(9)), MicroUsd::ZERO);
        assert_eq!(MicroUsd(1_500_000).to_string(), "1.500000");
    }
}
