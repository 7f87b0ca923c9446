//! A queued job as stored (its spec, its state, its row) and as it travels:
//! the job handed to the object to submit, how submitting it ended, the
//! ticket its client sees, why queued work cannot be sent. The queue's
//! data, below the store that keeps it.

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::lifecycle::answer::CreateAnswer;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::{GenerationStatus, TicketStatus};
use crate::Ms;

/// The largest body a queued job may have: one row of the account's store
/// (SQLite refuses a value past 2 MB; a body is written as one row, so the
/// cap sits well below it). A larger `Prefer: respond-async` create is 413.
pub const MAX_QUEUED_BODY_BYTES: u64 = crate::storage::row::MAX_ROW_BYTES;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePolicy {
    pub max_depth: u32,
    /// Finished jobs stay visible this long.
    pub retention_ms: Ms,
    /// Pause before resubmitting after a transient failure (doubles per attempt).
    pub retry_ms: Ms,
    /// Body bytes of all waiting jobs together.
    pub max_bytes: u64,
}

/// What a client asks to queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub client: String,
    #[serde(default)]
    pub priority: i64,
    /// The generate body to send (already pointing `webhookUrl` at the relay).
    pub body: String,
    #[serde(default)]
    pub model: Option<String>,
    /// The client's own `Idempotency-Key`, if any.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// What the job costs and which budgets it spends ([`crate::budget`]):
    /// checked and reserved when the job is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Box<crate::budget::estimate::CostRequest>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", try_from = "JobStateRow")]
pub enum JobState {
    Queued,
    Submitting {
        permit: PermitId,
    },
    Submitted {
        generation: GenerationId,
    },
    Done {
        status: GenerationStatus,
        generation: Option<GenerationId>,
        error: Option<String>,
    },
    Canceled,
    /// Batch-lane work waiting for a batch ([`crate::batch::lane`]).
    Lane,
    /// In a lane batch: its create (`batch: None`) or the batch Sync made.
    Batched {
        batch_permit: crate::batch::BatchPermitId,
        batch: Option<String>,
    },
}

/// [`JobState`] as stored (tagged by `state`), read flat: serde reads an
/// internally tagged enum by buffering it, machinery this avoids.
#[derive(Deserialize)]
struct JobStateRow {
    state: String,
    #[serde(default)]
    permit: Option<PermitId>,
    #[serde(default)]
    generation: Option<GenerationId>,
    #[serde(default)]
    status: Option<GenerationStatus>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    batch_permit: Option<crate::batch::BatchPermitId>,
    #[serde(default)]
    batch: Option<String>,
}

impl TryFrom<JobStateRow> for JobState {
    type Error = &'static str;

