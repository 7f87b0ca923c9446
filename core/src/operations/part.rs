//! The operations' own part of the account, all persisted (as meta rows
//! `overrides`, `paused`, `metrics`, `announced_at`): an operator's overrides
//! of the configured limits and pause, the counters, histograms and series
//! of the metrics and the dashboard, and when the deployment's directory
//! last heard of the account.

use crate::operations::admin::Paused;
use crate::operations::metrics::Metrics;
use crate::operations::overrides::Overrides;
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct Operations {
    /// Operator overrides of the configured limits.
    pub overrides: Overrides,
    /// An operator's pause.
    pub paused: Option<Paused>,
    /// Counters, histograms and the dashboard's series (persisted at most
    /// every few seconds).
    pub metrics: Metrics,
    /// When the directory last heard of the account.
    pub announced_at: Option<Ms>,
}
