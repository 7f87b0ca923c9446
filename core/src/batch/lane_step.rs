//! The batch lane's rules (issue 18), as the driver asks for them: when a
//! batch goes (500 lane jobs waiting, or 20 once arrivals paused; a batch permit free,
//! the `other` token there), when a batch in flight is read, when its
//! result is read, and what each answer does to the jobs in it. Nothing
//! admitted is lost: a job is a queue row in every state (`lane`,
//! `batched`, then its generation's end or back to the direct queue), and
//! a batch whose create was cut off by a restart or got no answer keeps
//! its batch permit until a listing binds it to the batch Sync made (or
//! proves it made none: its jobs then go direct, as ones that may exist).

use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::batch::lane::{LaneBatch, LaneCommand, LaneStep, MAX_LANE_BATCHES};
use crate::batch::{BatchHolder, BatchPermitId};
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::queue::job::JobState;
use crate::rates::class::RateClass;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::Reply;
use crate::Ms;

/// Where a job of a lane batch goes when the batch cannot hold it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Back {
    /// Back to wait for the next batch (nothing was created).
    Lane,
    /// To the direct queue; `true`: Sync may have created it.
    Direct(bool),
}

impl AccountState {
    /// `SYNC_BATCH=on`, not turned off for the account, not shadow mode.
    pub(crate) fn lane_open(&self, limits: &Limits) -> bool {
        limits.batches.lane.enabled && self.lane.off.is_none() && !limits.shadow
    }

    /// Does this request queue a job for the lane? Not while the account's
    /// key is unproven: that work goes as direct work (admitted and sent
    /// when the cap allows, which proves the key), as a provisional
    /// account arms no alarm to run the lane.
    pub(crate) fn lane_wants(&self, limits: &Limits, req: &AdmitRequest) -> bool {
        let Some(spec) = &req.enqueue else { return false };
        if req.key_unproven {
            return false;
        }
        self.lane_open(limits) && (req.lane || self.shares.limit(limits, &spec.client).lane_batch())
    }

    /// A job just queued for the lane waits for a batch.
    pub(crate) fn lane_enqueued(&mut self, ticket: &TicketId) {
        self.queue.update(ticket, |j| j.state = JobState::Lane);
    }

    pub(super) fn lane_move(&mut self, tickets: &[TicketId], back: Back, now: Ms) {
        for t in tickets {
            self.queue.update(t, |j| {
                match back {
                    Back::Lane => j.state = JobState::Lane,
                    Back::Direct(maybe) => {
                        j.state = JobState::Queued;
                        j.not_before = now;
                        j.maybe_created |= maybe;
                    }
                }
                j.updated_at = now;
            });
        }
        if matches!(back, Back::Direct(_)) {
            self.lane.totals.fell_back += tickets.len() as u64;
        }
    }

    /// The tickets of a lane batch (its jobs name its permit).
    pub(super) fn lane_tickets(&self, permit: BatchPermitId) -> Vec<TicketId> {
        let of = |j: &&crate::queue::job::Job| matches!(&j.state, JobState::Batched { batch_permit, .. } if *batch_permit == permit);
        self.queue.jobs().iter().filter(of).map(|j| j.ticket.clone()).collect()
    }

    /// A lane batch leaves the lane; its jobs go `back`.
    pub(super) fn lane_drop(&mut self, permit: BatchPermitId, back: Back, now: Ms) {
        let tickets = self.lane_tickets(permit);
        self.lane_move(&tickets, back, now);
        self.lane.batches.retain(|b| b.permit != permit);
    }

    /// Keep the lane's state true to the rest: work for a closed lane goes
    /// direct, a create cut off or unanswered follows its batch permit,
    /// a batch past its lease and lane work that waited too long go direct.
    pub(super) fn lane_tidy(&mut self, limits: &Limits, now: Ms) {
        if !self.lane_open(limits) {
            let waiting: Vec<TicketId> = self.lane_waiting().map(|j| j.ticket.clone()).collect();
            self.lane_move(&waiting, Back::Direct(false), now);
        }
        for b in self.lane.batches.clone() {
            if b.batch.is_some() {
                if b.since.saturating_add(limits.batches.lease_ttl_ms) <= now {
                    self.lane_drop(b.permit, Back::Direct(true), now);
                }
                continue;
            }
            if self.lane.live == Some(b.permit) {
                continue;
            }
            match self.batches.held().iter().find(|p| p.id == b.permit).map(|p| p.holder.clone()) {
                // A listing bound the lost create to the batch it made.
                Some(BatchHolder::Batch(id)) => self.lane_bound(limits, b.permit, id, now),
                // Cut off by a restart: wait for a listing to tell.
                Some(BatchHolder::Request) => {
                    if self.batches.held().iter().any(|p| p.id == b.permit && p.unknown_since.is_none()) {
                        self.batches.mark_unknown(&limits.batches, b.permit, now);
                        self.reconciliation.schedule.arm(&limits.reconcile, now);
                    }
                }
                // A listing found nothing it made (or its lease ended).
                None => self.lane_drop(b.permit, Back::Direct(true), now),
            }
        }
        let policy = &limits.batches.lane;
        let waiting = self.lane_waiting().count() as u32;
        let oldest = self.lane_waiting().map(|j| j.created_at).min();
        if waiting < policy.min_jobs && oldest.is_some_and(|t| t.saturating_add(policy.max_wait_ms) <= now) {
            let tickets: Vec<TicketId> = self.lane_waiting().map(|j| j.ticket.clone()).collect();
            self.lane_move(&tickets, Back::Direct(false), now);
        }
    }

