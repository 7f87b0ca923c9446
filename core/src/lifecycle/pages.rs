//! A reconciliation run's conversation, as data: the step the object
//! fetches next, how fetching a page went, and the run in progress (memory
//! only). [`crate::lifecycle::listing`] decides each step.

use crate::ids::GenerationId;
use serde::{Deserialize, Serialize};

use crate::lifecycle::reconcile::ActiveGeneration;
use crate::Ms;

/// Open batches asked for in one page (all of them: the cap is at most 100).
pub const BATCH_PAGE: u32 = 100;
/// At most this many pages per run (100 items each at most).
pub const MAX_PAGES: u32 = 20;

/// What the object should fetch next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListStep {
    /// `GET /v2/generations?status=PENDING,PROCESSING&limit=…[&cursor=…]`.
    Page { cursor: Option<String>, limit: u32 },
    /// `GET /v2/generations?ids=…`: final statuses.
    Lookup { ids: Vec<GenerationId> },
    /// `GET /v2/batch?status=PENDING,JOBS_CREATED,PROCESSING&limit=…`: the
    /// open batches (asked first in a run while batch permits are held).
    Batches { limit: u32 },
    /// Nothing more this run.
    Done,
}

/// How fetching one page went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListedPage {
    /// The active generations on the page, and how many items it held.
    Items { items: Vec<ActiveGeneration>, count: usize },
    /// Sync answered 429 with this body.
    Limited { body: String },
    /// Sync could not be reached, answered an error, or timed out.
    Failed,
    /// The object holds no Sync key for the account.
    NoKey,
    /// The open batches, and whether the page held them all.
    Batches { open: Vec<crate::batch::SeenBatch>, complete: bool },
}

/// A listing in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub(crate) listed_from: Ms,
    pub(crate) active: Vec<ActiveGeneration>,
    pub(crate) pages: u32,
    /// The page a refused budget left for the next run (which resumes
    /// here rather than from page 1, so a listing longer than the
    /// reserved share completes instead of starting over forever).
    pub(crate) resume: Option<String>,
}
