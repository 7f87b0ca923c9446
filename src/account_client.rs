//! The Worker side of the account object's typed contract: one
//! [`Command`] in, one [`Reply`] out, JSON over one RPC call,
//! `stub.call(account, key, body)` (the object's side: `src/object_rpc.rs`).
//! No Request, Headers or Response is built on either side, and nothing is
//! read through a stream (measured in BENCHMARKS.md section 2b; the class
//! derives from `DurableObject` through `scripts/rpc-classes.mjs`, which RPC
//! requires).
//!
//! The singletons of the same class have RPC methods and contracts of their
//! own: `stub.deploymentKey()` ([`crate::deployment`]) and
//! `stub.directory(body)` ([`crate::directory::contract`]). The class's
//! `fetch` serves nothing.
//!
//! In pass-through mode the caller's Sync key rides along (an argument of the
//! call) so the object can reconcile and relay on the account's behalf; the object keeps
//! it in memory only and never persists it.
//!
//! `ACCOUNT_LOCATION_HINT` (optional: one of Cloudflare's Durable Object
//! location hints, e.g. `enam`) asks Cloudflare to create an account's object
//! in that region rather than near the first request that names it; see
//! docs/deploy.md. It only matters when an object is first created: an
//! existing object stays where it is. Read once per isolate; an invalid value
//! is ignored with one warning.

use governor_core::auth::secret::Secret;
use governor_core::wire::calls::Call;
use governor_core::wire::contract::Command;
use governor_core::wire::error::GovernorError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

pub const BINDING: &str = "ACCOUNTS";
/// The var naming the region where new account objects are created.
pub const LOCATION_HINT_VAR: &str = "ACCOUNT_LOCATION_HINT";
/// Cloudflare's Durable Object location hints.
pub const LOCATION_HINTS: [&str; 9] = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];

thread_local! {
    /// The parsed `ACCOUNT_LOCATION_HINT`, once per isolate (its environment never changes).
    static LOCATION_HINT: std::cell::Cell<Option<Option<&'static str>>> = const { std::cell::Cell::new(None) };
}

/// A location hint as Cloudflare knows it (any case, surrounding spaces ignored);
/// `Err` for anything else. Empty is no hint.
fn parse_location_hint(value: &str) -> Result<Option<&'static str>, ()> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    LOCATION_HINTS.iter().find(|h| h.eq_ignore_ascii_case(v)).map(|h| Some(*h)).ok_or(())
}

/// `ACCOUNT_LOCATION_HINT`, validated once per isolate.
fn location_hint(env: &Env) -> Option<&'static str> {
    LOCATION_HINT.with(|cell| {
        if let Some(hint) = cell.get() {
            return hint;
        }
        let hint = match env.var(LOCATION_HINT_VAR).ok().map(|v| v.to_string()) {
            None => None,
            Some(v) => parse_location_hint(&v).unwrap_or_else(|()| {
                // The value may be anything; never echo more than its length.
                worker::console_warn!(
                    "{LOCATION_HINT_VAR} is not one of {} ({} characters given): ignored, account objects get no location hint",
                    LOCATION_HINTS.join(", "),
                    v.len()
                );
                None
            }),
        };
        cell.set(Some(hint));
        hint
    })
}

#[wasm_bindgen]
extern "C" {
    /// The objects' namespace binding as JavaScript sees it.
    type RawNamespace;
    #[wasm_bindgen(method, catch, js_name = getByName)]
    fn get_by_name(this: &RawNamespace, name: &str) -> Result<RawStub, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getByName)]
    fn get_by_name_with(this: &RawNamespace, name: &str, options: &js_sys::Object) -> Result<RawStub, JsValue>;
    /// A Durable Object stub as JavaScript sees it.
    type RawStub;
    /// The account object's RPC method (`src/object_rpc.rs`).
    #[wasm_bindgen(method, catch, js_name = call)]
    fn rpc_call(this: &RawStub, account: &str, key: &JsValue, body: &str) -> Result<js_sys::Promise, JsValue>;
    /// The deployment key singleton's RPC method.
    #[wasm_bindgen(method, catch, js_name = deploymentKey)]
    fn rpc_deployment_key(this: &RawStub) -> Result<js_sys::Promise, JsValue>;
    /// The directory singleton's RPC method.
    #[wasm_bindgen(method, catch, js_name = directory)]
    fn rpc_directory(this: &RawStub, body: &str) -> Result<js_sys::Promise, JsValue>;
}

