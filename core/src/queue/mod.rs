//! The durable generation queue (`Prefer: respond-async`): jobs the account
//! could not admit yet, stored with the account and submitted by the object
//! itself as permits and tokens free.
//!
//! Service order is the account's weighted fair order across its clients
//! ([`crate::shares::order`]: one client with 500 jobs does not starve
//! another with 1), then by priority (higher first) and arrival within a
//! client. A job goes QUEUED → SUBMITTING (a
//! permit reserved, the request on its way, with a Sync `Idempotency-Key`
//! derived from the ticket so a crash mid-submit cannot create it twice) →
//! SUBMITTED (bound to a generation) → the generation's terminal status.
//!
//! | module | one concept |
//! |---|---|
//! | [`job`] | a queued job as stored and as it travels: spec, state, row, ticket view, dispatch outcome |
//! | [`dispatch`] | submitting queued jobs: pick, record the outcome |
//! | [`sending`] | sending queued work: the sealed key it goes with, what blocks it, the job in flight |
//! | [`ticket`] | a ticket as its client sees it: view, estimate, read, cancel |

pub mod dispatch;
pub mod job;
pub mod sending;
pub mod ticket;

use std::collections::BTreeMap;

use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::queue::job::Job;
use crate::queue::job::JobSpec;
use crate::queue::job::JobState;
use crate::queue::job::QueuePolicy;
use crate::storage::store::Write;
use crate::Ms;

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

    pub fn get(&self, ticket: &TicketId) -> Option<&Job> {
        self.jobs.iter().find(|j| &j.ticket == ticket)
    }

    pub fn last_client(&self) -> Option<&str> {
        self.last_client.as_deref()
    }

    /// Change a waiting job and record its new row.
    pub(crate) fn update(&mut self, ticket: &TicketId, f: impl FnOnce(&mut Job)) -> Option<&Job> {
        let index = self.jobs.iter().position(|j| &j.ticket == ticket)?;
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
    /// not made in the future (see [`crate::storage::clamp`]).
    pub fn clamp_times(&mut self, now: Ms, latest: Ms) {
        for j in &mut self.jobs {
            use crate::storage::bound::at_most;
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
        ticket: TicketId,
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
            batch: None,
        };
        self.bytes += bytes;
        self.writes.push(Write::PutJob(job.clone()));
        self.writes.push(Write::PutJobBody { ticket, body });
        self.jobs.push(job);
        Ok(&self.jobs[self.jobs.len() - 1])
    }

    /// Queued jobs round-robin over clients (starting after the one served
    /// last), priority then arrival within a client: the order of releases
    /// before weighted fair queueing, kept to read their stored cursor. The
    /// line's order is [`crate::shares::order`]'s.
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

    /// A job left SUBMITTING by a runtime that died mid-submit.
    pub fn stale_submitting(&self) -> Option<&Job> {
        self.jobs.iter().find(|j| matches!(j.state, JobState::Submitting { .. }))
    }

    pub fn start(&mut self, ticket: &TicketId, permit: PermitId, now: Ms) {
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
    pub fn submitted(&mut self, ticket: &TicketId, generation: GenerationId, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Submitted { generation };
            j.updated_at = now;
        });
    }

    /// Sync created it, and it was already seen ending (its webhook came
    /// before the answer): it leaves the line with its final status.
    pub fn ended(&mut self, ticket: &TicketId, generation: GenerationId, status: GenerationStatus, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Done { status, generation: Some(generation), error: None };
            j.updated_at = now;
        });
    }

    /// Back to the queue after a send whose outcome is unknown: it may
    /// exist at Sync, so it goes again (same key) and cannot be canceled.
    pub fn requeue_unknown(&mut self, ticket: &TicketId, at: Ms, now: Ms) {
        self.back_in_line(ticket, at, now, true);
    }

    /// Back to the queue (a 429 or a transient failure), not before `at`.
    pub fn requeue(&mut self, ticket: &TicketId, at: Ms, now: Ms) {
        self.back_in_line(ticket, at, now, false);
    }

    /// A submission is sent again after a restart cut it off: the first
    /// send may have created the generation.
    pub fn may_exist(&mut self, ticket: &TicketId, now: Ms) {
        self.update(ticket, |j| {
            j.maybe_created = true;
            j.updated_at = now;
        });
    }

    fn back_in_line(&mut self, ticket: &TicketId, at: Ms, now: Ms, maybe_created: bool) {
        self.update(ticket, |j| {
            j.state = JobState::Queued;
            j.not_before = at;
            j.updated_at = now;
            j.maybe_created |= maybe_created;
        });
    }

    pub fn fail(&mut self, ticket: &TicketId, status: GenerationStatus, error: String, now: Ms) {
        self.update(ticket, |j| {
            j.state = JobState::Done { status, generation: None, error: Some(error) };
            j.updated_at = now;
        });
    }

    /// Cancel a job still QUEUED; returns its final row.
    pub fn cancel(&mut self, ticket: &TicketId, now: Ms) -> Result<Job, CancelError> {
        let job = self.get(ticket).ok_or(CancelError::NotFound)?;
        if !matches!(job.state, JobState::Queued | JobState::Lane) || job.maybe_created {
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
