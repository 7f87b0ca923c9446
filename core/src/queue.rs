//! The durable generation queue (`Prefer: respond-async`): jobs the account
//! could not admit yet, stored with the account and submitted by the object
//! itself as permits and tokens free.
//!
//! Service order is round-robin across the account's clients (so one client
//! with 500 jobs does not starve another with 1), then by priority (higher
//! first) and arrival within a client. A job goes QUEUED → SUBMITTING (a
//! permit reserved, the request on its way, with a Sync `Idempotency-Key`
//! derived from the ticket so a crash mid-submit cannot create it twice) →
//! SUBMITTED (bound to a generation) → the generation's terminal status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::permits::PermitId;
use crate::status::{GenerationStatus, TicketStatus};
use crate::store::Write;
use crate::Ms;

/// The largest body a queued job may have: one row of the account's store
/// (SQLite refuses a value past 2 MB; a body is written as one row, so the
/// cap sits well below it). A larger `Prefer: respond-async` create is 413.
pub const MAX_QUEUED_BODY_BYTES: u64 = crate::store::MAX_ROW_BYTES;

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
    pub cost: Option<Box<crate::contract::CostRequest>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", try_from = "JobStateRow")]
pub enum JobState {
    Queued,
    Submitting { permit: PermitId },
    Submitted { generation: String },
    Done { status: GenerationStatus, generation: Option<String>, error: Option<String> },
    Canceled,
}

/// [`JobState`] as stored (tagged by `state`), read flat: serde reads an
/// internally tagged enum by buffering it, machinery this avoids.
#[derive(Deserialize)]
struct JobStateRow {
    state: String,
    #[serde(default)]
    permit: Option<PermitId>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    status: Option<GenerationStatus>,
    #[serde(default)]
    error: Option<String>,
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
            _ => return Err("not a job state"),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub ticket: String,
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

/// A ticket id from 128 random bits the caller drew: unguessable, and
/// inside Sync's `Idempotency-Key` alphabet once prefixed.
pub fn ticket_id(random: [u8; 16]) -> String {
    format!("tk_{}", hex::encode(random))
}

/// Does a caller-supplied ticket id look like one of [`ticket_id`]'s?
pub fn is_ticket_id(id: &str) -> bool {
    id.strip_prefix("tk_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
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
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Submitting { .. })
    }

    /// Out of the line for good (submitted, done or canceled).
    pub fn is_finished(&self) -> bool {
        !self.is_waiting()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    AlreadySubmitted,
}

/// Which queue bound a new job would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFull {
    Depth,
    Bytes,
}

/// The waiting part of the queue (QUEUED and SUBMITTING jobs, metadata
/// only): what admission and dispatch need. Bodies live in the
/// `job_bodies` table and are read only to submit; finished jobs live in the
/// `jobs` table only, read by ticket. Every change is a [`Write`] of the
/// one job it touched: a hand-off writes one small row whatever the depth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    jobs: Vec<Job>,
    /// The client served last (round-robin cursor).
    last_client: Option<String>,
    /// Body bytes of the waiting jobs.
    bytes: u64,
    writes: Vec<Write>,
}

impl Queue {
    pub fn depth(&self) -> u32 {
        self.jobs.len() as u32
    }

