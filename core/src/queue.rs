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

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::permits::PermitId;
use crate::Ms;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePolicy {
    pub max_depth: u32,
    /// Finished jobs stay visible this long.
    pub retention_ms: Ms,
    /// Pause before resubmitting after a transient failure (doubles per attempt).
    pub retry_ms: Ms,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Submitting { permit: PermitId },
    Submitted { generation: String },
    Done { status: String, generation: Option<String>, error: Option<String> },
    Canceled,
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
}

impl Job {
    /// The Sync `Idempotency-Key` of this job's submission.
    pub fn upstream_idempotency_key(&self) -> String {
        format!("sync-governor-{}", self.ticket)
    }

    pub fn status_name(&self) -> &str {
        match &self.state {
            JobState::Queued => "QUEUED",
            JobState::Submitting { .. } => "SUBMITTING",
            JobState::Submitted { .. } => "SUBMITTED",
            JobState::Done { status, .. } => status,
            JobState::Canceled => "CANCELED",
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Submitting { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    AlreadySubmitted,
}

/// The queue. It is persisted one job per storage key, and only the jobs
/// that changed are written: a hand-off writes one small record whatever the
/// queue's depth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    jobs: Vec<Job>,
    /// The client served last (round-robin cursor).
    last_client: Option<String>,
    /// Tickets changed since the last `take_changes`.
    dirty: BTreeSet<String>,
    /// Tickets removed since the last `take_changes`.
    removed: Vec<String>,
    cursor_moved: bool,
}

/// What changed since the last persist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub upserts: Vec<Job>,
    pub removed: Vec<String>,
    /// The round-robin cursor to store, when it moved.
    pub cursor: Option<Option<String>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty() && self.cursor.is_none()
    }
}

impl Queue {
    pub fn depth(&self) -> u32 {
        self.jobs.iter().filter(|j| j.is_waiting()).count() as u32
    }

