//! The account's decision on an admission, as the request's next step:
//! forward it (with its permits), or answer now (refused, queued, replayed).

use governor_core::admission::request::{AdmitRequest, Admitted};
use governor_core::auth::keys::Caller;
use governor_core::auth::secret::Secret;
use governor_core::config::{Config, LogLevel};
use governor_core::wire::calls::AdmitReply;
use governor_core::wire::error::GovernorError;
use worker::{Env, Response};

use crate::cors::Origin;
use crate::decision::Decision;
use crate::request::Request;
use crate::{generate, tally, upstream};

/// The request's next step.
pub enum Verdict {
    /// Forward it; `undecided` when the object could not decide and
    /// `FAIL_MODE=open` forwards anyway (no permit, nothing settled).
    Forward { admitted: Admitted, undecided: bool },
    /// The client's answer, without Sync.
    Answered(Response),
}

/// Who asks, and how long it may be held.
pub struct Asking<'a> {
    pub env: &'a Env,
    pub config: &'a Config,
    pub caller: &'a Caller,
    /// The key the object may keep in memory (pass-through mode).
    pub key: Option<&'a Secret>,
    pub req: &'a Request,
    /// `Prefer: wait`, capped.
    pub hold_ms: Option<u64>,
}

pub async fn decide(
    a: &Asking<'_>,
    admit: AdmitRequest,
    decision: &mut Decision<'_>,
    origin: &Origin,
) -> Result<Verdict, GovernorError> {
    let Asking { env, config, caller, key, req, hold_ms } = *a;
    let reply = match generate::admit(env, &caller.account, key, admit, hold_ms, req, &mut decision.waited_ms).await {
        Ok(reply) => reply,
        // FAIL_MODE=open: the account's object cannot decide; forward
        // without a decision rather than fail the client. Logged and
        // counted; reconciliation adopts a generation created this way once
        // the object is back.
        Err(e @ GovernorError::Unavailable(_)) if config.fail_open => {
            decision.log(LogLevel::Warn, "fail_open", Some(&e.message()), None, None);
            tally::fail_open(&caller.account);
            return Ok(Verdict::Forward { admitted: Admitted::default(), undecided: true });
        }
        Err(e) => return Err(e),
    };
    Ok(match reply {
        AdmitReply::Admitted(admitted) => Verdict::Forward { admitted, undecided: false },
        AdmitReply::Rejected(r) => {
            decision.log(LogLevel::Info, "refused", Some(r.reason.name()), None, None);
            return Err(GovernorError::Limited(r));
        }
        AdmitReply::Queued(ticket) => {
            decision.log(LogLevel::Info, "queued", None, None, None);
            Verdict::Answered(generate::queued(&ticket, origin))
        }
        AdmitReply::Replay(r) => {
            let body = match &r.refetch {
                // Too large to keep: Sync's current view of the same generation.
                Some(id) => upstream::generation(&config.api_base, &caller.upstream_key, id, config.timeouts.read_ms)
                    .await
                    .ok_or_else(|| GovernorError::Upstream("reading the replayed generation failed".into()))?,
                None => r.body,
            };
            Verdict::Answered(generate::replayed(r.status, body, origin))
        }
        AdmitReply::Refused(r) => return Err(GovernorError::from(r)),
    })
}
