//! Batch permits: one per batch in flight. Reserved at admission (owned by
//! the request on its way to Sync), then bound to the batch id Sync returned
//! (owned by the batch until it is terminal) or released when Sync refused.
//! A bound permit ends when its batch is seen terminal (a read or list
//! passing through, a batch webhook, the governor's own batch listing) or
//! when a listing begun after it was bound no longer shows it open; its
//! lease is the backstop. Sync's `concurrency_limit_reached` teaches a
//! lower cap for a while.

use serde::{Deserialize, Serialize};

use super::answer::SeenBatch;
use super::limit::BatchLimit;
use crate::Ms;

pub type BatchPermitId = u64;

/// Who holds a batch permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchHolder {
    /// A batch create still waiting for Sync's answer.
    Request,
    /// A batch Sync accepted.
    Batch(String),
}

/// One held batch permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPermit {
    pub id: BatchPermitId,
    pub holder: BatchHolder,
    pub since: Ms,
    #[serde(default)]
    pub bound_at: Option<Ms>,
    pub expires: Ms,
    /// Generations of the batch that may still run (last `pending_count` seen).
    #[serde(default)]
    pub pending: u32,
    /// The create got no usable answer, since when.
    #[serde(default)]
    pub unknown_since: Option<Ms>,
}

/// The account's batch permits (persisted whole as one small row: at most
/// the configured cap of permits).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPermits {
    #[serde(default)]
    held: Vec<BatchPermit>,
    #[serde(default)]
    next_id: BatchPermitId,
    /// A cap learned from Sync, and until when it holds.
    #[serde(default)]
    learned: Option<(u32, Ms)>,
    /// Batches freed (for status).
    #[serde(default)]
    pub freed: u64,
}

impl BatchPermits {
    pub fn held(&self) -> &[BatchPermit] {
        &self.held
    }

    pub fn in_use(&self) -> u32 {
        self.held.len() as u32
    }

    /// The cap in force: the configured one, or lower while a learned one holds.
    pub fn cap(&self, cfg: &BatchLimit, now: Ms) -> u32 {
        match self.learned {
            Some((cap, until)) if until > now => cap.min(cfg.cap),
            _ => cfg.cap,
        }
    }

    pub fn has_room(&self, cfg: &BatchLimit, now: Ms) -> bool {
        self.in_use() < self.cap(cfg, now)
    }

    pub fn reserve(&mut self, cfg: &BatchLimit, now: Ms) -> BatchPermitId {
        self.next_id = self.next_id.saturating_add(1);
        let id = self.next_id;
        self.held.push(BatchPermit {
            id,
            holder: BatchHolder::Request,
            since: now,
            bound_at: None,
            expires: now.saturating_add(cfg.reservation_ttl_ms),
            pending: 0,
            unknown_since: None,
        });
        id
    }

    /// Sync accepted the batch: the permit is the batch's until it ends.
    pub fn bind(&mut self, cfg: &BatchLimit, permit: BatchPermitId, seen: &SeenBatch, now: Ms) -> bool {
        if seen.terminal {
            return self.release(permit);
        }
        // The batch may be held already (a listing bound an unknown create to it).
        if self.held.iter().any(|p| p.holder == BatchHolder::Batch(seen.id.clone())) {
            return self.release(permit);
        }
        let Some(p) = self.held.iter_mut().find(|p| p.id == permit) else { return false };
        p.holder = BatchHolder::Batch(seen.id.clone());
        p.bound_at = Some(now);
        p.unknown_since = None;
        p.pending = seen.pending.unwrap_or(0);
        p.expires = now.saturating_add(cfg.lease_ttl_ms);
        true
    }

    pub fn release(&mut self, permit: BatchPermitId) -> bool {
        let before = self.held.len();
        self.held.retain(|p| p.id != permit);
        let freed = self.held.len() < before;
        self.freed += u64::from(freed);
        freed
    }

    /// The create's answer was lost: keep the permit until a listing tells.
    pub fn mark_unknown(&mut self, cfg: &BatchLimit, permit: BatchPermitId, now: Ms) {
        if let Some(p) = self.held.iter_mut().find(|p| p.id == permit && p.holder == BatchHolder::Request) {
            p.unknown_since.get_or_insert(now);
            p.expires = p.expires.max(now.saturating_add(cfg.lease_ttl_ms));
        }
    }

    /// Sync refused a batch for its batch concurrency: while this holds, the
    /// cap is what Sync had accepted (the bound batches), at least 1.
    pub fn learn_down(&mut self, cfg: &BatchLimit, now: Ms) {
        let bound = self.held.iter().filter(|p| matches!(p.holder, BatchHolder::Batch(_))).count() as u32;
        let cap = bound.max(1).min(self.cap(cfg, now));
        self.learned = Some((cap, now.saturating_add(cfg.learned_ttl_ms)));
    }

