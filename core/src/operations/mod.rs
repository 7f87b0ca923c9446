//! Operations: what an operator sees and sets on an account.
//!
//! | module | one concept |
//! |---|---|
//! | [`prometheus`] | the metrics snapshot the Worker renders, and its Prometheus text |
//! | [`series`] | the dashboard's 15 minutes per class, the recent waits |
//! | [`admin`] | the operator's commands and replies, the pause, as data |
//! | [`ops`] | the operator's commands on an account: limits, pause, queue, permits, metrics |
//! | [`part`] | the operations' part of the account: overrides, pause, metrics, the directory's last word |
//! | [`overrides`] | per-account limits set at runtime, and where each effective value came from |
//! | [`metrics`] | counters and histograms, what admission and the relay record, and their row |
//! | [`drained`] | the drained probe: deliveries, submissions and listings pending, and when each is due (from the wake's state) |

pub mod admin;
pub mod drained;
pub mod metrics;
pub mod ops;
pub mod overrides;
pub mod part;
pub mod prometheus;
pub mod series;
