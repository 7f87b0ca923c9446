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

#[allow(clippy::too_many_arguments)]
pub async fn decide(
    env: &Env,
    config: &Config,
    caller: &Caller,
    key: Option<&Secret>,
    admit: AdmitRequest,
    wait_ms: Option<u64>,
    req: &Request,
    (decision, origin): (&mut Decision<'_>, &Origin),
) -> Result<Verdict, GovernorError> {
    let reply = match generate::admit(env, &caller.account, key, admit, wait_ms, req, &mut decision.waited_ms).await {
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