    pub fn get(&self, ticket: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.ticket == ticket)
    }

    fn get_mut(&mut self, ticket: &str) -> Option<&mut Job> {
        let job = self.jobs.iter_mut().find(|j| j.ticket == ticket)?;
        self.dirty.insert(job.ticket.clone());
        Some(job)
    }

    /// Rebuild from storage (jobs in any order).
    pub fn restore(mut jobs: Vec<Job>, last_client: Option<String>) -> Self {
        jobs.sort_by_key(|j| j.seq);
        Queue { jobs, last_client, ..Queue::default() }
    }

    /// Everything changed since the last call, to persist.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        Changes {
            upserts: self.jobs.iter().filter(|j| dirty.contains(&j.ticket)).cloned().collect(),
            removed: std::mem::take(&mut self.removed),
            cursor: std::mem::take(&mut self.cursor_moved).then(|| self.last_client.clone()),
        }
    }

    pub fn by_idempotency(&self, client: &str, key: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.spec.client == client && j.spec.idempotency_key.as_deref() == Some(key))
    }

    /// Add a job; `None` when the queue is full.
    pub fn enqueue(&mut self, policy: &QueuePolicy, ticket: String, seq: u64, spec: JobSpec, now: Ms) -> Option<&Job> {
        if self.depth() >= policy.max_depth {
            return None;
        }
        self.dirty.insert(ticket.clone());
        self.jobs.push(Job {
            ticket,
            seq,
            spec,
            state: JobState::Queued,
            created_at: now,
            updated_at: now,
            attempts: 0,
            not_before: now,
        });
        self.jobs.last()
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
        if let Some(j) = self.get_mut(ticket) {
            j.state = JobState::Submitting { permit };
            j.updated_at = now;
            j.attempts += 1;
            let client = j.spec.client.clone();
            self.last_client = Some(client);
            self.cursor_moved = true;
        }
    }

    pub fn submitted(&mut self, ticket: &str, generation: String, now: Ms) {
        if let Some(j) = self.get_mut(ticket) {
            j.state = JobState::Submitted { generation };
            j.updated_at = now;
            // Sync has it: the body is no longer needed.
            j.spec.body.clear();
        }
    }

    /// Back to the queue (a 429 or a transient failure), not before `at`.
    pub fn requeue(&mut self, ticket: &str, at: Ms, now: Ms) {
        if let Some(j) = self.get_mut(ticket) {
            j.state = JobState::Queued;
            j.not_before = at;
            j.updated_at = now;
        }
    }

    pub fn fail(&mut self, ticket: &str, status: &str, error: String, now: Ms) {
        if let Some(j) = self.get_mut(ticket) {
            j.state = JobState::Done { status: status.to_owned(), generation: None, error: Some(error) };
            j.updated_at = now;
            j.spec.body.clear();
        }
    }

    /// A generation ended: the job that submitted it takes its status.
    pub fn generation_ended(&mut self, generation: &str, status: &str, now: Ms) {
        for j in &mut self.jobs {
            if matches!(&j.state, JobState::Submitted { generation: g } if g == generation) {
                j.state =
                    JobState::Done { status: status.to_owned(), generation: Some(generation.to_owned()), error: None };
                j.updated_at = now;
                self.dirty.insert(j.ticket.clone());
            }
        }
    }

    pub fn cancel(&mut self, ticket: &str, now: Ms) -> Result<&Job, CancelError> {
        let j = self.get_mut(ticket).ok_or(CancelError::NotFound)?;
        match j.state {
            JobState::Queued => {
                j.state = JobState::Canceled;
                j.updated_at = now;
                j.spec.body.clear();
                Ok(j)
            }
            JobState::Canceled => Ok(j),
            _ => Err(CancelError::AlreadySubmitted),
        }
    }

    /// Forget finished jobs past their retention.
    pub fn gc(&mut self, policy: &QueuePolicy, now: Ms) {
        let expired = |j: &Job| {
            matches!(j.state, JobState::Done { .. } | JobState::Canceled) && j.updated_at + policy.retention_ms <= now
        };
        for j in self.jobs.iter().filter(|j| expired(j)) {
            self.dirty.remove(&j.ticket);
            self.removed.push(j.ticket.clone());
        }
        self.jobs.retain(|j| !expired(j));
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

#[cfg(test)]
mod tests {
    use super::*;

    const P: QueuePolicy = QueuePolicy { max_depth: 10, retention_ms: 1_000, retry_ms: 100 };

    fn spec(client: &str, priority: i64) -> JobSpec {
        JobSpec { client: client.into(), priority, body: "{}".into(), model: None, idempotency_key: None }
    }

    fn q(jobs: &[(&str, i64)]) -> Queue {
        let mut q = Queue::default();
        for (i, (c, p)) in jobs.iter().enumerate() {
            q.enqueue(&P, format!("t{i}"), i as u64, spec(c, *p), 0);
        }
        q
    }

    fn order(q: &Queue) -> Vec<&str> {
        q.service_order().into_iter().map(|j| j.ticket.as_str()).collect()
    }

    #[test]
    fn round_robin_across_clients_priority_within() {
        let mut q = q(&[("a", 0), ("a", 0), ("a", 5), ("b", 0), ("c", 0)]);
        assert_eq!(order(&q), vec!["t2", "t3", "t4", "t0", "t1"]);
        q.start("t2", 1, 1);
        assert_eq!(order(&q), vec!["t3", "t4", "t0", "t1"], "b is next after a");
        q.start("t3", 2, 2);
        assert_eq!(order(&q), vec!["t4", "t0", "t1"]);
        assert_eq!(q.position("t1"), Some(2));
    }

    #[test]
    fn lifecycle_and_cancel() {
        let mut q = q(&[("a", 0), ("a", 0)]);
        q.start("t0", 7, 1);
        assert_eq!(q.stale_submitting().map(|j| j.ticket.as_str()), Some("t0"));
        q.submitted("t0", "g0".into(), 2);
        q.generation_ended("g0", "COMPLETED", 3);
        assert_eq!(q.get("t0").unwrap().status_name(), "COMPLETED");
        assert_eq!(q.cancel("t1", 4).unwrap().status_name(), "CANCELED");
        assert_eq!(q.cancel("t0", 4).unwrap_err(), CancelError::AlreadySubmitted);
        assert_eq!(q.depth(), 0);
        q.gc(&P, 2_000);
        assert!(q.jobs().is_empty());
    }

    #[test]
    fn persists_only_what_changed() {
        let mut q = q(&[("a", 0), ("b", 0)]);
        assert_eq!(q.take_changes().upserts.len(), 2);
        assert!(q.take_changes().is_empty(), "nothing changed since");
        q.start("t1", 9, 5);
        let c = q.take_changes();
        assert_eq!((c.upserts.len(), c.upserts[0].ticket.as_str()), (1, "t1"));
        assert_eq!(c.cursor, Some(Some("b".into())));
        q.fail("t1", "FAILED", "x".into(), 6);
        q.take_changes();
        q.gc(&P, 6 + P.retention_ms);
        assert_eq!(q.take_changes().removed, vec!["t1".to_owned()]);
        let back = Queue::restore(q.jobs().to_vec(), Some("b".into()));
        assert_eq!(back.service_order().len(), 1);
    }

    #[test]
    fn bounded_and_requeue_waits() {
        let mut q = Queue::default();
        for i in 0..10 {
            assert!(q.enqueue(&P, format!("t{i}"), i, spec("a", 0), 0).is_some());
        }
        assert!(q.enqueue(&P, "x".into(), 99, spec("a", 0), 0).is_none());
        q.start("t0", 1, 0);
        q.requeue("t0", 500, 0);
        assert_eq!(q.next_ready(0).map(|j| j.ticket.as_str()), Some("t1"));
        assert_eq!(q.next_not_before(0), Some(500));
    }
}
