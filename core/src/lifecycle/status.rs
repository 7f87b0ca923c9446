//! Statuses as types, and the one place they are spelled: Sync's
//! generation statuses ([`GenerationStatus`]), a queue ticket's
//! ([`TicketStatus`]) and a batch's ([`BatchStatus`]).
//!
//! A status is parsed once, where it enters (a Sync response, a webhook, a
//! stored row), and travels typed from there. Sync's answers are hostile
//! input: a status this release does not know is [`GenerationStatus::Unknown`],
//! which is not terminal, so it never frees a permit (the riskier reading:
//! the generation may still hold a slot; a listing that shows it keeps it). Its spelling is kept only when short and plain (so a stored row
//! names the same end again); anything else reads as [`UNRECOGNISED`].

use std::fmt;

use crate::ids::GenerationId;
use serde::{Deserialize, Serialize};

/// The spelling an unknown status that is not short and plain is kept as.
pub const UNRECOGNISED: &str = "UNRECOGNISED";
/// The longest unknown status spelling kept.
const MAX_UNKNOWN_LEN: usize = 32;

/// One of Sync's generation statuses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum GenerationStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Rejected,
    Canceled,
    TimedOut,
    /// A status this release does not know: short and plain ASCII
    /// (`[A-Za-z0-9_]`, at most 32 bytes) as Sync spelled it, else [`UNRECOGNISED`].
    Unknown(String),
}

impl GenerationStatus {
    /// Read a status from the wire (or a stored row).
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => GenerationStatus::Pending,
            "PROCESSING" => GenerationStatus::Processing,
            "COMPLETED" => GenerationStatus::Completed,
            "FAILED" => GenerationStatus::Failed,
            "REJECTED" => GenerationStatus::Rejected,
            "CANCELED" => GenerationStatus::Canceled,
            "TIMED_OUT" => GenerationStatus::TimedOut,
            other => {
                let plain = !other.is_empty()
                    && other.len() <= MAX_UNKNOWN_LEN
                    && other.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                GenerationStatus::Unknown(if plain { other } else { UNRECOGNISED }.to_owned())
            }
        }
    }

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
        match self {
            GenerationStatus::Completed
            | GenerationStatus::Failed
            | GenerationStatus::Rejected
            | GenerationStatus::Canceled
            | GenerationStatus::TimedOut => true,
            // Not known to have ended: the permit stays until a listing tells.
            GenerationStatus::Pending | GenerationStatus::Processing | GenerationStatus::Unknown(_) => false,
        }
    }

    /// The statuses a listing of active generations asks Sync for
    /// (`?status=` of `GET /v2/generations`).
    pub fn active_query() -> String {
        [GenerationStatus::Pending, GenerationStatus::Processing].map(|s| s.as_str().to_owned()).join(",")
    }
}

impl From<String> for GenerationStatus {
    fn from(s: String) -> Self {
        GenerationStatus::parse(&s)
    }
}

impl From<GenerationStatus> for String {
    fn from(s: GenerationStatus) -> Self {
        match s {
            GenerationStatus::Unknown(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for GenerationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queue ticket's status as clients see it: its place in the queue's
/// life, then the generation's final status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketStatus {
    Queued,
    Submitting,
    Submitted,
    Canceled,
    /// Batch-lane work waiting for a batch.
    WaitingForBatch,
    /// In a lane batch (its ticket shows the batch).
    Batched,
    /// The job ended with its generation's (or the governor's) final status.
    Ended(GenerationStatus),
}

impl TicketStatus {
    pub fn as_str(&self) -> &str {
        match self {
            TicketStatus::Queued => "QUEUED",
            TicketStatus::Submitting => "SUBMITTING",
            TicketStatus::Submitted => "SUBMITTED",
            TicketStatus::Canceled => "CANCELED",
            TicketStatus::WaitingForBatch => "WAITING_FOR_BATCH",
            TicketStatus::Batched => "BATCHED",
            TicketStatus::Ended(s) => s.as_str(),
        }
    }
}

impl Serialize for TicketStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TicketStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "QUEUED" => TicketStatus::Queued,
            "SUBMITTING" => TicketStatus::Submitting,
            "SUBMITTED" => TicketStatus::Submitted,
            "CANCELED" => TicketStatus::Canceled,
            "WAITING_FOR_BATCH" => TicketStatus::WaitingForBatch,
            "BATCHED" => TicketStatus::Batched,
            _ => TicketStatus::Ended(GenerationStatus::parse(&s)),
        })
    }
}

