//! The admin API and the metrics endpoint: check the admin key, turn the
//! route into a typed [`AdminCommand`] for the account's object (or a call
//! to the directory), log who did what, and answer JSON (or Prometheus
//! text). Without `GOVERNOR_ADMIN_KEY` every route here is a 404.

use governor_core::config::{Config, LogLevel};
use governor_core::contract::{Command, WireReply as Reply};
use governor_core::error::GovernorError;
use governor_core::keys::{bearer_token, fingerprint, is_admin_key};
use governor_core::metrics::{render, MetricsView};
use governor_core::ops::AdminCommand;
use governor_core::route::{is_account_name, route, AdminRoute, Route};
use serde::Serialize;
use worker::{Env, Headers, Request, Response};

use crate::account_client;
use crate::cors::Origin;
use crate::directory::{self, Entry};
use crate::generate::read_json_body;
use crate::log::Line;
use crate::respond;

/// Accounts whose live usage one listing or scrape reads (one subrequest each).
const FAN_OUT: usize = 40;
/// The largest admin request body.
const MAX_BODY: u64 = 16 << 10;

/// The operations Worker's entry: the admin API and `/governor/v1/metrics`.
/// The governor forwards these paths here through its `OPS` service binding
/// (and adds the CORS fields); without `GOVERNOR_ADMIN_KEY` everything is 404.
pub async fn serve(req: Request, env: &Env) -> Response {
    let config = crate::settings::cached(env);
    let config = match config.as_ref() {
        Ok(c) => c,
        Err(e) => return respond::error(&e.clone().into(), &Origin::None),
    };
    let path = req.path();
    let method = req.method().to_string();
    let result = match route(&method, &path, &config.limits) {
        Route::Admin(r) => handle(req, env, config, &Origin::None, r).await,
        Route::Metrics => metrics(&req, env, config).await,
        Route::MethodNotAllowed if config.admin_key.is_some() => Err(GovernorError::MethodNotAllowed),
        _ => Err(GovernorError::NotFound),
    };
    result.unwrap_or_else(|e| respond::error(&e, &Origin::None))
}

/// The admin key's fingerprint when the caller presents it.
pub fn authorize(req: &Request, config: &Config) -> Result<String, GovernorError> {
    let Some(expected) = &config.admin_key else { return Err(GovernorError::NotFound) };
    let h = req.headers();
    let presented = h
        .get("x-governor-admin-key")
        .ok()
        .flatten()
        .or_else(|| h.get("authorization").ok().flatten().and_then(|v| bearer_token(&v).map(str::to_owned)));
    if !is_admin_key(expected, presented.as_deref()) {
        return Err(GovernorError::AdminUnauthorized);
    }
    Ok(fingerprint(expected.expose())[..8].to_owned())
}

