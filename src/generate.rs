//! What is special about `POST /v2/generate` (and holding in general):
//! the JSON body is read (bounded) to learn the model and point `webhookUrl`
//! at the relay; `Prefer: respond-async` queues it when it cannot go now;
//! `Prefer: wait=N` holds any request in the account's line; a client
//! `Idempotency-Key` maps a retry to the first answer or ticket.

use std::time::Duration;

use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::{AdmitRequest, Hold};
use governor_core::auth::keys::Caller;
use governor_core::auth::seal::seal;
use governor_core::auth::secret::Secret;
use governor_core::config::Config;
use governor_core::ids::TicketId;
use governor_core::queue::job::{JobSpec, TicketLocation};
use governor_core::rates::class::RateClass;
use governor_core::wire::calls::{Admit, AdmitReply as Reply, Settle};
use governor_core::wire::error::GovernorError;
use governor_core::wire::prefer::Prefer;
use governor_core::wire::rewrite::GenerateBody;
use serde_json::value::RawValue;
use worker::{Date, Delay, Env, Headers, Response};

use crate::request::Request;

use crate::account_client;
use crate::cors::{self, Origin};
use crate::request::{check_webhook_url, header, read_json_body};
use crate::webhook;

/// Multipart bodies (file uploads) are streamed untouched; every other
/// generate body must be a JSON object.
pub fn is_multipart(req: &Request) -> bool {
    header(req, "content-type").is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
}

/// A prepared JSON generate body.
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub model: Option<String>,
    /// The id the callback token names (a ticket id: a queued job's ticket
    /// is this id), when the body points at the governor's callback.
    pub callback: Option<TicketId>,
}

/// Read and prepare a JSON generate body: its model, and the bytes to send,
/// with `webhookUrl` pointing at the governor's callback when the relay is on.
pub async fn prepare_body(req: &mut Request, config: &Config, caller: &Caller) -> Result<Prepared, GovernorError> {
    let bytes = read_json_body(req, config.max_body_bytes).await?;
    let parsed = GenerateBody::parse(&bytes).map_err(GovernorError::BadRequest)?;
    let model = parsed.model.clone();
    let local = parsed.webhook_url.is_some() && webhook::local_mode(config, req);
    if let Some(url) = &parsed.webhook_url {
        check_webhook_url(url, local).map_err(GovernorError::BadRequest)?;
    }
    let origin = crate::request::split_url(&req.inner().url()).0.to_owned();
    let id = random_ticket_id()?;
    let url = webhook::callback_url(config, &origin, &caller.account, parsed.webhook_url.clone(), local, &id)?;
    let (bytes, callback) = match url {
        Some(url) => (parsed.with_webhook(&url), Some(id)),
        None => (bytes, None),
    };
    Ok(Prepared { bytes, model, callback })
}

/// The client, for fairness: the managed client key's label, or in
/// pass-through mode the `X-Governor-Client` header (else the key's label).
pub fn client_name(req: &Request, config: &Config, caller: &Caller) -> String {
    // Advisory: any caller holding the account's key can claim any name.
    let named = header(req, "x-governor-client");
    governor_core::shares::client::request_client(config.keys.is_managed(), &caller.client, named.as_deref())
}

/// Build the admission request of a create.
pub fn create_request(
    req: &Request,
    config: &Config,
    caller: &Caller,
    prefer: &Prefer,
    prepared: Option<&Prepared>,
) -> Result<AdmitRequest, GovernorError> {
    let client = client_name(req, config, caller);
    let idempotency = header(req, "idempotency-key").map(|key| IdempotencyKey { client: client.clone(), key });
    let mut admit = AdmitRequest {
        class: RateClass::Generate,
        permit: true,
        model: prepared.and_then(|p| p.model.clone()),
        idempotency: idempotency.clone(),
        callback: prepared.and_then(|p| p.callback.clone()),
        ..AdmitRequest::default()
    };
    // A preference that cannot be honoured is ignored (RFC 7240 §2): a
    // multipart upload cannot be queued, so it goes (or is refused) now.
    if let (true, Some(prepared)) = (prefer.respond_async, prepared) {
        let body = String::from_utf8(prepared.bytes.clone())
            .map_err(|_| GovernorError::BadRequest("body is not UTF-8".into()))?;
        let priority = header(req, "x-governor-priority")
            .map(|p| {
                p.trim()
                    .parse::<i64>()
                    .map_err(|_| GovernorError::BadRequest("X-Governor-Priority must be an integer".into()))
            })
            .transpose()?
            .unwrap_or(0);
        let sealed_key = if config.keys.is_managed() { None } else { seal_key(config, &caller.upstream_key) };
        admit.lane = match header(req, "x-governor-lane").map(|l| l.trim().to_ascii_lowercase()).as_deref() {
            None | Some("direct") => false,
            Some("batch") => true,
            Some(_) => return Err(GovernorError::BadRequest("X-Governor-Lane must be batch or direct".into())),
        };
        if config.keys.is_managed() || sealed_key.is_some() {
            admit.enqueue = Some(JobSpec {
                client,
                priority,
                body,
                model: prepared.model.clone(),
                idempotency_key: idempotency.map(|k| k.key),
                cost: None,
            });
            admit.sealed_key = sealed_key;
            // The callback token names the ticket.
            admit.ticket_id = match &prepared.callback {
                Some(id) => Some(id.clone()),
                None => Some(random_ticket_id()?),
            };
        }
    }
    Ok(admit)
}