    /// The lane batch of `permit` is Sync's batch `id`.
    pub(super) fn lane_bound(&mut self, limits: &Limits, permit: BatchPermitId, id: String, now: Ms) {
        let tickets = self.lane_tickets(permit);
        for t in &tickets {
            self.queue.update(t, |j| {
                j.state = JobState::Batched { batch_permit: permit, batch: Some(id.clone()) };
                j.batch = Some(id.clone());
                j.updated_at = now;
            });
        }
        if let Some(b) = self.lane.batches.iter_mut().find(|b| b.permit == permit) {
            b.batch = Some(id);
            b.jobs = tickets.len() as u32;
            b.next_at = now.saturating_add(limits.batches.lane.poll_ms);
        }
        self.lane.totals.batches += 1;
        self.lane.totals.jobs += tickets.len() as u64;
    }

    /// Spend one `other` token for a lane call, if there is one (and a
    /// batch permit, for a create).
    fn lane_spend(&mut self, limits: &Limits, now: Ms, batch: bool) -> bool {
        let req = AdmitRequest { class: RateClass::Other, batch, ..AdmitRequest::default() };
        if self.admit_check(limits, now, &req).is_err() {
            return false;
        }
        self.spend(limits, &RateClass::Other, now);
        true
    }

    pub(crate) fn lane_command(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        command: LaneCommand,
    ) -> StoreResult<Reply> {
        match command {
            LaneCommand::Next => return self.lane_next(limits, store, now).map(Reply::Lane),
            LaneCommand::Created { permit, answer } => self.lane_created(limits, now, jitter, permit, answer),
            LaneCommand::Seen { batch, seen } => self.lane_seen(limits, now, &batch, seen),
            LaneCommand::Result { batch, body } => self.lane_result(limits, now, &batch, body),
        }
        Ok(Reply::Ack { released: 0 })
    }

    fn lane_next(&mut self, limits: &Limits, store: &dyn Store, now: Ms) -> StoreResult<LaneStep> {
        self.lane_tidy(limits, now);
        let policy = limits.batches.lane.clone();
        let room = self.lane.batches.len() < MAX_LANE_BATCHES && self.lane.live.is_none();
        if self.lane_open(limits) && room && self.lane_ready_at(limits).is_some_and(|t| t <= now) {
            let probe = AdmitRequest { class: RateClass::Other, batch: true, ..AdmitRequest::default() };
            if self.ops.paused.is_none() && self.admit_check(limits, now, &probe).is_ok() {
                let pick = self.lane_pick(limits, store)?;
                self.lane_move(&pick.unbatchable, Back::Direct(false), now);
                if pick.tickets.len() as u32 >= policy.min_jobs && self.lane_spend(limits, now, true) {
                    let permit = self.batches.reserve(&limits.batches, now);
                    for t in &pick.tickets {
                        self.queue.update(t, |j| {
                            j.state = JobState::Batched { batch_permit: permit, batch: None };
                            j.updated_at = now;
                        });
                    }
                    let count = pick.tickets.len() as u32;
                    let next_at = now.saturating_add(policy.poll_ms);
                    let batch =
                        LaneBatch { permit, batch: None, since: now, jobs: count, next_at, ended: false, misses: 0 };
                    self.lane.batches.push(batch);
                    self.lane.live = Some(permit);
                    return Ok(LaneStep::Submit { permit, lines: pick.lines, count });
                }
            }
        }
        for b in self.lane.batches.iter_mut().filter(|b| b.batch.is_none() && b.next_at <= now) {
            // Looked at again later (a listing binds it or proves it made nothing).
            b.next_at = now.saturating_add(policy.poll_ms);
        }
        let due = self.lane.batches.iter().find(|b| b.batch.is_some() && b.next_at <= now).cloned();
        let Some(b) = due else { return Ok(LaneStep::Idle) };
        if !self.lane_spend(limits, now, false) {
            // No `other` token now: read it once the rate allows.
            let probe = AdmitRequest { class: RateClass::Other, ..AdmitRequest::default() };
            let at = self.admit_check(limits, now, &probe).err().map_or(now + 1_000, |r| r.retry_at_ms.max(now + 1));
            if let Some(r) = self.lane.batches.iter_mut().find(|r| r.permit == b.permit) {
                r.next_at = at;
            }
            return Ok(LaneStep::Idle);
        }
        let backoff = policy.poll_ms.saturating_mul(1 << b.misses.min(4));
        if let Some(r) = self.lane.batches.iter_mut().find(|r| r.permit == b.permit) {
            r.next_at = now.saturating_add(backoff);
        }
        let batch = b.batch.unwrap_or_default();
        Ok(if b.ended { LaneStep::Fetch { batch } } else { LaneStep::Poll { batch } })
    }
}
