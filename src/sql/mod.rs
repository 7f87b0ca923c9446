//! The account object's SQLite storage, one concept a file:
//!
//! | file | what |
//! | --- | --- |
//! | [`schema`] | the tables and indexes, created on first use |
//! | [`values`] | column values to and from SQLite |
//! | [`store`] | [`SqlStore`]: the connection, row reads, the object's own meta rows |
//! | [`write`] | the executor of the core's `Write`s (one transaction per command) |
//! | [`read`] | the core's `Store` over the tables |
//! | [`ledger`] | the job ledger's table |

pub mod ledger;
pub mod read;
pub mod schema;
pub mod store;
pub mod values;
pub mod write;

pub use store::SqlStore;
