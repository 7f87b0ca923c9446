//! Tickets as their clients see them: a job's view with its estimated start,
//! reading and canceling a ticket (another client's ticket is unknown).

use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::queue::job::{Job, JobState, TicketView};
use crate::queue::CancelError;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::time::rfc3339;
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

impl AccountState {
    /// A ticket's view. With `client` (managed mode) a ticket belongs to
    /// the client that queued it: to any other it is unknown (404, so its
    /// existence is not revealed either).
    pub(crate) fn ticket(
        &self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        ticket: &TicketId,
        client: Option<&str>,
    ) -> StoreResult<Reply> {
        Ok(match self.owned_job(store, ticket, client)? {
            Some(job) => Reply::Ticket(self.ticket_view(limits, now, &job)),
            None => Reply::Refused(Refusal::UnknownTicket),
        })
    }

    pub(crate) fn cancel(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        ticket: &TicketId,
        client: Option<&str>,
    ) -> StoreResult<Reply> {
        let Some(job) = self.owned_job(store, ticket, client)? else {
            return Ok(Reply::Refused(Refusal::UnknownTicket));
        };
        Ok(match self.queue.cancel(ticket, now) {
            Ok(job) => Reply::Ticket(self.ticket_view(limits, now, &job)),
            Err(CancelError::AlreadySubmitted) => Reply::Refused(Refusal::AlreadySubmitted),
            // Out of the line already: canceled before (the same answer), or submitted.
            Err(CancelError::NotFound) if job.state == JobState::Canceled => {
                Reply::Ticket(self.ticket_view(limits, now, &job))
            }
            Err(CancelError::NotFound) => Reply::Refused(Refusal::AlreadySubmitted),
        })
    }

    /// A ticket's job, waiting (memory) or finished (its row). With `client`
    /// (managed mode) another client's ticket is unknown.
    pub(crate) fn owned_job(
        &self,
        store: &dyn Store,
        ticket: &TicketId,
        client: Option<&str>,
    ) -> StoreResult<Option<Job>> {
        let job = match self.queue.get(ticket) {
            Some(job) => Some(job.clone()),
            None => store.job(ticket)?,
        };
        Ok(job.filter(|j| client.is_none_or(|c| c == j.spec.client)))
    }

    /// A ticket as its client sees it, with an estimate of when it starts:
    /// the next permit's expected end plus one expected duration per full
    /// round of the cap ahead of it, and no earlier than the rate allows.
    pub(crate) fn ticket_view(&self, limits: &Limits, now: Ms, job: &Job) -> TicketView {
        let position =
            (job.state == JobState::Queued).then(|| self.queue_position(limits, now, &job.ticket).unwrap_or(0));
        self.ticket_view_at(limits, now, job, position)
    }

    /// [`AccountState::ticket_view`] with the job's place in the fair line
    /// (from [`AccountState::queue_positions`]) already known.
    pub(crate) fn ticket_view_at(&self, limits: &Limits, now: Ms, job: &Job, position: Option<u32>) -> TicketView {
        let estimate = position.map(|p| {
            let cap = u64::from(limits.concurrency.cap.max(1));
            let first = if self.permits.has_room(&limits.concurrency) { now } else { self.next_permit_free(now) };
            let by_slots = first + u64::from(p) / cap * self.durations.expected(job.spec.model.as_deref());
            let rate = &limits.generate;
            let by_rate = now + u64::from(p) / u64::from(rate.limit.max(1)) * rate.span_ms();
            rfc3339(by_slots.max(by_rate).max(job.not_before))
        });
        let (generation, error) = match &job.state {
            JobState::Submitted { generation } => (Some(generation.clone()), None),
            JobState::Done { generation, error, .. } => (generation.clone(), error.clone()),
            _ => (None, None),
        };
        TicketView {
            id: job.ticket.clone(),
            status: job.status(),
            position,
            estimated_start_at: estimate,
            generation_id: generation,
            error,
            created_at: rfc3339(job.created_at),
            client: job.spec.client.clone(),
            waiting_for: (job.state == JobState::Queued
                && self.cost_check(limits, job.spec.cost.as_deref(), job.spec.model.as_deref(), now).is_err())
            .then(|| "budget_exhausted".to_owned()),
            batch_id: match &job.state {
                JobState::Batched { batch, .. } => batch.clone(),
                _ => job.batch.clone(),
            },
        }
    }
}
