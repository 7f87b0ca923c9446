//! The line's own part of the account: the requests held in it (`Prefer:
//! wait`, live HTTP requests, so in memory only) and the sequence that
//! numbers held requests and queued jobs in one order (persisted as `seq`).

use crate::admission::request::Held;
use crate::Ms;

#[derive(Clone, Debug, Default)]
pub struct Line {
    /// Orders held requests and queued jobs in one line.
    pub next_seq: u64,
    /// Held requests (`Prefer: wait`): live HTTP requests, so not persisted.
    pub held: Vec<Held>,
}

impl Line {
    /// The next number in line (a held request's place, a queued job's order).
    pub fn number(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Held requests whose client stopped waiting leave the line.
    pub fn expire(&mut self, now: Ms) {
        self.held.retain(|h| h.expires_at > now);
    }

    /// The held request with this place leaves the line.
    pub fn leave(&mut self, ticket: u64) {
        self.held.retain(|h| h.ticket != ticket);
    }
}
