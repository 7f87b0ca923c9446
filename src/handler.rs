//! The request flow, one function per route:
//! route → authenticate → admit (one call into the account's object) →
//! forward → settle (bind / release / observe) → respond with the
//! RateLimit fields. Every failure is a [`GovernorError`], turned into HTTP
//! by [`respond::error`] only.

use governor_core::config::Config;
use governor_core::contract::{AdmitRequest, Command, PolicyState, Reply};
use governor_core::error::GovernorError;
use governor_core::keys::Caller;
use governor_core::rewrite::GenerateBody;
use governor_core::route::{route, Proxy, ProxyKind, Route};
use governor_core::secret::Secret;
use governor_core::settle;
use governor_core::webhook::{check_client_url, Claims};
use serde_json::json;
use worker::{Context, Env, Request, Response};

use crate::account_client;
use crate::cors::{self, Origin};
use crate::proxy::{self, Body, UpstreamAuth};
use crate::respond;
use crate::settings;
use crate::webhook;

pub async fn handle(req: Request, env: &Env, _ctx: &Context) -> Response {
    let config = match settings::load(env) {
        Ok(c) => c,
        Err(e) => return respond::error(&e.into(), &Origin::None),
    };
    let origin = cors::check(&req, &config.allowed_origins);
    match dispatch(req, env, &config, &origin).await {
        Ok(resp) => resp,
        Err(err) => respond::error(&err, &origin),
    }
}

async fn dispatch(req: Request, env: &Env, config: &Config, origin: &Origin) -> Result<Response, GovernorError> {
    if *origin == Origin::Refused {
        return Err(GovernorError::OriginNotAllowed);
    }
    let path = req.path();
    let method = req.method().to_string();
    match route(&method, &path, &config.limits) {
        Route::Preflight => Ok(Response::builder().with_status(204).with_headers(cors::preflight(origin)).empty()),
        Route::Health => Ok(respond::json(200, &json!({"ok": true}), origin)),
        Route::NotFound => Err(GovernorError::NotFound),
        Route::MethodNotAllowed => Err(GovernorError::MethodNotAllowed),
        Route::Webhook(token) => webhook::handle(req, env, config, &token).await,
        Route::Status => {
            let caller = authenticate(&req, config)?;
            match account_client::call(env, &caller.account, object_key(config, &caller), &Command::Status).await? {
                Reply::Status(view) => Ok(respond::json(200, &json!(view), origin)),
                _ => Err(GovernorError::Internal("unexpected reply to status".into())),
            }
        }
        Route::Proxy(p) => proxy_request(req, env, config, origin, p).await,
    }
}

/// The key a caller presents: `x-api-key`, or `Authorization: Bearer`.
fn presented_key(req: &Request) -> Option<String> {
    let h = req.headers();
    h.get("x-api-key").ok().flatten().or_else(|| {
        h.get("authorization")
            .ok()
            .flatten()
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
    })
}

/// The key the account object may keep in memory: only pass-through keys
/// travel (managed keys are in the object's own configuration).
fn object_key<'a>(config: &Config, caller: &'a Caller) -> Option<&'a Secret> {
    (!config.keys.is_managed()).then_some(&caller.upstream_key)
}

fn authenticate(req: &Request, config: &Config) -> Result<Caller, GovernorError> {
    Ok(config.keys.resolve(presented_key(req).as_deref())?)
}

fn upstream_url(config: &Config, req: &Request) -> Result<String, GovernorError> {
    let url = req.url().map_err(|_| GovernorError::BadRequest("malformed URL".into()))?;
    Ok(match url.query() {
        Some(q) => format!("{}{}?{}", config.api_base, url.path(), q),
        None => format!("{}{}", config.api_base, url.path()),
    })
}

/// Read a JSON generate body (bounded).
async fn read_json_body(req: &mut Request, limit: u64) -> Result<Vec<u8>, GovernorError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GovernorError::PayloadTooLarge { limit });
    }
    let bytes = req.bytes().await.map_err(|_| GovernorError::BadRequest("unreadable body".into()))?;
    if bytes.len() as u64 > limit {
        return Err(GovernorError::PayloadTooLarge { limit });
    }
    Ok(bytes)
}

