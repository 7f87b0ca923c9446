//! Reading wrangler vars: a lookup with bounds and defaults, and the error
//! that names the variable (never a secret's value).

use serde::Deserialize;

use crate::Ms;

/// A configuration problem, naming the variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.problem)
    }
}

pub(super) fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

pub(super) struct Vars<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    pub(super) fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A secret that is set must have a value: an empty one (a blank
    /// `wrangler secret put`, an empty line in `.dev.vars`) would otherwise
    /// read as unset and silently turn a protection off.
    pub(super) fn not_blank(&self, var: &'static str) -> Result<(), ConfigError> {
        match (self.0)(var) {
            Some(v) if v.trim().is_empty() => Err(err(var, "is set but empty: give it a value or remove it")),
            _ => Ok(()),
        }
    }

    /// A number of seconds, in milliseconds (checked: never wraps).
    pub(super) fn seconds(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<Ms, ConfigError> {
        self.number(var, default, min, max)?
            .checked_mul(1_000)
            .ok_or_else(|| err(var, "is too large to count in milliseconds"))
    }

    pub(super) fn number(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else { return Ok(default) };
        let n: u64 = raw.parse().map_err(|_| err(var, format!("expected a whole number, got {raw:?}")))?;
        if n < min || n > max {
            return Err(err(var, format!("must be between {min} and {max}, got {n}")));
        }
        Ok(n)
    }

    pub(super) fn secret_json<T: for<'de> Deserialize<'de>>(
        &self,
        var: &'static str,
        shape: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            // Never echo the value or serde's message (it may quote it).
            Some(raw) => crate::wire::json::from_str(&raw).map(Some).map_err(|_| err(var, format!("must be {shape}"))),
        }
    }
}
