//! The one order of the line: who goes next, and after them who, as the
//! dispatcher serves it. [`AccountState::fair_line`] projects the weighted
//! fair order ([`super::fair`]) forward from the state now: the client with
//! the lowest key goes, its virtual tag moves by `1 / weight` and (for
//! `generate`) its permits by one, then the next lowest, and so on; within
//! a client, priority then arrival. Every reader takes it from here: the
//! dispatcher (the first place whose client's own limits let it go), a held
//! request's turn, load shedding's count of places ahead, a ticket's
//! position and estimated start, the admin list of jobs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::fair::FairKey;
use super::limits::ClientLimit;
use super::line::Place;
use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::queue::job::{Job, JobState};
use crate::rates::class::RateClass;
use crate::Ms;

/// One client's projected state while the line is laid out.
struct Projected<'a> {
    places: Vec<Place<'a>>,
    /// Its limits, resolved once per layout (not once per place).
    limit: ClientLimit,
    next: usize,
    key: FairKey,
    in_use: u32,
    tag: u64,
}

/// Each client's own refusal, asked once per walk of the line (a client
/// with hundreds of places is looked at once): when it may go, if not now.
#[derive(Default)]
struct Refusals<'a>(BTreeMap<&'a str, Option<Ms>>);

impl<'a> Refusals<'a> {
    fn of(&mut self, st: &AccountState, limits: &Limits, now: Ms, client: &'a str, class: &RateClass) -> Option<Ms> {
        let permit = *class == RateClass::Generate;
        *self.0.entry(client).or_insert_with(|| st.client_refusal(limits, now, client, class, permit).map(|r| r.0))
    }
}

impl AccountState {
    /// The line of `class` now (held requests, and for `generate` the queued
    /// jobs that are due), with `extra` (a request not yet in line) placed
    /// where it would go, in the order the places will be served.
    pub(crate) fn fair_line<'a>(
        &'a self,
        limits: &Limits,
        class: &RateClass,
        now: Ms,
        extra: Option<Place<'a>>,
    ) -> Vec<Place<'a>> {
        let mut places = self.places(class, now);
        if let Some(e) = extra.filter(|e| !places.iter().any(|p| p.is(e))) {
            places.push(e);
        }
        let mut by_client: BTreeMap<&str, Vec<Place<'a>>> = BTreeMap::new();
        for p in places {
            by_client.entry(p.client).or_default().push(p);
        }
        let permits = *class == RateClass::Generate;
        let mut clients: Vec<Projected<'a>> = Vec::with_capacity(by_client.len());
        let mut heap = BinaryHeap::new();
        for (client, mut places) in by_client {
            places.sort_by_key(|p| (Reverse(p.priority), p.seq));
            let limit = self.shares.limit(limits, client);
            let in_use = if permits { self.permits.held_by(client) } else { 0 };
            let key = self.fair_key(limits, client, class);
            let tag = key.finish.saturating_sub(super::fair::step(limit.weight()));
            let i = clients.len();
            heap.push(Reverse((key, places[0].seq, i)));
            clients.push(Projected { places, limit, next: 0, key, in_use, tag });
        }
        let mut out = Vec::new();
        while let Some(Reverse((_, _, i))) = heap.pop() {
            let c = &mut clients[i];
            out.push(c.places[c.next]);
            c.next += 1;
            if c.next == c.places.len() {
                continue;
            }
            if permits {
                c.in_use += 1;
                c.tag = c.tag.saturating_add(super::fair::step(c.limit.weight()));
                c.key = super::fair::projected(&c.limit, c.in_use, c.tag);
            }
            heap.push(Reverse((c.key, c.places[c.next].seq, i)));
        }
        out
    }

    /// The first place of the line of `class` whose client's own limits let
    /// it go now: the one the next room goes to.
    pub(crate) fn next_in_line<'a>(
        &'a self,
        limits: &Limits,
        class: &RateClass,
        now: Ms,
        extra: Option<Place<'a>>,
    ) -> Option<Place<'a>> {
        let mut refusals = Refusals::default();
        self.fair_line(limits, class, now, extra)
            .into_iter()
            .find(|p| refusals.of(self, limits, now, p.client, class).is_none())
    }

    /// Every waiting job in line order with its position (0-based, held
    /// requests ahead counted); jobs not yet due (backing off) follow the
    /// line in arrival order.
    pub(crate) fn queue_positions(&self, limits: &Limits, now: Ms) -> Vec<(&Job, u32)> {
        let line = self.fair_line(limits, &RateClass::Generate, now, None);
        let len = line.len();
        let mut out: Vec<(&Job, u32)> =
            line.into_iter().enumerate().filter_map(|(i, p)| p.job.map(|j| (j, i as u32))).collect();
        let later = self.queue.jobs().iter().filter(|j| j.state == JobState::Queued && j.not_before > now);
        out.extend(later.enumerate().map(|(i, j)| (j, (len + i) as u32)));
        out
    }

    /// A waiting job's position in [`AccountState::queue_positions`].
    pub(crate) fn queue_position(&self, limits: &Limits, now: Ms, ticket: &TicketId) -> Option<u32> {
        self.queue_positions(limits, now).into_iter().find(|(j, _)| &j.ticket == ticket).map(|(_, p)| p)
    }

    /// When the first place of the `generate` line may go: a job first goes
    /// when the account has room; a held request first takes the room on its
    /// next look, or its place lapses; a client held back by its own limits
    /// goes when they lift (and the place behind it is looked at).
    pub(crate) fn fair_ready_at(&self, limits: &Limits, now: Ms) -> Option<Ms> {
        let mut ready_at: Option<Ms> = None;
        let soonest = |a: Option<Ms>, b: Ms| Some(a.map_or(b, |a| a.min(b)));
        let mut refusals = Refusals::default();
        for p in self.fair_line(limits, &RateClass::Generate, now, None) {
            if let Some(at) = refusals.of(self, limits, now, p.client, &RateClass::Generate) {
                ready_at = soonest(ready_at, at);
                continue;
            }
            let at = match p.job {
                None => self.line.held.iter().filter(|h| h.ticket == p.seq).map(|h| h.expires_at).min().unwrap_or(now),
                Some(_) => match self.admit_check(
                    limits,
                    now,
                    &AdmitRequest { class: RateClass::Generate, permit: true, ..AdmitRequest::default() },
                ) {
                    Ok(()) => now,
                    Err(r) => r.retry_at_ms,
                },
            };
            ready_at = soonest(ready_at, at);
            break;
        }
        ready_at
    }
}
