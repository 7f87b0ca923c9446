//! Rates: Sync's request budgets, and what spends from them.
//!
//! | module | one concept |
//! |---|---|
//! | [`class`] | `RateClass`: the budgets as a type, spelled in one place |
//! | [`window`] | exact rate limit: at most N admissions in any span of window + margin (sliding log, optional GCRA pacing) |
//! | [`backoff`] | what an upstream 429 teaches: exponential pause with full jitter |
//! | [`state`] | the account's rates part: windows and backoffs by bucket, their rows and writes |

pub mod backoff;
pub mod class;
pub mod state;
pub mod window;