    fn try_from(r: JobStateRow) -> Result<Self, Self::Error> {
        Ok(match (r.state.as_str(), r.permit, r.generation, r.status) {
            ("queued", ..) => JobState::Queued,
            ("submitting", Some(permit), ..) => JobState::Submitting { permit },
            ("submitted", _, Some(generation), _) => JobState::Submitted { generation },
            ("done", _, generation, Some(status)) => JobState::Done { status, generation, error: r.error },
            ("canceled", ..) => JobState::Canceled,
            ("lane", ..) => JobState::Lane,
            ("batched", ..) => match r.batch_permit {
                Some(batch_permit) => JobState::Batched { batch_permit, batch: r.batch },
                None => return Err("not a job state"),
            },
            _ => return Err("not a job state"),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub ticket: TicketId,
    pub seq: u64,
    pub spec: JobSpec,
    pub state: JobState,
    pub created_at: Ms,
    pub updated_at: Ms,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub not_before: Ms,
    /// Size of the job's body (kept in its own row).
    #[serde(default)]
    pub bytes: u64,
    /// A submission got no usable answer: Sync may have created it, so it
    /// can no longer be canceled (it goes again with the same Sync key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub maybe_created: bool,
    /// The lane batch Sync made for it, kept once it is out of the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// The namespace of the Sync `Idempotency-Key`s the queue submits with.
/// Reserved: a client key in it could claim (or pre-empt) a queued job's
/// submission, so it is refused.
pub const RESERVED_IDEMPOTENCY_PREFIX: &str = "sync-governor-";

/// Is a client's `Idempotency-Key` in the reserved namespace? (Compared in
/// any case: nothing says Sync's keys are case-sensitive.)
pub fn is_reserved_idempotency_key(key: &str) -> bool {
    let key = key.trim().as_bytes();
    let prefix = RESERVED_IDEMPOTENCY_PREFIX.as_bytes();
    key.len() >= prefix.len() && key[..prefix.len()].eq_ignore_ascii_case(prefix)
}

impl Job {
    /// The Sync `Idempotency-Key` of this job's submission.
    pub fn upstream_idempotency_key(&self) -> String {
        format!("{RESERVED_IDEMPOTENCY_PREFIX}{}", self.ticket)
    }

    pub fn status(&self) -> TicketStatus {
        match &self.state {
            JobState::Queued => TicketStatus::Queued,
            JobState::Submitting { .. } => TicketStatus::Submitting,
            JobState::Submitted { .. } => TicketStatus::Submitted,
            JobState::Done { status, .. } => TicketStatus::Ended(status.clone()),
            JobState::Canceled => TicketStatus::Canceled,
            JobState::Lane => TicketStatus::WaitingForBatch,
            JobState::Batched { .. } => TicketStatus::Batched,
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Submitting { .. } | JobState::Lane | JobState::Batched { .. })
    }

    /// Out of the line for good (submitted, done or canceled).
    pub fn is_finished(&self) -> bool {
        !self.is_waiting()
    }
}

/// How submitting a queued job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchOutcome {
    Created {
        generation: GenerationId,
    },
    /// Sync answered with a generation that had already ended, in its final
    /// `status` (the job's `Idempotency-Key` replayed an old create): the
    /// permit frees at once, as for a direct create (`settle::ended_in_create`).
    Ended {
        generation: GenerationId,
        status: GenerationStatus,
    },
    Limited {
        kind: LimitKind,
        retry_after_ms: Option<Ms>,
    },
    /// Sync refused the job for good (a 4xx other than 429).
    Refused {
        status: u16,
        error: String,
    },
    /// 5xx or unreachable: try again later with the same idempotency key.
    Transient,
}

impl From<CreateAnswer> for DispatchOutcome {
    /// Sync's answer to a queued job's submission, as read for every create.
    fn from(answer: CreateAnswer) -> Self {
        match answer {
            CreateAnswer::Created { generation, ended: None } => DispatchOutcome::Created { generation },
            CreateAnswer::Created { generation, ended: Some(o) } => {
                DispatchOutcome::Ended { generation, status: o.status }
            }
            CreateAnswer::Limited { kind, retry_after_ms } => DispatchOutcome::Limited { kind, retry_after_ms },
            CreateAnswer::Refused { status, error } => DispatchOutcome::Refused { status, error },
            CreateAnswer::Unknown => DispatchOutcome::Transient,
        }
    }
}

/// A queued job to submit now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchJob {
    pub ticket: TicketId,
    pub permit: PermitId,
    pub body: String,
    pub idempotency_key: String,
}

/// A queue ticket as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub id: TicketId,
    pub status: TicketStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_start_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<GenerationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub client: String,
    /// `budget_exhausted`: the job waits for its budget's renewal
    /// (`estimatedStartAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The lane batch that holds (or held) the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// The one field of a [`TicketView`] the Worker reads (for `Location`).
#[derive(Debug, Deserialize)]
pub struct TicketLocation {
    pub id: TicketId,
}

/// Why the queue cannot send its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// The object has no Sync key for the account: a pass-through key not
    /// presented since the runtime restarted (and no sealed copy), or an
    /// account no longer in `SYNC_API_KEYS`.
    NoSyncKey,
}

/// Queued work the object could not send (see [`Blocked`]): it tries again
/// at `until`, after `QUEUE_RETRY_MS` doubled per strike, at most
/// `RECONCILE_MAX_MS`, rather than at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchBlock {
    pub reason: Blocked,
    pub strikes: u32,
    pub until: Ms,
}