    /// Batches seen in an answer: the ended ones free their permits, the
    /// open ones update what they may still spawn. Returns how many freed.
    pub fn seen(&mut self, batches: &[SeenBatch]) -> u32 {
        let mut freed = 0;
        for b in batches {
            let holder = BatchHolder::Batch(b.id.clone());
            if b.terminal {
                let before = self.held.len();
                self.held.retain(|p| p.holder != holder);
                freed += (before - self.held.len()) as u32;
            } else if let Some(p) = self.held.iter_mut().find(|p| p.holder == holder) {
                if let Some(n) = b.pending {
                    p.pending = n;
                }
            }
        }
        self.freed += u64::from(freed);
        freed
    }

    /// A complete listing of the open batches, begun at `listed_from`:
    /// a bound batch it does not show, bound before it began, has ended;
    /// an open batch nobody holds takes a create whose answer was lost
    /// before the listing began (one each), and unknown creates left over
    /// made nothing. Returns how many permits freed.
    pub fn reconcile(&mut self, cfg: &BatchLimit, open: &[SeenBatch], listed_from: Ms, now: Ms) -> u32 {
        let before = self.held.len();
        let listed = |id: &str| open.iter().any(|b| b.id == id && !b.terminal);
        self.held.retain(|p| match &p.holder {
            BatchHolder::Batch(id) => listed(id) || p.bound_at.is_none_or(|b| b >= listed_from),
            BatchHolder::Request => true,
        });
        for b in open.iter().filter(|b| !b.terminal) {
            let holder = BatchHolder::Batch(b.id.clone());
            if self.held.iter().any(|p| p.holder == holder) {
                continue;
            }
            let lost = self.held.iter().position(|p| p.unknown_since.is_some_and(|u| u < listed_from));
            if let Some(i) = lost {
                let p = &mut self.held[i];
                p.holder = holder;
                p.bound_at = Some(now);
                p.unknown_since = None;
                p.pending = b.pending.unwrap_or(0);
                p.expires = now.saturating_add(cfg.lease_ttl_ms);
            }
        }
        self.held.retain(|p| p.unknown_since.is_none_or(|u| u >= listed_from));
        self.seen(open);
        let freed = before.saturating_sub(self.held.len()) as u32;
        self.freed += u64::from(freed);
        freed
    }

    /// Generations the open batches may still have running: unknown active
    /// generations up to this many are not adopted by reconciliation (Sync
    /// marks nothing on a batch-spawned generation). A batch whose count is
    /// not known yet (an unknown create) exempts nothing it cannot prove.
    pub fn spawned_allowance(&self) -> u32 {
        self.held.iter().map(|p| p.pending).fold(0u32, u32::saturating_add)
    }

    /// Free every permit whose lease ran out; returns how many.
    pub fn expire(&mut self, now: Ms) -> u32 {
        let before = self.held.len();
        self.held.retain(|p| p.expires > now);
        let n = (before - self.held.len()) as u32;
        self.freed += u64::from(n);
        n
    }

    pub fn next_expiry(&self) -> Option<Ms> {
        self.held.iter().map(|p| p.expires).min()
    }

    /// Keep at most `max` permits from stored state (a hostile row).
    pub fn bounded(mut self, max: usize) -> Self {
        self.held.truncate(max);
        self.next_id = self.held.iter().map(|p| p.id).max().unwrap_or(0).max(self.next_id);
        self
    }
}

/// Batch permits in the account's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchesView {
    /// The cap in force (`MAX_CONCURRENT_BATCHES`, or lower once Sync said so).
    pub limit: u32,
    pub configured: u32,
    pub in_use: u32,
    /// Batch ids in flight (`null`: a create on its way or unanswered).
    pub in_flight: Vec<Option<String>>,
    /// Generations the open batches may still run (not adopted).
    pub spawned_pending: u32,
    pub freed: u64,
}

impl BatchPermits {
    pub fn view(&self, cfg: &BatchLimit, now: Ms) -> BatchesView {
        BatchesView {
            limit: self.cap(cfg, now),
            configured: cfg.cap,
            in_use: self.in_use(),
            in_flight: self
                .held
                .iter()
                .map(|p| match &p.holder {
                    BatchHolder::Batch(id) => Some(id.clone()),
                    BatchHolder::Request => None,
                })
                .collect(),
            spawned_pending: self.spawned_allowance(),
            freed: self.freed,
        }
    }
}

#[cfg(test)]
mod tests;
