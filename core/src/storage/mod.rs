//! Storage: the account's tables, read back as hostile input.
//!
//! | module | one concept |
//! |---|---|
//! | [`row`] | a failed read (`StoreError`), the largest row (`MAX_ROW_BYTES`) |
//! | [`store`] | the account's tables: the `Store` read trait, the `Write`s `apply` returns, an in-memory store |
//! | [`mem`] | an account over the in-memory store, for native tests and the simulation (with restarts) |
//! | [`migrate`] | loading an account persisted by the previous layout (one JSON value + `job:*` keys) |
//! | [`clamp`] | stored times read back, clamped to now + their policy's maximum; the alarm within a day |
//! | [`bound`] | a stored time believed up to clock skew past its bound, else the bound |

pub mod bound;
pub mod clamp;
pub mod mem;
pub mod migrate;
pub mod row;
pub mod store;
