//! Which batch-lane jobs go in the next batch: up to `max_jobs` of them in
//! the weighted fair order of [`crate::shares::fair`] (the account's
//! virtual clock, advanced on a copy: a batch spends none of the direct
//! creates the clock shares), priority then arrival within a client, and
//! no more than `max_bytes` of JSONL. A job with a cost to check against a
//! budget, or a body that is not a JSON object, goes direct instead.

use std::collections::BTreeMap;

use crate::account::AccountState;
use crate::batch::lane::{LaneBatchView, LaneView};
use crate::batch::lane_lines::input_line;
use crate::budget::costs::CostAsk;
use crate::config::limits::Limits;
use crate::ids::TicketId;
use crate::queue::job::{Job, JobState};
use crate::shares::fair;
use crate::storage::row::StoreResult;
use crate::storage::store::Store;

/// The next batch: its JSONL, the tickets in it, and the tickets whose
/// body cannot go in a batch (they go direct).
#[derive(Debug, Default)]
pub(crate) struct Pick {
    pub lines: String,
    pub tickets: Vec<TicketId>,
    pub unbatchable: Vec<TicketId>,
}

impl AccountState {
    /// Batch-lane jobs waiting for a batch.
    pub(crate) fn lane_waiting(&self) -> impl Iterator<Item = &Job> {
        self.queue.jobs().iter().filter(|j| j.state == JobState::Lane)
    }

    /// The waiting lane jobs in fair order.
    fn lane_order(&self, limits: &Limits) -> Vec<&Job> {
        let mut by_client: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for j in self.lane_waiting() {
            by_client.entry(j.spec.client.as_str()).or_default().push(j);
        }
        for jobs in by_client.values_mut() {
            // Last out first: the next is popped from the back.
            jobs.sort_by_key(|j| (j.spec.priority, std::cmp::Reverse(j.seq)));
        }
        let mut clock = self.shares.clock.clone();
        let mut order = Vec::new();
        while !by_client.is_empty() {
            let next = by_client
                .keys()
                .map(|c| (fair::key(&self.shares.limit(limits, c), 0, &clock, c), *c))
                .min()
                .map(|(_, c)| c);
            let Some(client) = next else { break };
            let waiting: Vec<&str> = by_client.keys().copied().collect();
            clock.served(client, self.shares.limit(limits, client).weight(), waiting.iter().copied());
            let jobs = by_client.get_mut(client);
            if let Some(j) = jobs.and_then(Vec::pop) {
                order.push(j);
            }
            by_client.retain(|_, v| !v.is_empty());
        }
        order
    }

    /// Pick the next batch (bodies read from their rows).
    pub(crate) fn lane_pick(&self, limits: &Limits, store: &dyn Store) -> StoreResult<Pick> {
        let policy = &limits.batches.lane;
        let mut pick = Pick::default();
        for job in self.lane_order(limits) {
            if pick.tickets.len() >= policy.max_jobs as usize {
                break;
            }
            // A job a budget must cover goes direct: the direct path checks and reserves its cost.
            let costed = job.spec.cost.as_ref().is_some_and(|c| {
                let ask = CostAsk { client: &c.client, client_limits: c.budgets, ..CostAsk::default() };
                !self.costs.budgets(&limits.costs, &ask).is_empty()
            });
            let body = if costed { None } else { store.job_body(&job.ticket)? };
            let line = body.and_then(|b| input_line(&job.upstream_idempotency_key(), &b));
            match line {
                Some(l) if (pick.lines.len() + l.len() + 1) as u64 <= policy.max_bytes => {
                    pick.lines.push_str(&l);
                    pick.lines.push('\n');
                    pick.tickets.push(job.ticket.clone());
                }
                // The batch is full by bytes: the rest wait for the next one.
                Some(l) if (l.len() + 1) as u64 <= policy.max_bytes => break,
                _ => pick.unbatchable.push(job.ticket.clone()),
            }
        }
        Ok(pick)
    }
}

impl AccountState {
    /// The lane in the account's status.
    pub(crate) fn lane_view(&self, limits: &Limits) -> LaneView {
        let t = &self.lane.totals;
        LaneView {
            enabled: self.lane_open(limits),
            off: self.lane.off.map(|(o, _)| o.name()),
            waiting: self.lane_waiting().count() as u32,
            in_flight: self
                .lane
                .batches
                .iter()
                .map(|b| LaneBatchView { batch_id: b.batch.clone(), jobs: b.jobs, ended: b.ended })
                .collect(),
            batches: t.batches,
            jobs_batched: t.jobs,
            created: t.created,
            fell_back: t.fell_back,
            calls_saved: self.lane.calls_saved(),
        }
    }
}
