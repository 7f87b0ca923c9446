//! Client `Idempotency-Key`s of direct generates: a retry gets the first
//! answer. Records live in the `idempotency` table, read by key when a keyed
//! request arrives; memory keeps only the records still in flight (one per
//! held permit) and the table's totals, so the account's size does not grow
//! with the number of keys. Bounded in count, bytes and age; a replay body
//! over the size cap is stored as its generation id and read back from Sync.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::lifecycle::permits::PermitId;
use crate::storage::row::StoreResult;
use crate::storage::store::{IdempotencyRecord, IdempotencyState, Store, Write};
use crate::Ms;

/// The table's bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyPolicy {
    pub ttl_ms: Ms,
    pub max_records: u32,
    pub max_bytes: u64,
    /// A replay body larger than this is kept as its generation id only.
    pub max_body_bytes: u64,
}

/// Persisted in the `meta` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub records: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Idempotency {
    /// Held permit → scoped key of the request it carries.
    in_flight: BTreeMap<PermitId, IdempotencyRecord>,
    pub totals: Totals,
    writes: Vec<Write>,
}

/// The key as stored: the client and its key, apart.
pub fn scoped(k: &IdempotencyKey) -> String {
    format!("{}\u{1f}{}", k.client, k.key)
}

impl Idempotency {
    pub fn restore(in_flight: Vec<IdempotencyRecord>, totals: Totals) -> Self {
        let in_flight = in_flight
            .into_iter()
            .filter_map(|r| match r.state {
                IdempotencyState::InFlight { permit } => Some((permit, r)),
                IdempotencyState::Done { .. } => None,
            })
            .collect();
        Idempotency { in_flight, totals, writes: Vec::new() }
    }

    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    /// The record of a key: this command's own changes first (they reach
    /// the table only after it), then the table.
    pub fn lookup(&self, store: &dyn Store, key: &IdempotencyKey) -> StoreResult<Option<IdempotencyRecord>> {
        let scoped = scoped(key);
        for w in self.writes.iter().rev() {
            match w {
                Write::PutIdempotency(r) if r.key == scoped => return Ok(Some(r.clone())),
                Write::DeleteIdempotency(k) if *k == scoped => return Ok(None),
                _ => {}
            }
        }
        store.idempotency(&scoped)
    }

    /// Would one more record fit? (A record is small until it is settled;
    /// its replay is capped at `max_body_bytes`.)
    pub fn has_room(&self, policy: &IdempotencyPolicy) -> bool {
        self.totals.records < u64::from(policy.max_records)
            && self.totals.bytes.saturating_add(policy.max_body_bytes + 256) <= policy.max_bytes
    }

    fn put(&mut self, record: IdempotencyRecord, replaced: u64) {
        self.totals.bytes = self.totals.bytes.saturating_sub(replaced).saturating_add(record.bytes());
        self.writes.push(Write::PutIdempotency(record));
    }

    fn delete(&mut self, key: String, bytes: u64) {
        self.totals.records = self.totals.records.saturating_sub(1);
        self.totals.bytes = self.totals.bytes.saturating_sub(bytes);
        self.writes.push(Write::DeleteIdempotency(key));
    }

    /// The first request with this key is on its way with `permit`.
    pub fn begin(&mut self, key: &IdempotencyKey, permit: PermitId, now: Ms, replacing: Option<&IdempotencyRecord>) {
        let record = IdempotencyRecord { key: scoped(key), at: now, state: IdempotencyState::InFlight { permit } };
        match replacing {
            Some(old) => self.put(record.clone(), old.bytes()),
            None => {
                self.totals.records += 1;
                self.put(record.clone(), 0);
            }
        }
        self.in_flight.insert(permit, record);
    }

    /// The request holding `permit` ended: keep Sync's answer for replays,
    /// or forget the key (Sync refused, or the outcome is unknown: a retry
    /// may try again).
    pub fn settle(
        &mut self,
        permit: PermitId,
        replay: Option<Replay>,
        generation: Option<&GenerationId>,
        now: Ms,
        policy: &IdempotencyPolicy,
    ) {
        let Some(record) = self.in_flight.remove(&permit) else { return };
        let old = record.bytes();
        match replay {
            Some(r) => {
                let keep = r.body.len() as u64 <= policy.max_body_bytes || generation.is_none();
                let body = keep.then_some(r.body);
                let state = IdempotencyState::Done { status: r.status, generation: generation.cloned(), body };
                self.put(IdempotencyRecord { key: record.key, at: now, state }, old);
            }
            None => self.delete(record.key, old),
        }
    }

    /// Forget records past their TTL (a bounded batch per call), except
    /// those whose request or generation is still running (`running`).
    pub fn expire(
        &mut self,
        store: &dyn Store,
        now: Ms,
        policy: &IdempotencyPolicy,
        running: impl Fn(&GenerationId) -> bool,
    ) -> StoreResult<()> {
        if self.totals.records == 0 {
            return Ok(());
        }
        let batch =
            store.idempotency_older_than(now.saturating_sub(policy.ttl_ms), 256 + self.in_flight.len() as u32)?;
        for record in batch {
            let (key, bytes) = (record.key.clone(), record.bytes());
            // Any change of this command to the key (put or delete): the table is behind.
            let touched = self.writes.iter().any(|w| match w {
                Write::PutIdempotency(r) => r.key == key,
                Write::DeleteIdempotency(k) => *k == key,
                _ => false,
            });
            let in_flight = self.in_flight.values().any(|r| r.key == key);
            let generation_runs =
                matches!(&record.state, IdempotencyState::Done { generation: Some(g), .. } if running(g));
            if touched || in_flight || generation_runs {
                // In flight: it ends with its permit, not with its age.
                // Renewed by this very command: the table is behind.
                continue;
            }
            self.in_flight.retain(|_, r| r.key != key);
            self.delete(key, bytes);
        }
        Ok(())
    }

    /// The permits whose requests carry a key.
    pub fn in_flight_permits(&self) -> impl Iterator<Item = PermitId> + '_ {
        self.in_flight.keys().copied()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    pub client: String,
    pub key: String,
}

/// A stored answer to a generate, replayed for a retried `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub key: IdempotencyKey,
    pub status: u16,
    pub body: String,
    /// The body was over the replay cap: read this generation back from Sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refetch: Option<GenerationId>,
}
