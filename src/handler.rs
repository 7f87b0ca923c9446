//! The request's route, one arm per route: the data path's proxied requests
//! go to [`crate::forward`] (authenticate → admit → forward → settle →
//! respond), the operations to [`crate::ops`]. Every failure is a
//! [`GovernorError`], turned into HTTP by [`respond::error`] only.

use governor_core::config::Config;
use governor_core::ids::TicketId;
use governor_core::wire::calls::{Status, StatusReply, Ticket, TicketReply};
use governor_core::wire::error::GovernorError;
use governor_core::wire::route::{route, ProxyKind, Route};
use worker::{Context, Env, Response};

use crate::account_client;
use crate::caller::{authenticate, object_key};
use crate::cors::{self, Origin};
use crate::request::Request;
use crate::respond;
use crate::settings;
use crate::webhook;

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Response {
    let config = settings::cached(env);
    let config = match config.as_ref() {
        Ok(c) => c,
        Err(e) => return respond::error(&e.clone().into(), &Origin::None),
    };
    let origin = cors::check(&req, &config.allowed_origins);
    match dispatch(req, env, ctx, config, &origin).await {
        Ok(resp) => resp,
        Err(err) => respond::error(&err, &origin),
    }
}

async fn dispatch(
    req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    origin: &Origin,
) -> Result<Response, GovernorError> {
    if *origin == Origin::Refused {
        return Err(GovernorError::OriginNotAllowed);
    }
    let path = req.path();
    let method = req.method().to_string();
    // The operations (admin API, metrics) are their own module tree; their
    // preflights are answered here (CORS is the data path's).
    if crate::ops::is_ops_path(&path) && !method.eq_ignore_ascii_case("OPTIONS") {
        return crate::ops::serve(req, env, config, origin, &path, &method).await;
    }
    match route(&method, &path, &config.limits) {
        Route::Preflight => Ok(Response::builder().with_status(204).with_headers(cors::preflight(origin)).empty()),
        Route::Health => Ok(respond::json_text(200, r#"{"ok":true}"#.into(), origin)),
        Route::NotFound => Err(GovernorError::NotFound),
        Route::Ambiguous => Err(GovernorError::AmbiguousPath),
        Route::MethodNotAllowed => Err(GovernorError::MethodNotAllowed),
        Route::Webhook(token) => {
            // Without GOVERNOR_WEBHOOK_KEY, tokens are signed with the deployment key.
            let config = crate::deployment::keyed(env, config).await?;
            webhook::handle(req, env, &config, &token).await
        }
        Route::Ticket { ticket: t, cancel } => ticket(&req, env, config, origin, t, cancel).await,
        // Served by crate::ops above.
        Route::Admin(_) | Route::Metrics => Err(GovernorError::NotFound),
        Route::Status => {
            let caller = authenticate(&req, config)?;
            match account_client::call(env, &caller.account, object_key(config, &caller), &Status).await? {
                StatusReply::Status(view) => Ok(respond::json_text(200, status_body(view.get(), config, &req), origin)),
                StatusReply::Refused(r) => Err(GovernorError::from(r)),
            }
        }
        Route::Ledger if crate::ledger::asks_as_admin(&req) => {
            crate::ledger::serve_admin(&req, env, config, origin).await
        }
        Route::Ledger => {
            let caller = authenticate(&req, config)?;
            crate::ledger::serve_caller(&req, env, config, origin, &caller, object_key(config, &caller)).await
        }
        Route::Proxy(p) if p.kind == ProxyKind::Create => {
            // Callbacks and the queue's sealed key need a key: the deployment's when none is set.
            let config = crate::deployment::keyed(env, config).await?;
            crate::forward::serve(req, env, ctx, &config, origin, p).await
        }
        Route::Proxy(p) => crate::forward::serve(req, env, ctx, config, origin, p).await,
    }
}

/// The account's status view (the object's JSON), plus the deployment's
/// webhook settings.
pub(crate) fn status_body(view: &str, config: &Config, req: &Request) -> String {
    let mut body = String::from(view.trim_end());
    if body.ends_with('}') {
        body.pop();
        body.push_str(",\"webhooks\":");
        body.push_str(&serde_json::to_string(&webhooks_status(config, req)).unwrap_or_else(|_| "null".into()));
        body.push('}');
    }
    body
}

/// How callbacks are checked: `verification` is `off` without
/// `SYNC_WEBHOOK_SECRET` (any holder of a callback URL can post to it).
fn webhooks_status(config: &Config, req: &Request) -> WebhooksView {
    WebhooksView {
        verification: if config.webhooks.sync_secret.is_some() { "on" } else { "off" },
        local_mode: webhook::local_mode(config, req),
        token_ttl_seconds: config.webhooks.token_ttl_s,
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhooksView {
    verification: &'static str,
    local_mode: bool,
    token_ttl_seconds: u64,
}

/// `GET` / `DELETE /governor/v1/queue/{ticket}`.
async fn ticket(
    req: &Request,
    env: &Env,
    config: &Config,
    origin: &Origin,
    ticket: TicketId,
    cancel: bool,
) -> Result<Response, GovernorError> {
    let caller = authenticate(req, config)?;
    // Managed mode: a ticket belongs to the client key that queued it.
    let client = config.keys.is_managed().then(|| caller.client.clone());
    let call = Ticket { ticket, client, cancel };
    match account_client::call(env, &caller.account, object_key(config, &caller), &call).await? {
        TicketReply::Ticket(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
        TicketReply::Refused(r) => Err(GovernorError::from(r)),
    }
}
