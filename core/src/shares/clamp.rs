//! A client's own rate logs read back (after a restart, a migration, a
//! hostile row), clamped as the account's are (see [`crate::storage::clamp`]): an
//! admission is never in the future, so a stamp far ahead fills the
//! client's window for one span at most.

use super::state::{client_rate, Shares};
use crate::config::limits::Limits;
use crate::rates::class::RateClass;
use crate::storage::store::Write;
use crate::Ms;

impl Shares {
    /// Clamp every client stamp to `now`; the table rows move with them.
    pub fn clamp_times(&mut self, limits: &Limits, now: Ms) -> Vec<Write> {
        let mut writes = Vec::new();
        let names: Vec<String> = self.logs.keys().cloned().collect();
        for name in names {
            let Some((base, client)) = name.split_once('@') else { continue };
            let Some(rate) = client_rate(limits, &self.limit(limits, client), &RateClass::from(base)) else { continue };
            let Some(log) = self.logs.get_mut(&name) else { continue };
            let class = RateClass::from(name.as_str());
            for (from, to) in log.clamp_times(&rate, now) {
                writes.push(Write::MoveAdmissions { class: class.clone(), from, to });
            }
            // Rows past the client's limit were not loaded: the table keeps what memory keeps.
            writes.push(Write::TrimAdmissions { class, keep: rate.limit });
        }
        writes
    }
}