/// The pass-through key sealed for the queue, under `GOVERNOR_WEBHOOK_KEY`
/// or the deployment key (the caller passes a keyed configuration).
fn seal_key(config: &Config, key: &Secret) -> Option<String> {
    let master = config.webhooks.key.as_ref()?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).ok()?;
    Some(seal(master.expose().as_bytes(), nonce, key))
}

/// A queue ticket id: 128 random bits.
fn random_ticket_id() -> Result<TicketId, GovernorError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| GovernorError::Internal("no randomness".into()))?;
    Ok(TicketId::random(bytes))
}

/// Ask for admission; with `Prefer: wait`, keep the request's place in the
/// account's line and try again as limits free, until admitted or the wait
/// ends (then the last refusal stands). Each attempt is one subrequest: the
/// sleeps between them grow with the wait so that a request makes at most
/// [`governor_core::admission::request::HOLD_MAX_CALLS`] attempts (see [`Hold::sleep_ms`]).
pub async fn admit(
    env: &Env,
    account: &str,
    key: Option<&Secret>,
    mut admit: AdmitRequest,
    wait_ms: Option<u64>,
    req: &Request,
    waited_ms: &mut u64,
) -> Result<Reply, GovernorError> {
    let Some(wait_ms) = wait_ms.filter(|w| *w > 0) else {
        return first_call(env, account, key, &mut admit).await;
    };
    let start = Date::now().as_millis();
    let deadline = start + wait_ms;
    admit.hold = Some(Hold::first(wait_ms));
    loop {
        let reply = first_call(env, account, key, &mut admit).await?;
        *waited_ms = Date::now().as_millis().saturating_sub(start);
        let Reply::Rejected(rejection) = &reply else { return Ok(reply) };
        if rejection.hold.is_none() {
            // Shed (the expected wait is longer than the client's), or a
            // refusal that waiting cannot change: answer it now.
            return Ok(reply);
        }
        let remaining = deadline.saturating_sub(Date::now().as_millis());
        let next = admit.hold.as_ref().and_then(|h| h.next(rejection, remaining));
        let Some((hold, sleep)) = next.filter(|_| !req.inner().signal().aborted()) else {
            if let Some(ticket) = rejection.hold {
                let unhold = Settle::unhold(ticket, Some(rejection.reason));
                let _ = account_client::call(env, account, key, &unhold).await;
            }
            return Ok(reply);
        };
        admit.hold = Some(hold);
        Delay::from(Duration::from_millis(sleep)).await;
    }
}

/// One admission call; the isolate's tally rides along with the first
/// (and goes back if the call fails).
async fn first_call(
    env: &Env,
    account: &str,
    key: Option<&Secret>,
    admit: &mut AdmitRequest,
) -> Result<Reply, GovernorError> {
    let result = account_client::call(env, account, key, &Admit(admit)).await;
    if let Some(t) = admit.tally.take() {
        if result.is_err() {
            crate::tally::restore(account, t);
        }
    }
    result
}

/// `202 Accepted` for a queued job (the object's ticket view, as it wrote it).
pub fn queued(ticket: &RawValue, origin: &Origin) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    if let Ok(t) = governor_core::wire::json::from_str::<TicketLocation>(ticket.get()) {
        let _ = headers.set("location", &format!("/governor/v1/queue/{}", t.id));
    }
    let _ = headers.set("preference-applied", "respond-async");
    cors::decorate(&headers, origin);
    Response::builder().with_status(202).with_headers(headers).fixed(ticket.get().as_bytes().to_vec())
}

/// Sync's first answer to a retried `Idempotency-Key`.
pub fn replayed(status: u16, body: String, origin: &Origin) -> Response {
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("idempotent-replayed", "true");
    cors::decorate(&headers, origin);
    Response::builder().with_status(status).with_headers(headers).fixed(body.into_bytes())
}
