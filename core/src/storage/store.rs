//! The account's storage, as the core sees it: typed tables read through the
//! [`Store`] trait and changed only by the [`Write`]s that
//! [`apply`](crate::account::apply) returns.
//!
//! | table | one row per | in memory |
//! |---|---|---|
//! | `meta` | small scalar (counters, backoff, durations, schedule, cursor) | all |
//! | `admissions` | admission counted in a rate span (class, time) | all (≤ limit per class) |
//! | `permits` | held concurrency permit | all (≤ cap + adopted) |
//! | `idempotency` | client `Idempotency-Key` and its outcome | in-flight ones only |
//! | `jobs` | queued job's metadata and state | waiting ones only |
//! | `job_bodies` | a waiting job's request body | never (read at dispatch) |
//! | `outbox` | relay delivery (URL, headers, body) | schedule only (no body) |
//! | `relayed` | (generation, status) already relayed, for a TTL | never (read by key) |
//! | `ledger` | generation job: its times, status, estimated and settled cost | open rows only |
//!
//! The Durable Object implements [`Store`] over its SQLite storage; the
//! in-memory [`MemStore`](crate::storage::mem::MemStore) lets native tests run whole histories and restart
//! them (drop the account, reload from the store).

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::lifecycle::permits::{Permit, PermitId};
use crate::lifecycle::status::GenerationStatus;
use crate::queue::job::Job;
use crate::rates::class::RateClass;
use crate::relay::delivery::Delivery;
use crate::storage::row::StoreResult;
use crate::Ms;

/// The layout version this core writes.
pub const SCHEMA_VERSION: u32 = 2;

/// A client `Idempotency-Key` (scoped to its client) and what it led to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub at: Ms,
    pub state: IdempotencyState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", try_from = "IdempotencyStateRow")]
pub enum IdempotencyState {
    /// The first request is on its way to Sync with this permit.
    InFlight { permit: PermitId },
    /// Sync's answer. `body` is `None` when it was over the size cap: the
    /// replay then reads the generation back from Sync.
    Done { status: u16, generation: Option<GenerationId>, body: Option<String> },
}

/// [`IdempotencyState`] as stored (tagged by `state`), read flat: serde
/// reads an internally tagged enum by buffering it, machinery this avoids.
#[derive(Deserialize)]
struct IdempotencyStateRow {
    state: String,
    #[serde(default)]
    permit: Option<PermitId>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    generation: Option<GenerationId>,
    #[serde(default)]
    body: Option<String>,
}

impl TryFrom<IdempotencyStateRow> for IdempotencyState {
    type Error = &'static str;

    fn try_from(r: IdempotencyStateRow) -> Result<Self, Self::Error> {
        match (r.state.as_str(), r.permit, r.status) {
            ("in_flight", Some(permit), _) => Ok(IdempotencyState::InFlight { permit }),
            ("done", _, Some(status)) => Ok(IdempotencyState::Done { status, generation: r.generation, body: r.body }),
            _ => Err("not an idempotency state"),
        }
    }
}

impl IdempotencyRecord {
    /// Bytes the record occupies in storage (key and body).
    pub fn bytes(&self) -> u64 {
        let body = match &self.state {
            IdempotencyState::Done { body, generation, .. } => {
                body.as_ref().map_or(0, String::len) + generation.as_ref().map_or(0, |g| g.as_str().len())
            }
            IdempotencyState::InFlight { .. } => 0,
        };
        (self.key.len() + body + 32) as u64
    }
}

/// One change to the tables. Applied in order, all together (the Durable
/// Object applies a command's writes without yielding, so they commit as
/// one transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Meta {
        key: &'static str,
        value: String,
    },
    Admission {
        class: RateClass,
        at: Ms,
    },
    /// Forget admissions of `class` older than `before`.
    PruneAdmissions {
        class: RateClass,
        before: Ms,
    },
    /// Keep only the newest `keep` admissions of `class`.
    TrimAdmissions {
        class: RateClass,
        keep: u32,
    },
    /// Admissions of `class` stored at `from` are at `to` (a stored time
    /// clamped, see [`crate::storage::clamp`]).
    MoveAdmissions {
        class: RateClass,
        from: Ms,
        to: Ms,
    },
    PutPermit(Permit),
    DeletePermit(PermitId),
    PutIdempotency(IdempotencyRecord),
    DeleteIdempotency(String),
    /// A job's metadata and state (never its body).
    PutJob(Job),
    PutJobBody {
        ticket: TicketId,
        body: String,
    },
    DeleteJobBody(TicketId),
    DeleteJob(TicketId),
    PutDelivery(Delivery),
    /// A failed attempt: the row's schedule only (the body is not rewritten).
    RescheduleDelivery {
        id: u64,
        attempts: u32,
        next_at: Ms,
    },
    DeleteDelivery(u64),
    /// This end was put in the outbox: later webhooks for it are dropped.
    PutRelayed {
        generation: GenerationId,
        status: GenerationStatus,
        at: Ms,
    },
    DeleteRelayed {
        generation: GenerationId,
        status: GenerationStatus,
    },
    /// A change to the job ledger ([`crate::ledger`]).
    Ledger(crate::ledger::LedgerWrite),
}

/// The reads the core needs. Loading reads the hot part once; the rest is
/// read by key when a command needs it.
pub trait Store {
    fn meta(&self) -> StoreResult<Vec<(String, String)>>;
    fn admissions(&self) -> StoreResult<Vec<(RateClass, Ms)>>;
    fn permits(&self) -> StoreResult<Vec<Permit>>;
    /// Jobs still QUEUED or SUBMITTING (metadata only).
    fn waiting_jobs(&self) -> StoreResult<Vec<Job>>;
    /// Outbox rows without their bodies.
    fn outbox_schedule(&self) -> StoreResult<Vec<Delivery>>;
    fn in_flight_idempotency(&self) -> StoreResult<Vec<IdempotencyRecord>>;

    fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    /// Up to `limit` records stored before `before`, oldest first.
    fn idempotency_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<IdempotencyRecord>>;
    fn job(&self, ticket: &TicketId) -> StoreResult<Option<Job>>;
    fn job_body(&self, ticket: &TicketId) -> StoreResult<Option<String>>;
    fn job_by_client_key(&self, client: &str, key: &str) -> StoreResult<Option<Job>>;
    fn jobs_by_generation(&self, generation: &GenerationId) -> StoreResult<Vec<Job>>;
    /// Up to `limit` finished jobs last changed before `before`.
    fn finished_jobs_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<TicketId>>;
    fn delivery(&self, id: u64) -> StoreResult<Option<Delivery>>;
    /// When this (generation, status) was relayed, if it is remembered.
    fn relayed(&self, generation: &GenerationId, status: &GenerationStatus) -> StoreResult<Option<Ms>>;
    /// Up to `limit` remembered ends relayed before `before`, oldest first.
    fn relayed_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<(GenerationId, GenerationStatus)>>;
    /// The job ledger's table.
    fn ledger(&self) -> &dyn crate::ledger::LedgerStore;
}
