//! `GET /governor/v1/ledger`: the job ledger of the caller's account, paged.
//! A managed client key sees its own rows; in pass-through mode the caller
//! holds the account's own Sync key (client names are only advisory there),
//! so it sees every client's rows. The query is checked here, before any
//! call into the account's object: hostile parameters are a 400.

use governor_core::ledger::{encode::NEXT_CURSOR_HEADER, LedgerQuery};
use governor_core::wire::calls::{Ledger, LedgerReply};
use governor_core::wire::error::GovernorError;
use worker::{Env, Headers, Response};

use crate::request::Request;

use crate::cors::Origin;

pub async fn serve(
    req: &Request,
    env: &Env,
    config: &governor_core::config::Config,
    origin: &Origin,
    caller: &governor_core::auth::keys::Caller,
    key: Option<&governor_core::auth::secret::Secret>,
) -> Result<Response, GovernorError> {
    let url = req.url().map_err(|_| GovernorError::BadRequest("unreadable URL".into()))?;
    let query = url.query().unwrap_or("").to_owned();
    let client = config.keys.is_managed().then(|| caller.client.clone());
    LedgerQuery::parse(&query, client.as_deref())?;
    match crate::account_client::call(env, &caller.account, key, &Ledger { query, client }).await? {
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
