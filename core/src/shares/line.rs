//! The hooks between sharing and admission: a client's own limits in the
//! admission check, the weighted fair order of the line (held requests
//! and queued jobs of `generate`), and counting what a client spends.

use super::fair::{self, FairKey};
use crate::account::AccountState;
use crate::admission::request::{AdmitRequest, Reason};
use crate::config::limits::Limits;
use crate::queue::job::{Job, JobState};
use crate::rates::class::RateClass;
use crate::wire::headers::PolicyState;
use crate::Ms;

/// Policy name of a client's own concurrency cap.
pub const CLIENT_CONCURRENCY: &str = "client_concurrency";

/// One place in the line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place<'a> {
    pub client: &'a str,
    pub seq: u64,
    pub priority: i64,
    /// A queued job (else a held request).
    pub job: Option<&'a Job>,
}

impl Place<'_> {
    /// The same place (a held request's and a job's numbers may meet).
    pub fn is(&self, other: &Place) -> bool {
        self.seq == other.seq && self.job.is_none() == other.job.is_none()
    }
}

/// A client's own refusal: (earliest retry, reason, policy, limit).
pub(crate) type ClientRefusal = (Ms, Reason, String, u32);

impl AccountState {
    /// Would `client`'s own limits let a request of `class` pass now?
    pub(crate) fn client_refusal(
        &self,
        limits: &Limits,
        now: Ms,
        client: &str,
        class: &RateClass,
        permit: bool,
    ) -> Option<ClientRefusal> {
        let mut worst: Option<ClientRefusal> = None;
        if let Err((at, policy, limit)) = self.shares.check_rate(limits, client, class, now) {
            worst = Some((at, Reason::Rate, policy, limit));
        }
        let cap = self.shares.limit(limits, client).concurrency;
        if let Some(cap) = cap.filter(|c| permit && self.permits.held_by(client) >= *c) {
            let at = self.client_permit_free(client, now);
            if worst.as_ref().is_none_or(|w| at > w.0) {
                worst = Some((at, Reason::Concurrency, CLIENT_CONCURRENCY.to_owned(), cap));
            }
        }
        worst
    }

    /// The client's own policies a request spends from, with their state
    /// (for the `RateLimit-Policy` / `RateLimit` fields beside the account's).
    pub(crate) fn client_policies(&self, limits: &Limits, now: Ms, req: &AdmitRequest) -> Vec<PolicyState> {
        let Some(client) = req.client_name() else { return Vec::new() };
        let mut out = Vec::new();
        for b in limits.buckets(&req.class) {
            if let Some((remaining, reset_ms, quota)) = self.shares.rate_state(limits, client, &b, now) {
                let window_s = limits.rate(&b).map(|r| r.window_ms.div_ceil(1_000).max(1));
                out.push(PolicyState { name: super::state::policy_name(&b), quota, window_s, remaining, reset_ms });
            }
        }
        if let Some(cap) = self.shares.limit(limits, client).concurrency.filter(|_| req.permit) {
            let held = self.permits.held_by(client);
            let remaining = cap.saturating_sub(held);
            let reset_ms = if remaining > 0 { 0 } else { self.client_permit_free(client, now).saturating_sub(now) };
            out.push(PolicyState {
                name: CLIENT_CONCURRENCY.to_owned(),
                quota: cap,
                window_s: None,
                remaining,
                reset_ms,
            });
        }
        out
    }

    /// When one of `client`'s permits is expected to free.
    fn client_permit_free(&self, client: &str, now: Ms) -> Ms {
        self.permits
            .held()
            .iter()
            .filter(|p| p.client.as_deref() == Some(client))
            .map(|p| self.durations.expected_end(p.model.as_deref(), p.since, now).min(p.expires.max(now + 1)))
            .min()
            .unwrap_or(now + 1)
    }

    /// Every place in the line of `class` now: held requests, and for
    /// `generate` the queued jobs that may go.
    pub(crate) fn places(&self, class: &RateClass, now: Ms) -> Vec<Place<'_>> {
        let held = self
            .line
            .held
            .iter()
            .filter(|h| h.class == *class && !h.batch && h.expires_at > now)
            .map(|h| Place { client: h.client.as_deref().unwrap_or(""), seq: h.ticket, priority: 0, job: None });
        let mut out: Vec<Place<'_>> = held.collect();
        if *class == RateClass::Generate {
            out.extend(self.queue.jobs().iter().filter(|j| j.state == JobState::Queued && j.not_before <= now).map(
                |j| Place { client: j.spec.client.as_str(), seq: j.seq, priority: j.spec.priority, job: Some(j) },
            ));
        }
        out
    }

    /// The place in line of a request at `seq`.
    pub(crate) fn place_of(req: &AdmitRequest, seq: u64) -> Place<'_> {
        Place { client: req.client_name().unwrap_or(""), seq, priority: 0, job: None }
    }

    /// A client's place in the fair order for `class`.
    pub(crate) fn fair_key(&self, limits: &Limits, client: &str, class: &RateClass) -> FairKey {
        let limit = self.shares.limit(limits, client);
        if *class == RateClass::Generate {
            fair::key(&limit, self.permits.held_by(client), &self.shares.clock, client)
        } else {
            FairKey { over_reservation: true, share: 0, finish: 0 }
        }
    }

    /// Is anything that may go now ahead of `me` in the fair line of `class`?
    /// Places whose client's own limits hold them back are not ahead.
    pub(crate) fn fair_ahead(&self, limits: &Limits, class: &RateClass, me: Place, now: Ms) -> bool {
        self.next_in_line(limits, class, now, Some(me)).is_some_and(|p| !p.is(&me))
    }

    /// Places ahead of `me` in the fair line (an estimate for load shedding).
    pub(crate) fn fair_count_ahead(&self, limits: &Limits, class: &RateClass, me: Place, now: Ms) -> usize {
        let line = self.fair_line(limits, class, now, Some(me));
        line.iter().position(|p| p.is(&me)).unwrap_or(line.len())
    }

    /// The queued job to submit next: the first place in the fair line whose
    /// client's limits let it go, if that place is a queued job (a held
    /// request first in line takes the room itself on its next look).
    pub(crate) fn next_fair_job(&self, limits: &Limits, now: Ms) -> Option<&Job> {
        self.next_in_line(limits, &RateClass::Generate, now, None).and_then(|p| p.job)
    }

    /// `client` was admitted for `class` now: count it toward the client's
    /// own rates and the fair order.
    pub(crate) fn client_served(&mut self, limits: &Limits, client: &str, class: &RateClass, now: Ms) {
        let mut journal = Vec::new();
        self.shares.spend(limits, client, class, now, &mut journal);
        for w in journal {
            self.journal(w);
        }
        if *class == RateClass::Generate {
            let weight = self.shares.limit(limits, client).weight();
            let waiting: Vec<String> = self.places(class, now).iter().map(|p| p.client.to_owned()).collect();
            self.shares.clock.served(client, weight, waiting.iter().map(String::as_str));
        }
    }
}
