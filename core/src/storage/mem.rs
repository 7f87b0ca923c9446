//! The tables in memory ([`MemStore`]), and an account over them: what
//! native tests and the simulation drive. `apply` runs the core and applies its writes, as the
//! Durable Object does; `restart` drops the hot state and reloads it from
//! the tables, as a runtime restart does.

use crate::account::{apply, AccountState, Output};
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::ids::TicketId;
use std::collections::BTreeMap;

use crate::lifecycle::permits::{Permit, PermitId};
use crate::lifecycle::status::GenerationStatus;
use crate::queue::job::{Job, JobState};
use crate::rates::class::RateClass;
use crate::relay::delivery::Delivery;
use crate::storage::row::StoreResult;

use crate::storage::store::IdempotencyState;
use crate::storage::store::{IdempotencyRecord, Store, Write};
use crate::wire::contract::{Command, Reply};
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct MemAccount {
    pub state: AccountState,
    pub store: MemStore,
}

impl MemAccount {
    /// Run one command; its writes reach the store before the reply returns.
    pub fn run(&mut self, limits: &Limits, now: Ms, jitter: f64, command: Command) -> Output {
        let out = apply(limits, &mut self.state, &self.store, now, jitter, command);
        self.store.write(&out.writes);
        out
    }

    pub fn apply(&mut self, limits: &Limits, now: Ms, jitter: f64, command: Command) -> Reply {
        self.run(limits, now, jitter, command).reply
    }

    /// Forget everything in memory and load from the tables.
    pub fn restart(&mut self, limits: &Limits) {
        // The in-memory store cannot fail to read.
        if let Ok(state) = AccountState::load(&self.store, limits) {
            self.state = state;
        }
    }
}

/// The tables in memory: the store of native tests and the simulation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStore {
    pub meta: BTreeMap<String, String>,
    /// (class, at) → count (admissions with equal times are kept apart).
    pub admissions: BTreeMap<(RateClass, Ms), u32>,
    pub permits: BTreeMap<PermitId, Permit>,
    pub idempotency: BTreeMap<String, IdempotencyRecord>,
    pub jobs: BTreeMap<TicketId, Job>,
    pub job_bodies: BTreeMap<TicketId, String>,
    pub outbox: BTreeMap<u64, Delivery>,
    /// (generation, status) → when it was relayed.
    pub relayed: BTreeMap<(GenerationId, GenerationStatus), Ms>,
    pub ledger: crate::ledger::MemLedger,
}

impl MemStore {
    pub fn write(&mut self, writes: &[Write]) {
        for w in writes {
            match w.clone() {
                Write::Meta { key, value } => {
                    self.meta.insert(key.to_owned(), value);
                }
                Write::Admission { class, at } => *self.admissions.entry((class, at)).or_default() += 1,
                Write::PruneAdmissions { class, before } => {
                    self.admissions.retain(|(c, at), _| *c != class || *at >= before);
                }
                Write::TrimAdmissions { class, keep } => {
                    let mut left = u64::from(keep);
                    let times: Vec<Ms> =
                        self.admissions.keys().filter(|(c, _)| *c == class).map(|(_, at)| *at).rev().collect();
                    for at in times {
                        let n = self.admissions.get_mut(&(class.clone(), at)).map_or(0, |n| {
                            *n = (*n).min(left.try_into().unwrap_or(u32::MAX));
                            *n
                        });
                        left = left.saturating_sub(u64::from(n));
                        if n == 0 {
                            self.admissions.remove(&(class.clone(), at));
                        }
                    }
                }
                Write::MoveAdmissions { class, from, to } => {
                    if let Some(n) = self.admissions.remove(&(class.clone(), from)) {
                        *self.admissions.entry((class, to)).or_default() += n;
                    }
                }
                Write::PutPermit(p) => {
                    self.permits.insert(p.id, p);
                }
                Write::DeletePermit(id) => {
                    self.permits.remove(&id);
                }
                Write::PutIdempotency(r) => {
                    self.idempotency.insert(r.key.clone(), r);
                }
                Write::DeleteIdempotency(k) => {
                    self.idempotency.remove(&k);
                }
                Write::PutJob(j) => {
                    self.jobs.insert(j.ticket.clone(), j);
                }
                Write::PutJobBody { ticket, body } => {
                    self.job_bodies.insert(ticket, body);
                }
                Write::DeleteJobBody(t) => {
                    self.job_bodies.remove(&t);
                }
                Write::DeleteJob(t) => {
                    self.jobs.remove(&t);
                    self.job_bodies.remove(&t);
                }
                Write::PutDelivery(d) => {
                    self.outbox.insert(d.id, d);
                }
                Write::RescheduleDelivery { id, attempts, next_at } => {
                    if let Some(d) = self.outbox.get_mut(&id) {
                        d.attempts = attempts;
                        d.next_at = next_at;
                    }
                }
                Write::DeleteDelivery(id) => {
                    self.outbox.remove(&id);
                }
                Write::PutRelayed { generation, status, at } => {
                    self.relayed.insert((generation, status), at);
                }
                Write::DeleteRelayed { generation, status } => {
                    self.relayed.remove(&(generation, status));
                }
                Write::Ledger(w) => self.ledger.write(std::slice::from_ref(&w)),
            }
        }
    }

