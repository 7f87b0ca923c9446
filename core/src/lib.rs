//! The pure core of sync-governor: every decision the governor makes, with
//! no `worker` import, no I/O and no clock reads. The Workers layer (the
//! crate at the repository root) reads the clock once per request, passes it
//! in, and persists what comes out. Tested natively with `cargo test`.
//!
//! # Layout
//!
//! Folders by concern; each folder's `mod.rs` opens with its own map. The
//! files of a folder hold its part's data below (rows, views, requests) and
//! its rules above; no file imports one that imports it back
//! (`node scripts/layout.mjs` checks).
//!
//! | folder | concern | modules |
//! |---|---|---|
//! | [`account`] | one account's hot state, made of each concern's part (rates, permits, batches, lane, line, sending, queue, idempotency, outbox, reconciliation, early ends, operations, costs, shares), and the sans-IO `apply(limits, state, store, now, jitter, command) -> Output` (reply, writes, effects, wake) | `step`, `ends`, `rows`, `status`, `wake` |
//! | [`driver`] | the one loop every account runs over an `Io` trait (the Durable Object, the simulation): apply → write → effects → results back → wake, with its bounds | `io`, `effects`, `join`, `waits`, `provisional`, `lane` |
//! | [`admission`] | whether a request goes to Sync now, waits in the line, or is queued | `request`, `admit`, `hold`, `line`, `replay`, `shed`, `idempotency` |
//! | [`rates`] | Sync's request budgets: the class, the exact window, what a 429 teaches | `class`, `window`, `backoff`, `state` |
//! | [`lifecycle`] | a generation from permit to end: Sync's answers, statuses, callbacks, durations, reconciliation and its listings | `permits`, `status`, `limited`, `answer`, `forwarded`, `settle`, `callback`, `durations`, `early_ends`, `reconcile`, `reconciliation`, `pages`, `listing` |
//! | [`queue`] | the durable generation queue (`Prefer: respond-async`) and submitting its jobs | `job`, `dispatch`, `sending`, `ticket` |
//! | [`relay`] | the durable outbox of webhook payloads for clients' own URLs; webhook tokens and signatures | `delivery`, `webhook`, `url` |
//! | [`shares`] | sharing an account among its clients: client names, `CLIENT_LIMITS`, weighted fair order | `client`, `limits`, `fair`, `order`, `line`, `clamp`, `state`, `status`, `view`, `admin` |
//! | [`batch`] | Sync's Batch API: batch permits (reserved, bound to a batch, freed at its end, cap learned down), reading batch answers, and the batch lane for queued work | `limit`, `permits`, `settle`, `answer`, `lane`, `lane_policy`, `lane_step`, `lane_answer`, `lane_wake`, `lane_pick`, `lane_lines` |
//! | [`budget`] | cost budgets: money, `PRICES`, the estimate and settle rules, the book of spend per client and UTC period | `money`, `prices`, `vars`, `estimate`, `learned`, `book`, `costs`, `hooks`, `view` |
//! | [`ledger`] | the job ledger: one row per generation job, bounded, retained; its query and formats | `row`, `query`, `encode` |
//! | [`operations`] | what an operator sees and sets: commands, runtime overrides, metrics, the drained probe | `admin`, `ops`, `part`, `overrides`, `metrics`, `series`, `prometheus`, `drained` |
//! | [`wire`] | the wire contract: typed commands, replies and calls, errors mapped to HTTP, routes, headers, bodies | `contract`, `calls`, `view`, `error`, `path`, `route`, `rewrite`, `headers`, `prefer`, `json` |
//! | [`storage`] | the account's tables, the in-memory store, migration, stored times read back bounded | `row`, `store`, `mem`, `migrate`, `clamp`, `bound` |
//! | [`config`] | every wrangler var and secret, parsed and validated | `vars`, `key_vars`, `limit_vars`, `limits` |
//! | [`auth`] | authentication: keys, secrets that cannot leak, sealed pass-through keys | `keys`, `secret`, `seal` |
//! | [`ids`] | permit, ticket and generation ids as types (the same bytes on the wire and in rows), checked where a hostile one enters | |
//! | [`time`] | RFC 3339 of the injected clock (both ways), UTC day and month boundaries | |

pub mod account;
pub mod admission;
pub mod auth;
pub mod batch;
pub mod budget;
pub mod config;
pub mod driver;
pub mod ids;
pub mod ledger;
pub mod lifecycle;
pub mod operations;
pub mod queue;
pub mod rates;
pub mod relay;
pub mod shares;
pub mod storage;
pub mod time;
pub mod wire;

/// Milliseconds since the Unix epoch: the only notion of time in the core.
pub type Ms = u64;
