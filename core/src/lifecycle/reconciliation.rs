//! Reconciliation's own part of the account: when to list Sync's active
//! generations next ([`Schedule`], persisted as `reconcile`), a run in
//! progress (memory only: a restart lists again), and the unbound permits an
//! operator force-released while their keyed create may still reach Sync
//! (persisted as `released_keys`, bounded): their `Idempotency-Key` records
//! stay until a complete listing begun after the release.

use crate::lifecycle::pages::Listing;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::reconcile::Schedule;
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct Reconciliation {
    pub schedule: Schedule,
    pub listing: Option<Listing>,
    pub released_keys: Vec<(PermitId, Ms)>,
}
