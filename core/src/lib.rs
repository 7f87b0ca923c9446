//! The pure core of sync-governor: every decision the governor makes, with
//! no `worker` import, no I/O and no clock reads. The Workers layer (the
//! crate at the repository root) reads the clock once per request, passes it
//! in, and persists what comes out. Tested natively with `cargo test`.
//!
//! # Layout
//!
//! | module | one concept |
//! |---|---|
//! | [`class`] | `RateClass`: the budgets as a type, spelled in one place |
//! | [`window`] | exact rate limit: at most N admissions in any span of window + margin (sliding log, optional GCRA pacing) |
//! | [`batch`] | Sync's Batch API: batch permits (reserved, bound to a batch, freed at its end, cap learned down), reading batch answers |
//! | [`permits`] | concurrency permits: reserved, bound to a generation, adopted, released, leased |
//! | [`listing`] | reconciliation as a conversation: the core asks for each page and lookup, the object only fetches |
//! | [`reconcile`] | converging permits to Sync's list of active generations, adaptive period |
//! | [`relay`] | the durable outbox of webhook payloads for clients' own URLs, with backoff |
//! | [`webhook`] | callback tokens, `Sync-Signature` checks, which client URLs may be called |
//! | [`budget`] | cost budgets: money, `PRICES`, the estimate and settle rules, the book of spend per client and UTC period |
//! | [`backoff`] | what an upstream 429 teaches: exponential pause with full jitter |
//! | [`durations`] | running statistic of generation durations per model (for honest Retry-After) |
//! | [`driver`] | the one loop every account runs over an `Io` trait (the Durable Object, the simulation): apply → write → effects → results back → wake, with its bounds |
//! | [`account`] | one account's hot state and the sans-IO `apply(limits, state, store, now, jitter, command) -> Output` (reply, writes, effects, wake) |
//! | [`store`] | the account's tables: the `Store` read trait, the `Write`s `apply` returns, an in-memory store |
//! | [`bound`] | a stored time believed up to clock skew past its bound, else the bound |
//! | [`callback`] | a webhook on a bound callback URL: its payload must be its own create's generation; duplicates per callback |
//! | [`clamp`] | stored times read back, clamped to now + their policy's maximum; the alarm within a day |
//! | [`mem`] | an account over the in-memory store, for native tests and the simulation (with restarts) |
//! | [`migrate`] | loading an account persisted by the previous layout (one JSON value + `job:*` keys) |
//! | [`overrides`] | per-account limits set at runtime, and where each effective value came from |
//! | [`ops`] | the operator's commands on an account: limits, pause, queue, permits, metrics |
//! | [`metrics`] | counters, histograms, the 15-minute series and wait percentiles; Prometheus text |
//! | [`shed`] | the expected wait of a held request, from the line ahead and the observed durations |
//! | [`idempotency`] | client `Idempotency-Key` records: in-flight in memory, the rest by key in their table, bounded |
//! | [`admit`] | the admission decision: rate, concurrency, backoff, the line of held and queued work, idempotency |
//! | [`drained`] | the drained probe: deliveries, submissions and listings pending, and when each is due (from the wake's state) |
//! | [`dispatch`] | submitting queued jobs: pick, record the outcome, ticket views |
//! | [`queue`] | the durable generation queue: round-robin across clients, priority within |
//! | [`shares`] | sharing an account among its clients: client names, `CLIENT_LIMITS`, weighted fair order |
//! | [`prefer`] | the `Prefer` header: `respond-async`, `wait=N` |
//! | [`seal`] | sealing a pass-through key for queued jobs (AES-256-GCM) |
//! | [`time`] | RFC 3339 of the injected clock (both ways), UTC day and month boundaries |
//! | [`calls`] | the Worker's calls into the object, typed: one request type per call, its reply type at compile time |
//! | [`contract`] | the typed commands and replies of the account's Durable Object |
//! | [`config`] | every wrangler var and secret, parsed and validated |
//! | [`ledger`] | the job ledger: one row per generation job, bounded, retained; its query and formats |
//! | [`keys`] | authentication: pass-through and managed keys, constant-time lookup |
//! | [`secret`] | a string that cannot be logged or serialised by accident |
//! | [`settle`] | what a Sync response tells the account: bind, release, observe, 429 |
//! | [`rewrite`] | reading a generate body and pointing its `webhookUrl` at the governor |
//! | [`route`] | which route a request takes and which rate class it spends from |
//! | [`headers`] | `RateLimit-Policy` / `RateLimit` header fields |
//! | [`error`] | every failure and its HTTP status / JSON body, in one place |
//! | [`status`] | `GenerationStatus` (Sync's, parsed once; unknown ones never free a permit) and `TicketStatus`, spelled in one place |

pub mod account;
pub mod admit;
pub mod backoff;
pub mod batch;
pub mod bound;
pub mod budget;
pub mod callback;
pub mod calls;
pub mod clamp;
pub mod class;
pub mod config;
pub mod contract;
pub mod dispatch;
pub mod drained;
pub mod driver;
pub mod durations;
pub mod error;
pub mod headers;
pub mod idempotency;
pub mod json;
pub mod keys;
pub mod ledger;
pub mod listing;
pub mod mem;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod overrides;
pub mod permits;
pub mod prefer;
pub mod queue;
pub mod reconcile;
pub mod relay;
pub mod rewrite;
pub mod route;
pub mod seal;
pub mod secret;
pub mod settle;
pub mod shares;
pub mod shed;
pub mod status;
pub mod store;
pub mod time;
pub mod webhook;
pub mod window;

/// Milliseconds since the Unix epoch: the only notion of time in the core.
pub type Ms = u64;
