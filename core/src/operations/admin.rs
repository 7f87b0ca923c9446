//! The operator's commands on an account and their answers, as data: the
//! command, the reply (the response's body), the pause and its view, the
//! queue as a list, the pause body's parse. [`crate::operations::ops`]
//! applies them.

use serde::{Deserialize, Serialize};

use crate::ids::TicketId;
use crate::operations::overrides::LimitView;
use crate::time::rfc3339;
use crate::Ms;

/// Jobs listed at most by one `Queue` call (the depth is always given).
pub const MAX_LISTED_JOBS: usize = 500;
/// Longest pause reason kept.
pub(crate) const MAX_REASON_CHARS: usize = 200;
/// `Retry-After` of a pause when the operator gives none.
pub const DEFAULT_PAUSE_RETRY_S: u64 = 60;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminCommand {
    /// The body of `PUT .../limits`, read here (see [`crate::operations::overrides::LimitsPatch::parse`]).
    SetLimits {
        body: String,
    },
    ClearLimits,
    /// The body of `POST .../pause`, read here (see [`parse_pause`]).
    Pause {
        body: String,
    },
    Resume,
    Queue,
    Cancel {
        ticket: TicketId,
    },
    Drain,
    /// A generation id, or `permit-<n>` for a permit not yet bound.
    ReleasePermit {
        target: String,
    },
    Metrics,
    /// `PUT .../clients/{client}/limits` (the body, read by
    /// [`crate::shares`]) or, without a body, `DELETE`.
    ClientLimits {
        client: String,
        #[serde(default)]
        body: Option<String>,
    },
    /// `PUT .../budget` (the body, read by [`crate::budget::admin`]) or,
    /// without a body, `DELETE`.
    Budget {
        #[serde(default)]
        body: Option<String>,
    },
}

/// Force-released keyed creates awaiting a listing, at most.
pub(crate) const MAX_RELEASED_KEYS: usize = 1_024;

/// An admin command's answer: serialised, it is the response's body.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AdminReply {
    Limits { limits: Vec<LimitView> },
    Jobs(JobsView),
    Paused { paused: Option<PauseView> },
    Cancelled { cancelled: u32 },
    Released { released: u32 },
    Client { client: crate::shares::status::ClientView },
    Costs { costs: crate::budget::view::CostsView },
}

/// An operator's pause, as stored (`meta` row `paused`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub since: Ms,
    pub retry_after_s: u64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseView {
    pub since: String,
    pub retry_after_seconds: u64,
    pub reason: Option<String>,
}

impl Paused {
    pub fn view(&self) -> PauseView {
        PauseView { since: rfc3339(self.since), retry_after_seconds: self.retry_after_s, reason: self.reason.clone() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobsView {
    pub depth: u32,
    pub jobs: Vec<JobView>,
}

/// A waiting job as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub ticket: TicketId,
    pub client: String,
    pub priority: i64,
    pub status: crate::lifecycle::status::TicketStatus,
    pub age_ms: Ms,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_start_at: Option<String>,
}

/// The body of `POST .../pause`: `{"retryAfterSeconds"?: n, "reason"?: "..."}`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PauseBody {
    #[serde(default)]
    retry_after_seconds: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Read a pause body (empty is fine): `(retry_after_s, reason)`.
pub fn parse_pause(body: &[u8]) -> Result<(u64, Option<String>), String> {
    let b: PauseBody = if body.iter().all(u8::is_ascii_whitespace) {
        PauseBody::default()
    } else if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("expected a JSON object {\"retryAfterSeconds\"?, \"reason\"?}".into());
    } else {
        serde_json::from_slice(body).map_err(|_| "expected {\"retryAfterSeconds\"?: 1..86400, \"reason\"?: string}")?
    };
    let retry_after_s = b.retry_after_seconds.unwrap_or(DEFAULT_PAUSE_RETRY_S);
    if !(1..=86_400).contains(&retry_after_s) {
        return Err("retryAfterSeconds must be between 1 and 86400".into());
    }
    let reason = b.reason.map(|r| r.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect());
    Ok((retry_after_s, reason))
}
