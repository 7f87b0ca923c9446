//! Generations ending: permits freed by terminal statuses, relays queued
//! and deduplicated, durations learned, queued jobs given their end, a
//! create bound to its generation (or freed at once when it ended first).

use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::lifecycle::permits::{Holder, Permit, PermitId};
use crate::lifecycle::status::GenerationStatus;
use crate::lifecycle::status::Observed;
use crate::rates::class::RateClass;
use crate::storage::row::StoreResult;
use crate::storage::store::{Store, Write};
use crate::Ms;

use super::RECENT_ENDS;
use crate::account::AccountState;

impl AccountState {
    /// Release the permits of generations seen in a terminal status, learn
    /// how long they took, and give queued jobs that submitted them their
    /// final status.
    pub(crate) fn release_terminal(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        seen: &[Observed],
        now: Ms,
    ) -> StoreResult<Vec<Permit>> {
        let ended: Vec<Observed> = seen.iter().filter(|o| o.status.is_terminal()).cloned().collect();
        self.jobs_ended(store, &ended, now)?;
        self.costs_saw(limits, &ended, now);
        let mut freed: Vec<Permit> = Vec::new();
        for o in &ended {
            match self.permits.release_generation(&o.id) {
                Some(p) => freed.push(p),
                None if !self.early_ends.seen.iter().any(|(g, ..)| *g == o.id) => {
                    if self.early_ends.seen.len() >= RECENT_ENDS {
                        self.early_ends.seen.remove(0);
                    }
                    self.early_ends.seen.push((
                        o.id.clone(),
                        o.status.clone(),
                        now,
                        self.early_ends.callback_said.clone(),
                    ));
                }
                None => {}
            }
        }
        for p in freed.iter().filter(|p| matches!(p.holder, Holder::Generation(_))) {
            // Seen ending now: an upper bound of its duration, exact for webhooks.
            self.durations.observe(p.model.as_deref(), now.saturating_sub(p.since));
        }
        Ok(freed)
    }

    /// Queue a webhook's payload for the client, once per (generation,
    /// status): a replayed or duplicated webhook is counted and dropped
    /// (the caller still acknowledges it). The ends relayed are remembered
    /// for `dedupe_ttl_ms` (as long as a callback token can be replayed),
    /// at most `dedupe_max` of them.
    pub(crate) fn relay_once(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        seen: Observed,
        r: crate::relay::delivery::RelayRequest,
    ) -> StoreResult<()> {
        let policy = &limits.relay;
        let horizon = now.saturating_sub(policy.dedupe_ttl_ms);
        let journaled = self.journal.iter().any(
            |w| matches!(w, Write::PutRelayed { generation, status, .. } if *generation == seen.id && *status == seen.status),
        );
        if journaled || store.relayed(&seen.id, &seen.status)?.is_some_and(|at| at >= horizon) {
            self.outbox.counters.duplicates += 1;
            return Ok(());
        }
        if self.outbox.enqueue(policy, now, r.url, r.body, r.headers).is_none() {
            // Dropped for the outbox's bounds: a later copy may still get in.
            return Ok(());
        }
        let mut evicted = Vec::new();
        if self.outbox.counters.remembered >= u64::from(policy.dedupe_max) {
            // Expired ends go first; only when none is left, the oldest live one.
            evicted = store.relayed_older_than(horizon, 256)?;
            if evicted.is_empty() {
                evicted = store.relayed_older_than(Ms::MAX, 1)?;
            }
        }
        let key = (seen.id, seen.status);
        // An expired row of the same end is overwritten, not added.
        let overwritten = store.relayed(&key.0, &key.1)?.is_some() && !evicted.contains(&key);
        self.forget_relayed(evicted);
        self.journal.push(Write::PutRelayed { generation: key.0, status: key.1, at: now });
        if !overwritten {
            self.outbox.counters.remembered += 1;
        }
        Ok(())
    }

    pub(super) fn forget_relayed(&mut self, ends: Vec<(GenerationId, GenerationStatus)>) {
        for (generation, status) in ends {
            self.outbox.counters.remembered = self.outbox.counters.remembered.saturating_sub(1);
            self.journal.push(Write::DeleteRelayed { generation, status });
        }
    }

    /// Permits freed by a listing whose generation's terminal status was
    /// read back: it ended before the listing began (an upper bound of its
    /// duration, as for status reads).
    pub(super) fn learn_ended(&mut self, gone: &[Permit], ended: &[Observed], listed_from: Ms) {
        for p in gone.iter().filter(|p| matches!(p.holder, Holder::Generation(_))) {
            let seen = ended.iter().any(|o| Some(&o.id) == p.generation() && o.status.is_terminal());
            if seen {
                self.durations.observe(p.model.as_deref(), listed_from.saturating_sub(p.since));
            }
        }
    }

    pub(super) fn jobs_ended(&mut self, store: &dyn Store, ended: &[Observed], now: Ms) -> StoreResult<()> {
        for o in ended.iter().filter(|o| o.status.is_terminal()) {
            for mut job in store.jobs_by_generation(&o.id)? {
                job.state = crate::queue::job::JobState::Done {
                    status: o.status.clone(),
                    generation: Some(o.id.clone()),
                    error: None,
                };
                job.updated_at = now;
                self.journal(Write::PutJob(job));
            }
        }
        Ok(())
    }

    /// Units of `bucket` clients may not take: the reconciliation's share of
    /// `other`, while there are permits to reconcile.
    pub(crate) fn client_reserve(&self, limits: &Limits, bucket: &RateClass, internal: bool) -> u32 {
        if internal || *bucket != RateClass::Other || self.permits.in_use() == 0 {
            0
        } else {
            limits.reconcile_reserve()
        }
    }

    /// The status a generation was seen ending with before its bind, if so
    /// (and forget it).
    pub(crate) fn take_recent_end(&mut self, generation: &GenerationId) -> Option<GenerationStatus> {
        let i = self.early_ends.seen.iter().position(|(g, ..)| g == generation)?;
        Some(self.early_ends.seen.remove(i).1)
    }

    /// Bind a reserved permit to the generation Sync created (a direct
    /// create or a queued job). If that generation was already seen ending
    /// (a webhook can overtake the bind), the permit frees at once and a
    /// queued job takes its final status. Returns the permits released.
    pub(crate) fn bind(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        permit: PermitId,
        generation: &GenerationId,
        now: Ms,
    ) -> StoreResult<u32> {
        self.permits.bind(&limits.concurrency, permit, generation, now);
        self.costs.bound(permit, generation, now);
        if !self.recent_end_is_for(permit, generation) {
            return Ok(0);
        }
        let Some(status) = self.take_recent_end(generation) else { return Ok(0) };
        let ended = Observed { id: generation.to_owned(), status, output_ms: None };
        self.jobs_ended(store, std::slice::from_ref(&ended), now)?;
        self.costs_saw(limits, std::slice::from_ref(&ended), now);
        Ok(u32::from(self.permits.release_generation(generation).is_some()))
    }
}
