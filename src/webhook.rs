//! `POST /governor/v1/webhook/{token}`: Sync's callback for a generation
//! the governor admitted. Verify the token (key id, expiry, local mode) and
//! Sync's signature when `SYNC_WEBHOOK_SECRET` is set, free the permit, and
//! queue the payload for the client's own `webhookUrl` byte for byte (once
//! per generation and status: the account drops replays). Forged, expired
//! or malformed callbacks get a 4xx and change nothing.

use governor_core::config::Config;
use governor_core::ids::{GenerationId, TicketId};
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::relay::delivery::RelayRequest;
use governor_core::relay::webhook::{sign_token, verify_sync_signature, verify_token, Claims, WebhookError};
use governor_core::wire::calls::Settle;
use governor_core::wire::calls::SettleReply;
use governor_core::wire::contract::Refusal;
use governor_core::wire::error::GovernorError;
use serde::Deserialize;
use worker::{Date, Env, Response};

use crate::request::Request;

use crate::account_client;
use crate::cors::Origin;
use crate::respond;

pub const ROUTE: &str = "/governor/v1/webhook/";

/// Headers of Sync's delivery that travel on to the client.
const RELAYED_HEADERS: [&str; 3] = ["content-type", "sync-signature", "x-signature-primary"];

#[derive(Deserialize)]
struct Payload {
    id: GenerationId,
    status: GenerationStatus,
    /// Any JSON: read by `budget::estimate::output_ms` (hostile input).
    #[serde(default, rename = "outputDuration")]
    output_duration: Option<serde_json::Value>,
}

/// The callback URL to give Sync for an account, or `None` when the relay
/// is off (no webhook key). The token expires after
/// `WEBHOOK_TOKEN_TTL_SECONDS` and is sealed with a fresh nonce.
pub fn callback_url(
    config: &Config,
    origin: &str,
    account: &str,
    client_url: Option<String>,
    local: bool,
    callback: &TicketId,
) -> Result<Option<String>, GovernorError> {
    let Some(key) = config.webhooks.key.as_ref() else { return Ok(None) };
    let base = config.webhooks.public_url.as_deref().unwrap_or(origin);
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| GovernorError::Internal("no randomness".into()))?;
    let expires_s = Date::now().as_millis() / 1_000 + config.webhooks.token_ttl_s;
    let claims = Claims { account: account.to_owned(), client_url, expires_s, local, callback: Some(callback.clone()) };
    Ok(Some(format!("{base}{ROUTE}{}", sign_token(key.expose().as_bytes(), &claims, nonce))))
}

/// Is local mode in effect for this request (`LOCAL_MODE` on and the
/// request's own host loopback)? `LOCAL_MODE` left on in a deployment is
/// ignored, with a log line.
pub fn local_mode(config: &Config, req: &Request) -> bool {
    if !config.webhooks.local_mode {
        return false;
    }
    let host = web_sys::Url::new(&req.inner().url()).map(|u| u.hostname()).unwrap_or_default();
    let local = config.webhooks.local_for(&host);
    if !local {
        worker::console_warn!("LOCAL_MODE is set but the request host is not loopback: local mode is ignored");
    }
    local
}

pub async fn handle(mut req: Request, env: &Env, config: &Config, token: &str) -> Result<Response, GovernorError> {
    let keys = config.webhooks.token_keys();
    if keys.is_empty() {
        return Err(GovernorError::NotFound);
    }
    let now_s = Date::now().as_millis() / 1_000;
    let claims = verify_token(&keys, token, now_s).map_err(|e| GovernorError::BadWebhook(e.message()))?;
    if claims.local && !local_mode(config, &req) {
        // Minted for a loopback hook while developing: never valid elsewhere.
        return Err(GovernorError::BadWebhook(WebhookError::LocalToken.message()));
    }
    // Bounded while reading: a body without Content-Length is cut at the cap.
    let body = crate::request::read_json_body(&mut req, config.max_body_bytes).await?;
    match &config.webhooks.sync_secret {
        Some(secret) => {
            let header = crate::request::header(&req, "sync-signature");
            verify_sync_signature(
                secret.expose().as_bytes(),
                header.as_deref(),
                &body,
                now_s,
                config.webhooks.tolerance_s,
            )
            .map_err(|e| GovernorError::BadWebhook(e.message()))?;
        }
        None => crate::settings::warn_unverified(),
    }
    let payload: Payload = serde_json::from_slice(&body).map_err(|_| {
        GovernorError::BadRequest("webhook payload must be a generation object with id and status".into())
    })?;
    let relay = match claims.client_url {
        Some(url) => {
            let body = String::from_utf8(body)
                .map_err(|_| GovernorError::BadRequest("webhook payload is not UTF-8".into()))?;
            let headers = RELAYED_HEADERS
                .iter()
                .filter_map(|h| crate::request::header(&req, h).map(|v| ((*h).to_owned(), v)))
                .collect();
            Some(RelayRequest { url, body, headers })
        }
        None => None,
    };
    let output_ms = payload.output_duration.as_ref().and_then(governor_core::budget::estimate::output_ms);
    // A token bound to its create: the account checks the payload's id against it.
    let webhook = match claims.callback {
        Some(callback) => Settle::callback(callback, payload.id, payload.status, relay, output_ms),
        None => Settle::webhook(payload.id, payload.status, relay, output_ms),
    };
    if let SettleReply::Refused(r) = account_client::call(env, &claims.account, None, &webhook).await? {
        return Err(match r {
            Refusal::Invalid(m) => GovernorError::BadRequest(m),
            _ => GovernorError::Failed("the account could not take the webhook".into()),
        });
    }
    Ok(respond::json_text(200, r#"{"ok":true}"#.into(), &Origin::None))
}
