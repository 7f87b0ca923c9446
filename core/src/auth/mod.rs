//! Authentication and secrets: keys, their fingerprints, sealed copies.
//!
//! | module | one concept |
//! |---|---|
//! | [`keys`] | authentication: pass-through and managed keys, constant-time lookup |
//! | [`secret`] | a string that cannot be logged or serialised by accident |
//! | [`seal`] | sealing a pass-through key for queued jobs (AES-256-GCM) |

pub mod keys;
pub mod seal;
pub mod secret;
