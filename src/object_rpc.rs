//! The object's RPC methods, one per contract, each a string in and a string
//! out (no Request, Headers or Response on either side; the Worker's side:
//! [`crate::account_client`]). workerd serves RPC only on classes deriving
//! from `DurableObject`: `scripts/rpc-classes.mjs` (run by scripts/build.sh)
//! makes the exported class do so.
//!
//! - `call(account, key, body)`: an account's [`Command`] JSON in, its reply
//!   JSON out (at once when nothing in it waits, else a promise of it). `account`: the account's name (the object keeps it for its
//!   alarm); `key`: the caller's Sync key in pass-through mode (kept in
//!   memory only).
//! - `deploymentKey()`: the deployment key singleton's key ([`crate::deployment`]).
//! - `directory(body)`: a directory call ([`crate::directory::contract`]).
//!
//! A call the object cannot run throws an `Error` whose message is its
//! status and a fixed text (never a key), after [`OBJECT_FAILED`]: the
//! Worker answers 503 and never forwards such a request undecided (the
//! object was reached and failed on it).

use std::future::Future;
use std::task::{Context, Poll, Waker};

use governor_core::{auth::secret::Secret, wire::contract::Command};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::account_client::OBJECT_FAILED;
use crate::account_object::AccountObject;

fn failed(status: u16, message: &str) -> js_sys::Error {
    js_sys::Error::new(&format!("{OBJECT_FAILED}{status} {message}"))
}

#[wasm_bindgen]
impl AccountObject {
    /// Answers with the reply's text at once when the driver needs no I/O
    /// that waits (the common admission: SQL is synchronous), else with a
    /// promise of it: no promise, microtask or executor round for a call
    /// that never waits.
    pub fn call(&self, account: Option<String>, key: Option<String>, body: String) -> Result<JsValue, js_sys::Error> {
        let driver = self.driver().map_err(|e| failed(500, e))?.clone();
        let command: Command =
            governor_core::wire::json::from_str(&body).map_err(|_| failed(400, "malformed command"))?;
        let mut answer = Box::pin(async move {
            let reply = driver.call(command, account.as_deref(), key.map(Secret::new)).await;
            let reply = reply.map_err(|e| failed(500, &e.0))?;
            serde_json::to_string(&reply).map_err(|_| failed(500, "encoding the reply failed"))
        });
        // Polling once with a waker that does nothing is sound: a future
        // left pending is polled again by the executor below, and every
        // future it waits on keeps the waker of its latest poll.
        match answer.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(text) => text.map(JsValue::from),
            Poll::Pending => Ok(wasm_bindgen_futures::future_to_promise(async move {
                answer.await.map(JsValue::from).map_err(JsValue::from)
            })
            .into()),
        }
    }

    #[wasm_bindgen(js_name = deploymentKey)]
    pub fn deployment_key(&self) -> Result<String, js_sys::Error> {
        crate::deployment::draw(&self.sql()).map_err(|_| failed(500, "deployment key storage failed"))
    }

    pub fn directory(&self, body: String) -> Result<String, js_sys::Error> {
        crate::directory::table::serve(&self.sql(), &body).map_err(|r| {
            let (status, text) = r.status_and_text();
            failed(status, text)
        })
    }
}
