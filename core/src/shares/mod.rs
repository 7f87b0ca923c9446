//! Sharing one account among its clients: who a client is, what it may
//! take (`CLIENT_LIMITS` and operator overrides), and the weighted fair
//! order of its waiting work.
//!
//! | module | one concept |
//! |---|---|
//! | [`client`] | client names: managed keys' names, fingerprints, the advisory header |
//! | [`limits`] | `CLIENT_LIMITS`: per-client weight, reservation, concurrency, rates, USD budgets |
//! | [`state`] | the account's sharing state: its name, overrides per client, client rate logs, the virtual clock |
//! | [`line`](mod@line) | the hooks into admission: a client's own limits, the fair line, counting what it spends |
//! | [`status`] | the shapes shown per client: limits and their sources, work, shares |
//! | [`view`] | status per client: limits and their sources, permits, queued and held work, shares |
//! | [`clamp`] | a client's stored rate stamps clamped on load, as the account's |
//! | [`admin`] | an operator's overrides of one client's limits |
//! | [`order`] | the one order of the line (projected weighted fair order): dispatch, turns, positions |
//! | [`fair`] | the weighted fair order: reservations first, then permits per weight, then virtual time |

pub mod admin;
pub mod clamp;
pub mod client;
pub mod fair;
pub mod limits;
pub mod line;
pub mod order;
pub mod state;
pub mod status;
pub mod view;

pub use state::Shares;
