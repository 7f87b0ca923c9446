//! Structured logs: one JSON line per decision, per lifecycle event and per
//! admin action, at the level `LOG_LEVEL` allows. Lines carry account names
//! (a managed name or a key's fingerprint), client labels, classes,
//! outcomes, statuses and generation ids — never a key, a secret or a body.

use governor_core::config::LogLevel;
use serde_json::{Map, Value};

/// A log line being built.
pub struct Line(Map<String, Value>);

impl Line {
    pub fn new(level: LogLevel, event: &str) -> Self {
        let mut m = Map::new();
        m.insert("level".into(), level.name().into());
        m.insert("event".into(), event.into());
        Line(m)
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Write the line if `threshold` lets its level through.
    pub fn emit(self, threshold: LogLevel) {
        let level = match self.0.get("level").and_then(Value::as_str) {
            Some("debug") => LogLevel::Debug,
            Some("warn") => LogLevel::Warn,
            Some("error") => LogLevel::Error,
            _ => LogLevel::Info,
        };
        if level < threshold || threshold == LogLevel::Off {
            return;
        }
        let text = Value::Object(self.0).to_string();
        match level {
            LogLevel::Error => worker::console_error!("{text}"),
            LogLevel::Warn => worker::console_warn!("{text}"),
            _ => worker::console_log!("{text}"),
        }
    }
}
