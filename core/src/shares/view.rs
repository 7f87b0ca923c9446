//! Status per client: its limits in force and where each came from, the
//! permits it holds, its queued and held work, and its share of the account.

use std::collections::BTreeMap;

use super::limits::ClientLimit;
use super::status::{ClientView, SourcesView};
use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::queue::job::JobState;
use crate::Ms;

/// Clients listed in status at most (the busiest first).
pub const MAX_LISTED: usize = 200;

#[derive(Default)]
struct Tally {
    in_use: u32,
    queued: u32,
    held: u32,
}

impl Tally {
    fn usage(&self) -> u32 {
        self.in_use + self.queued + self.held
    }
}

impl AccountState {
    /// One client's view (listed or not).
    pub(crate) fn client_view(&self, limits: &Limits, now: Ms, client: &str) -> ClientView {
        let mut tally = self.tally(now);
        tally.entry(client.to_owned()).or_default();
        let demand = self.demand_weight(limits, &tally);
        let usage = Self::usage(&tally);
        self.view_of(limits, now, client, &tally[client], (demand, usage))
    }

    /// Every client with work, permits, an override or a named limit.
    pub(crate) fn client_views(&self, limits: &Limits, now: Ms) -> Vec<ClientView> {
        let mut tally = self.tally(now);
        for c in self.shares.row.overrides.keys() {
            tally.entry(c.clone()).or_default();
        }
        let account = self.shares.row.account.as_deref().unwrap_or("");
        for (c, _) in limits.clients.named(account) {
            tally.entry(c).or_default();
        }
        let totals = (self.demand_weight(limits, &tally), Self::usage(&tally));
        let mut views: Vec<ClientView> = tally.iter().map(|(c, t)| self.view_of(limits, now, c, t, totals)).collect();
        views.sort_by_key(|v| std::cmp::Reverse(v.usage));
        views.truncate(MAX_LISTED);
        views
    }

    /// Per-client gauges for the scrape: clients with work or permits
    /// (at most [`MAX_LISTED`], busiest first).
    pub(crate) fn client_gauges(&self, limits: &Limits, now: Ms) -> Vec<crate::operations::prometheus::ClientGauge> {
        let mut out: Vec<crate::operations::prometheus::ClientGauge> = self
            .tally(now)
            .into_iter()
            .map(|(client, t)| crate::operations::prometheus::ClientGauge {
                weight: self.shares.limit(limits, &client).weight(),
                client,
                in_use: t.in_use,
                queued: t.queued,
                held: t.held,
            })
            .collect();
        out.sort_by_key(|g| std::cmp::Reverse(g.in_use + g.queued + g.held));
        out.truncate(MAX_LISTED);
        out
    }

    /// Work and permits per client.
    fn tally(&self, now: Ms) -> BTreeMap<String, Tally> {
        let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
        for p in self.permits.held() {
            if let Some(c) = &p.client {
                tally.entry(c.clone()).or_default().in_use += 1;
            }
        }
        for j in self.queue.jobs().iter().filter(|j| matches!(j.state, JobState::Queued | JobState::Submitting { .. }))
        {
            tally.entry(j.spec.client.clone()).or_default().queued += 1;
        }
        for h in self.line.held.iter().filter(|h| h.expires_at > now) {
            tally.entry(h.client.clone().unwrap_or_default()).or_default().held += 1;
        }
        tally
    }

    /// The weights of the clients with work, together.
    fn demand_weight(&self, limits: &Limits, tally: &BTreeMap<String, Tally>) -> u64 {
        tally.iter().filter(|(_, t)| t.usage() > 0).map(|(c, _)| u64::from(self.shares.limit(limits, c).weight())).sum()
    }

    /// Permits, queued jobs and held requests of every client together.
    fn usage(tally: &BTreeMap<String, Tally>) -> u32 {
        tally.values().map(Tally::usage).sum()
    }

    /// `totals`: the weights of the clients with work, and their usage.
    fn view_of(&self, limits: &Limits, now: Ms, client: &str, t: &Tally, totals: (u64, u32)) -> ClientView {
        let (demand, usage) = totals;
        let cap = f64::from(limits.concurrency.cap.max(1));
        let l: ClientLimit = self.shares.limit(limits, client);
        let s = self.shares.sources(limits, client);
        let busy = t.usage() > 0;
        ClientView {
            weight: l.weight(),
            reserved: l.reserved.unwrap_or(0),
            concurrency: l.concurrency,
            generate_per_minute: l.generate_per_minute,
            requests_per_minute: l.requests_per_minute,
            usd_per_day: l.usd_per_day.map(|u| u.usd()),
            usd_per_month: l.usd_per_month.map(|u| u.usd()),
            sources: SourcesView {
                weight: s[0],
                reserved: s[1],
                concurrency: s[2],
                generate_per_minute: s[3],
                requests_per_minute: s[4],
                usd_per_day: s[5],
                usd_per_month: s[6],
            },
            in_use: t.in_use,
            queued: t.queued,
            held: t.held,
            share: f64::from(t.in_use) / cap,
            target_share: if busy && demand > 0 { f64::from(l.weight()) / demand as f64 } else { 0.0 },
            usage: t.usage(),
            usage_share: if usage > 0 { f64::from(t.usage()) / f64::from(usage) } else { 0.0 },
            generate_remaining: self
                .shares
                .rate_state(limits, client, &crate::rates::class::RateClass::Generate, now)
                .map(|r| r.0),
            client: client.to_owned(),
        }
    }
}
