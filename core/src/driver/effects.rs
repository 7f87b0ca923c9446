//! Running the effects a command asks for: queued submissions, relay
//! deliveries and reconciliation, side by side (a slow hook or a slow Sync
//! delays none of the others), each reporting back as a command.

use super::join::{join_all, Task};
use super::{Driver, Io, IoResult, MAX_DISPATCH_PER_WAKE, RELAY_CONCURRENCY};
use crate::account::Effect;
use crate::lifecycle::pages::MAX_PAGES;
use crate::lifecycle::pages::{ListStep, ListedPage};
use crate::queue::job::Blocked;
use crate::relay::delivery::Delivery;
use crate::wire::contract::{Command, Reply};

impl<I: Io> Driver<I> {
    /// Run `effects`: reconciliation, dispatch and the deliveries side by side.
    pub(super) async fn perform(&self, effects: Vec<Effect>) -> IoResult<()> {
        if effects.is_empty() {
            return Ok(());
        }
        let (mut dispatch, mut reconcile, mut lane, mut deliveries) = (false, false, false, Vec::new());
        for effect in effects {
            match effect {
                Effect::Dispatch => dispatch = true,
                Effect::Deliver(delivery) => deliveries.push(delivery),
                Effect::Reconcile => reconcile = true,
                Effect::Lane => lane = true,
            }
        }
        let reconciling = async move {
            if reconcile {
                self.reconcile().await?;
                // Permits the listing freed go to the queue at once.
                self.dispatch_due().await
            } else {
                Ok(())
            }
        };
        let dispatching = async move {
            if dispatch {
                self.dispatch().await
            } else {
                Ok(())
            }
        };
        let laning = async move {
            if lane {
                self.lane().await
            } else {
                Ok(())
            }
        };
        let tasks: Vec<Task<'_, IoResult<()>>> =
            vec![Box::pin(reconciling), Box::pin(dispatching), Box::pin(laning), Box::pin(self.relay(deliveries))];
        join_all(tasks).await.into_iter().collect()
    }

    /// Deliveries in rounds of [`RELAY_CONCURRENCY`], each time-boxed.
    async fn relay(&self, deliveries: Vec<Delivery>) -> IoResult<()> {
        let (timeout, local) = (self.config.timeouts.relay_ms, self.config.webhooks.local_mode);
        let mut results = Vec::new();
        for round in deliveries.chunks(RELAY_CONCURRENCY) {
            let tasks: Vec<Task<'_, IoResult<()>>> = round
                .iter()
                .map(|delivery| -> Task<'_, IoResult<()>> {
                    Box::pin(async move {
                        let attempt = self.io.deliver(delivery, local, timeout).await;
                        if cfg!(feature = "mutant-drop-delivered") {
                            return Ok(()); // the test-only mutant: the report is lost
                        }
                        self.run(Command::Delivered { id: delivery.id, attempt }).await.map(|_| ())
                    })
                })
                .collect();
            results.extend(join_all(tasks).await);
        }
        results.into_iter().collect()
    }

    /// Submit queued jobs while the account has room for them (one loop at a time).
    pub(super) async fn dispatch(&self) -> IoResult<()> {
        if self.dispatching.replace(true) {
            return Ok(());
        }
        let result = self.dispatch_loop().await;
        self.dispatching.set(false);
        if result.is_err() {
            // A job may be marked as being sent while nothing sends it: reload
            // the state, and a SUBMITTING job is resumed as a cut-off one.
            *self.cache.borrow_mut() = None;
        }
        result
    }

    /// Dispatch if queued work may go now: work due now is sent now, the
    /// alarm is for work due later.
    pub(super) async fn dispatch_due(&self) -> IoResult<()> {
        let now = self.io.now();
        let due = self.with_state(|a| a.submission_due(&self.config.limits, now)).unwrap_or(false);
        if due && !self.dispatching.get() {
            self.dispatch().await
        } else {
            Ok(())
        }
    }

    async fn dispatch_loop(&self) -> IoResult<()> {
        // Without the account's key nothing can be sent: the jobs wait (and
        // spend nothing) until a client of the account brings it, and the
        // queue backs off rather than waking the alarm at once.
        let Some(key) = self.upstream_key().await else {
            self.run(Command::DispatchBlocked { reason: Blocked::NoSyncKey }).await?;
            return Ok(());
        };
        let timeout = self.config.timeouts.create_ms;
        for _ in 0..MAX_DISPATCH_PER_WAKE {
            let Reply::Dispatch(job) = self.reply(Command::Dispatch).await? else { return Ok(()) };
            let outcome = self.io.submit(&key, &job, timeout).await;
            self.run(Command::Dispatched { ticket: job.ticket, permit: job.permit, outcome }).await?;
        }
        Ok(())
    }

    /// Reconcile: the core asks for each page and lookup (and has spent the
    /// budget for it); the driver fetches and reports back.
    async fn reconcile(&self) -> IoResult<()> {
        let key = self.upstream_key().await;
        let timeout = self.config.timeouts.list_ms;
        let mut step = self.reply(Command::ListStart).await?;
        // The core bounds a run (pages, one lookup); this bounds the loop too.
        for _ in 0..=MAX_PAGES + 1 {
            let command = match (step, &key) {
                (Reply::List(ListStep::Page { .. }), None) => Command::Listed { page: ListedPage::NoKey },
                (Reply::List(ListStep::Page { cursor, limit }), Some(k)) => {
                    Command::Listed { page: self.io.list_page(k, limit, cursor.as_deref(), timeout).await }
                }
                (Reply::List(ListStep::Lookup { ids }), Some(k)) => {
                    Command::LookedUp { ended: self.io.lookup(k, &ids, timeout).await }
                }
                (Reply::List(ListStep::Lookup { .. }), None) => Command::LookedUp { ended: Vec::new() },
                (Reply::List(ListStep::Batches { .. }), None) => Command::Listed { page: ListedPage::NoKey },
                (Reply::List(ListStep::Batches { limit }), Some(k)) => {
                    Command::Listed { page: self.io.list_batches(k, limit, timeout).await }
                }
                _ => return Ok(()),
            };
            step = self.reply(command).await?;
        }
        Ok(())
    }
}
