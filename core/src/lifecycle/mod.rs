//! A generation's life on the account: its permit from reservation to end, what Sync's answers and
//! webhooks say, and reconciliation against Sync's own list.
//!
//! | module | one concept |
//! |---|---|
//! | [`pages`] | a listing's steps, pages and run in progress, as data |
//! | [`limited`] | which limit a Sync 429 speaks of (`LimitKind`), read from its body |
//! | [`permits`] | concurrency permits: reserved, bound to a generation, adopted, released, leased |
//! | [`answer`] | Sync's answer to a create, read once for direct and queued creates (`read_create`) |
//! | [`forwarded`] | Sync's answer to a forwarded request, read in one place: its command, whether the client waits for it |
//! | [`settle`] | what a Sync response tells the account: bind, release, observe, 429 |
//! | [`status`] | `GenerationStatus` (Sync's, parsed once; unknown ones never free a permit) and `TicketStatus`, spelled in one place |
//! | [`callback`] | a webhook on a bound callback URL: its payload must be its own create's generation; duplicates per callback |
//! | [`durations`] | running statistic of generation durations per model (for honest Retry-After) |
//! | [`reconciliation`] | reconciliation's part of the account: its schedule, a run in progress, force-released keys |
//! | [`early_ends`] | generations seen ending before their create was bound |
//! | [`reconcile`] | converging permits to Sync's list of active generations, adaptive period |
//! | [`listing`] | reconciliation as a conversation: the core asks for each page and lookup, the object only fetches |

pub mod answer;
pub mod callback;
pub mod durations;
pub mod early_ends;
pub mod forwarded;
pub mod limited;
pub mod listing;
pub mod pages;
pub mod permits;
pub mod reconcile;
pub mod reconciliation;
pub mod settle;
pub mod status;
