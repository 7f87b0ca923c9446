//! Telling the account what Sync's answer means (the core reads it:
//! `lifecycle::forwarded`), and returning that answer. A Sync 429 becomes
//! the governor's own 429 with an honest Retry-After.

use governor_core::auth::secret::Secret;
use governor_core::ids::GenerationId;
use governor_core::lifecycle::forwarded::Forwarded;
use governor_core::wire::calls::{Settle, SettleReply};
use governor_core::wire::error::GovernorError;
use worker::{Context, Env, Response};

use crate::{account_client, proxy};

/// Settle `resp` with the account; the answer for the client and the
/// generation a create bound.
pub async fn settle(
    env: &Env,
    ctx: &Context,
    (account, key): (&str, Option<&Secret>),
    forwarded: Forwarded,
    resp: Response,
    retry_cap_ms: u64,
) -> Result<(Response, Option<GenerationId>), GovernorError> {
    let status = resp.status_code();
    let retry_after = proxy::upstream_retry_after_ms(&resp, retry_cap_ms);
    let (resp, body) = if forwarded.needs_body(status) { proxy::read(resp).await } else { (resp, Vec::new()) };
    let settlement = forwarded.read(status, &body, retry_after);
    match settlement.command.and_then(Settle::new) {
        // The client's answer depends on this one: the governor's own 429.
        Some(settle) if settlement.limited => match account_client::call(env, account, key, &settle).await {
            Ok(SettleReply::Rejected(r)) => return Err(GovernorError::Limited(r)),
            Ok(SettleReply::Ack { .. } | SettleReply::Refused(_)) => {}
            Err(e) => worker::console_error!("settling with the account failed: {}", e.message()),
        },
        // Bind, release, observe: the answer does not wait for them, and they
        // run to the end even when the client goes away.
        Some(settle) => {
            let (env, account, key) = (env.clone(), account.to_owned(), key.cloned());
            let ended = settlement.ended;
            ctx.wait_until(async move {
                for settle in std::iter::once(settle).chain(ended.and_then(Settle::new)) {
                    if let Err(e) = account_client::call(&env, &account, key.as_ref(), &settle).await {
                        worker::console_error!("settling with the account failed: {}", e.message());
                    }
                }
            });
        }
        None => {}
    }
    Ok((resp, settlement.generation))
}

/// The forward failed (no answer, or past its time box): what Sync may have
/// taken waits for a listing to tell.
pub async fn unanswered(env: &Env, (account, key): (&str, Option<&Secret>), forwarded: &Forwarded) {
    for settle in forwarded.unanswered().into_iter().filter_map(Settle::new) {
        let _ = account_client::call(env, account, key, &settle).await;
    }
}
