//! Operations: what an operator sees and sets on an account.
//!
//! | module | one concept |
//! |---|---|
//! | [`admin`] | the operator's commands and replies, the pause, as data |
//! | [`ops`] | the operator's commands on an account: limits, pause, queue, permits, metrics |
//! | [`overrides`] | per-account limits set at runtime, and where each effective value came from |
//! | [`metrics`] | counters, histograms, the 15-minute series and wait percentiles; Prometheus text |
//! | [`drained`] | the drained probe: deliveries, submissions and listings pending, and when each is due (from the wake's state) |

pub mod admin;
pub mod drained;
pub mod metrics;
pub mod ops;
pub mod overrides;
