//! One ledger row: one generation job, from the request that asked for it
//! to its end, with what it was estimated at and what it settled at.

use serde::{Deserialize, Serialize};

use crate::budget::{CostSource, Estimate, MicroUsd, Reservation};
use crate::ids::GenerationId;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::Ms;

/// How a job ended: Sync's terminal status, or the governor's knowledge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FinalStatus {
    /// Sync's terminal status (`COMPLETED`, `FAILED`, ...).
    Sync(GenerationStatus),
    /// Sync refused the create (nothing was created): `REFUSED`.
    Refused,
    /// A queued job that expired before it could be sent: `EXPIRED`.
    Expired,
    /// The permit ended without the governor learning the outcome: `UNKNOWN`.
    Unknown,
}

impl From<String> for FinalStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "REFUSED" => FinalStatus::Refused,
            "EXPIRED" => FinalStatus::Expired,
            "UNKNOWN" => FinalStatus::Unknown,
            _ => FinalStatus::Sync(GenerationStatus::from(s)),
        }
    }
}

impl From<FinalStatus> for String {
    fn from(s: FinalStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl FinalStatus {
    pub fn as_str(&self) -> &str {
        match self {
            FinalStatus::Sync(s) => s.as_str(),
            FinalStatus::Refused => "REFUSED",
            FinalStatus::Expired => "EXPIRED",
            FinalStatus::Unknown => "UNKNOWN",
        }
    }
}

/// One generation job. Times are epoch ms; `None` until it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRow {
    /// The ledger's own sequence: the order of rows and the paging cursor.
    pub id: u64,
    /// The queued job's ticket, or the client's `Idempotency-Key`.
    #[serde(default)]
    pub key: Option<String>,
    pub client: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub generation: Option<GenerationId>,
    pub received: Ms,
    #[serde(default)]
    pub admitted: Option<Ms>,
    #[serde(default)]
    pub submitted: Option<Ms>,
    #[serde(default)]
    pub ended: Option<Ms>,
    #[serde(default)]
    pub status: Option<FinalStatus>,
    /// Sync's `outputDuration`, in milliseconds.
    #[serde(default)]
    pub output_ms: Option<u64>,
    #[serde(default)]
    pub estimate: Option<Estimate>,
    #[serde(default)]
    pub settled: Option<MicroUsd>,
    #[serde(default)]
    pub settled_from: Option<CostSource>,
    /// Time held in line (`Prefer: wait`) or queued (`respond-async`).
    #[serde(default)]
    pub waited_ms: Ms,
    #[serde(default)]
    pub upstream_429s: u32,
    /// What the job reserved in the budgets (released or settled at its end).
    #[serde(default)]
    pub reservation: Option<Reservation>,
    /// The permit it holds while it runs (internal).
    #[serde(default)]
    pub permit: Option<PermitId>,
}

impl LedgerRow {
    pub fn new(id: u64, client: &str, received: Ms) -> LedgerRow {
        LedgerRow {
            id,
            key: None,
            client: client.to_owned(),
            model: None,
            generation: None,
            received,
            admitted: None,
            submitted: None,
            ended: None,
            status: None,
            output_ms: None,
            estimate: None,
            settled: None,
            settled_from: None,
            waited_ms: 0,
            upstream_429s: 0,
            reservation: None,
            permit: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.ended.is_none()
    }

    /// Bytes the row occupies in storage, roughly.
    pub fn bytes(&self) -> u64 {
        let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        (self.client.len()
            + s(&self.key)
            + s(&self.model)
            + self.generation.as_ref().map_or(0, |g| g.as_str().len())
            + 160) as u64
    }
}
