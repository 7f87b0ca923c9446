//! A stored time read back, bounded: believed up to a little clock skew
//! past its bound, else the bound (see [`crate::storage::clamp`]). A leaf: the
//! parts that keep times use it without knowing the account.

use crate::Ms;

/// A stored time this far past its bound is still believed (clocks of two
/// runtimes differ a little; a restart must change nothing then).
pub const CLOCK_SKEW_MS: Ms = 60_000;

/// `t`, unless it lies further past `bound` than clock skew explains: then `bound`.
pub fn at_most(t: Ms, bound: Ms) -> Ms {
    if t > bound.saturating_add(CLOCK_SKEW_MS) {
        bound
    } else {
        t
    }
}

/// The alarm is armed at most this far ahead (a later wake arms again).
pub const MAX_WAKE_AHEAD_MS: Ms = 86_400_000;

/// A wake at most a day ahead (one due now stays due now: the runtime
/// arms it a millisecond ahead).
pub fn wake_within(wake: Option<Ms>, now: Ms) -> Option<Ms> {
    wake.map(|w| w.min(now.saturating_add(MAX_WAKE_AHEAD_MS)))
}
