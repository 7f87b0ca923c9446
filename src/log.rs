//! Structured logs: one JSON line per decision, per lifecycle event and per
//! admin action, at the level `LOG_LEVEL` allows. Lines carry account names
//! (a managed name or a key's fingerprint), client labels, classes,
//! outcomes, statuses and generation ids — never a key, a secret or a body.

use governor_core::config::LogLevel;

/// A log line being built: a JSON object written field by field.
pub struct Line {
    level: LogLevel,
    text: String,
}

/// A JSON string literal (quoted and escaped).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Line {
    pub fn new(level: LogLevel, event: &str) -> Self {
        let text = format!("{{\"level\":\"{}\",\"event\":{}", level.name(), quoted(event));
        Line { level, text }
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.text.push_str(&format!(",\"{key}\":{}", quoted(value)));
        self
    }

    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.text.push_str(&format!(",\"{key}\":{value}"));
        self
    }

    pub fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Write the line if `threshold` lets its level through.
    pub fn emit(mut self, threshold: LogLevel) {
        if self.level < threshold || threshold == LogLevel::Off {
            return;
        }
        self.text.push('}');
        match self.level {
            LogLevel::Error => worker::console_error!("{}", self.text),
            LogLevel::Warn => worker::console_warn!("{}", self.text),
            _ => worker::console_log!("{}", self.text),
        }
    }
}
