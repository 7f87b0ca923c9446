//! The admin API: check the admin key, turn the route into a typed
//! [`AdminCommand`] for the account's object (or a call to the directory),
//! log who did what, and answer JSON. Without `GOVERNOR_ADMIN_KEY` every
//! route here is a 404.

use governor_core::config::{Config, LogLevel};
use governor_core::operations::admin::AdminCommand;
use governor_core::operations::prometheus::MetricsView;
use governor_core::wire::calls::{Admin, AdminReply, Status, StatusReply};
use governor_core::wire::error::GovernorError;
use governor_core::wire::route::AdminRoute;
use serde::Serialize;
use worker::{Env, Response};

use crate::request::Request;

use crate::account_client;
use crate::cors::Origin;
use crate::directory::{self, Entry};
use crate::log::Line;
use crate::request::read_json_body;
use crate::respond;

use super::auth::authorize;
use super::metrics::snapshots;

/// The largest admin request body.
const MAX_BODY: u64 = 16 << 10;

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
            return match account_client::call(env, &account, None, &Status).await? {
                // The account's own view (the deployment's webhook settings
                // are in a client's status).
                StatusReply::Status(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
                StatusReply::Refused(r) => Err(GovernorError::from(r)),
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
        // Every client's rows (a client key sees only its own, /governor/v1/ledger).
        AdminRoute::Ledger(account) => return crate::ledger::serve(&req, env, origin, &account, None, None).await,
        AdminRoute::Budget { account, set } => {
            let body = if set { Some(text_body(&mut req).await?) } else { None };
            let action = if set { "set_budget" } else { "clear_budget" };
            (action, account, AdminCommand::Budget { body })
        }
        AdminRoute::ClientLimits { account, client, set } => {
            let body = if set { Some(text_body(&mut req).await?) } else { None };
            let action = if set { "set_client_limits" } else { "clear_client_limits" };
            (action, account, AdminCommand::ClientLimits { client, body })
        }
    };
    let target = match &command {
        AdminCommand::Cancel { ticket } => Some(ticket.to_string()),
        AdminCommand::ReleasePermit { target } => Some(target.clone()),
        AdminCommand::ClientLimits { client, .. } => Some(client.clone()),
        _ => None,
    };
    let reply = account_client::call(env, &account, None, &Admin(command)).await?;
    if action != "list_queue" {
        Line::new(LogLevel::Info, "admin")
            .str("admin", &admin)
            .str("action", action)
            .str("account", &account)
            .opt("target", target.as_deref())
            .emit(config.log_level);
    }
    match reply {
        AdminReply::Admin(body) => Ok(respond::json_text(200, body.get().to_owned(), origin)),
        AdminReply::Ticket(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
        AdminReply::Refused(r) => Err(GovernorError::from(r)),
    }
}

/// An admin request's body as text (bounded, UTF-8).
async fn text_body(req: &mut Request) -> Result<String, GovernorError> {
    let bytes = read_json_body(req, MAX_BODY).await?;
    String::from_utf8(bytes).map_err(|_| GovernorError::BadRequest("the body is not UTF-8".into()))
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
