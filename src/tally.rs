//! What this isolate saw of the requests it forwarded, per account, until
//! it tells the account: Sync's statuses, the latency the governor added,
//! requests forwarded without a decision. It rides along with the account's
//! next admission (no call of its own). Bounded: at most [`MAX_ACCOUNTS`]
//! accounts wait to be told; beyond, new counts are dropped.

use std::cell::RefCell;

use governor_core::operations::metrics::Tally;

const MAX_ACCOUNTS: usize = 256;

thread_local! {
    static PENDING: RefCell<Vec<(String, Tally)>> = const { RefCell::new(Vec::new()) };
}

fn with(account: &str, f: impl FnOnce(&mut Tally)) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if let Some((_, t)) = p.iter_mut().find(|(a, _)| a == account) {
            f(t);
        } else {
            // Full: the oldest waiting account's counts give way (an account
            // seen once, e.g. a key Sync refused, must not hold a slot forever).
            if p.len() >= MAX_ACCOUNTS {
                p.remove(0);
            }
            let mut t = Tally::default();
            f(&mut t);
            p.push((account.to_owned(), t));
        }
    });
}

/// A forwarded request ended: Sync's status and the time the governor added.
pub fn record(account: &str, status: u16, added_ms: u64) {
    with(account, |t| {
        count(&mut t.upstream, status, 1);
        t.added_latency.observe(added_ms);
    });
}

/// A request forwarded without a decision (`FAIL_MODE=open`).
pub fn fail_open(account: &str) {
    with(account, |t| t.fail_open += 1);
}

/// The counts waiting for `account`, taken (to send with an admission).
pub fn take(account: &str) -> Option<Tally> {
    PENDING
        .with(|p| {
            let mut p = p.borrow_mut();
            let i = p.iter().position(|(a, _)| a == account)?;
            Some(p.swap_remove(i).1)
        })
        .filter(|t| !t.is_empty())
}

/// Counts that could not be delivered go back (the admission failed).
pub fn restore(account: &str, tally: Tally) {
    with(account, |t| {
        for (s, n) in tally.upstream {
            count(&mut t.upstream, s, n);
        }
        t.added_latency.merge(&tally.added_latency);
        t.fail_open += tally.fail_open;
    });
}

fn count(statuses: &mut Vec<(u16, u64)>, status: u16, n: u64) {
    match statuses.iter_mut().find(|(s, _)| *s == status) {
        Some((_, c)) => *c += n,
        None => statuses.push((status, n)),
    }
}
