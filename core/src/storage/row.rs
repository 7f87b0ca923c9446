//! What every table shares: a failed read, and the bound on one row. A
//! leaf, so the parts that own rows (queue, relay, ledger, idempotency) use
//! it without knowing the store.

/// A storage read that failed (the runtime's storage threw, or a row could
/// not be decoded). The account answers 503 rather than guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

pub type StoreResult<T> = Result<T, StoreError>;

/// The largest value one row holds: SQLite (and so a Durable Object)
/// refuses a value past 2 MB, and one command's writes are one transaction,
/// so a body that would not fit is refused (a queued job) or dropped and
/// counted (a relay) before it is written.
pub const MAX_ROW_BYTES: u64 = 1 << 20;
