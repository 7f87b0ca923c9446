//! `GET /governor/v1/ledger`: the job ledger of the caller's account, paged.
//! A managed client key sees its own rows; in pass-through mode the caller
//! holds the account's own Sync key (client names are only advisory there),
//! so it sees every client's rows. The admin key (`X-Governor-Admin-Key`)
//! sees every client's rows of any account, on the same path with
//! `account=<name>` (the name the admin API lists) or at
//! `GET /governor/v1/admin/accounts/{account}/ledger`; `client=` filters.
//! The query is checked here, before any call into the account's object:
//! hostile parameters are a 400.

use governor_core::ledger::{encode::NEXT_CURSOR_HEADER, LedgerQuery};
use governor_core::wire::calls::{Ledger, LedgerReply};
use governor_core::wire::error::GovernorError;
use worker::{Env, Headers, Response};

use crate::request::Request;

use crate::cors::Origin;

/// A client's own ledger (`client`: a managed key's client; `None` in pass-through mode).
pub async fn serve_caller(
    req: &Request,
    env: &Env,
    config: &governor_core::config::Config,
    origin: &Origin,
    caller: &governor_core::auth::keys::Caller,
    key: Option<&governor_core::auth::secret::Secret>,
) -> Result<Response, GovernorError> {
    let client = config.keys.is_managed().then(|| caller.client.clone());
    serve(req, env, origin, &caller.account, key, client).await
}

/// Does the request ask as the admin (`X-Governor-Admin-Key`, or an
/// `account=` parameter, which only the admin key may give)?
pub fn asks_as_admin(req: &Request) -> bool {
    let admin_header = req.field("x-governor-admin-key").is_some();
    admin_header || req.url().is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "account"))
}

/// The admin key on `GET /governor/v1/ledger?account=<name>&...`: every
/// client's rows of that account (`account` is required and must be an
/// account's name as the admin API lists it).
pub async fn serve_admin(
    req: &Request,
    env: &Env,
    config: &governor_core::config::Config,
    origin: &Origin,
) -> Result<Response, GovernorError> {
    crate::ops::auth::authorize(req, config)?;
    let url = req.url().map_err(|_| GovernorError::BadRequest("unreadable URL".into()))?;
    let (mut account, mut rest) = (None, Vec::new());
    for pair in url.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("account=") {
            Some(_) if account.is_some() => return Err(GovernorError::BadRequest("account is given twice".into())),
            Some(a) => account = Some(a.to_owned()),
            None => rest.push(pair),
        }
    }
    let account = account
        .filter(|a| governor_core::wire::path::is_account_name(a))
        .ok_or_else(|| GovernorError::BadRequest("account must name an account as the admin API lists it".into()))?;
    page(env, origin, &account, None, None, rest.join("&")).await
}

/// A page of `account`'s ledger, only `client`'s rows when one is given.
pub async fn serve(
    req: &Request,
    env: &Env,
    origin: &Origin,
    account: &str,
    key: Option<&governor_core::auth::secret::Secret>,
    client: Option<String>,
) -> Result<Response, GovernorError> {
    let url = req.url().map_err(|_| GovernorError::BadRequest("unreadable URL".into()))?;
    page(env, origin, account, key, client, url.query().unwrap_or("").to_owned()).await
}

async fn page(
    env: &Env,
    origin: &Origin,
    account: &str,
    key: Option<&governor_core::auth::secret::Secret>,
    client: Option<String>,
    query: String,
) -> Result<Response, GovernorError> {
    LedgerQuery::parse(&query, client.as_deref())?;
    match crate::account_client::call(env, account, key, &Ledger { query, client }).await? {
        LedgerReply::Ledger(page) => {
            let headers = Headers::new();
            let _ = headers.set("content-type", &page.content_type);
            let _ = headers.set("cache-control", "no-store");
            if let Some(next) = &page.next_cursor {
                let _ = headers.set(NEXT_CURSOR_HEADER, next);
            }
            crate::cors::decorate(&headers, origin);
            Ok(Response::builder().with_status(200).with_headers(headers).fixed(page.body.into_bytes()))
        }
        LedgerReply::Refused(r) => Err(GovernorError::from(r)),
    }
}
