//! Sharing one account among its clients: who a client is, what it may
//! take (`CLIENT_LIMITS` and operator overrides), and the weighted fair
//! order of its waiting work.
//!
//! | module | one concept |
//! |---|---|
//! | [`client`] | client names: managed keys' names, fingerprints, the advisory header |
//! | [`limits`] | `CLIENT_LIMITS`: per-client weight, reservation, concurrency, rates, USD budgets |

pub mod client;
pub mod limits;
