//! Concurrency permits: one per Sync generation in PENDING or PROCESSING.
//!
//! As in tower's `limit/`, the configuration ([`ConcurrencyLimit`]), the
//! mechanism ([`Permits`]) and the held value ([`Permit`]) are separate types.
//! A permit is *reserved* at admission (owned by the HTTP request that is on
//! its way to Sync), then either *bound* to the generation id Sync returned
//! (owned by the generation until it ends) or released when Sync refused.
//! Generations another client created with the same key are *adopted* by
//! reconciliation and count against the cap until they end.
//! Every permit carries a lease: the backstop that frees it if every signal
//! of its end is lost.

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::Ms;

/// How many generations may be active at once, and the backstop leases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    pub cap: u32,
    /// A reservation not bound by then is presumed lost (the request never
    /// reached Sync, or the Worker died before reporting).
    pub reservation_ttl_ms: Ms,
    /// A bound permit whose end was never observed is freed after this.
    pub lease_ttl_ms: Ms,
}

pub use crate::ids::PermitId;

/// Who holds a permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// An admitted request still waiting for Sync's answer.
    Request,
    /// A generation the governor admitted.
    Generation(GenerationId),
    /// A generation created outside the governor, found by reconciliation.
    Adopted(GenerationId),
}

/// One held permit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    pub id: PermitId,
    pub holder: Holder,
    /// When the permit was taken (the generation's start, as far as we know).
    pub since: Ms,
    /// When the permit was bound to its generation (or adopted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_at: Option<Ms>,
    pub expires: Ms,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A reservation whose create got no usable answer, since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_since: Option<Ms>,
    /// The client it counts toward (none for adopted generations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The id its create's callback token names, if bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<TicketId>,
}

impl Permit {
    pub fn generation(&self) -> Option<&GenerationId> {
        match &self.holder {
            Holder::Request => None,
            Holder::Generation(id) | Holder::Adopted(id) => Some(id),
        }
    }
}

/// The set of held permits of one account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permits {
    #[serde(default)]
    held: Vec<Permit>,
    #[serde(default)]
    next_id: PermitId,
}

impl Permits {
    /// Rebuild from stored permits.
    pub fn restore(mut held: Vec<Permit>, next_id: PermitId) -> Self {
        held.sort_by_key(|p| p.id);
        let next_id = held.iter().map(|p| p.id).max().unwrap_or_default().max(next_id);
        Permits { held, next_id }
    }

    /// Stored times read back: taken and bound no later than `now`, a
    /// reservation ending within its TTL, a bound permit within its lease
    /// (see [`crate::storage::clamp`]).
    pub fn clamp_times(&mut self, policy: &ConcurrencyLimit, now: Ms) {
        for p in &mut self.held {
            use crate::storage::bound::at_most;
            p.since = at_most(p.since, now);
            p.bound_at = p.bound_at.map(|b| at_most(b, now));
            p.unknown_since = p.unknown_since.map(|u| at_most(u, now));
            // An unknown create may be a running generation: its lease.
            let ttl = match p.holder {
                Holder::Request if p.unknown_since.is_none() => policy.reservation_ttl_ms,
                _ => policy.lease_ttl_ms,
            };
            p.expires = at_most(p.expires, now.saturating_add(ttl));
        }
    }

    /// Bind `permit` to the callback its create's token names.
    pub fn set_callback(&mut self, permit: PermitId, callback: Option<TicketId>) {
        if let Some(p) = self.held.iter_mut().find(|p| p.id == permit) {
            p.callback = callback;
        }
    }

    pub fn next_id(&self) -> PermitId {
        self.next_id
    }

    pub fn held(&self) -> &[Permit] {
        &self.held
    }

    pub fn in_use(&self) -> u32 {
        self.held.len() as u32
    }

    pub fn free(&self, cfg: &ConcurrencyLimit) -> u32 {
        cfg.cap.saturating_sub(self.in_use())
    }

    pub fn has_room(&self, cfg: &ConcurrencyLimit) -> bool {
        self.in_use() < cfg.cap
    }

    /// Reserve a permit for a request on its way to Sync.
    pub fn reserve(&mut self, cfg: &ConcurrencyLimit, now: Ms, model: Option<String>) -> PermitId {
        self.next_id = self.next_id.next();
        let id = self.next_id;
        self.held.push(Permit {
            id,
            holder: Holder::Request,
            since: now,
            bound_at: None,
            expires: now.saturating_add(cfg.reservation_ttl_ms),
            model,
            unknown_since: None,
            client: None,
            callback: None,
        });
        id
    }

    /// Count `permit` toward `client` (see [`crate::shares`]).
    pub fn tag(&mut self, permit: PermitId, client: Option<&str>) {
        if let Some(p) = self.held.iter_mut().find(|p| p.id == permit) {
            p.client = client.map(str::to_owned);
        }
    }