    /// Bytes held in every table, roughly as SQLite would store them.
    pub fn bytes(&self) -> u64 {
        let idem: u64 = self.idempotency.values().map(IdempotencyRecord::bytes).sum();
        let bodies: u64 = self.job_bodies.values().map(|b| b.len() as u64).sum();
        let outbox: u64 = self.outbox.values().map(|d| d.bytes()).sum();
        let relayed: u64 = self.relayed.keys().map(|(g, s)| (g.as_str().len() + s.as_str().len() + 8) as u64).sum();
        idem + bodies + outbox + relayed
    }
}

impl Store for MemStore {
    fn meta(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(self.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn admissions(&self) -> StoreResult<Vec<(RateClass, Ms)>> {
        Ok(self.admissions.iter().flat_map(|((c, at), n)| std::iter::repeat_n((c.clone(), *at), *n as usize)).collect())
    }

    fn permits(&self) -> StoreResult<Vec<Permit>> {
        Ok(self.permits.values().cloned().collect())
    }

    fn waiting_jobs(&self) -> StoreResult<Vec<Job>> {
        Ok(self.jobs.values().filter(|j| j.is_waiting()).cloned().collect())
    }

    fn outbox_schedule(&self) -> StoreResult<Vec<Delivery>> {
        Ok(self.outbox.values().map(Delivery::without_body).collect())
    }

    fn in_flight_idempotency(&self) -> StoreResult<Vec<IdempotencyRecord>> {
        Ok(self
            .idempotency
            .values()
            .filter(|r| matches!(r.state, IdempotencyState::InFlight { .. }))
            .cloned()
            .collect())
    }

    fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self.idempotency.get(key).cloned())
    }

    fn idempotency_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<IdempotencyRecord>> {
        let mut old: Vec<&IdempotencyRecord> = self.idempotency.values().filter(|r| r.at < before).collect();
        old.sort_by_key(|r| r.at);
        Ok(old.into_iter().take(limit as usize).cloned().collect())
    }

    fn job(&self, ticket: &TicketId) -> StoreResult<Option<Job>> {
        Ok(self.jobs.get(ticket).cloned())
    }

    fn job_body(&self, ticket: &TicketId) -> StoreResult<Option<String>> {
        Ok(self.job_bodies.get(ticket).cloned())
    }

    fn job_by_client_key(&self, client: &str, key: &str) -> StoreResult<Option<Job>> {
        Ok(self
            .jobs
            .values()
            .find(|j| j.spec.client == client && j.spec.idempotency_key.as_deref() == Some(key))
            .cloned())
    }

    fn jobs_by_generation(&self, generation: &GenerationId) -> StoreResult<Vec<Job>> {
        Ok(self
            .jobs
            .values()
            .filter(|j| matches!(&j.state, JobState::Submitted { generation: g } if g == generation))
            .cloned()
            .collect())
    }

    fn finished_jobs_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<TicketId>> {
        Ok(self
            .jobs
            .values()
            .filter(|j| j.is_finished() && j.updated_at < before)
            .take(limit as usize)
            .map(|j| j.ticket.clone())
            .collect())
    }

    fn delivery(&self, id: u64) -> StoreResult<Option<Delivery>> {
        Ok(self.outbox.get(&id).cloned())
    }

    fn relayed(&self, generation: &GenerationId, status: &GenerationStatus) -> StoreResult<Option<Ms>> {
        Ok(self.relayed.get(&(generation.to_owned(), status.clone())).copied())
    }

    fn relayed_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<(GenerationId, GenerationStatus)>> {
        let mut old: Vec<(&(GenerationId, GenerationStatus), &Ms)> =
            self.relayed.iter().filter(|(_, at)| **at < before).collect();
        // As the SQL store orders them: by time, then by spelling.
        old.sort_by(|(a, at), (b, bt)| (at, &a.0, a.1.as_str()).cmp(&(bt, &b.0, b.1.as_str())));
        Ok(old.into_iter().take(limit as usize).map(|(k, _)| k.clone()).collect())
    }

    fn ledger(&self) -> &dyn crate::ledger::LedgerStore {
        &self.ledger
    }
}
