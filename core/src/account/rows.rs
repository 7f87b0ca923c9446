//! The account's rows: loading the hot state from the tables, the meta
//! values as they would be written, and the writes of one command (what
//! changed since the last flush), with the sweep of finished records.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admission::idempotency::Idempotency;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::lifecycle::permits::{PermitId, Permits};
use crate::lifecycle::status::GenerationStatus;
use crate::operations::overrides::Overrides;
use crate::queue::Queue;
use crate::rates::class::RateClass;
use crate::rates::state::Rates;
use crate::relay::Outbox;
use crate::storage::row::StoreResult;
use crate::storage::store::{Store, Write, SCHEMA_VERSION};
use crate::Ms;

use super::{MAX_BATCH_PERMITS, SWEEP_BATCH, SWEEP_EVERY_MS};
use crate::account::AccountState;

fn meta_value<T: DeserializeOwned + Default>(meta: &BTreeMap<String, String>, key: &str) -> T {
    meta.get(key).and_then(|v| crate::wire::json::from_str(v).ok()).unwrap_or_default()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl AccountState {
    /// Load the hot state from the tables. Rows that do not decode were
    /// skipped by the store; a value that does not decode starts empty.
    pub fn load(store: &dyn Store, base: &Limits) -> StoreResult<Self> {
        let meta: BTreeMap<String, String> = store.meta()?.into_iter().collect();
        // The account's overrides first: a raised limit keeps its stamps
        // (restoring with the vars' limits would forget some inside the window).
        let overrides: Overrides = meta_value(&meta, "overrides");
        let effective;
        let limits = if overrides.is_empty() {
            base
        } else {
            effective = overrides.apply(base);
            &effective
        };
        let mut stamps: BTreeMap<RateClass, Vec<Ms>> = BTreeMap::new();
        for (class, at) in store.admissions()? {
            stamps.entry(class).or_default().push(at);
        }
        // Clients' own rate logs are `<class>@<client>` rows.
        let client_stamps: BTreeMap<String, Vec<Ms>> =
            stamps.extract_if(.., |c, _| c.as_str().contains('@')).map(|(c, s)| (c.as_str().to_owned(), s)).collect();
        let tats: BTreeMap<RateClass, Ms> = meta_value(&meta, "tat");
        let rates = Rates::restore(limits, stamps, &tats, meta_value(&meta, "backoff"));
        let permits = Permits::restore(store.permits()?, meta_value(&meta, "permit_next_id"));
        let cursor: Option<String> = meta_value(&meta, "queue_cursor");
        let mut state = AccountState {
            rates,
            permits,
            batches: meta_value::<crate::batch::BatchPermits>(&meta, "batches").bounded(MAX_BATCH_PERMITS),
            lane: meta_value::<crate::batch::lane::Lane>(&meta, "lane").bounded(),
            durations: meta_value(&meta, "durations"),
            reconciliation: crate::lifecycle::reconciliation::Reconciliation {
                schedule: meta_value(&meta, "reconcile"),
                listing: None,
                released_keys: meta_value(&meta, "released_keys"),
            },
            outbox: Outbox::restore(store.outbox_schedule()?, meta_value(&meta, "relay")),
            queue: Queue::restore(store.waiting_jobs()?, cursor),
            idempotency: Idempotency::restore(store.in_flight_idempotency()?, meta_value(&meta, "idempotency")),
            line: crate::admission::line::Line { next_seq: meta_value(&meta, "seq"), held: Vec::new() },
            sending: crate::queue::sending::Sending {
                sealed_key: meta_value(&meta, "sealed_key"),
                ..Default::default()
            },
            ops: crate::operations::part::Operations {
                overrides,
                paused: meta_value(&meta, "paused"),
                metrics: meta_value(&meta, "metrics"),
                announced_at: meta_value(&meta, "announced_at"),
            },
            costs: crate::budget::costs::Costs::restore(
                meta_value(&meta, "cost_book"),
                meta_value(&meta, "cost_learned"),
                meta_value(&meta, "cost_overrides"),
                crate::ledger::Ledger::restore(store.ledger().ledger_open()?, meta_value(&meta, "ledger")),
            ),
            shares: crate::shares::Shares::restore(
                meta_value(&meta, "shares"),
                meta_value(&meta, "fair_clock"),
                client_stamps,
                limits,
            ),
            ..AccountState::default()
        };
        // An in-flight key whose permit is gone (a skipped row, an older
        // layout) would answer "in progress" forever: its request ended.
        let orphans: Vec<PermitId> = state
            .idempotency
            .in_flight_permits()
            .filter(|p| !state.permits.held().iter().any(|h| h.id == *p))
            .filter(|p| !state.reconciliation.released_keys.iter().any(|(r, _)| r == p))
            .collect();
        for p in orphans {
            state.idempotency.settle(p, None, None, 0, &limits.idempotency);
        }
        state.written_permits = state.permits.held().iter().map(|p| (p.id, p.clone())).collect();
        for (key, value) in state.meta_values() {
            if meta.get(key) == Some(&value) {
                state.written.insert(key, value);
            }
        }
        Ok(state)
    }

    /// Every meta row, as it would be written now.
    pub(super) fn meta_values(&self) -> Vec<(&'static str, String)> {
        let tats = self.rates.tats();
        vec![
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("tat", json(&tats)),
            ("permit_next_id", json(&self.permits.next_id())),
            ("backoff", json(&self.rates.backoff)),
            ("batches", json(&self.batches)),
            ("lane", json(&self.lane)),
            ("durations", json(&self.durations)),
            ("reconcile", json(&self.reconciliation.schedule)),
            ("relay", json(&self.outbox.counters)),
            ("idempotency", json(&self.idempotency.totals)),
            ("seq", json(&self.line.next_seq)),
            ("sealed_key", json(&self.sending.sealed_key)),
            ("queue_cursor", json(&self.queue.last_client())),
            ("overrides", json(&self.ops.overrides)),
            ("paused", json(&self.ops.paused)),
            ("announced_at", json(&self.ops.announced_at)),
            ("released_keys", json(&self.reconciliation.released_keys)),
            ("cost_book", json(&self.costs.book)),
            ("cost_learned", json(&self.costs.learned)),
            ("cost_overrides", json(&self.costs.overrides)),
            ("ledger", json(&self.costs.ledger.totals)),
            ("shares", json(&self.shares.row)),
            ("fair_clock", json(&self.shares.clock)),
        ]
    }

    pub(crate) fn journal(&mut self, w: Write) {
        self.journal.push(w);
    }

    /// Count one admission of `class` (every bucket it spends from).
    pub(crate) fn spend(&mut self, limits: &Limits, class: &RateClass, now: Ms) {
        self.rates.spend(limits, class, now);
    }

    /// Everything that changed since the last flush, as rows.
    pub(super) fn flush(&mut self, limits: &Limits, now: Ms) -> Vec<Write> {
        let mut writes = self.rates.take_writes();
        writes.append(&mut self.journal);
        writes.extend(self.queue.take_writes());
        writes.extend(self.outbox.take_writes());
        writes.extend(self.idempotency.take_writes());
        let mut seen = BTreeMap::new();
        for p in self.permits.held() {
            if self.written_permits.get(&p.id) != Some(p) {
                writes.push(Write::PutPermit(p.clone()));
            }
            seen.insert(p.id, p.clone());
        }
        for (id, gone) in self.written_permits.iter().filter(|(id, _)| !seen.contains_key(id)) {
            writes.push(Write::DeletePermit(*id));
            // However the permit ended, its job's row closes with it.
            self.costs.permit_gone(&limits.costs, gone, now);
        }
        writes.extend(self.costs.ledger.take_writes().into_iter().map(Write::Ledger));
        self.written_permits = seen;
        for (key, value) in self.meta_values() {
            if self.written.get(key) != Some(&value) {
                writes.push(Write::Meta { key, value: value.clone() });
                self.written.insert(key, value);
            }
        }
        if let Some(value) = self.ops.metrics.due_row(now) {
            writes.push(Write::Meta { key: "metrics", value });
        }
        writes
    }

    /// Drop state that no longer matters: spent admissions out of every
    /// span, idle backoffs, expired idempotency records and finished jobs
    /// past their retention (a bounded batch per minute).
    pub(super) fn compact(&mut self, limits: &Limits, store: &dyn Store, now: Ms) -> StoreResult<()> {
        self.rates.compact(limits, now);
        self.shares.compact(limits, now, &mut self.journal);
        self.line.expire(now);
        let horizon = now.saturating_sub(limits.concurrency.reservation_ttl_ms);
        self.early_ends.seen.retain(|(_, _, at, _)| *at > horizon);
        if self.queue.depth() == 0 {
            self.sending.sealed_key = None;
            self.sending.block = None;
        }
        if now >= self.sweep_at {
            self.sweep_at = now + SWEEP_EVERY_MS;
            let permits = &self.permits;
            self.idempotency.expire(store, now, &limits.idempotency, |g| permits.holds_generation(g))?;
            self.costs.ledger.sweep(store.ledger(), now, limits.costs.retention_days)?;
            let horizon = now.saturating_sub(limits.relay.dedupe_ttl_ms);
            let expired = store.relayed_older_than(horizon, 256)?;
            let touched = |g: &GenerationId, s: &GenerationStatus| {
                self.journal.iter().any(|w| match w {
                    Write::PutRelayed { generation, status, .. } | Write::DeleteRelayed { generation, status } => {
                        generation == g && status == s
                    }
                    _ => false,
                })
            };
            let expired: Vec<(GenerationId, GenerationStatus)> =
                expired.into_iter().filter(|(g, s)| !touched(g, s)).collect();
            self.forget_relayed(expired);
            let before = now.saturating_sub(limits.queue.retention_ms);
            let finished = store.finished_jobs_older_than(before, SWEEP_BATCH)?;
            if finished.len() as u32 >= SWEEP_BATCH {
                // Churn outpaces one batch a minute: keep sweeping until caught up.
                self.sweep_at = now;
            }
            for ticket in finished {
                let touched = self.journal.iter().any(|w| matches!(w, Write::PutJob(j) if j.ticket == ticket));
                if !touched {
                    self.journal.push(Write::DeleteJob(ticket));
                }
            }
        }
        Ok(())
    }
}