/// Prepare a JSON generate body: its model, and the body to send, with
/// `webhookUrl` pointing at the governor's callback when the relay is on.
async fn generate_body(req: &mut Request, config: &Config, caller: &Caller) -> Result<(Body, Option<String>), GovernorError> {
    let bytes = read_json_body(req, config.max_body_bytes).await?;
    let parsed = GenerateBody::parse(&bytes).map_err(GovernorError::BadRequest)?;
    let model = parsed.model.clone();
    if let Some(url) = &parsed.webhook_url {
        check_client_url(url, config.webhooks.local_mode).map_err(GovernorError::BadRequest)?;
    }
    let origin = req.url().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let claims = Claims { account: caller.account.clone(), client_url: parsed.webhook_url.clone() };
    let body = match webhook::callback_url(config, &origin, &claims) {
        Some(callback) => parsed.with_webhook(&callback),
        None => bytes,
    };
    Ok((Body::Bytes(body), model))
}

/// Multipart bodies (file uploads) are streamed untouched; every other
/// generate body must be a JSON object.
fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
}

async fn proxy_request(mut req: Request, env: &Env, config: &Config, origin: &Origin, p: Proxy) -> Result<Response, GovernorError> {
    let url = upstream_url(config, &req)?;
    let key = presented_key(&req);
    if p.kind == ProxyKind::Public && key.is_none() {
        // Sync serves these without a key, so there is no account to charge.
        let mut resp = proxy::forward(&req, &url, Body::Stream(req.inner().body()), UpstreamAuth::None).await?;
        cors::decorate(resp.headers_mut(), origin);
        return Ok(resp);
    }
    let caller = config.keys.resolve(key.as_deref())?;
    let (body, model) = if p.kind == ProxyKind::Create && !is_multipart(&req) {
        generate_body(&mut req, config, &caller).await?
    } else {
        (Body::Stream(req.inner().body()), None)
    };
    let key = object_key(config, &caller);
    let admit = Command::Admit(AdmitRequest { class: p.class.clone(), permit: p.kind == ProxyKind::Create, model });
    let admitted = match account_client::call(env, &caller.account, key, &admit).await? {
        Reply::Admitted(a) => a,
        Reply::Rejected(r) => return Err(GovernorError::Limited(r)),
        _ => return Err(GovernorError::Internal("unexpected reply to admit".into())),
    };
    let resp = match proxy::forward(&req, &url, body, UpstreamAuth::Key(&caller.upstream_key)).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(permit) = admitted.permit {
                let _ = account_client::call(env, &caller.account, key, &Command::Release { permit }).await;
            }
            return Err(e);
        }
    };
    let resp = settle_response(env, &caller.account, key, &p, admitted.permit, resp).await?;
    Ok(finish(resp, &admitted.policies, origin))
}

/// Tell the account what Sync's answer means, and return that answer. A
/// Sync 429 becomes the governor's own 429 with an honest Retry-After.
async fn settle_response(
    env: &Env,
    account: &str,
    key: Option<&Secret>,
    p: &Proxy,
    permit: Option<u64>,
    resp: Response,
) -> Result<Response, GovernorError> {
    let status = resp.status_code();
    let retry_after = proxy::upstream_retry_after_ms(&resp);
    let (resp, command) = match (&p.kind, permit) {
        (ProxyKind::Create, Some(permit)) => {
            let (resp, bytes) = proxy::read(resp).await;
            (resp, Some(settle::after_create(permit, status, &bytes, retry_after)))
        }
        (ProxyKind::ReadsGenerations, _) if (200..300).contains(&status) => {
            let (resp, bytes) = proxy::read(resp).await;
            (resp, settle::observed(&bytes))
        }
        _ if status == 429 => {
            let (resp, bytes) = proxy::read(resp).await;
            let kind = settle::limit_kind(&bytes);
            (resp, Some(Command::UpstreamLimited { class: p.class.clone(), kind, permit: None, retry_after_ms: retry_after }))
        }
        _ => (resp, None),
    };
    if let Some(command) = command {
        match account_client::call(env, account, key, &command).await {
            Ok(Reply::Rejected(r)) => return Err(GovernorError::Limited(r)),
            Ok(_) => {}
            Err(e) => worker::console_error!("settling with the account failed: {}", e.message()),
        }
    }
    Ok(resp)
}

fn finish(mut resp: Response, policies: &[PolicyState], origin: &Origin) -> Response {
    let headers = resp.headers_mut();
    respond::rate_headers(headers, policies);
    cors::decorate(headers, origin);
    resp
}
