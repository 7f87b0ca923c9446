//! One account: its hot state in memory, its tables behind a [`Store`],
//! and the sans-IO [`apply`] that every Durable Object call goes through:
//! `(limits, state, store, now, jitter, command) -> Output { reply, writes, effects, wake }`.
//! The caller owns the clock, the randomness and all I/O: it applies the
//! writes to its tables, runs the effects and arms the alarm at `wake`.

use std::collections::BTreeMap;

use crate::admission::idempotency::Idempotency;
use crate::config::limits::Limits;
use crate::lifecycle::durations::Durations;
use crate::lifecycle::permits::{Permit, PermitId, Permits};
use crate::queue::Queue;
use crate::rates::state::Rates;
use crate::relay::delivery::Delivery;
use crate::relay::Outbox;
use crate::storage::row::StoreError;
use crate::storage::store::{Store, Write};
use crate::wire::contract::{Command, Refusal, Reply};
use crate::Ms;

mod ends;
mod rows;
mod status;
mod step;
mod wake;

/// Batch permits kept at most from a stored row (the cap's bound).
const MAX_BATCH_PERMITS: usize = 100;
/// Generations remembered as ended before their bind.
const RECENT_ENDS: usize = 256;
/// Relay deliveries handed out per alarm: bounds the bodies in memory.
const DELIVERIES_PER_TICK: usize = 16;
/// Rows removed per sweep and table; a full batch sweeps again next command.
const SWEEP_BATCH: u32 = 256;
/// How often finished records are swept (a bounded batch each time).
const SWEEP_EVERY_MS: Ms = 60_000;
/// How often an active account tells the deployment's directory.
pub const ANNOUNCE_EVERY_MS: Ms = 60_000;

/// The account's hot state: what admission needs, in memory, bounded by the
/// limits (not by how long the account has lived). The tables are the truth.
#[derive(Clone, Debug, Default)]
pub struct AccountState {
    /// Windows and backoffs by bucket, with their rows ([`crate::rates::state`]).
    pub rates: Rates,
    pub permits: Permits,
    /// Batch permits (Sync's Batch API): their own part and row.
    pub batches: crate::batch::BatchPermits,
    /// The batch lane: its batches in flight and counters (its jobs are queue rows).
    pub lane: crate::batch::lane::Lane,
    pub durations: Durations,
    /// Reconciliation against Sync's list: its schedule, a run in progress,
    /// the keys its next complete listing may free.
    pub reconciliation: crate::lifecycle::reconciliation::Reconciliation,
    pub outbox: Outbox,
    pub queue: Queue,
    pub idempotency: Idempotency,
    /// Sending queued work: the key it goes with, what blocks it, what is in flight.
    pub sending: crate::queue::sending::Sending,
    /// The line: held requests and the numbers that order them with queued jobs.
    pub line: crate::admission::line::Line,
    /// Generations seen ending before their create was bound.
    pub(crate) early_ends: crate::lifecycle::early_ends::EarlyEnds,
    /// Rows written since the last flush (admissions, prunes).
    journal: Vec<Write>,
    /// Meta values as last written, to write only what changed.
    written: BTreeMap<&'static str, String>,
    written_permits: BTreeMap<PermitId, Permit>,
    sweep_at: Ms,
    /// The operations' part: overrides, a pause, metrics, the directory's last word.
    pub ops: crate::operations::part::Operations,
    /// The stored times were clamped to the first command's clock.
    pub(crate) clamped: bool,
    /// Cost budgets, learned costs and the job ledger ([`crate::budget`]).
    pub costs: crate::budget::costs::Costs,
    /// Sharing the account among its clients (see [`crate::shares`]).
    pub shares: crate::shares::Shares,
}

/// What one command produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub reply: Reply,
    /// Rows to write, in order, in one transaction, before the reply leaves.
    pub writes: Vec<Write>,
    /// I/O the object runs after the writes (from the alarm).
    pub effects: Vec<Effect>,
    /// When the alarm must fire next, if ever.
    pub wake: Option<Ms>,
}

/// I/O the object performs on the core's behalf; each reports back as a
/// command.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// POST this payload to the client's URL, then `Command::Delivered`.
    Deliver(Delivery),
    /// Submit queued jobs while `Command::Dispatch` hands one out.
    Dispatch,
    /// List Sync's active generations, then `Command::Reconciled`.
    Reconcile,
    /// Run the batch lane while `Command::Lane(Next)` has a step.
    Lane,
}

/// Apply one command. `jitter` is a uniform sample in `[0, 1)`.
pub fn apply(
    limits: &Limits,
    state: &mut AccountState,
    store: &dyn Store,
    now: Ms,
    jitter: f64,
    command: Command,
) -> Output {
    let mut effects = Vec::new();
    if !state.clamped {
        state.clamped = true;
        state.clamp_times(&state.ops.overrides.apply(limits), now);
    }
    // Operator overrides apply to every decision, from the next one on.
    let base = limits;
    let overridden;
    let limits = if state.ops.overrides.is_empty() {
        base
    } else {
        overridden = state.ops.overrides.apply(base);
        &overridden
    };
    let result = match command {
        Command::Admin(cmd) => state.admin(base, limits, store, now, cmd),
        Command::Status => Ok(Reply::Status(state.status(base, limits, now))),
        Command::Ledger { query, client } => {
            state.costs.page(store.ledger(), &query, client.as_deref()).map(Reply::Ledger)
        }
        command => state.step(limits, store, now, jitter, command, &mut effects),
    };
    let mut reply = match result {
        Ok(reply) => reply,
        Err(StoreError(_)) => Reply::Refused(Refusal::StorageUnavailable),
    };
    if let Reply::Admitted(a) = &mut reply {
        if state.ops.announced_at.is_none_or(|at| at + ANNOUNCE_EVERY_MS <= now) {
            state.ops.announced_at = Some(now);
            a.announce = true;
        }
    }
    if state.permits.in_use() > 0 || state.batches.in_use() > 0 {
        state.reconciliation.schedule.arm(&limits.reconcile, now);
    }
    if let Err(StoreError(_)) = state.compact(limits, store, now) {
        // A sweep that could not read is tried again on the next command.
    }
    let writes = state.flush(limits, now);
    // An operator's new limits count for the next alarm too (a raised cap
    // lets queued work go at once).
    let changed = if matches!(reply, Reply::Admin(crate::operations::admin::AdminReply::Limits { .. })) {
        Some(state.ops.overrides.apply(base))
    } else {
        None
    };
    let wake = crate::storage::bound::wake_within(state.next_wake(changed.as_ref().unwrap_or(limits), now), now);
    Output { reply, writes, effects, wake }
}
