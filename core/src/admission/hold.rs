//! A request not admitted now: the queue takes it (`Prefer: respond-async`),
//! the line keeps its place (`Prefer: wait`), or it is refused, shed when
//! its expected wait is longer than it will wait.

use crate::account::AccountState;
use crate::admission::request::Held;
use crate::admission::request::MAX_HELD;
use crate::admission::request::{AdmitRequest, Reason, Rejection, HOLD_GRACE_MS};
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::queue::QueueFull;
use crate::wire::contract::Reply;
use crate::Ms;

impl AccountState {
    /// Not now: queue the job, keep the held request's place, or refuse.
    pub(crate) fn refuse(&mut self, limits: &Limits, now: Ms, req: &AdmitRequest, mut rejection: Rejection) -> Reply {
        if let Some(spec) = &req.enqueue {
            let seq = self.line.number();
            // The caller's random id; without one (native tests, old callers),
            // the old numbering (guessable: the Worker always sends one).
            let ticket = match req.ticket_id.as_ref().filter(|t| t.is_random() && self.queue.get(t).is_none()) {
                Some(t) => t.clone(),
                None => TicketId::numbered(now, seq),
            };
            match self.queue.enqueue(&limits.queue, ticket.clone(), seq, spec.clone(), now) {
                Ok(_) => {
                    self.ops.metrics.queued();
                    if self.lane_wants(limits, req) {
                        self.lane_enqueued(&ticket);
                    }
                }
                Err(full) => {
                    self.ops.metrics.refused(&req.class, Reason::QueueFull.name(), now);
                    rejection.reason = Reason::QueueFull;
                    (rejection.policy, rejection.limit) = match full {
                        QueueFull::Depth => ("queue".into(), limits.queue.max_depth),
                        QueueFull::Bytes => {
                            ("queue_bytes".into(), u32::try_from(limits.queue.max_bytes).unwrap_or(u32::MAX))
                        }
                    };
                    // Room comes back as the line moves: a job leaves it at the
                    // rate the account admits generations.
                    let at = self.next_permit_free(now).max(now + 1_000);
                    (rejection.retry_at_ms, rejection.retry_after_ms) = (at, at - now);
                    return Reply::Rejected(rejection);
                }
            }
            if req.sealed_key.is_some() {
                self.sending.sealed_key.clone_from(&req.sealed_key);
            }
            return match self.queue.get(&ticket) {
                Some(job) => Reply::Queued(self.ticket_view(limits, now, job)),
                None => Reply::Rejected(rejection),
            };
        }
        let full_line = self.line.held.len() >= MAX_HELD && req.hold.as_ref().is_none_or(|h| h.ticket.is_none());
        // A budget renews at midnight UTC: longer than any hold.
        let budget = matches!(rejection.reason, Reason::BudgetExhausted | Reason::CostUnknown);
        if let Some(hold) = req.hold.as_ref().filter(|_| !full_line && !budget) {
            // Past its bound the line is longer than anyone waits: shed.
            let line_full =
                self.line_ahead(&req.class, self.seq_of(hold.ticket), now) > crate::admission::shed::MAX_AHEAD;
            let shed = self.shed_estimate(limits, now, req, &rejection);
            if let Some(expected) = shed.or(line_full.then_some(crate::admission::shed::MAX_ESTIMATE_MS)) {
                // Longer than the client will wait: say so now, with the estimate.
                if let Some(t) = hold.ticket {
                    self.line.leave(t);
                }
                self.ops.metrics.shed();
                if line_full {
                    rejection.reason = Reason::LineFull;
                }
                self.ops.metrics.refused(&req.class, rejection.reason.name(), now);
                rejection.retry_after_ms =
                    expected.max(rejection.retry_after_ms).min(crate::admission::shed::MAX_ESTIMATE_MS);
                rejection.retry_at_ms = now + rejection.retry_after_ms;
                return Reply::Rejected(rejection);
            }
            let expires_at = now + hold.sleep_ms(&rejection) + HOLD_GRACE_MS;
            let existing = hold.ticket.and_then(|t| self.line.held.iter_mut().find(|h| h.ticket == t));
            let ticket = match existing {
                Some(h) => {
                    h.expires_at = expires_at;
                    h.ticket
                }
                None => {
                    let ticket = self.line.number();
                    let client = req.client_name().map(str::to_owned);
                    self.line.held.push(Held {
                        ticket,
                        class: req.class.clone(),
                        expires_at,
                        since: now,
                        batch: req.batch,
                        client,
                    });
                    self.ops.metrics.held(&req.class, now);
                    ticket
                }
            };
            rejection.hold = Some(ticket);
            return Reply::Rejected(rejection);
        }
        self.ops.metrics.refused(&req.class, rejection.reason.name(), now);
        Reply::Rejected(rejection)
    }

    /// The expected wait of a held request when it is longer than what is
    /// left of its wait (load shedding), else `None`. Only estimates that
    /// rest on facts count: a rate limit's slots, and concurrency once
    /// generation durations have been observed (the prior is a guess);
    /// a pause has no known end.
    pub(crate) fn shed_estimate(&self, limits: &Limits, now: Ms, req: &AdmitRequest, r: &Rejection) -> Option<Ms> {
        let hold = req.hold.as_ref()?;
        if r.reason == Reason::Paused {
            return None;
        }
        let trust_permit = !req.permit || self.durations.observed();
        let seq = self.seq_of(hold.ticket);
        let mut expected = self.expected_wait(limits, now, req, seq, req.permit && trust_permit);
        if trust_permit || r.reason != Reason::Concurrency {
            expected = expected.max(r.retry_after_ms);
        }
        (expected > hold.remaining_ms).then_some(expected)
    }
}
