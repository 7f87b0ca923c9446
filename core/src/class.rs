//! Rate classes and generation statuses as types, not strings.
//!
//! A [`RateClass`] names the budget a request spends: `generate`
//! (`POST /v2/generate`), `other` (every other endpoint), or an extra class
//! from `RATE_CLASSES` (which spends `other` too). A [`GenerationStatus`] is
//! one of Sync's statuses, with the unknown ones kept verbatim.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RateClass {
    Generate,
    #[default]
    Other,
    /// A configured extra class (its name).
    Extra(String),
}

impl RateClass {
    pub fn as_str(&self) -> &str {
        match self {
            RateClass::Generate => "generate",
            RateClass::Other => "other",
            RateClass::Extra(name) => name,
        }
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

impl Deref for RateClass {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for RateClass {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RateClass {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for RateClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of Sync's generation statuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum GenerationStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Rejected,
    Canceled,
    TimedOut,
    /// A status this release does not know, kept as Sync spelled it.
    Unknown(String),
}

impl GenerationStatus {
    pub fn as_str(&self) -> &str {
        match self {
            GenerationStatus::Pending => "PENDING",
            GenerationStatus::Processing => "PROCESSING",
            GenerationStatus::Completed => "COMPLETED",
            GenerationStatus::Failed => "FAILED",
            GenerationStatus::Rejected => "REJECTED",
            GenerationStatus::Canceled => "CANCELED",
            GenerationStatus::TimedOut => "TIMED_OUT",
            GenerationStatus::Unknown(s) => s,
        }
    }

    /// The generation has ended (its concurrency slot is free at Sync).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            GenerationStatus::Completed
                | GenerationStatus::Failed
                | GenerationStatus::Rejected
                | GenerationStatus::Canceled
                | GenerationStatus::TimedOut
        )
    }

    /// The generation holds a concurrency slot at Sync.
    pub fn is_active(&self) -> bool {
        matches!(self, GenerationStatus::Pending | GenerationStatus::Processing)
    }
}

impl From<String> for GenerationStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PENDING" => GenerationStatus::Pending,
            "PROCESSING" => GenerationStatus::Processing,
            "COMPLETED" => GenerationStatus::Completed,
            "FAILED" => GenerationStatus::Failed,
            "REJECTED" => GenerationStatus::Rejected,
            "CANCELED" => GenerationStatus::Canceled,
            "TIMED_OUT" => GenerationStatus::TimedOut,
            _ => GenerationStatus::Unknown(s),
        }
    }
}

impl From<&str> for GenerationStatus {
    fn from(s: &str) -> Self {
        GenerationStatus::from(s.to_owned())
    }
}

impl From<GenerationStatus> for String {
    fn from(s: GenerationStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for GenerationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_statuses_round_trip_as_strings() {
        for c in ["generate", "other", "upload"] {
            let class = RateClass::from(c);
            assert_eq!(serde_json::to_string(&class).unwrap(), format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<RateClass>(&format!("\"{c}\"")).unwrap(), class);
        }
        assert_eq!(RateClass::from("generate"), RateClass::Generate);
        for s in ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "NEW_ONE"] {
            let status = GenerationStatus::from(s);
            assert_eq!(status.as_str(), s);
            assert_eq!(status.is_terminal(), crate::status::is_terminal(s));
            assert_eq!(status.is_active(), crate::status::is_active(s));
        }
    }
}