/// How the account object's own failures begin (an `Error` thrown by its
/// RPC method, see `src/object_rpc.rs`): the object was reached and failed
/// on this request. Any other rejection is the runtime's (unreachable,
/// reset, overloaded, or another class answering).
pub const OBJECT_FAILED: &str = "account object failed: ";

/// Make one call into the account's Durable Object; its typed reply.
pub async fn call<C: Call>(
    env: &Env,
    account: &str,
    key: Option<&Secret>,
    call: &C,
) -> Result<C::Reply, GovernorError> {
    let body = encode(&call.command())?;
    let text = rpc(env, account, &body, key).await?;
    decode(&text)
}

/// One copy of the contract's encoder and decoder, outside every future.
#[inline(never)]
fn encode(command: &Command) -> Result<String, GovernorError> {
    serde_json::to_string(command).map_err(|_| internal("encode"))
}

fn decode<R: serde::de::DeserializeOwned>(text: &str) -> Result<R, GovernorError> {
    governor_core::wire::json::from_str(text).map_err(|_| internal("decode"))
}

fn internal(what: &str) -> GovernorError {
    GovernorError::Internal(format!("account object: {what}"))
}

fn unavailable(what: &str) -> GovernorError {
    GovernorError::Unavailable(format!("account object: {what}"))
}

/// The stub of the object named `name` (an account, or a singleton of the
/// same class), created where `ACCOUNT_LOCATION_HINT` says. The binding is
/// read as it is (no type check crossing into JavaScript per request): a
/// binding that is not a namespace fails its `getByName`.
fn stub(env: &Env, name: &str) -> Result<RawStub, GovernorError> {
    let binding = js_sys::Reflect::get(env, &JsValue::from_str(BINDING)).map_err(|_| internal("binding"))?;
    if binding.is_undefined() {
        return Err(internal("binding"));
    }
    let ns: RawNamespace = binding.unchecked_into();
    let stub = match location_hint(env) {
        Some(hint) => {
            let options = js_sys::Object::new();
            js_sys::Reflect::set(&options, &JsValue::from_str("locationHint"), &JsValue::from_str(hint))
                .map_err(|_| internal("binding"))?;
            ns.get_by_name_with(name, &options)
        }
        None => ns.get_by_name(name),
    };
    stub.map_err(|_| internal("binding"))
}

/// One command's JSON to the account's object over RPC; the reply's JSON.
/// The object could not run the command (malformed, its configuration or
/// storage failed: [`GovernorError::Failed`]), or could not be reached,
/// was reset or overloaded ([`GovernorError::Unavailable`], the only one
/// `FAIL_MODE=open` forwards undecided): nothing was decided, so the
/// caller may retry (503 with Retry-After), never a 500.
async fn rpc(env: &Env, account: &str, body: &str, key: Option<&Secret>) -> Result<String, GovernorError> {
    let key = key.map_or(JsValue::UNDEFINED, |k| JsValue::from_str(k.expose()));
    settle(stub(env, account)?.rpc_call(account, &key, body)).await
}

/// The deployment key singleton (named `name`): the key's hex.
pub async fn deployment_key(env: &Env, name: &str) -> Result<String, GovernorError> {
    settle(stub(env, name)?.rpc_deployment_key()).await
}

/// One directory call's JSON to the directory singleton (named `name`); the reply's JSON.
pub async fn directory(env: &Env, name: &str, body: &str) -> Result<String, GovernorError> {
    settle(stub(env, name)?.rpc_directory(body)).await
}

/// An RPC call's answer: its text, or why not (see [`rpc`]).
async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<String, GovernorError> {
    let promise = promise.map_err(|_| unavailable("unreachable"))?;
    match JsFuture::from(promise).await {
        Ok(text) => Ok(text.as_string().unwrap_or_default()),
        Err(e) => {
            // The object's own message (a status and a fixed text, never a
            // key) or the runtime's (reset, overloaded, unreachable).
            let message = js_sys::Reflect::get(&e, &JsValue::from_str("message")).ok().and_then(|m| m.as_string());
            let message = message.unwrap_or_default();
            worker::console_error!("account object call failed: {}", message);
            // Reached, and it failed on this request: never a reason to fail open.
            if message.contains(OBJECT_FAILED) {
                return Err(GovernorError::Failed("account object: failed".into()));
            }
            Err(unavailable("failed"))
        }
    }
}
