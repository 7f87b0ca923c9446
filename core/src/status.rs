//! Sync's generation statuses.

/// Statuses that end a generation (current and older docs).
pub const TERMINAL: [&str; 5] = ["COMPLETED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT"];

/// Statuses that hold a concurrency slot at Sync.
pub const ACTIVE: [&str; 2] = ["PENDING", "PROCESSING"];

pub fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

pub fn is_active(status: &str) -> bool {
    ACTIVE.contains(&status)
}
