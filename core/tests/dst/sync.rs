//! A model of Sync as the governor's upstream: per-key rate windows that
//! count every request reaching it (sliding, exactly `window_ms` wide: the
//! strictest reading of "N per minute"), a concurrency cap over PENDING and
//! PROCESSING generations (its own and those created outside the governor),
//! `Idempotency-Key` deduplication, and generations that end at a set time.
//!
//! It also keeps the ground truth the invariants are checked against:
//! which requests came through the governor ("governed"), and when each
//! generation really ended.

use std::collections::{BTreeMap, VecDeque};

use governor_core::config::limits::Limits;
use governor_core::lifecycle::limited::LimitKind;
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::Ms;

#[derive(Clone, Debug)]
pub struct Gen {
    pub id: String,
    pub created: Ms,
    pub ends: Ms,
    /// When it really ended (set by [`Sync::end`]).
    pub ended: Option<Ms>,
    pub final_status: &'static str,
    pub governed: bool,
    #[allow(dead_code)]
    pub key: Option<String>,
    pub model: Option<String>,
    /// The create asked for a (relayed) client webhook.
    pub hook: bool,
}

/// What Sync did with a create that passed its rate limit.
#[derive(Clone, Debug, PartialEq)]
pub enum Processed {
    Limited(LimitKind),
    /// The `Idempotency-Key` was seen before: its generation, nothing new,
    /// answered (as Sync does) with that generation's current status.
    Existing(String, &'static str),
    /// A new generation: answered `PENDING`.
    Created(String),
}

pub struct Sync {
    pub window_ms: Ms,
    pub limits: BTreeMap<String, u32>,
    pub cap: u32,
    pub gens: BTreeMap<String, Gen>,
    pub by_key: BTreeMap<String, String>,
    all: BTreeMap<String, VecDeque<Ms>>,
    governed: BTreeMap<String, VecDeque<(Ms, String)>>,
    next: u64,
    /// Peak requests of governed traffic seen in one window, per bucket.
    pub peak: BTreeMap<String, u32>,
    pub peak_governed_active: u32,
}

fn in_window(q: &mut VecDeque<Ms>, t: Ms, window: Ms) -> usize {
    while q.front().is_some_and(|s| s.saturating_add(window) <= t) {
        q.pop_front();
    }
    q.len()
}

impl Sync {
    pub fn new(l: &Limits) -> Self {
        let limits = l.classes().map(|(class, r)| (class.to_string(), r.limit)).collect();
        Sync {
            window_ms: l.generate.window_ms,
            limits,
            cap: l.concurrency.cap,
            gens: BTreeMap::new(),
            by_key: BTreeMap::new(),
            all: BTreeMap::new(),
            governed: BTreeMap::new(),
            next: 0,
            peak: BTreeMap::new(),
            peak_governed_active: 0,
        }
    }

    /// A request reaches Sync at `t`: count it in each bucket. `Ok(true)`
    /// when Sync's own rate limit refuses it; `Err` when governed traffic
    /// alone has gone over a limit (the invariant).
    pub fn arrive(&mut self, buckets: &[&str], t: Ms, governed: Option<&str>) -> Result<bool, String> {
        let mut limited = false;
        for b in buckets {
            let limit = self.limits.get(*b).copied().unwrap_or(u32::MAX) as usize;
            let q = self.all.entry((*b).to_owned()).or_default();
            if in_window(q, t, self.window_ms) >= limit {
                limited = true;
            }
            q.push_back(t);
            if let Some(what) = governed {
                let g = self.governed.entry((*b).to_owned()).or_default();
                g.push_back((t, what.to_owned()));
                while g.front().is_some_and(|(s, _)| s.saturating_add(self.window_ms) <= t) {
                    g.pop_front();
                }
                let n = g.len();
                let peak = self.peak.entry((*b).to_owned()).or_default();
                *peak = (*peak).max(n as u32);
                if n > limit {
                    let times: Vec<String> = g.iter().map(|(t, w)| format!("{t} {w}")).collect();
                    return Err(format!(
                        "rate: {n} governed requests of bucket {b} reached Sync within {} ms (limit {limit}) at {t}: {times:?}",
                        self.window_ms
                    ));
                }
            }
        }
        Ok(limited)
    }

    pub fn active_at(&self, t: Ms) -> impl Iterator<Item = &Gen> {
        self.gens.values().filter(move |g| g.created <= t && g.ended.is_none())
    }

    pub fn governed_active(&self, t: Ms) -> u32 {
        self.active_at(t).filter(|g| g.governed).count() as u32
    }

    /// A create that passed the rate limit. `Err` when the governor sent a
    /// new generation while its own traffic already filled the cap.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        t: Ms,
        key: Option<&str>,
        governed: bool,
        model: Option<String>,
        hook: bool,
        duration: Ms,
        failed: bool,
    ) -> Result<Processed, String> {
        if let Some(id) = key.and_then(|k| self.by_key.get(k)) {
            let status = self.status(id).unwrap_or("PENDING");
            return Ok(Processed::Existing(id.clone(), status));
        }
        let governed_active = self.governed_active(t);
        if governed && governed_active >= self.cap {
            let ids: Vec<&str> = self.active_at(t).filter(|g| g.governed).map(|g| g.id.as_str()).collect();
            return Err(format!(
                "concurrency: a governed create reached Sync at {t} while governed generations {ids:?} already fill the cap {}",
                self.cap
            ));
        }
        if self.active_at(t).count() as u32 >= self.cap {
            return Ok(Processed::Limited(LimitKind::Concurrency));
        }
        self.next += 1;
        let id = format!("gen{:06}", self.next);
        let gen = Gen {
            id: id.clone(),
            created: t,
            ends: t + duration.max(1),
            ended: None,
            final_status: if failed { "FAILED" } else { "COMPLETED" },
            governed,
            key: key.map(str::to_owned),
            model,
            hook,
        };
        self.gens.insert(id.clone(), gen);
        if let Some(k) = key {
            self.by_key.insert(k.to_owned(), id.clone());
        }
        if governed {
            self.peak_governed_active = self.peak_governed_active.max(governed_active + 1);
        }
        Ok(Processed::Created(id))
    }

    pub fn end(&mut self, id: &str, t: Ms) -> Option<Gen> {
        let g = self.gens.get_mut(id)?;
        if g.ended.is_some() {
            return None;
        }
        g.ended = Some(t);
        Some(g.clone())
    }

    /// A generation's status as a read at `t` would show it.
    pub fn status(&self, id: &str) -> Option<&'static str> {
        let g = self.gens.get(id)?;
        Some(if g.ended.is_some() { g.final_status } else { "PROCESSING" })
    }

    /// One page of `GET /v2/generations?status=PENDING,PROCESSING`.
    pub fn list_page(&self, t: Ms, cursor: Option<&str>, page: usize) -> Vec<ActiveGeneration> {
        self.active_at(t)
            .filter(|g| cursor.is_none_or(|c| g.id.as_str() > c))
            .take(page)
            .map(|g| ActiveGeneration { id: g.id.as_str().into(), model: g.model.clone() })
            .collect()
    }
}
