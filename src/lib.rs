//! sync-governor: a Cloudflare Worker that lets many clients share one Sync
//! lip-sync API account without tripping its rate or concurrency limits.
//!
//! All decisions live in the pure [`governor_core`] crate (`core/`), tested
//! natively. This crate is the thin Workers layer around it.
//!
//! # Layout
//!
//! | module | one concept |
//! |---|---|
//! | [`assets`] | the dashboard and the OpenAPI document (`public/`), compiled in and answered first |
//! | [`handler`] | the route table: one arm per route |
//! | [`forward`] | a proxied request: prepare → decide (one call into the account's object) → forward → settle → respond |
//! | [`caller`] | the key a request presents and the caller it resolves to |
//! | [`decision`] | one request's decision as its log line and Analytics Engine point |
//! | [`generate`] | generate specifics: body rewrite, `Prefer: wait` / `respond-async`, idempotency |
//! | [`settings`] | reads the wrangler vars and secrets into `governor_core::config::Config` |
//! | [`account_client`] | the Worker side of the typed calls into the account's object (`governor_core::wire::calls`) |
//! | [`account_object`] | the Durable Object, a shell: builds the core's `driver` over `object_io` and hands it every call and alarm |
//! | [`object_io`] | the core's `Io` over SQL, `fetch`, `setAlarm`, clock and randomness: executes, decides nothing |
//! | [`object_rpc`] | the object's RPC methods, one per contract: `call` (accounts), `deploymentKey`, `directory` |
//! | [`sql`] | the account's tables in SQLite: the core's `Store` reads and `Write`s, the ledger's table |
//! | [`proxy`] | streaming forward to Sync (hop-by-hop headers dropped, bodies never buffered) |
//! | [`request`] | reading a request's parts: a header, a body under a cap, the URL, a client's `webhookUrl` |
//! | [`respond`] | errors and governor headers onto HTTP responses, in one place |
//! | [`cors`] | browser origins and preflight |
//! | [`ops`] | the operations, apart from the data path: the admin API and `/governor/v1/metrics` (admin key, typed admin commands, Prometheus text) |
//! | [`directory`] | the deployment's list of accounts (a singleton object with a typed contract of its own), announced off the hot path |
//! | [`provisional`] | a pass-through key's account stores nothing until Sync accepts the key once (the core's rule) |
//! | [`tally`] | per-isolate upstream statuses and added latency, sent with the account's next admission |
//! | [`log`] | structured JSON log lines at `LOG_LEVEL`, never a secret |
//! | [`legacy_kv`] | the previous layout's key-value storage, read once at migration through the runtime's API |
//! | [`deployment`] | the deployment key, drawn once by its singleton when `GOVERNOR_WEBHOOK_KEY` is not set |
//! | [`webhook`] | Sync's callbacks: verify, free the permit, queue the relay |
//! | [`upstream`] | the account object's own calls: submit queued jobs, list active generations, look up statuses, relay deliveries |
//! | [`timeout`] | time boxes of outgoing calls (abort signal raced against a timer) |

pub mod account_client;
pub mod account_object;
pub mod analytics;
pub mod assets;
pub mod caller;
pub mod cors;
pub mod cost;
pub mod decision;
pub mod deployment;
pub mod directory;
pub mod forward;
pub mod generate;
pub mod handler;
pub mod lane_upstream;
pub mod ledger;
pub mod legacy_kv;
pub mod log;
pub mod object_io;
pub mod object_rpc;
pub mod ops;
pub mod provisional;
pub mod proxy;
pub mod request;
pub mod respond;
pub mod settings;
pub mod sql;
pub mod tally;
pub mod timeout;
pub mod upstream;
pub mod webhook;

use worker::{event, Context, Env, Result};

/// The governor: the data plane, the operations (admin API, metrics) and
/// the accounts' Durable Objects, in one script.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    // The runtime's own request: nothing is converted until a route reads it.
    let req = request::Request::new(req);
    if let Some(file) = assets::serve(&req) {
        return Ok(file.into());
    }
    Ok(handler::handle(req, &env, &ctx).await.into())
}
