//! `POST /governor/v1/webhook/{token}`: Sync's callback for a generation
//! the governor admitted. Verify the token (and Sync's signature when
//! `SYNC_WEBHOOK_SECRET` is set), free the permit, and queue the payload
//! for the client's own `webhookUrl` byte for byte. Forged or malformed
//! callbacks get a 4xx and change nothing.

use governor_core::config::Config;
use governor_core::contract::{Command, RelayRequest};
use governor_core::error::GovernorError;
use governor_core::webhook::{sign_token, verify_sync_signature, verify_token, Claims};
use serde::Deserialize;
use serde_json::json;
use worker::{Date, Env, Request, Response};

use crate::account_client;
use crate::cors::Origin;
use crate::respond;

pub const ROUTE: &str = "/governor/v1/webhook/";

/// Headers of Sync's delivery that travel on to the client.
const RELAYED_HEADERS: [&str; 3] = ["content-type", "sync-signature", "x-signature-primary"];

#[derive(Deserialize)]
struct Payload {
    id: String,
    status: String,
}

/// The callback URL to give Sync for an account, or `None` when the relay
/// is off (no `GOVERNOR_WEBHOOK_KEY`).
pub fn callback_url(config: &Config, origin: &str, claims: &Claims) -> Option<String> {
    let key = config.webhooks.key.as_ref()?;
    let base = config.webhooks.public_url.as_deref().unwrap_or(origin);
    Some(format!("{base}{ROUTE}{}", sign_token(key.expose().as_bytes(), claims)))
}

pub async fn handle(mut req: Request, env: &Env, config: &Config, token: &str) -> Result<Response, GovernorError> {
    let key = config.webhooks.key.as_ref().ok_or(GovernorError::NotFound)?;
    let claims = verify_token(key.expose().as_bytes(), token).map_err(|e| GovernorError::BadWebhook(e.message()))?;
    // Bounded while reading: a body without Content-Length is cut at the cap.
    let body = crate::generate::read_json_body(&mut req, config.max_body_bytes).await?;
    if let Some(secret) = &config.webhooks.sync_secret {
        let header = req.headers().get("sync-signature").ok().flatten();
        let now_s = Date::now().as_millis() / 1_000;
        verify_sync_signature(secret.expose().as_bytes(), header.as_deref(), &body, now_s, config.webhooks.tolerance_s)
            .map_err(|e| GovernorError::BadWebhook(e.message()))?;
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
                .filter_map(|h| req.headers().get(h).ok().flatten().map(|v| ((*h).to_owned(), v)))
                .collect();
            Some(RelayRequest { url, body, headers })
        }
        None => None,
    };
    let command = Command::Webhook { generation: payload.id, status: payload.status, relay };
    account_client::call(env, &claims.account, None, &command).await?;
    Ok(respond::json(200, &json!({ "ok": true }), &Origin::None))
}
