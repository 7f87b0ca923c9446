//! The admission decision. A request passes when every rate bucket it
//! spends from has room in its span, its class is not paused by an upstream
//! 429, a concurrency permit is free (for generates), and nothing is ahead
//! of it in the account's line: held requests (`Prefer: wait`) and queued
//! jobs are served in arrival order, so a newcomer cannot overtake them.
//! All or nothing: budget is spent and a permit reserved together, or not
//! at all. A client `Idempotency-Key` maps a retry to the first answer.

use crate::account::AccountState;
use crate::admission::request::{AdmitRequest, Admitted, Reason, Rejection};
use crate::config::limits::Limits;
use crate::lifecycle::permits::{PermitId, CONCURRENCY};
use crate::queue::job::JobState;
use crate::rates::class::RateClass;
use crate::shares::line::Place;
use crate::storage::row::StoreResult;
use crate::storage::store::{IdempotencyRecord, IdempotencyState, Store};
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

impl AccountState {
    /// Would a request pass now, capacity-wise? `Err` carries the refusal
    /// that lasts longest (the earliest time at which every limit has room).
    pub(crate) fn admit_check(&self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Result<(), Rejection> {
        let mut refusal: Option<(Ms, Reason, String, u32)> = None;
        let mut refuse = |at: Ms, reason: Reason, policy: &str, limit: u32| {
            if refusal.as_ref().is_none_or(|r| at > r.0) {
                refusal = Some((at, reason, policy.to_owned(), limit));
            }
        };
        for bucket in limits.buckets(&req.class) {
            let Some(rate) = limits.rate(&bucket) else { continue };
            if let Some(Err(until)) = self.rates.backoff.get(&bucket).map(|b| b.check(now)) {
                refuse(until, Reason::UpstreamBackoff, bucket.as_str(), rate.limit);
            }
            let reserve = self.client_reserve(limits, &bucket, req.internal);
            if let Err(at) = self.rates.windows.get(&bucket).map_or(Ok(()), |w| w.check_reserving(rate, now, reserve)) {
                refuse(at, Reason::Rate, bucket.as_str(), rate.limit);
            }
        }
        if req.permit {
            if let Err(b) = self.cost_check(limits, req.cost.as_ref(), req.model.as_deref(), now) {
                refuse(b.retry_at, b.reason, &b.policy, 0);
            }
        }
        let room = self.permits.has_room(&limits.concurrency);
        if req.permit && (!room || self.reconciliation.schedule.is_full(now)) {
            // A permit frees at `next_permit_free`; Sync's 429 is believed until `full_until`.
            let free = if room { now } else { self.next_permit_free(now) };
            refuse(
                free.max(self.reconciliation.schedule.full_until),
                Reason::Concurrency,
                CONCURRENCY,
                limits.concurrency.cap,
            );
        }
        if req.batch && !self.batches.has_room(&limits.batches, now) {
            let cap = self.batches.cap(&limits.batches, now);
            refuse(self.next_batch_free(limits, now), Reason::Concurrency, crate::batch::POLICY, cap);
        }
        // The client's own limits, in the same decision (all or nothing).
        if let Some(client) = req.client_name() {
            if let Some((at, reason, policy, limit)) = self.client_refusal(limits, now, client, &req.class, req.permit)
            {
                refuse(at, reason, &policy, limit);
            }
        }
        match refusal {
            None => Ok(()),
            Some((at, reason, policy, limit)) => Err(self.rejection(limits, now, req, reason, policy, limit, at)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rejection(
        &self,
        limits: &Limits,
        now: Ms,
        req: &AdmitRequest,
        reason: Reason,
        policy: String,
        limit: u32,
        at: Ms,
    ) -> Rejection {
        let at = at.max(now + 1);
        let mut policies = self.policies(limits, now, &req.class, req.permit);
        policies.extend(self.client_policies(limits, now, req));
        Rejection { reason, policy, limit, retry_at_ms: at, retry_after_ms: at - now, policies, hold: None }
    }

    /// The line position of a request: its held ticket, or the back.
    pub(crate) fn seq_of(&self, hold: Option<u64>) -> u64 {
        hold.filter(|t| self.line.held.iter().any(|h| h.ticket == *t)).unwrap_or(u64::MAX)
    }

    /// The earliest a batch permit may free: the next listing of Sync's
    /// batches (or a lease's end), never before a second from now.
    pub(crate) fn next_batch_free(&self, limits: &Limits, now: Ms) -> Ms {
        let listing =
            self.reconciliation.schedule.next_at.filter(|at| *at > now).unwrap_or(now + limits.reconcile.min_ms);
        self.batches.next_expiry().map_or(listing, |e| e.min(listing)).max(now + 1_000)
    }

    /// Is anything ahead of `seq` in the line of `class` (batch creates
    /// wait in a line of their own)?
    pub(crate) fn ahead(&self, class: &RateClass, batch: bool, seq: u64, now: Ms) -> bool {
        let held = self
            .line
            .held
            .iter()
            .any(|h| h.class == *class && h.batch == batch && h.ticket < seq && h.expires_at > now);
        let queued = *class == RateClass::Generate
            && self.queue.jobs().iter().any(|j| j.state == JobState::Queued && j.seq < seq && j.not_before <= now);
        held || queued
    }

    /// Admission's one check, for direct and queued work alike: an
    /// operator's pause, capacity ([`Self::admit_check`]), then the line: a
    /// request behind others waits its turn. `me` is its place in the line
    /// (a held ticket or the back, or a queued job's own place).
    pub(crate) fn admissible(&self, limits: &Limits, now: Ms, req: &AdmitRequest, me: Place) -> Result<(), Rejection> {
        if let Some(p) = &self.ops.paused {
            let at = now + p.retry_after_s.saturating_mul(1_000);
            return Err(self.rejection(limits, now, req, Reason::Paused, "paused".into(), 0, at));
        }
        self.admit_check(limits, now, req)?;
        let behind = if req.batch {
            self.ahead(&req.class, true, me.seq, now)
        } else {
            self.fair_ahead(limits, &req.class, me, now)
        };
        if behind {
            if req.batch {
                let cap = self.batches.cap(&limits.batches, now);
                let at = self.next_batch_free(limits, now);
                return Err(self.rejection(
                    limits,
                    now,
                    req,
                    Reason::Concurrency,
                    crate::batch::POLICY.into(),
                    cap,
                    at,
                ));
            }
            let (reason, policy, limit) = if req.permit {
                (Reason::Concurrency, CONCURRENCY.to_owned(), limits.concurrency.cap)
            } else {
                let limit = limits.rate(&req.class).map_or(0, |r| r.limit);
                (Reason::Rate, req.class.to_string(), limit)
            };
            // Those ahead take the room there is; the next frees after them.
            let at = if req.permit { self.next_permit_free(now) } else { now + 1_000 };
            return Err(self.rejection(limits, now, req, reason, policy, limit, at.max(now + 1_000)));
        }
        Ok(())
    }

    pub(crate) fn admit(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        req: &AdmitRequest,
    ) -> StoreResult<Reply> {
        self.line.expire(now);
        if let Some(c) = &req.client {
            self.shares.learn_account(&c.account);
        }
        if let Some(t) = &req.tally {
            self.ops.metrics.tally(t);
            if t.fail_open > 0 {
                // Requests went to Sync undecided (FAIL_MODE=open): creates
                // among them may hold Sync's slots. List soon and adopt them.
                self.reconciliation.schedule.suspect(&limits.reconcile, now);
            }
        }
        if let Some(spec) = &req.enqueue {
            // A body the store could not hold as one row is refused at the door.
            if spec.body.len() as u64 > crate::queue::job::MAX_QUEUED_BODY_BYTES {
                return Ok(Reply::Refused(Refusal::BodyTooLarge { limit: crate::queue::job::MAX_QUEUED_BODY_BYTES }));
            }
        }
        let mut stale: Option<IdempotencyRecord> = None;
        if let Some(key) = &req.idempotency {
            if let Some(job) = self.queue.by_idempotency(&key.client, &key.key) {
                return Ok(Reply::Queued(self.ticket_view(limits, now, job)));
            }
            if let Some(job) = store.job_by_client_key(&key.client, &key.key)? {
                return Ok(Reply::Queued(self.ticket_view(limits, now, &job)));
            }
            let policy = &limits.idempotency;
            match self.idempotency.lookup(store, key)? {
                // Past its TTL, unless its generation still runs: a retry
                // then still gets the first answer.
                Some(r @ IdempotencyRecord { state: IdempotencyState::Done { .. }, .. })
                    if r.at.saturating_add(policy.ttl_ms) <= now && !self.done_generation_runs(&r) =>
                {
                    stale = Some(r)
                }
                Some(IdempotencyRecord { state: IdempotencyState::Done { status, generation, body }, .. }) => {
                    return Ok(self.replay(limits, now, key.clone(), status, generation, body));
                }
                Some(IdempotencyRecord { state: IdempotencyState::InFlight { permit }, .. }) => {
                    let retry_after_ms = self.in_progress_retry_at(permit, now) - now;
                    return Ok(Reply::Refused(Refusal::InProgress { retry_after_ms }));
                }
                None => {}
            }
            if stale.is_none() && req.permit && !self.idempotency.has_room(policy) {
                let records = self.idempotency.totals.records >= u64::from(policy.max_records);
                let (name, bound) = if records {
                    ("idempotency_records", u64::from(policy.max_records))
                } else {
                    ("idempotency_bytes", policy.max_bytes)
                };
                let mut r = self.rejection(limits, now, req, Reason::IdempotencyFull, name.into(), 0, now + 60_000);
                r.limit = u32::try_from(bound).unwrap_or(u32::MAX);
                self.ops.metrics.refused(&req.class, Reason::IdempotencyFull.name(), now);
                return Ok(Reply::Rejected(r));
            }
        }
        let me = Self::place_of(req, self.seq_of(req.hold.as_ref().and_then(|h| h.ticket)));
        // Batch-lane work waits for a batch, not for a permit (after an operator's pause).
        let decision = if self.ops.paused.is_none() && self.lane_wants(limits, req) {
            Err(self.rejection(limits, now, req, Reason::Concurrency, "batch_lane".into(), 0, now + 1))
        } else {
            self.admissible(limits, now, req, me)
        };
        Ok(match decision {
            // Shadow mode: the refusal is counted, and the request goes.
            Err(r) if limits.shadow && r.reason != Reason::Paused => {
                self.ops.metrics.would_refuse(r.reason.name());
                self.admitted(limits, now, req, stale.as_ref())
            }
            Ok(()) => self.admitted(limits, now, req, stale.as_ref()),
            Err(rejection) => self.refuse(limits, now, req, rejection),
        })
    }

    fn admitted(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest, stale: Option<&IdempotencyRecord>) -> Reply {
        let mut received = now;
        if let Some(t) = req.hold.as_ref().and_then(|h| h.ticket) {
            if let Some(h) = self.line.held.iter().find(|h| h.ticket == t) {
                self.ops.metrics.held_wait(now.saturating_sub(h.since));
                received = h.since;
            }
            self.line.leave(t);
        }
        let (permit, batch_permit) = self.commit(limits, now, req, received, stale);
        let in_flight = if req.report_in_flight {
            self.permits.held().iter().filter_map(|p| p.generation().cloned()).collect()
        } else {
            Vec::new()
        };
        let mut policies = self.policies(limits, now, &req.class, req.permit);
        policies.extend(self.client_policies(limits, now, req));
        Reply::Admitted(Admitted { permit, batch_permit, policies, in_flight, announce: false, provisional: false })
    }

    /// Admission's one commit step, for direct and queued work alike: spend
    /// the budget, reserve the permit (and the batch permit), its cost and
    /// its client's share, all in the same turn. `received` is when the
    /// work arrived (a held request's first call, a queued job's creation).
    pub(crate) fn commit(
        &mut self,
        limits: &Limits,
        now: Ms,
        req: &AdmitRequest,
        received: Ms,
        stale: Option<&IdempotencyRecord>,
    ) -> (Option<PermitId>, Option<crate::batch::BatchPermitId>) {
        self.ops.metrics.admitted(&req.class, now);
        self.spend(limits, &req.class, now);
        let permit = req.permit.then(|| self.permits.reserve(&limits.concurrency, now, req.model.clone()));
        if let Some(p) = permit {
            self.permits.set_callback(p, req.callback.clone());
            self.cost_admitted(limits, req.cost.as_ref(), req.model.as_deref(), p, received, now);
        }
        let batch_permit = req.batch.then(|| self.batches.reserve(&limits.batches, now));
        if let Some(client) = req.client_name().map(str::to_owned) {
            if let Some(p) = permit {
                self.permits.tag(p, Some(&client));
            }
            self.client_served(limits, &client, &req.class, now);
        }
        if let (Some(p), Some(key)) = (permit, &req.idempotency) {
            self.idempotency.begin(key, p, now, stale);
        }
        (permit, batch_permit)
    }
}
