//! The admission decision. A request passes when every rate bucket it
//! spends from has room in its span, its class is not paused by an upstream
//! 429, a concurrency permit is free (for generates), and nothing is ahead
//! of it in the account's line: held requests (`Prefer: wait`) and queued
//! jobs are served in arrival order, so a newcomer cannot overtake them.
//! All or nothing: budget is spent and a permit reserved together, or not
//! at all. A client `Idempotency-Key` maps a retry to the first answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::account::{AccountState, CONCURRENCY};
use crate::config::Limits;
use crate::contract::{
    AdmitRequest, Admitted, IdempotencyKey, Reason, Refusal, Rejection, Replay, Reply, HOLD_GRACE_MS,
};
use crate::permits::PermitId;
use crate::queue::JobState;
use crate::Ms;

/// How long a client's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_MS: Ms = 24 * 3_600 * 1_000;

/// A held request's place in line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub ticket: u64,
    pub class: String,
    pub expires_at: Ms,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Remembered {
    /// The first request is on its way to Sync with this permit.
    InFlight {
        permit: PermitId,
    },
    Done {
        status: u16,
        body: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    at: Ms,
    #[serde(flatten)]
    what: Remembered,
}

/// Client idempotency keys of direct generates → their outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyMap(BTreeMap<String, Entry>);

fn scoped(k: &IdempotencyKey) -> String {
    format!("{}\u{1f}{}", k.client, k.key)
}

impl IdempotencyMap {
    fn begin(&mut self, key: &IdempotencyKey, permit: PermitId, now: Ms) {
        self.0.insert(scoped(key), Entry { at: now, what: Remembered::InFlight { permit } });
    }

    /// The request holding `permit` ended: keep Sync's answer for replays,
    /// or forget the key when Sync refused (a retry may try again).
    pub fn settle(&mut self, permit: PermitId, replay: Option<Replay>, now: Ms) {
        self.0.retain(|_, e| e.what != Remembered::InFlight { permit });
        if let Some(r) = replay {
            self.0.insert(scoped(&r.key), Entry { at: now, what: Remembered::Done { status: r.status, body: r.body } });
        }
    }

    pub fn gc(&mut self, now: Ms) {
        self.0.retain(|_, e| e.at + IDEMPOTENCY_TTL_MS > now);
    }
}

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
            let Some(rate) = limits.rate(bucket) else { continue };
            if let Some(Err(until)) = self.backoff.get(bucket).map(|b| b.check(now)) {
                refuse(until, Reason::UpstreamBackoff, bucket, rate.limit);
            }
            if let Err(at) = self.windows.get(bucket).map_or(Ok(()), |w| w.check(rate, now)) {
                refuse(at, Reason::Rate, bucket, rate.limit);
            }
        }
        if req.permit && (!self.permits.has_room(&limits.concurrency) || self.reconcile.is_full(now)) {
            refuse(self.next_permit_free(now), Reason::Concurrency, CONCURRENCY, limits.concurrency.cap);
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
        let policies = self.policies(limits, now, &req.class, req.permit);
        Rejection { reason, policy, limit, retry_at_ms: at, retry_after_ms: at - now, policies, hold: None }
    }

    /// The line position of a request: its held ticket, or the back.
    fn seq_of(&self, hold: Option<u64>) -> u64 {
        hold.filter(|t| self.held.iter().any(|h| h.ticket == *t)).unwrap_or(u64::MAX)
    }

    /// Is anything ahead of `seq` in the line of `class`?
    pub(crate) fn ahead(&self, class: &str, seq: u64, now: Ms) -> bool {
        let held = self.held.iter().any(|h| h.class == class && h.ticket < seq && h.expires_at > now);
        let queued = class == "generate"
            && self.queue.jobs().iter().any(|j| j.state == JobState::Queued && j.seq < seq && j.not_before <= now);
        held || queued
    }

    /// Capacity check plus the line: a request behind others waits its turn.
    fn admissible(&self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Result<(), Rejection> {
        self.admit_check(limits, now, req)?;
        let seq = self.seq_of(req.hold.as_ref().and_then(|h| h.ticket));
        if self.ahead(&req.class, seq, now) {
            let (reason, policy, limit) = if req.permit {
                (Reason::Concurrency, CONCURRENCY.to_owned(), limits.concurrency.cap)
            } else {
                let limit = limits.rate(&req.class).map_or(0, |r| r.limit);
                (Reason::Rate, req.class.clone(), limit)
            };
            // Those ahead take the room there is; the next frees after them.
            let at = if req.permit { self.next_permit_free(now) } else { now + 1_000 };
            return Err(self.rejection(limits, now, req, reason, policy, limit, at.max(now + 1_000)));
        }
        Ok(())
    }

    pub(crate) fn admit(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Reply {
        self.held.retain(|h| h.expires_at > now);
        if let Some(key) = &req.idempotency {
            if let Some(job) = self.queue.by_idempotency(&key.client, &key.key) {
                return Reply::Queued(self.ticket_view(limits, now, job));
            }
            match self.idempotency.0.get(&scoped(key)).map(|e| &e.what) {
                Some(Remembered::Done { status, body }) => {
                    return Reply::Replay(Replay { key: key.clone(), status: *status, body: body.clone() })
                }
                Some(Remembered::InFlight { .. }) => return Reply::Refused(Refusal::InProgress),
                None => {}
            }
        }
        match self.admissible(limits, now, req) {
            Ok(()) => Reply::Admitted(self.commit(limits, now, req)),
            Err(rejection) => self.refuse(limits, now, req, rejection),
        }
    }

    /// Spend the budget and reserve the permit.
    fn commit(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Admitted {
        for bucket in limits.buckets(&req.class) {
            if let Some(rate) = limits.rate(bucket) {
                self.windows.entry(bucket.to_owned()).or_default().record(rate, now);
            }
        }
        if let Some(t) = req.hold.as_ref().and_then(|h| h.ticket) {
            self.held.retain(|h| h.ticket != t);
        }
        let permit = req.permit.then(|| self.permits.reserve(&limits.concurrency, now, req.model.clone()));
        if let (Some(p), Some(key)) = (permit, &req.idempotency) {
            self.idempotency.begin(key, p, now);
        }
        let in_flight = if req.report_in_flight {
            self.permits.held().iter().filter_map(|p| p.generation().map(str::to_owned)).collect()
        } else {
            Vec::new()
        };
        Admitted { permit, policies: self.policies(limits, now, &req.class, req.permit), in_flight }
    }

    /// Not now: queue the job, keep the held request's place, or refuse.
    fn refuse(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest, mut rejection: Rejection) -> Reply {
        if let Some(spec) = &req.enqueue {
            self.next_seq += 1;
            let (seq, ticket) = (self.next_seq, format!("tk_{:x}_{:x}", now, self.next_seq));
            if self.queue.enqueue(&limits.queue, ticket.clone(), seq, spec.clone(), now).is_none() {
                rejection.reason = Reason::QueueFull;
                rejection.policy = "queue".into();
                rejection.limit = limits.queue.max_depth;
                return Reply::Rejected(rejection);
            }
            if req.sealed_key.is_some() {
                self.sealed_key.clone_from(&req.sealed_key);
            }
            return match self.queue.get(&ticket) {
                Some(job) => Reply::Queued(self.ticket_view(limits, now, job)),
                None => Reply::Rejected(rejection),
            };
        }
        if let Some(hold) = &req.hold {
            let expires_at = now + hold.sleep_ms(&rejection) + HOLD_GRACE_MS;
            let existing = hold.ticket.and_then(|t| self.held.iter_mut().find(|h| h.ticket == t));
            let ticket = match existing {
                Some(h) => {
                    h.expires_at = expires_at;
                    h.ticket
                }
                None => {
                    self.next_seq += 1;
                    self.held.push(Held { ticket: self.next_seq, class: req.class.clone(), expires_at });
                    self.next_seq
                }
            };
            rejection.hold = Some(ticket);
        }
        Reply::Rejected(rejection)
    }
}
