//! The wire contract: what crosses the Worker's HTTP edge and the Worker ↔ object boundary.
//!
//! | module | one concept |
//! |---|---|
//! | [`view`] | the account's status document: policies, permits, backoff, relay, queue, storage |
//! | [`path`] | the canonical request path (or a refusal when routers could disagree), account object names |
//! | [`contract`] | the typed commands and replies of the account's Durable Object |
//! | [`calls`] | the Worker's calls into the object, typed: one request type per call, its reply type at compile time |
//! | [`error`] | every failure and its HTTP status / JSON body, in one place |
//! | [`route`] | which route a request takes and which rate class it spends from |
//! | [`rewrite`] | reading a generate body and pointing its `webhookUrl` at the governor |
//! | [`headers`] | `RateLimit-Policy` / `RateLimit` header fields |
//! | [`prefer`] | the `Prefer` header: `respond-async`, `wait=N` |
//! | [`json`] | JSON text in: one reader for all of it |

pub mod calls;
pub mod contract;
pub mod error;
pub mod headers;
pub mod json;
pub mod path;
pub mod prefer;
pub mod rewrite;
pub mod route;
pub mod view;
