//! The I/O the [`super::Driver`] runs the account over: storage, the clock,
//! randomness, the alarm, calls to Sync, relay deliveries and the
//! deployment's master key. The Durable Object is one implementation
//! (SQL, `fetch`, `setAlarm`, `Date.now`, `getrandom`); the simulation in
//! `core/tests/dst` is another. An implementation only executes: every
//! bound, order and retry is the driver's.

use crate::account::AccountState;
use crate::auth::secret::Secret;
use crate::batch::{CreateAnswer, SeenBatch};
use crate::ids::GenerationId;
use crate::lifecycle::pages::ListedPage;
use crate::lifecycle::status::Observed;
use crate::queue::job::{DispatchJob, DispatchOutcome};
use crate::relay::delivery::{Attempt, Delivery};
use crate::storage::row::StoreError;
use crate::storage::store::{Store, Write};
use crate::wire::contract::{Command, Reply};
use crate::Ms;

/// An I/O failure: nothing the driver can decide around (storage gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoError(pub String);

impl From<StoreError> for IoError {
    fn from(e: StoreError) -> Self {
        IoError(format!("account storage: {}", e.0))
    }
}

impl IoError {
    /// An executor's failure, by its message.
    pub fn of(e: impl std::fmt::Display) -> Self {
        IoError(e.to_string())
    }
}

pub type IoResult<T> = Result<T, IoError>;

/// One step the driver takes, shown to [`Io::observe`] (tests watch the
/// account through it; the object ignores it).
pub enum Observation<'a> {
    /// A command about to be applied to the state.
    Before(&'a AccountState, &'a Command),
    /// The state after it, and the reply.
    After(&'a AccountState, &'a Reply),
}

/// The object is single-threaded: no future here needs to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Io {
    /// Open the account's tables (the driver calls it before each load),
    /// bringing a previous layout's data into them if it is there.
    async fn open(&self) -> IoResult<()>;
    /// Read the tables.
    fn with_store<T>(&self, f: impl FnOnce(&dyn Store) -> T) -> IoResult<T>;
    /// Write rows, in order, in one transaction, durably before the reply.
    fn write(&self, writes: &[Write]) -> IoResult<()>;
    /// Nothing at all is stored for this account (no table): a
    /// pass-through account then starts provisional ([`super::provisional`]).
    /// Only reads. Worlds without durable storage say `false`.
    fn stores_nothing(&self) -> IoResult<bool> {
        Ok(false)
    }
    /// The account's name as stored (an alarm has no caller to ask).
    fn stored_account(&self) -> Option<String>;
    fn store_account(&self, name: &str) -> IoResult<()>;
    /// Arm the alarm `in_ms` from now (replacing any armed one).
    async fn set_alarm(&self, in_ms: Ms) -> IoResult<()>;
    /// The clock, in milliseconds since the epoch.
    fn now(&self) -> Ms;
    /// A uniform draw in [0, 1).
    fn jitter(&self) -> f64;
    /// The master key sealed pass-through keys open with, if reachable.
    async fn master_key(&self) -> Option<Secret>;
    /// Submit a queued job to Sync with its own `Idempotency-Key`.
    async fn submit(&self, key: &Secret, job: &DispatchJob, timeout_ms: Ms) -> DispatchOutcome;
    /// One page of Sync's active generations.
    async fn list_page(&self, key: &Secret, limit: u32, cursor: Option<&str>, timeout_ms: Ms) -> ListedPage;
    /// `GET /v2/batch` of the open batches (`ListedPage::Batches`, or why not).
    async fn list_batches(&self, key: &Secret, limit: u32, timeout_ms: Ms) -> ListedPage;
    /// The final statuses of `ids` (nothing read is no statuses).
    async fn lookup(&self, key: &Secret, ids: &[GenerationId], timeout_ms: Ms) -> Vec<Observed>;
    /// POST a relay payload to the client's URL (checked again as the
    /// runtime parses it, with `local_mode`).
    async fn deliver(&self, delivery: &Delivery, local_mode: bool, timeout_ms: Ms) -> Attempt;
    /// `POST /v2/batch` of a lane batch: a multipart body whose `input` is
    /// these JSONL `lines` (no `webhook_url`: the lane reads its batches).
    /// An I/O without the Batch API answers as a plan without it would.
    async fn submit_batch(&self, _key: &Secret, _lines: &str, _timeout_ms: Ms) -> CreateAnswer {
        CreateAnswer::Refused { status: 402 }
    }
    /// `GET /v2/batch/{id}` (nothing usable: `None`).
    async fn read_batch(&self, _key: &Secret, _id: &str, _timeout_ms: Ms) -> Option<SeenBatch> {
        None
    }
    /// The batch's result JSONL: `GET /v2/batches/{id}/result`, then its
    /// redirect fetched without the account's key (not read: `None`).
    async fn batch_result(&self, _key: &Secret, _id: &str, _timeout_ms: Ms) -> Option<String> {
        None
    }
    /// Watch a step (tests); nothing by default.
    fn observe(&self, _step: Observation<'_>) {}
}
