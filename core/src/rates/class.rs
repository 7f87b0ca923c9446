//! Rate classes as a type, not strings: the one place a class is spelled.
//!
//! A [`RateClass`] names the budget a request spends: `generate`
//! (`POST /v2/generate`), `other` (every other endpoint), or an extra class
//! from `RATE_CLASSES` (which spends `other` too).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ordered by its spelling (as the string keys it replaced were: maps keyed
/// by class keep their order in stored rows and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RateClass {
    Generate,
    #[default]
    Other,
    /// A configured extra class (its name).
    Extra(String),
}

impl RateClass {
    /// Is this a name `RATE_CLASSES` may not take (a built-in class)?
    pub fn is_builtin(name: &str) -> bool {
        !matches!(RateClass::from(name), RateClass::Extra(_))
    }

    pub fn as_str(&self) -> &str {
        match self {
            RateClass::Generate => "generate",
            RateClass::Other => "other",
            RateClass::Extra(name) => name,
        }
    }
}

impl Ord for RateClass {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for RateClass {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl From<&str> for RateClass {
    fn from(s: &str) -> Self {
        match s {
            "generate" => RateClass::Generate,
            "other" => RateClass::Other,
            name => RateClass::Extra(name.to_owned()),
        }
    }
}

impl From<String> for RateClass {
    fn from(s: String) -> Self {
        match s.as_str() {
            "generate" => RateClass::Generate,
            "other" => RateClass::Other,
            _ => RateClass::Extra(s),
        }
    }
}

impl From<RateClass> for String {
    fn from(c: RateClass) -> Self {
        c.as_str().to_owned()
    }
}

impl fmt::Display for RateClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_as_strings() {
        for c in ["generate", "other", "upload"] {
            let class = RateClass::from(c);
            assert_eq!(serde_json::to_string(&class).unwrap(), format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<RateClass>(&format!("\"{c}\"")).unwrap(), class);
        }
        assert_eq!(RateClass::from("generate"), RateClass::Generate);
    }
}
