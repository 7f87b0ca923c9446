//! Submitting queued jobs. The object's alarm asks for the next job
//! ([`Command::Dispatch`](crate::wire::contract::Command::Dispatch)); the core
//! picks it in service order when the account has room and nothing held is
//! ahead of it, spends budget and reserves a permit exactly as for a direct
//! request, and marks it SUBMITTING before any byte leaves. The outcome
//! comes back as `Dispatched`. The object runs one dispatch at a time, so a
//! job found SUBMITTING by `Dispatch` was interrupted by a restart: it is
//! sent again with the same Sync `Idempotency-Key`, so Sync creates it at
//! most once.

use crate::account::AccountState;
use crate::admission::request::{AdmitRequest, ClientRef, Reason};
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::queue::job::DispatchBlock;
use crate::queue::job::{Blocked, DispatchJob, DispatchOutcome};
use crate::queue::job::{Job, JobState};
use crate::queue::Queue;
use crate::rates::backoff::full_jitter;
use crate::rates::class::RateClass;
use crate::shares::line::Place;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::Reply;
use crate::Ms;

/// Back in line: as a job that may exist at Sync, or as one that does not.
type Requeue = fn(&mut Queue, &TicketId, Ms, Ms);

fn generate() -> AdmitRequest {
    AdmitRequest { class: RateClass::Generate, permit: true, ..AdmitRequest::default() }
}

/// A queued job as an admission request: a generate with its model, cost and
/// client; its callback token names its ticket.
fn job_request(job: &Job) -> AdmitRequest {
    AdmitRequest {
        model: job.spec.model.clone(),
        cost: job.spec.cost.as_deref().cloned(),
        callback: Some(job.ticket.clone()),
        client: Some(ClientRef { account: String::new(), client: job.spec.client.clone() }),
        ..generate()
    }
}

impl AccountState {
    /// The object found queued work ready and could not send it.
    pub(crate) fn block_dispatch(&mut self, limits: &Limits, reason: Blocked, now: Ms) {
        let strikes = self.sending.block.as_ref().map_or(0, |b| b.strikes).saturating_add(1);
        let base = limits.queue.retry_ms.max(1);
        let cap = limits.reconcile.max_ms.max(base);
        let pause = base.saturating_mul(1u64 << (strikes - 1).min(32)).min(cap);
        self.sending.block = Some(DispatchBlock { reason, strikes, until: now.saturating_add(pause) });
    }

    /// A job found SUBMITTING that no dispatch is sending now: a restart cut
    /// its submission off (the one being sent is `sending.live`).
    pub(crate) fn interrupted_submission(&self) -> Option<&Job> {
        self.queue.stale_submitting().filter(|j| self.sending.live.as_ref() != Some(&j.ticket))
    }

    /// Is sending queued work paused now?
    pub(crate) fn dispatch_blocked(&self, now: Ms) -> bool {
        self.sending.block.as_ref().is_some_and(|b| b.until > now)
    }

    pub(crate) fn dispatch(&mut self, limits: &Limits, store: &dyn Store, now: Ms) -> StoreResult<Reply> {
        if let Some(job) = self.interrupted_submission().filter(|_| self.ops.paused.is_none()) {
            let ticket = job.ticket.clone();
            let JobState::Submitting { permit } = job.state else { return Ok(Reply::Ack { released: 0 }) };
            // Its permit survived the restart with the rest of the state.
            // Sending it again is one more request as Sync counts them.
            let rate = AdmitRequest { class: RateClass::Generate, ..AdmitRequest::default() };
            if self.permits.held().iter().any(|p| p.id == permit) {
                match self.admit_check(limits, now, &rate) {
                    Ok(()) => {
                        self.spend(limits, &RateClass::Generate, now);
                        self.queue.may_exist(&ticket, now);
                        return self.dispatch_job(store, now, &ticket, permit);
                    }
                    Err(r) => {
                        // Not now: the first send may have created it, so the
                        // permit waits for a listing; the job waits its turn.
                        self.permits.mark_unknown(&limits.concurrency, permit, now);
                        self.queue.requeue_unknown(&ticket, r.retry_at_ms, now);
                        return Ok(Reply::Ack { released: 0 });
                    }
                }
            }
            // Its permit is gone (expired before the resume): the first send
            // may still have created it, so it can no longer be canceled.
            self.queue.requeue_unknown(&ticket, now, now);
        }
        // The first in the weighted fair line (a held request first takes
        // the room itself on its next look).
        let Some(job) = self.next_fair_job(limits, now) else { return Ok(Reply::Ack { released: 0 }) };
        let (ticket, created, req) = (job.ticket.clone(), job.created_at, job_request(job));
        // The job's own place in the line (not a held request's with its number).
        let me = Place { client: &job.spec.client, seq: job.seq, priority: job.spec.priority, job: Some(job) };
        // The same admissible -> commit as a direct request.
        if let Err(r) = self.admissible(limits, now, &req, me) {
            if matches!(r.reason, Reason::BudgetExhausted | Reason::CostUnknown) {
                // A budget that cannot cover it: the job waits for the renewal
                // (its ticket's estimatedStartAt says when), others go on.
                self.queue.requeue(&ticket, r.retry_at_ms, now);
            }
            return Ok(Reply::Ack { released: 0 });
        }
        let Some(permit) = self.commit(limits, now, &req, created, None).0 else {
            return Ok(Reply::Ack { released: 0 });
        };
        self.queue.start(&ticket, permit, now);
        self.ops.metrics.queue_wait(now.saturating_sub(created));
        self.dispatch_job(store, now, &ticket, permit)
    }

