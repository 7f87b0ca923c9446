//! Cost budgets: what a generation is estimated to cost, what is reserved
//! against the account's and the client's budgets at admission, and what is
//! settled when Sync reports the generation's end.
//!
//! | file | one concept |
//! |---|---|
//! | [`money`] | `MicroUsd`: exact USD arithmetic in millionths |
//! | [`prices`] | `PRICES`: USD per output second per model, from the operator |
//! | [`estimate`] | the estimate rule (Sync's, else learned, else `PRICES`) and the settle rule |
//! | [`hooks`] | where the account calls the costs part (admission, ends) |
//! | [`learned`] | the cost per model learned from completed jobs |
//! | [`costs`] | the account's costs part: book + learned + ledger, hooked at admission, bind, 429 and end |
//! | [`book`] | spend per scope and UTC period: check, reserve, settle, release |
//! | [`metrics`] | budgets and spend per client as Prometheus gauges |
//! | [`view`] | the costs block of the status: budgets, spend per client, the ledger's size |
//! | [`admin`] | an operator's override of the account's budgets (`PUT|DELETE .../budget`) |
//! | [`vars`] | `PRICES`, `BUDGET_USD_PER_DAY`/`_MONTH`, `LEDGER_RETENTION_DAYS`, admin budget overrides |
//!
//! The rules are pure: the object only fetches Sync's estimate when the
//! core asks for it, and persists the book as the core writes it.

pub mod admin;
pub mod book;
pub mod costs;
pub mod estimate;
pub mod hooks;
pub mod learned;
pub mod metrics;
pub mod money;
pub mod prices;
pub mod vars;
pub mod view;

pub use book::{Book, BudgetLimits, Exhausted, Period, Reservation, Scope};
pub use estimate::{CostSource, Estimate};
pub use money::MicroUsd;
pub use prices::Prices;