/// One of Sync's batch statuses (the Batch API). An unknown one is not
/// terminal: a batch permit is never freed on a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    Pending,
    JobsCreated,
    Processing,
    Completed,
    Failed,
    Unknown,
}

impl BatchStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => BatchStatus::Pending,
            "JOBS_CREATED" => BatchStatus::JobsCreated,
            "PROCESSING" => BatchStatus::Processing,
            "COMPLETED" => BatchStatus::Completed,
            "FAILED" => BatchStatus::Failed,
            _ => BatchStatus::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "PENDING",
            BatchStatus::JobsCreated => "JOBS_CREATED",
            BatchStatus::Processing => "PROCESSING",
            BatchStatus::Completed => "COMPLETED",
            BatchStatus::Failed => "FAILED",
            BatchStatus::Unknown => UNRECOGNISED,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, BatchStatus::Completed | BatchStatus::Failed)
    }

    /// The statuses a listing of open batches asks for (`GET /v2/batch?status=`).
    pub fn open_query() -> String {
        [BatchStatus::Pending, BatchStatus::JobsCreated, BatchStatus::Processing].map(BatchStatus::as_str).join(",")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub id: GenerationId,
    pub status: GenerationStatus,
    /// Sync's `outputDuration` in milliseconds, when the body had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_as_strings() {
        for s in ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "NEW_ONE"] {
            let status = GenerationStatus::parse(s);
            assert_eq!(status.as_str(), s);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<GenerationStatus>(&format!("\"{s}\"")).unwrap(), status);
        }
        let terminal = ["COMPLETED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT"];
        for s in terminal {
            assert!(GenerationStatus::parse(s).is_terminal());
        }
        for s in ["PENDING", "PROCESSING"] {
            assert!(!GenerationStatus::parse(s).is_terminal());
        }
        assert_eq!(GenerationStatus::active_query(), "PENDING,PROCESSING");
    }

    #[test]
    fn unknown_statuses_are_hostile_input() {
        // Never terminal: never frees a permit (a listing keeps it as active).
        for s in ["NEW_ONE", "completed", "", "x".repeat(33).as_str(), "A B", "\u{202e}FAILED", "FAILED\n"] {
            let status = GenerationStatus::parse(s);
            assert!(matches!(status, GenerationStatus::Unknown(_)), "{s:?}");
            assert!(!status.is_terminal(), "{s:?}");
            assert!(status.as_str().len() <= MAX_UNKNOWN_LEN);
        }
        assert_eq!(GenerationStatus::parse(&"x".repeat(10_000)).as_str(), UNRECOGNISED);
        assert_eq!(GenerationStatus::parse("A B").as_str(), UNRECOGNISED);
        assert_eq!(GenerationStatus::parse("completed").as_str(), "completed");
    }

    #[test]
    fn ticket_statuses_spell_as_before() {
        for (t, s) in [
            (TicketStatus::Queued, "\"QUEUED\""),
            (TicketStatus::Submitting, "\"SUBMITTING\""),
            (TicketStatus::Submitted, "\"SUBMITTED\""),
            (TicketStatus::Canceled, "\"CANCELED\""),
            (TicketStatus::Ended(GenerationStatus::Completed), "\"COMPLETED\""),
            (TicketStatus::Ended(GenerationStatus::Rejected), "\"REJECTED\""),
        ] {
            assert_eq!(serde_json::to_string(&t).unwrap(), s);
            assert_eq!(serde_json::from_str::<TicketStatus>(s).unwrap(), t);
        }
    }
}
