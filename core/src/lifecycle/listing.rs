//! Reconciliation as a conversation: the core decides every step of a
//! listing of Sync's active generations and the object only fetches.
//!
//! `ListStart` → `Reply::List(Page { cursor })` → the object fetches that page
//! and answers `Listed { page }` → the next `Page`, or `Lookup { ids }` (the
//! final status of generations presumed ended, so their tickets show it) →
//! `LookedUp { ended }` → `Done`. Each page and lookup spends from the
//! `other` budget (the reconciliation's reserved share) before it is asked
//! for; a refusal, a Sync 429 (interpreted here, in one place with the rest
//! of Sync's answers) or a failure postpones the run. The listing's progress
//! lives in memory only: a restart simply lists again.

use crate::account::AccountState;
use crate::admission::request::AdmitRequest;
use crate::config::limits::Limits;
use crate::ids::GenerationId;
use crate::lifecycle::limited::limit_kind;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::pages::ListStep;
use crate::lifecycle::pages::ListedPage;
use crate::lifecycle::pages::Listing;
use crate::lifecycle::pages::BATCH_PAGE;
use crate::lifecycle::pages::MAX_PAGES;
use crate::lifecycle::status::Observed;
use crate::rates::class::RateClass;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;
use crate::wire::contract::{Command, Reply};
use crate::Ms;

impl AccountState {
    /// Spend one internal `other` request, or say when one will fit.
    fn spend_internal(&mut self, limits: &Limits, now: Ms) -> Result<(), Ms> {
        let probe = AdmitRequest { class: RateClass::Other, internal: true, ..AdmitRequest::default() };
        self.admit_check(limits, now, &probe).map_err(|r| r.retry_at_ms)?;
        self.spend(limits, &RateClass::Other, now);
        Ok(())
    }

    fn list_page(&mut self, limits: &Limits, now: Ms, cursor: Option<String>) -> ListStep {
        match self.spend_internal(limits, now) {
            Ok(()) => ListStep::Page { cursor, limit: limits.reconcile.page_size },
            Err(retry_at) => match (cursor, self.reconciliation.listing.take()) {
                // Pages already read stay read: the next run goes on from here.
                (Some(next), Some(listing)) => {
                    self.reconciliation.listing = Some(Listing { resume: Some(next), ..listing });
                    self.reconciliation.schedule.postpone(retry_at.max(now + 1));
                    ListStep::Done
                }
                _ => self.list_abort(retry_at, now),
            },
        }
    }

    fn list_abort(&mut self, retry_at: Ms, now: Ms) -> ListStep {
        self.reconciliation.listing = None;
        self.reconciliation.schedule.postpone(retry_at.max(now + 1));
        ListStep::Done
    }

    pub(crate) fn list_start(&mut self, limits: &Limits, now: Ms) -> Reply {
        // A listing stopped for budget goes on, unless it began more than the
        // shortest period ago (its first pages would be too stale to trust as
        // part of one complete listing).
        let fresh_enough = |l: &Listing| l.listed_from + limits.reconcile.min_ms > now;
        match self.reconciliation.listing.take().filter(|l| l.resume.is_some() && fresh_enough(l)) {
            Some(mut listing) => {
                let cursor = listing.resume.take();
                self.reconciliation.listing = Some(listing);
                Reply::List(self.list_page(limits, now, cursor))
            }
            None => {
                self.reconciliation.listing = Some(Listing { listed_from: now, ..Listing::default() });
                if self.batches.in_use() > 0 {
                    return Reply::List(match self.spend_internal(limits, now) {
                        Ok(()) => ListStep::Batches { limit: BATCH_PAGE },
                        Err(retry_at) => self.list_abort(retry_at, now),
                    });
                }
                Reply::List(self.list_page(limits, now, None))
            }
        }
    }

    pub(crate) fn listed(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        page: ListedPage,
        effects: &mut Vec<crate::account::Effect>,
    ) -> StoreResult<Reply> {
        let Some(mut listing) = self.reconciliation.listing.take() else { return Ok(Reply::List(ListStep::Done)) };
        let retry = now + limits.reconcile.min_ms;
        let step = match page {
            ListedPage::Items { items, count } => {
                let cursor = items.last().map(|g| g.id.as_str().to_owned());
                listing.active.extend(items);
                listing.pages += 1;
                let last = count < limits.reconcile.page_size as usize || cursor.is_none();
                if last {
                    let ids: Vec<GenerationId> = listing.active.iter().map(|a| a.id.clone()).collect();
                    let gone = self.presumed_ended(&ids, listing.listed_from);
                    if !gone.is_empty() && self.spend_internal(limits, now).is_ok() {
                        self.reconciliation.listing = Some(listing);
                        return Ok(Reply::List(ListStep::Lookup { ids: gone }));
                    }
                    let Listing { listed_from, active, .. } = listing;
                    let command = Command::Reconciled { listed_from, active, complete: true, ended: Vec::new() };
                    self.step(limits, store, now, jitter, command, effects)?;
                    ListStep::Done
                } else if listing.pages >= MAX_PAGES {
                    // A partial list can only prove presence.
                    let Listing { listed_from, active, .. } = listing;
                    let command = Command::Reconciled { listed_from, active, complete: false, ended: Vec::new() };
                    self.step(limits, store, now, jitter, command, effects)?;
                    ListStep::Done
                } else {
                    self.reconciliation.listing = Some(listing);
                    self.list_page(limits, now, cursor)
                }
            }
            ListedPage::Limited { body } => {
                let kind = limit_kind(body.as_bytes());
                let class = if kind == LimitKind::Rate { RateClass::Other } else { RateClass::Generate };
                let command = Command::UpstreamLimited { class, kind, permit: None, retry_after_ms: None };
                self.step(limits, store, now, jitter, command, effects)?;
                self.list_abort(retry, now)
            }
            ListedPage::Batches { open, complete } => {
                if complete {
                    self.batches.reconcile(&limits.batches, &open, listing.listed_from, now);
                } else {
                    self.batches.seen(&open);
                }
                self.reconciliation.listing = Some(listing);
                self.list_page(limits, now, None)
            }
            ListedPage::Failed => self.list_abort(retry, now),
            // Without a key the next request (pass-through) brings it.
            ListedPage::NoKey => self.list_abort(now + limits.reconcile.max_ms, now),
        };
        Ok(Reply::List(step))
    }

    pub(crate) fn looked_up(
        &mut self,
        limits: &Limits,
        store: &dyn Store,
        now: Ms,
        jitter: f64,
        ended: Vec<Observed>,
        effects: &mut Vec<crate::account::Effect>,
    ) -> StoreResult<Reply> {
        let Some(Listing { listed_from, active, .. }) = self.reconciliation.listing.take() else {
            return Ok(Reply::List(ListStep::Done));
        };
        let command = Command::Reconciled { listed_from, active, complete: true, ended };
        self.step(limits, store, now, jitter, command, effects)?;
        Ok(Reply::List(ListStep::Done))
    }
}
