//! Admission: whether a request may go to Sync now, wait in the line, or be queued.
//!
//! | module | one concept |
//! |---|---|
//! | [`request`] | an admission asked and answered: request, hold, held place, admitted or refused |
//! | [`admit`] | the admission decision: rate, concurrency, backoff, the line of held and queued work, idempotency |
//! | [`line`](mod@line) | the line's part of the account: held requests and the sequence that orders them with queued jobs |
//! | [`hold`] | a request not admitted now: queued, held in the line, shed or refused |
//! | [`replay`] | a retried `Idempotency-Key`: the first answer replayed, when one in flight resolves |
//! | [`shed`] | the expected wait of a held request, from the line ahead and the observed durations |
//! | [`idempotency`] | client `Idempotency-Key` records: in-flight in memory, the rest by key in their table, bounded |

pub mod admit;
pub mod hold;
pub mod idempotency;
pub mod line;
pub mod replay;
pub mod request;
pub mod shed;