    /// Body bytes of the waiting jobs (what the queue's byte bound counts).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get(&self, ticket: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.ticket == ticket)
    }

    pub fn last_client(&self) -> Option<&str> {
        self.last_client.as_deref()
    }

    /// Change a waiting job and record its new row.
    fn update(&mut self, ticket: &str, f: impl FnOnce(&mut Job)) -> Option<&Job> {
        let index = self.jobs.iter().position(|j| j.ticket == ticket)?;
        f(&mut self.jobs[index]);
        let job = self.jobs[index].clone();
        if job.is_waiting() {
            self.writes.push(Write::PutJob(job));
            self.jobs.get(index)
        } else {
            // Out of the line: the row keeps its final state, the body goes.
            self.bytes = self.bytes.saturating_sub(job.bytes);
            self.writes.push(Write::PutJob(job.clone()));
            self.writes.push(Write::DeleteJobBody(job.ticket.clone()));
            self.jobs.remove(index);
            None
        }
    }

    /// Rebuild from storage (waiting jobs in any order).
    pub fn restore(mut jobs: Vec<Job>, last_client: Option<String>) -> Self {
        jobs.retain(Job::is_waiting);
        jobs.sort_by_key(|j| j.seq);
        let bytes = jobs.iter().map(|j| j.bytes).sum();
        Queue { jobs, last_client, bytes, writes: Vec::new() }
    }

    /// Stored times read back: a waiting job is due by `latest` and was
    /// not made in the future (see [`crate::clamp`]).
    pub fn clamp_times(&mut self, now: Ms, latest: Ms) {
        for j in &mut self.jobs {
            use crate::bound::at_most;
            let clamped = (at_most(j.not_before, latest), at_most(j.created_at, now), at_most(j.updated_at, now));
            if clamped != (j.not_before, j.created_at, j.updated_at) {
                (j.not_before, j.created_at, j.updated_at) = clamped;
                self.writes.push(Write::PutJob(j.clone()));
            }
        }
    }

    /// The rows changed since the last call.
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    pub fn by_idempotency(&self, client: &str, key: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.spec.client == client && j.spec.idempotency_key.as_deref() == Some(key))
    }

    /// Add a job at the back of its client's line; its body goes to its own
    /// row. Refused when the queue is at its depth or byte bound.
    pub fn enqueue(
        &mut self,
        policy: &QueuePolicy,
        ticket: String,
        seq: u64,
        mut spec: JobSpec,
        now: Ms,
    ) -> Result<&Job, QueueFull> {
        if self.depth() >= policy.max_depth {
            return Err(QueueFull::Depth);
        }
        let body = std::mem::take(&mut spec.body);
        let bytes = body.len() as u64;
        if self.bytes.saturating_add(bytes) > policy.max_bytes {
            return Err(QueueFull::Bytes);
        }
        let job = Job {
            ticket: ticket.clone(),
            seq,
            spec,
            state: JobState::Queued,
            created_at: now,
            updated_at: now,
            attempts: 0,
            not_before: now,
            bytes,
            maybe_created: false,
        };
        self.bytes += bytes;
        self.writes.push(Write::PutJob(job.clone()));
        self.writes.push(Write::PutJobBody { ticket, body });
        self.jobs.push(job);
        Ok(&self.jobs[self.jobs.len() - 1])
    }

    /// Queued jobs in service order: round-robin over clients (starting after
    /// the one served last), priority then arrival within a client.
    pub fn service_order(&self) -> Vec<&Job> {
        let mut by_client: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for j in self.jobs.iter().filter(|j| j.state == JobState::Queued) {
            by_client.entry(j.spec.client.as_str()).or_default().push(j);
        }
        for jobs in by_client.values_mut() {
            jobs.sort_by_key(|j| (std::cmp::Reverse(j.spec.priority), j.seq));
        }
        let mut clients: Vec<&str> = by_client.keys().copied().collect();
        if let Some(last) = &self.last_client {
            let split = clients.iter().position(|c| *c > last.as_str()).unwrap_or(clients.len());
            clients.rotate_left(split);
        }
        let rounds = by_client.values().map(Vec::len).max().unwrap_or(0);
        let mut order = Vec::new();
        for round in 0..rounds {
            for c in &clients {
                if let Some(j) = by_client.get(c).and_then(|v| v.get(round)) {
                    order.push(*j);
                }
            }
        }
        order
    }

    /// The next job to submit, if one is ready.
    pub fn next_ready(&self, now: Ms) -> Option<&Job> {
        self.service_order().into_iter().find(|j| j.not_before <= now)
    }

    /// 0-based place in the service order.
    pub fn position(&self, ticket: &str) -> Option<usize> {
        self.service_order().iter().position(|j| j.ticket == ticket)
    }

    /// A job left SUBMITTING by a runtime that died mid-submit.
    pub fn stale_submitting(&self) -> Option<&Job> {
        self.jobs.iter().find(|j| matches!(j.state, JobState::Submitting { .. }))
    }

    pub fn start(&mut self, ticket: &str, permit: PermitId, now: Ms) {
        let client = self.get(ticket).map(|j| j.spec.client.clone());
        self.update(ticket, |j| {
            j.state = JobState::Submitting { permit };
            j.updated_at = now;
            j.attempts += 1;
        });
        if client.is_some() {
            self.last_client = client;
        }
    }

    /// Sync has it: the job leaves the line (and its body the store).
    pub fn submitted(&mut self, ticket: &str, generation: String, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Submitted { generation };
            j.updated_at = now;
        });
    }

    /// Sync created it, and it was already seen ending (its webhook came
    /// before the answer): it leaves the line with its final status.
    pub fn ended(&mut self, ticket: &str, generation: String, status: GenerationStatus, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Done { status, generation: Some(generation), error: None };
            j.updated_at = now;
        });
    }

    /// Back to the queue after a send whose outcome is unknown: it may
    /// exist at Sync, so it goes again (same key) and cannot be canceled.
    pub fn requeue_unknown(&mut self, ticket: &str, at: Ms, now: Ms) {
        self.back_in_line(ticket, at, now, true);
    }

    /// Back to the queue (a 429 or a transient failure), not before `at`.
    pub fn requeue(&mut self, ticket: &str, at: Ms, now: Ms) {
        self.back_in_line(ticket, at, now, false);
    }

    /// A submission is sent again after a restart cut it off: the first
    /// send may have created the generation.
    pub fn may_exist(&mut self, ticket: &str, now: Ms) {
        self.update(ticket, |j| {
            j.maybe_created = true;
            j.updated_at = now;
        });
    }

    fn back_in_line(&mut self, ticket: &str, at: Ms, now: Ms, maybe_created: bool) {
        self.update(ticket, |j| {
            j.state = JobState::Queued;
            j.not_before = at;
            j.updated_at = now;
            j.maybe_created |= maybe_created;
        });
    }

    pub fn fail(&mut self, ticket: &str, status: GenerationStatus, error: String, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Done { status, generation: None, error: Some(error) };
            j.updated_at = now;
        });
    }

    /// Cancel a job still QUEUED; returns its final row.
    pub fn cancel(&mut self, ticket: &str, now: Ms) -> Result<Job, CancelError> {
        let job = self.get(ticket).ok_or(CancelError::NotFound)?;
        if job.state != JobState::Queued || job.maybe_created {
            return Err(CancelError::AlreadySubmitted);
        }
        let mut done = job.clone();
        done.state = JobState::Canceled;
        done.updated_at = now;
        self.update(ticket, |j| {
            j.state = JobState::Canceled;
            j.updated_at = now;
        });
        Ok(done)
    }

    /// The earliest `not_before` in the future among queued jobs.
    pub fn next_not_before(&self, now: Ms) -> Option<Ms> {
        self.jobs.iter().filter(|j| j.state == JobState::Queued && j.not_before > now).map(|j| j.not_before).min()
    }

    pub fn has_ready(&self, now: Ms) -> bool {
        self.jobs.iter().any(|j| j.state == JobState::Queued && j.not_before <= now)
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }
}
