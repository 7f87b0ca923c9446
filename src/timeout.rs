//! Time boxes for the governor's outgoing calls (`UPSTREAM_TIMEOUT_*_MS`,
//! `RELAY_TIMEOUT_MS`). The call runs with an `AbortController`'s signal,
//! raced against a timer: when the timer wins, the controller aborts the
//! fetch (the connection is closed, the subrequest ends) and the caller
//! gets `None`.

use std::future::Future;
use std::time::Duration;

use worker::{AbortController, AbortSignal, Delay};

use governor_core::driver::join::race;

/// A fetch's abort switch and the signal to hand to it.
pub struct Boxed {
    controller: AbortController,
    pub signal: AbortSignal,
}

impl Boxed {
    pub fn new() -> Self {
        let controller = AbortController::default();
        let signal = controller.signal();
        Boxed { controller, signal }
    }

    /// Run `f` (which uses `self.signal`) for at most `ms`; abort it then.
    pub async fn run<T>(self, ms: u64, f: impl Future<Output = T>) -> Option<T> {
        match race(f, Delay::from(Duration::from_millis(ms))).await {
            Ok(value) => Some(value),
            Err(()) => {
                self.controller.abort();
                None
            }
        }
    }
}

impl Default for Boxed {
    fn default() -> Self {
        Self::new()
    }
}
