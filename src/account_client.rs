//! The Worker side of the account object's typed contract: one
//! [`Command`] in, one [`Reply`] out, JSON over the stub's fetch.
//!
//! In pass-through mode the caller's Sync key rides along in a header so the
//! object can reconcile and relay on the account's behalf; the object keeps
//! it in memory only and never persists it.

use governor_core::contract::{Command, Reply};
use governor_core::error::GovernorError;
use governor_core::secret::Secret;
use worker::{Env, Headers, Method, Request, RequestInit};

pub const BINDING: &str = "ACCOUNTS";
pub const KEY_HEADER: &str = "x-governor-upstream-key";

/// Send one command to the account's Durable Object.
pub async fn call(env: &Env, account: &str, key: Option<&Secret>, command: &Command) -> Result<Reply, GovernorError> {
    let internal = |what: &str| GovernorError::Internal(format!("account object: {what}"));
    let body = serde_json::to_string(command).map_err(|_| internal("encode"))?;
    let stub = env.durable_object(BINDING).and_then(|ns| ns.get_by_name(account)).map_err(|_| internal("binding"))?;
    let headers = Headers::new();
    if let Some(k) = key {
        let _ = headers.set(KEY_HEADER, k.expose());
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
    let req = Request::new_with_init("https://account.internal/", &init).map_err(|_| internal("request"))?;
    // The object threw, was reset or overloaded: nothing was decided, so the
    // caller may retry (503 with Retry-After), never a 500.
    let unavailable = |what: &str| GovernorError::Unavailable(format!("account object: {what}"));
    let mut resp = stub.fetch_with_request(req).await.map_err(|_| unavailable("unreachable"))?;
    if resp.status_code() != 200 {
        worker::console_error!("account object answered {}", resp.status_code());
        return Err(unavailable("failed"));
    }
    resp.json::<Reply>().await.map_err(|_| internal("decode"))
}
