//! The faults issue 19's findings needed (a child of `world`, so it sees the
//! world's state): forged callbacks, restarts with a raised override in
//! force (`Params::raised_override`: the vars are below Sync's real limit and
//! an operator override brings them up, so a reload that forgot the
//! override overruns Sync's window), oversized bodies, hostile stored
//! times, and switches between shadow and enforce (each a redeployment).

use governor_core::ids::{GenerationId, TicketId};
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::operations::admin::AdminCommand;
use governor_core::queue::job::MAX_QUEUED_BODY_BYTES;
use governor_core::relay::delivery::RelayRequest;
use governor_core::storage::store::Write;
use governor_core::wire::contract::Refusal;

use super::*;

/// Rounding and the skew a clamp allows.
const CLOCK_SLACK_MS: Ms = governor_core::storage::bound::CLOCK_SKEW_MS + 1_000;
/// Far past any policy's maximum (2100-01-01).
const Y2100: Ms = 4_102_444_800_000;

impl World {
    /// The vars of a `raised_override` seed: Sync's generate limit halved.
    pub(super) fn lowered(l: &Limits) -> Limits {
        let mut vars = l.clone();
        vars.generate.limit = (l.generate.limit / 2).max(1);
        vars.generate.burst = vars.generate.burst.min(vars.generate.limit);
        vars
    }

    /// The operator's override that brings the vars up to Sync's real limit.
    pub(super) fn set_override(&mut self) {
        let body =
            format!(r#"{{"generatePerMinute":{},"generateBurst":{}}}"#, self.l.generate.limit, self.l.generate.burst);
        let _ = self.reply(Command::Admin(AdminCommand::SetLimits { body }));
    }

    /// A new object under `config` (a redeployment): as a restart, but the
    /// status may change (the mode, hostile rows).
    fn redeploy(&mut self) {
        let interrupted = self.alarm_task.take().is_some();
        self.tasks.clear();
        {
            let mut sh = self.sh.borrow_mut();
            sh.recon = None;
            sh.calls.clear();
            sh.answers.clear();
        }
        self.epoch += 1;
        self.boot();
        if interrupted {
            let mut sh = self.sh.borrow_mut();
            sh.alarm = Some(sh.alarm.map_or(self.now + 1, |a| a.min(self.now + 1)));
        }
    }

    fn submitting(&self) -> bool {
        self.reqs.values().any(|q| matches!(q.kind, Kind::Submit { .. }))
    }

    /// A callback URL no create was given posts a running governed
    /// generation's id: refused, its permit stays held, nothing is relayed.
    pub(super) fn forged_callback(&mut self, pick: u16) -> Check {
        let bound: Vec<(GenerationId, TicketId)> = self
            .state()
            .permits
            .held()
            .iter()
            .filter_map(|p| Some((p.generation()?.clone(), p.callback.clone()?)))
            .collect();
        if bound.is_empty() {
            return Ok(());
        }
        let (gen, callback) = bound[pick as usize % bound.len()].clone();
        self.stats.hostile += 1;
        let relay = RelayRequest { url: "https://attacker.example/hook".into(), body: "{}".into(), headers: vec![] };
        let forged = Command::Callback {
            callback: format!("{callback}-forged").into(),
            generation: gen.clone(),
            status: GenerationStatus::Completed,
            relay: Some(relay),
            output_ms: None,
        };
        let outbox = self.state().outbox.counters.next_id;
        let reply = self.reply(forged);
        if !matches!(reply, Reply::Refused(Refusal::Invalid(_))) {
            return Err(format!("callback: a forged callback for {gen} answered {reply:?}"));
        }
        if !self.state().permits.holds_generation(&gen) || self.state().outbox.counters.next_id != outbox {
            return Err(format!("callback: a forged callback freed {gen}'s permit or queued a relay"));
        }
        Ok(())
    }

    /// A `respond-async` create past the queued-body cap: 413, nothing queued.
    pub(super) fn oversized_enqueue(&mut self, client: u8) -> Check {
        self.stats.hostile += 1;
        let spec = JobSpec {
            client: format!("c{client}"),
            priority: 0,
            body: "x".repeat(MAX_QUEUED_BODY_BYTES as usize + 1),
            model: None,
            idempotency_key: None,
            cost: None,
        };
        let admit =
            AdmitRequest { class: "generate".into(), permit: true, enqueue: Some(spec), ..AdmitRequest::default() };
        let depth = self.state().queue.jobs().len();
        let reply = self.reply(Command::Admit(admit));
        if reply != (Reply::Refused(Refusal::BodyTooLarge { limit: MAX_QUEUED_BODY_BYTES })) {
            return Err(format!("queue: an oversized body answered {reply:?}"));
        }
        let too_big = self.sh.borrow().store.job_bodies.values().any(|b| b.len() as u64 > MAX_QUEUED_BODY_BYTES);
        if self.state().queue.jobs().len() != depth || too_big {
            return Err("queue: an oversized body reached the queue".into());
        }
        Ok(())
    }

    /// Rows with times far in the future (a migration, a bad write), then a
    /// restart: a backoff and an admission stamp in 2100. The account must
    /// not wedge: a probe is refused at most for the backoff's cap plus a span.
    pub(super) fn hostile_times(&mut self) -> Check {
        if self.submitting() && !self.p.restart_mid_submit {
            return Ok(());
        }
        self.stats.hostile += 1;
        self.sh.borrow_mut().store.write(&[
            Write::Meta { key: "backoff", value: format!(r#"{{"other":{{"strikes":1,"until":{Y2100}}}}}"#) },
            Write::Admission { class: "other".into(), at: Y2100 },
        ]);
        self.redeploy();
        let probe = AdmitRequest { class: "other".into(), internal: true, ..AdmitRequest::default() };
        let bound = self.l.backoff.cap_ms + self.l.other.span_ms() + CLOCK_SLACK_MS;
        match self.reply(Command::Admit(probe)) {
            Reply::Rejected(r) if r.retry_after_ms > bound => {
                Err(format!("clamp: a stored time in 2100 refuses for {} ms (bound {bound})", r.retry_after_ms))
            }
            _ => Ok(()),
        }
    }

    /// Shadow mode for `n` admissions (counted, sent nowhere: the
    /// governor's windows are fuller than Sync's, which is safe), then
    /// enforce again: no pacing lockout past one span and the backoff.
    pub(super) fn shadow_spell(&mut self, n: u8) -> Check {
        if self.submitting() && !self.p.restart_mid_submit {
            return Ok(());
        }
        self.stats.hostile += 1;
        self.config.limits.shadow = true;
        self.redeploy();
        for _ in 0..n {
            let admit = AdmitRequest { class: "generate".into(), internal: true, ..AdmitRequest::default() };
            let _ = self.reply(Command::Admit(admit));
        }
        self.config.limits.shadow = false;
        self.redeploy();
        let now = self.now;
        let backoff = self.state().rates.backoff.values().map(|b| b.until.saturating_sub(now)).max().unwrap_or(0);
        let bound = self.l.generate.span_ms() + backoff + CLOCK_SLACK_MS;
        let probe = AdmitRequest { class: "generate".into(), internal: true, ..AdmitRequest::default() };
        match self.reply(Command::Admit(probe)) {
            Reply::Rejected(r) if r.retry_after_ms > bound => {
                Err(format!("shadow: back in enforce, refused for {} ms (bound {bound})", r.retry_after_ms))
            }
            _ => Ok(()),
        }
    }
}