    /// The job to send, with its body read from its row.
    fn dispatch_job(&mut self, store: &dyn Store, now: Ms, ticket: &TicketId, permit: PermitId) -> StoreResult<Reply> {
        let Some(job) = self.queue.get(ticket) else { return Ok(Reply::Ack { released: 0 }) };
        let idempotency_key = job.upstream_idempotency_key();
        match store.job_body(ticket)? {
            Some(body) => {
                self.sending.live = Some(ticket.clone());
                Ok(Reply::Dispatch(DispatchJob { ticket: ticket.clone(), permit, body, idempotency_key }))
            }
            None => {
                // The body row is gone (a damaged store): the job cannot be sent.
                self.permits.release(permit);
                self.queue.fail(ticket, GenerationStatus::Failed, "the queued body was lost".into(), now);
                Ok(Reply::Ack { released: 0 })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatched(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        ticket: &TicketId,
        permit: PermitId,
        outcome: DispatchOutcome,
    ) -> StoreResult<Reply> {
        if self.sending.live.as_ref() == Some(ticket) {
            self.sending.live = None;
        }
        // Sent again after a restart: the first send may have created it.
        let may_exist = self.queue.get(ticket).is_some_and(|j| j.maybe_created);
        match outcome {
            DispatchOutcome::Created { generation } => {
                // The one bind path: a webhook may have overtaken this answer.
                match self.take_recent_end(&generation) {
                    Some(status) => {
                        self.queue.ended(ticket, generation.clone(), status, now);
                        self.permits.bind(&limits.concurrency, permit, &generation, now);
                        self.permits.release_generation(&generation);
                    }
                    None => {
                        self.queue.submitted(ticket, generation.clone(), now);
                        self.bind(limits, store, permit, &generation, now)?;
                    }
                }
            }
            DispatchOutcome::Ended { generation, status } => {
                // Sync replayed the job's key with a generation that already
                // ended: the job takes its final status, the permit frees now.
                self.take_recent_end(&generation);
                self.queue.ended(ticket, generation.clone(), status, now);
                self.permits.bind(&limits.concurrency, permit, &generation, now);
                self.permits.release_generation(&generation);
            }
            DispatchOutcome::Limited { kind, retry_after_ms } => {
                self.ops.metrics.upstream_429();
                // A job that may exist at Sync keeps its permit until a
                // listing tells, and can no longer be canceled.
                let requeue: Requeue = if may_exist { Queue::requeue_unknown } else { Queue::requeue };
                if may_exist {
                    self.permits.mark_unknown(&limits.concurrency, permit, now);
                } else {
                    self.permits.release(permit);
                }
                match kind {
                    LimitKind::Rate => {
                        let until = self.rates.strike(limits, &RateClass::Generate, now, jitter, retry_after_ms);
                        requeue(&mut self.queue, ticket, until, now);
                    }
                    LimitKind::Concurrency => {
                        self.reconciliation.schedule.suspect(&limits.reconcile, now);
                        requeue(&mut self.queue, ticket, now, now);
                    }
                }
            }
            DispatchOutcome::Refused { status, error } => {
                self.permits.release(permit);
                let end =
                    if status == 422 || status == 400 { GenerationStatus::Rejected } else { GenerationStatus::Failed };
                self.queue.fail(ticket, end, format!("Sync answered {status}: {error}"), now);
            }
            DispatchOutcome::Transient => {
                // Sync may have created it: the permit stays until a listing
                // tells; the job goes again later with the same Sync
                // Idempotency-Key, so Sync creates it at most once.
                self.permits.mark_unknown(&limits.concurrency, permit, now);
                let attempts = self.queue.get(ticket).map_or(1, |j| j.attempts);
                let base = limits.queue.retry_ms;
                let pause = full_jitter(base, base.saturating_mul(256), attempts, jitter).max(base / 2);
                self.queue.requeue_unknown(ticket, now + pause, now);
            }
        }
        Ok(Reply::Ack { released: 0 })
    }

    /// When the queue next needs the alarm: now if a job may go, else when
    /// the blocking limit lifts. (A job interrupted mid-submit by a restart
    /// is resumed by the object when it loads its state.)
    pub(crate) fn queue_wake(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        if self.ops.paused.is_some() {
            return None;
        }
        let wake = self.queue_ready_at(limits, now);
        match &self.sending.block {
            // Nothing can be sent before the block's retry time.
            Some(b) if b.until > now => wake.map(|w| w.max(b.until)),
            _ => wake,
        }
    }

    /// Whether queued work may be sent now (what an alarm now would send),
    /// under the operator's overrides of `base`.
    pub(crate) fn submission_due(&self, base: &Limits, now: Ms) -> bool {
        if self.queue.depth() == 0 {
            return false;
        }
        let due = |limits: &Limits| self.queue_wake(limits, now).is_some_and(|w| w <= now);
        if self.ops.overrides.is_empty() {
            due(base)
        } else {
            due(&self.ops.overrides.apply(base))
        }
    }

    fn queue_ready_at(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        if self.interrupted_submission().is_some() {
            // A submission cut off by a restart: resume it at once.
            return Some(now);
        }
        let later = self.queue.next_not_before(now);
        if !self.queue.has_ready(now) {
            return later;
        }
        let ready_at = self.fair_ready_at(limits, now);
        match (ready_at, later) {
            (Some(r), Some(l)) => Some(r.min(l)),
            (r, l) => r.or(l),
        }
    }
}
