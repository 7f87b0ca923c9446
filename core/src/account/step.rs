//! One command's effect on the account's state: the match over every
//! [`Command`] that is not the operator's, the status or the ledger's.

use crate::admission::request::{AdmitRequest, Reason};
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::status::Observed;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::{Command, Reply};
use crate::Ms;

use super::DELIVERIES_PER_TICK;
use crate::account::AccountState;
use crate::account::Effect;

impl AccountState {
    pub(crate) fn step(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        command: Command,
        effects: &mut Vec<Effect>,
    ) -> StoreResult<Reply> {
        for p in self.permits.expire(now) {
            // A reservation that never heard back: its key may be retried.
            self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
        }
        self.batches.expire(now);
        Ok(match command {
            Command::Admit(req) => self.admit(limits, store, now, &req)?,
            Command::BatchCreated { permit, answer, retry_after_ms } => {
                self.batch_created(limits, now, jitter, permit, answer, retry_after_ms)
            }
            Command::BatchesSeen { batches } => Reply::Ack { released: self.batches.seen(&batches) },
            Command::Bind { permit, generation, replay } => {
                self.idempotency.settle(permit, replay, Some(&generation), now, &limits.idempotency);
                Reply::Ack { released: self.bind(limits, store, permit, &generation, now)? }
            }
            Command::Release { permit } => {
                self.idempotency.settle(permit, None, None, now, &limits.idempotency);
                Reply::Ack { released: u32::from(self.permits.release(permit).is_some()) }
            }
            Command::Unsettled { permit } => {
                self.permits.mark_unknown(&limits.concurrency, permit, now);
                Reply::Ack { released: 0 }
            }
            Command::Observe { generations } => {
                Reply::Ack { released: self.release_terminal(limits, store, &generations, now)?.len() as u32 }
            }
            Command::Callback { callback, generation, status, relay, output_ms } => {
                self.callback(limits, store, now, callback, Observed { id: generation, status, output_ms }, relay)?
            }
            Command::Webhook { generation, status, relay, output_ms } => {
                let seen = Observed { id: generation, status, output_ms };
                let freed = self.release_terminal(limits, store, std::slice::from_ref(&seen), now)?;
                let released = freed.len() as u32;
                if let Some(r) = relay {
                    self.relay_once(limits, store, now, seen, r)?;
                }
                Reply::Ack { released }
            }
            Command::Reconciled { listed_from, active, complete, ended } => {
                self.jobs_ended(store, &ended, now)?;
                self.costs_saw(limits, &ended, now);
                let active: Vec<(GenerationId, Option<String>)> = active.into_iter().map(|a| (a.id, a.model)).collect();
                // Sync marks nothing on a batch's generations: while batches
                // are open, that many unknown active ones are not adopted.
                let active = crate::batch::not_spawned(active, self.batches.spawned_allowance(), |g| {
                    self.permits.holds_generation(g)
                });
                let (gone, adopted) = if complete {
                    let (gone, adopted) = self.permits.reconcile(&limits.concurrency, &active, listed_from, now);
                    self.learn_ended(&gone, &ended, listed_from);
                    // Force-released creates: Sync's list began after them.
                    let (settled, kept) = std::mem::take(&mut self.reconciliation.released_keys)
                        .into_iter()
                        .partition::<Vec<_>, _>(|(_, at)| *at <= listed_from);
                    self.reconciliation.released_keys = kept;
                    for (p, _) in settled {
                        self.idempotency.settle(p, None, None, now, &limits.idempotency);
                    }
                    for p in &gone {
                        // An unknown create's key may be tried again now.
                        self.idempotency.settle(p.id, None, None, now, &limits.idempotency);
                    }
                    (gone, adopted)
                } else {
                    // A partial list can only prove presence, never absence.
                    let before = self.permits.in_use();
                    for (id, model) in &active {
                        self.permits.adopt(&limits.concurrency, id, model.clone(), now);
                    }
                    (Vec::new(), self.permits.in_use() - before)
                };
                let released = gone.len() as u32;
                self.reconciliation.schedule.finished(
                    &limits.reconcile,
                    now,
                    released + adopted,
                    self.permits.in_use() > 0,
                );
                Reply::Ack { released }
            }
            Command::ListStart => self.list_start(limits, now),
            Command::Listed { page } => self.listed(limits, store, now, jitter, page, effects)?,
            Command::LookedUp { ended } => self.looked_up(limits, store, now, jitter, ended, effects)?,
            Command::ReconcileFailed { retry_at } => {
                self.reconciliation.schedule.postpone(retry_at.max(now + 1));
                Reply::Ack { released: 0 }
            }
            Command::Delivered { id, attempt } => {
                self.outbox.settle(&limits.relay, id, attempt, now, jitter);
                Reply::Ack { released: 0 }
            }
            Command::UpstreamLimited { class, kind, permit, retry_after_ms } => {
                self.ops.metrics.upstream_429();
                if let Some(p) = permit {
                    self.costs.upstream_429(p);
                    self.permits.release(p);
                    self.idempotency.settle(p, None, None, now, &limits.idempotency);
                }
                match kind {
                    LimitKind::Rate => {
                        self.rates.strike(limits, &class, now, jitter, retry_after_ms);
                    }
                    LimitKind::Concurrency => self.reconciliation.schedule.suspect(&limits.reconcile, now),
                }
                // Shadow mode: Sync's own 429 goes back to the client as it is.
                if limits.shadow {
                    return Ok(Reply::Ack { released: 0 });
                }
                // The caller gets the governor's own refusal, with an honest retry time.
                let probe = AdmitRequest { class, permit: kind == LimitKind::Concurrency, ..AdmitRequest::default() };
                match self.admit_check(limits, now, &probe) {
                    Err(r) => Reply::Rejected(r),
                    Ok(()) => Reply::Ack { released: 0 },
                }
            }
            Command::Unhold { ticket, reason } => {
                if let Some(h) = self.line.held.iter().find(|h| h.ticket == ticket) {
                    let (class, name) = (h.class.clone(), reason.map_or("wait_expired", Reason::name));
                    self.ops.metrics.refused(&class, name, now);
                }
                self.line.leave(ticket);
                Reply::Ack { released: 0 }
            }
            Command::Dispatch => self.dispatch(limits, store, now)?,
            Command::Lane(cmd) => self.lane_command(limits, store, now, jitter, cmd)?,
            Command::Dispatched { ticket, permit, outcome } => {
                self.dispatched(limits, store, now, jitter, &ticket, permit, outcome)?
            }
            Command::DispatchBlocked { reason } => {
                self.block_dispatch(limits, reason, now);
                Reply::Ack { released: 0 }
            }
            Command::DispatchUnblocked => {
                self.sending.block = None;
                Reply::Ack { released: 0 }
            }
            Command::Ticket { ticket, client } => self.ticket(limits, store, now, &ticket, client.as_deref())?,
            Command::Cancel { ticket, client } => self.cancel(limits, store, now, &ticket, client.as_deref())?,
            Command::Tick => {
                // A bounded batch per alarm (bodies are read for these only);
                // the rest are due at once and re-arm the alarm.
                for id in self.outbox.due(now).into_iter().take(DELIVERIES_PER_TICK) {
                    match store.delivery(id)? {
                        Some(d) => effects.push(Effect::Deliver(d)),
                        // The row is gone (a crash between writes): nothing to send.
                        None => self.outbox.settle(
                            &limits.relay,
                            id,
                            crate::relay::delivery::Attempt::Status(410),
                            now,
                            jitter,
                        ),
                    }
                }
                let work = self.queue.has_ready(now) || self.interrupted_submission().is_some();
                if work && !self.dispatch_blocked(now) && self.ops.paused.is_none() {
                    effects.push(Effect::Dispatch);
                }
                if self.reconciliation.schedule.due(now) {
                    effects.push(Effect::Reconcile);
                }
                if self.ops.paused.is_none() && self.lane_due(limits, now) {
                    effects.push(Effect::Lane);
                }
                Reply::Ack { released: 0 }
            }
            // KeyAccepted is the driver's (it writes the tables out).
            Command::Status | Command::Admin(_) | Command::Ledger { .. } | Command::KeyAccepted => {
                Reply::Ack { released: 0 }
            }
        })
    }
}
