//! What Sync's answers to the lane's calls do to a lane batch and its
//! jobs: the create (bound, refused, a 402 that turns the lane off, a 429,
//! no answer), a read (ended or not), the result (each job's generation and
//! final status; a rejected line back to the direct queue; a job the result
//! does not name goes direct as one that may exist).

use super::lane_step::Back;
use crate::account::AccountState;
use crate::batch::lane::LaneOff;
use crate::batch::lane_lines::result_lines;
use crate::batch::{BatchPermitId, CreateAnswer, SeenBatch};
use crate::config::limits::Limits;
use crate::queue::job::JobState;
use crate::Ms;

impl AccountState {
    pub(super) fn lane_created(
        &mut self,
        limits: &Limits,
        now: Ms,
        jitter: f64,
        permit: BatchPermitId,
        answer: CreateAnswer,
    ) {
        if self.lane.live == Some(permit) {
            self.lane.live = None;
        }
        if !self.lane.batches.iter().any(|b| b.permit == permit) {
            self.batches.release(permit);
            return;
        }
        self.batch_answered(limits, now, jitter, permit, &answer, None);
        match answer {
            CreateAnswer::Created(seen) => {
                let terminal = seen.terminal;
                self.lane_bound(limits, permit, seen.id, now);
                if terminal {
                    self.lane_ended(permit, now);
                }
            }
            CreateAnswer::Refused { status: 402 } => {
                self.lane.off = Some((LaneOff::PlanWithoutBatches, now));
                self.lane_drop(permit, Back::Direct(false), now);
                self.lane_tidy(limits, now);
            }
            // The batch as a whole was refused: each job gets Sync's own answer directly.
            CreateAnswer::Refused { .. } => self.lane_drop(permit, Back::Direct(false), now),
            CreateAnswer::Validated | CreateAnswer::ConcurrencyLimited | CreateAnswer::RateLimited => {
                self.lane_drop(permit, Back::Lane, now);
            }
            CreateAnswer::Unknown => {
                // Sync may have made it: the permit waits for a listing.
                if let Some(b) = self.lane.batches.iter_mut().find(|b| b.permit == permit) {
                    b.next_at = now.saturating_add(limits.batches.lane.poll_ms);
                }
            }
        }
    }

    /// The batch of `permit` ended: its result is read next.
    fn lane_ended(&mut self, permit: BatchPermitId, now: Ms) {
        if let Some(b) = self.lane.batches.iter_mut().find(|b| b.permit == permit) {
            b.ended = true;
            b.next_at = now;
            b.misses = 0;
        }
    }

    pub(super) fn lane_seen(&mut self, _limits: &Limits, now: Ms, batch: &str, seen: Option<SeenBatch>) {
        let Some(b) = self.lane.batches.iter_mut().find(|b| b.batch.as_deref() == Some(batch)) else { return };
        let permit = b.permit;
        match seen.filter(|s| s.id == batch) {
            Some(s) => {
                b.misses = 0;
                let terminal = s.terminal;
                self.batches.seen(&[s]);
                if terminal {
                    self.lane_ended(permit, now);
                }
            }
            None => b.misses = b.misses.saturating_add(1),
        }
    }

    pub(super) fn lane_result(&mut self, _limits: &Limits, now: Ms, batch: &str, body: Option<String>) {
        let Some(b) = self.lane.batches.iter_mut().find(|b| b.batch.as_deref() == Some(batch)) else { return };
        let permit = b.permit;
        let Some(body) = body else {
            b.misses = b.misses.saturating_add(1);
            return;
        };
        let lines = result_lines(&body);
        let tickets = self.lane_tickets(permit);
        let (mut direct, mut unknown) = (Vec::new(), Vec::new());
        for t in tickets {
            let key = match self.queue.get(&t) {
                Some(j) => j.upstream_idempotency_key(),
                None => continue,
            };
            match lines.iter().find(|l| l.request_id == key) {
                Some(l) => match (&l.generation, &l.status) {
                    (Some(g), Some(s)) if s.is_terminal() => {
                        let (g, s) = (g.clone(), s.clone());
                        self.queue.update(&t, |j| {
                            j.state = JobState::Done { status: s, generation: Some(g), error: None };
                            j.updated_at = now;
                        });
                        self.lane.totals.created += 1;
                    }
                    (Some(g), _) => {
                        let g = g.clone();
                        self.queue.update(&t, |j| {
                            j.state = JobState::Submitted { generation: g };
                            j.updated_at = now;
                        });
                        self.lane.totals.created += 1;
                    }
                    // Rejected by the batch (an input over 30 s, ...): direct.
                    (None, _) => direct.push(t),
                },
                // Not in the result: Sync may have made it.
                None => unknown.push(t),
            }
        }
        self.lane_move(&direct, Back::Direct(false), now);
        self.lane_move(&unknown, Back::Direct(true), now);
        self.batches.release(permit);
        self.lane.batches.retain(|b| b.permit != permit);
    }
}
