//! What a proxied request asks the account for: its class and kind, and for
//! a create its prepared body, its cost estimate and its client.

use governor_core::admission::request::{AdmitRequest, ClientRef};
use governor_core::auth::keys::Caller;
use governor_core::auth::secret::Secret;
use governor_core::config::Config;
use governor_core::queue::job::{is_reserved_idempotency_key, RESERVED_IDEMPOTENCY_PREFIX};
use governor_core::wire::error::GovernorError;
use governor_core::wire::prefer::Prefer;
use governor_core::wire::route::{Proxy, ProxyKind};
use worker::Env;

use crate::generate::{self, Prepared};
use crate::request::{header, Request};
use crate::tally;

/// The admission a request asks for, and what it needs after.
pub struct Admission {
    pub request: AdmitRequest,
    /// A create's body as the governor rewrote it (JSON creates only).
    pub body: Option<Prepared>,
    /// The cost estimate announced the account to the directory already.
    pub estimate_announced: bool,
}

pub async fn admission(
    req: &mut Request,
    env: &Env,
    config: &Config,
    caller: &Caller,
    key: Option<&Secret>,
    p: &Proxy,
    prefer: &Prefer,
) -> Result<Admission, GovernorError> {
    if header(req, "idempotency-key").is_some_and(|k| is_reserved_idempotency_key(&k)) {
        return Err(GovernorError::BadRequest(format!(
            "Idempotency-Key values starting with '{RESERVED_IDEMPOTENCY_PREFIX}' are reserved for the governor's queue"
        )));
    }
    let creates = p.kind == ProxyKind::Create;
    let body = if creates && !generate::is_multipart(req) {
        Some(generate::prepare_body(req, config, caller).await?)
    } else {
        None
    };
    let request = if creates {
        generate::create_request(req, config, caller, prefer, body.as_ref())?
    } else {
        AdmitRequest::for_proxy(p)
    };
    // The client it counts toward (its share, its own limits).
    let client = generate::client_name(req, config, caller);
    let (mut request, estimate_announced) = if creates {
        let (cost, announced) =
            crate::cost::request(env, config, caller, key, client.clone(), body.as_ref(), &request).await;
        (request.with_cost(cost), announced)
    } else {
        (request, false)
    };
    request.tally = tally::take(&caller.account);
    request.client = Some(ClientRef { account: caller.account.clone(), client });
    Ok(Admission { request, body, estimate_announced })
}