pub async fn handle(
    mut req: Request,
    env: &Env,
    config: &Config,
    origin: &Origin,
    route: AdminRoute,
) -> Result<Response, GovernorError> {
    let admin = authorize(&req, config)?;
    let (action, account, command) = match route {
        AdminRoute::Accounts => return accounts(env, origin).await,
        AdminRoute::Account(account) => {
            return match account_client::call(env, &account, None, &Command::Status).await? {
                // The account's view (the deployment's webhook settings are the
                // governor's, not this Worker's: a client's status shows them).
                Reply::Status(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
                _ => Err(unexpected()),
            };
        }
        // Bodies are read (bounded) here and parsed by the core in the object.
        AdminRoute::SetLimits(a) => ("set_limits", a, AdminCommand::SetLimits { body: text_body(&mut req).await? }),
        AdminRoute::ClearLimits(a) => ("clear_limits", a, AdminCommand::ClearLimits),
        AdminRoute::Pause(a) => ("pause", a, AdminCommand::Pause { body: text_body(&mut req).await? }),
        AdminRoute::Resume(a) => ("resume", a, AdminCommand::Resume),
        AdminRoute::Queue(a) => ("list_queue", a, AdminCommand::Queue),
        AdminRoute::Drain(a) => ("drain_queue", a, AdminCommand::Drain),
        AdminRoute::CancelJob { account, ticket } => ("cancel_job", account, AdminCommand::Cancel { ticket }),
        AdminRoute::ReleasePermit { account, target } => {
            ("release_permit", account, AdminCommand::ReleasePermit { target })
        }
    };
    let target = match &command {
        AdminCommand::Cancel { ticket } => Some(ticket.clone()),
        AdminCommand::ReleasePermit { target } => Some(target.clone()),
        _ => None,
    };
    let reply = account_client::call(env, &account, None, &Command::Admin(command)).await?;
    if action != "list_queue" {
        Line::new(LogLevel::Info, "admin")
            .str("admin", &admin)
            .str("action", action)
            .str("account", &account)
            .opt("target", target.as_deref())
            .emit(config.log_level);
    }
    match reply {
        Reply::Admin(body) => Ok(respond::json_text(200, body.get().to_owned(), origin)),
        Reply::Ticket(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
        Reply::Refused(r) => Err(crate::generate::refusal(r)),
        _ => Err(unexpected()),
    }
}

/// An admin request's body as text (bounded, UTF-8).
async fn text_body(req: &mut Request) -> Result<String, GovernorError> {
    let bytes = read_json_body(req, MAX_BODY).await?;
    String::from_utf8(bytes).map_err(|_| GovernorError::BadRequest("the body is not UTF-8".into()))
}

fn unexpected() -> GovernorError {
    GovernorError::Internal("unexpected reply to an admin call".into())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountRow {
    account: String,
    first_seen: u64,
    last_seen: u64,
    mode: &'static str,
    usage: Option<MetricsView>,
}

#[derive(Serialize)]
struct AccountsBody {
    accounts: Vec<AccountRow>,
}

/// Each account's metrics snapshot (the first [`FAN_OUT`]; `None` for an
/// account that could not answer).
async fn snapshots(env: &Env, accounts: &[String]) -> Vec<Option<MetricsView>> {
    // One at a time: a few milliseconds each, and one small future.
    let mut out = Vec::new();
    for a in accounts.iter().take(FAN_OUT) {
        out.push(match account_client::call(env, a, None, &Command::Admin(AdminCommand::Metrics)).await {
            Ok(Reply::Metrics(m)) => Some(m),
            _ => None,
        });
    }
    out
}

async fn accounts(env: &Env, origin: &Origin) -> Result<Response, GovernorError> {
    let entries = directory::list(env, directory::MAX_LIST)
        .await
        .map_err(|_| GovernorError::Unavailable("the directory could not be read".into()))?;
    let names: Vec<String> = entries.iter().map(|e| e.account.clone()).collect();
    let mut usage = snapshots(env, &names).await.into_iter();
    let accounts = entries
        .into_iter()
        .map(|e: Entry| AccountRow {
            mode: if e.account.starts_with("a-") { "managed" } else { "pass-through" },
            usage: usage.next().flatten(),
            account: e.account,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
        })
        .collect();
    Ok(respond::json_of(200, &AccountsBody { accounts }, origin))
}

/// `GET /governor/v1/metrics[?account=NAME]`: Prometheus text.
pub async fn metrics(req: &Request, env: &Env, config: &Config) -> Result<Response, GovernorError> {
    authorize(req, config)?;
    let url = req.inner().url();
    let one = url.split_once('?').and_then(|(_, q)| {
        q.split('&').find_map(|kv| kv.strip_prefix("account=")).filter(|a| is_account_name(a)).map(str::to_owned)
    });
    let names = match one {
        Some(a) => vec![a],
        None => directory::list(env, FAN_OUT as u32)
            .await
            .map_err(|_| GovernorError::Unavailable("the directory could not be read".into()))?
            .into_iter()
            .map(|e| e.account)
            .collect(),
    };
    let snaps = snapshots(env, &names).await;
    let rows: Vec<(String, MetricsView)> =
        names.into_iter().zip(snaps).filter_map(|(a, m)| m.map(|m| (a, m))).collect();
    let headers = Headers::new();
    let _ = headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    Ok(Response::builder().with_status(200).with_headers(headers).fixed(render(&rows).into_bytes()))
}
