//! A proxied request, from the caller's key to Sync's answer:
//! prepare (what it asks the account for) → decide (one call into the
//! account's object) → forward → settle (the core reads Sync's answer) →
//! respond with the RateLimit fields.
//!
//! | file | step |
//! | --- | --- |
//! | [`prepare`] | the admission a request asks for: class, kind, a create's body, cost and client |
//! | [`decide`] | the account's decision: forward, or answer now |
//! | [`settle`] | telling the account what Sync answered |

pub mod decide;
pub mod prepare;
pub mod settle;

use governor_core::config::{Config, LogLevel};
use governor_core::driver::provisional::announces;
use governor_core::lifecycle::forwarded::{batch_result_id, Forwarded};
use governor_core::wire::error::GovernorError;
use governor_core::wire::headers::PolicyState;
use governor_core::wire::prefer;
use governor_core::wire::route::{Proxy, ProxyKind};
use worker::{Context, Date, Env, Response};

use crate::caller::{object_key, presented_key};
use crate::cors::{self, Origin};
use crate::decision::Decision;
use crate::proxy::{self, Body, Deadline, UpstreamAuth};
use crate::request::{header, Request};
use crate::{respond, tally};
use decide::Verdict;

/// Sync's URL for this request: the same path and query on `SYNC_API_BASE`.
fn upstream_url(config: &Config, req: &Request) -> String {
    let raw = req.inner().url();
    let (_, rest) = crate::request::split_url(&raw);
    format!("{}{}", config.api_base, rest)
}

pub async fn serve(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    origin: &Origin,
    p: Proxy,
) -> Result<Response, GovernorError> {
    let url = upstream_url(config, &req);
    let presented = presented_key(&req);
    if p.kind == ProxyKind::Public && presented.is_none() {
        // Sync serves these without a key, so there is no account to charge.
        let auth = if config.keys.is_managed() { UpstreamAuth::Managed(None) } else { UpstreamAuth::None };
        let deadline = Deadline { ms: config.timeouts.read_ms, whole: false };
        let mut resp = proxy::forward(&req, &url, Body::Stream(req.inner().body()), auth, deadline).await?;
        cors::decorate(resp.headers_mut(), origin);
        return Ok(resp);
    }
    let caller = config.keys.resolve(presented.as_deref())?;
    let key = object_key(config, &caller);
    let prefer = prefer::parse(header(&req, "prefer").as_deref());
    let wait_ms = prefer.hold_ms(config.max_wait_ms);
    let creates = p.kind == ProxyKind::Create;
    // What the governor adds starts here: the body, the estimate, the decision.
    let started = Date::now().as_millis();
    let admission = prepare::admission(&mut req, env, config, &caller, key, &p, &prefer).await?;
    let (idempotency, class) = (admission.request.idempotency.clone(), admission.request.class.clone());
    let mut decision = Decision {
        config,
        env,
        account: &caller.account,
        client: &caller.client,
        class: &class,
        waited_ms: 0,
        added_ms: 0,
    };
    let asking = decide::Asking { env, config, caller: &caller, key, req: &req, hold_ms: wait_ms };
    let verdict = decide::decide(&asking, admission.request, &mut decision, origin).await?;
    let (mut admitted, undecided) = match verdict {
        Verdict::Forward { admitted, undecided } => (admitted, undecided),
        Verdict::Answered(resp) => return Ok(resp),
    };
    // Only a read of batches can name a batch's result.
    let batch_result = (p.kind == ProxyKind::ReadsBatches).then(|| batch_result_id(&req.path())).flatten();
    let forwarded = Forwarded {
        proxy: p,
        permit: admitted.permit,
        batch_permit: admitted.batch_permit,
        batch_result,
        idempotency,
        in_flight: std::mem::take(&mut admitted.in_flight),
    };
    let body = match admission.body {
        Some(p) => Body::Bytes(p.bytes),
        None => Body::Stream(req.inner().body()),
    };
    let auth = if config.keys.is_managed() {
        UpstreamAuth::Managed(Some(&caller.upstream_key))
    } else {
        UpstreamAuth::Key(&caller.upstream_key)
    };
    // A create is read whole inside its box (the governor reads it anyway);
    // anything else is boxed until Sync's response head.
    let deadline =
        Deadline { ms: config.timeouts.forward_ms(req.method().as_ref(), &req.path(), creates), whole: creates };
    let forwarded_at = Date::now().as_millis();
    let resp = match proxy::forward(&req, &url, body, auth, deadline).await {
        Ok(r) => r,
        Err(e) => {
            settle::unanswered(env, (&caller.account, key), &forwarded).await;
            decision.log(LogLevel::Warn, "upstream_error", Some(e.code()), Some(e.status()), None);
            return Err(e);
        }
    };
    let upstream_status = resp.status_code();
    let unproven = crate::provisional::after_answer(env, &caller.account, key, &admitted, upstream_status).await;
    if unproven {
        decision.account = crate::provisional::UNVERIFIED;
    }
    // The directory hears of accounts Sync knows (the core's rule).
    if announces(admitted.announce || admission.estimate_announced, unproven, upstream_status) {
        let (env, account) = (env.clone(), caller.account.clone());
        ctx.wait_until(async move { crate::directory::announce(&env, &account, Date::now().as_millis()).await });
    }
    let settled = if undecided {
        let mut resp = resp;
        let _ = resp.headers_mut().set("x-governor-decision", "fail-open");
        Ok((resp, None))
    } else {
        let retry_cap = config.limits.backoff.cap_ms;
        settle::settle(env, ctx, (&caller.account, key), forwarded, resp, retry_cap).await
    };
    // What the governor added: everything but Sync's time and the deliberate wait.
    let added = forwarded_at.saturating_sub(started).saturating_sub(decision.waited_ms);
    if !unproven {
        tally::record(&caller.account, upstream_status, added);
    }
    decision.added_ms = added;
    let outcome = if undecided { "forwarded_undecided" } else { "admitted" };
    let generation = settled.as_ref().ok().and_then(|s| s.1.as_ref());
    decision.log(LogLevel::Info, outcome, None, Some(upstream_status), generation);
    let (mut resp, _) = settled?;
    if let Some(w) = prefer.wait_s.filter(|_| wait_ms.is_some()) {
        let _ = resp.headers_mut().set("preference-applied", &format!("wait={w}"));
    }
    Ok(finish(resp, &admitted.policies, origin))
}

fn finish(mut resp: Response, policies: &[PolicyState], origin: &Origin) -> Response {
    let headers = resp.headers_mut();
    respond::rate_headers(headers, policies);
    cors::decorate(headers, origin);
    resp
}
