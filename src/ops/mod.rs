//! Operations: the admin API and the metrics.

pub mod admin;