    /// Permits held by `client`.
    pub fn held_by(&self, client: &str) -> u32 {
        self.held.iter().filter(|p| p.client.as_deref() == Some(client)).count() as u32
    }

    /// The create holding `permit` got no usable answer: keep the permit
    /// until reconciliation can tell (see [`Permits::reconcile`]).
    /// It may be a running generation, so it lives as long as one could
    /// (the lease), not as long as a request.
    pub fn mark_unknown(&mut self, cfg: &ConcurrencyLimit, permit: PermitId, now: Ms) {
        if let Some(p) = self.held.iter_mut().find(|p| p.id == permit && p.holder == Holder::Request) {
            p.unknown_since.get_or_insert(now);
            p.expires = p.expires.max(now.saturating_add(cfg.lease_ttl_ms));
        }
    }

    /// Bind a reservation to the generation Sync created. If reconciliation
    /// adopted that generation first, the adopted permit is merged away.
    /// Returns false when the reservation is unknown (already expired).
    pub fn bind(&mut self, cfg: &ConcurrencyLimit, permit: PermitId, generation: &GenerationId, now: Ms) -> bool {
        self.held.retain(|p| !matches!(&p.holder, Holder::Adopted(g) if g == generation));
        let already_bound = self.held.iter().any(|p| p.generation() == Some(generation));
        let Some(index) = self.held.iter().position(|p| p.id == permit) else {
            return already_bound;
        };
        if already_bound {
            // An idempotent replay: Sync answered with a generation we hold.
            self.held.remove(index);
            return true;
        }
        let p = &mut self.held[index];
        p.holder = Holder::Generation(generation.to_owned());
        p.bound_at = Some(now);
        p.expires = now.saturating_add(cfg.lease_ttl_ms);
        true
    }

    /// Release by permit id; returns the permit if it was held.
    pub fn release(&mut self, permit: PermitId) -> Option<Permit> {
        let index = self.held.iter().position(|p| p.id == permit)?;
        Some(self.held.remove(index))
    }

    /// Release whatever permit a generation holds; returns it.
    pub fn release_generation(&mut self, generation: &GenerationId) -> Option<Permit> {
        let index = self.held.iter().position(|p| p.generation() == Some(generation))?;
        Some(self.held.remove(index))
    }

    pub fn holds_generation(&self, generation: &GenerationId) -> bool {
        self.held.iter().any(|p| p.generation() == Some(generation))
    }

    /// Take a permit for a generation found active upstream but unknown here.
    pub fn adopt(&mut self, cfg: &ConcurrencyLimit, generation: &GenerationId, model: Option<String>, now: Ms) -> bool {
        if self.holds_generation(generation) {
            return false;
        }
        self.next_id = self.next_id.next();
        self.held.push(Permit {
            id: self.next_id,
            holder: Holder::Adopted(generation.to_owned()),
            since: now,
            bound_at: Some(now),
            expires: now.saturating_add(cfg.lease_ttl_ms),
            model,
            unknown_since: None,
            client: None,
            callback: None,
        });
        true
    }

    /// Converge to Sync's list of active generations, taken at `listed_from`
    /// or later: release permits bound before then whose generation is not
    /// listed, adopt listed generations held by no permit. Reservations
    /// (requests still on their way) are left to their TTL.
    /// Returns (released permits, adopted generations).
    pub fn reconcile(
        &mut self,
        cfg: &ConcurrencyLimit,
        active: &[(GenerationId, Option<String>)],
        listed_from: Ms,
        now: Ms,
    ) -> (Vec<Permit>, u32) {
        let listed = |g: &GenerationId| active.iter().any(|(id, _)| id == g);
        // A create whose answer was lost before the listing began: whatever
        // it made is in the listing (and adopted below) or already ended.
        let unknown_before = |p: &Permit| p.unknown_since.is_some_and(|u| u < listed_from);
        let (gone, kept): (Vec<Permit>, Vec<Permit>) = self.held.drain(..).partition(|p| {
            (p.generation().is_some_and(|g| !listed(g)) && p.bound_at.is_some_and(|b| b < listed_from))
                || unknown_before(p)
        });
        self.held = kept;
        let mut adopted = 0;
        for (id, model) in active {
            if self.adopt(cfg, id, model.clone(), now) {
                adopted += 1;
            }
        }
        (gone, adopted)
    }

    /// Free every permit whose lease ran out; returns them.
    pub fn expire(&mut self, now: Ms) -> Vec<Permit> {
        let (expired, kept): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|p| p.expires <= now);
        self.held = kept;
        expired
    }

    /// The earliest lease end, for scheduling the alarm.
    pub fn next_expiry(&self) -> Option<Ms> {
        self.held.iter().map(|p| p.expires).min()
    }
}

/// Name of the concurrency policy in headers and errors.
pub const CONCURRENCY: &str = "concurrency";

#[cfg(test)]
mod tests;
