//! The account object's RPC method, `call(account, key, body)`: the same
//! JSON command in and JSON reply out that its `fetch` carries, without a
//! Request, Headers or Response on either side (the Worker's side:
//! [`crate::account_client`]). workerd serves RPC only on classes deriving
//! from `DurableObject`: `scripts/rpc-classes.mjs` (run by scripts/build.sh)
//! makes the exported class do so.
//!
//! `account`: the account's name (the object keeps it for its alarm);
//! `key`: the caller's Sync key in pass-through mode (kept in memory only).
//! A command the object cannot run throws an `Error` whose message is its
//! status and a fixed text (never a key), after [`OBJECT_FAILED`]: the
//! Worker answers 503 and never forwards such a request undecided (the
//! object was reached and failed on it).

use wasm_bindgen::prelude::wasm_bindgen;

use crate::account_client::OBJECT_FAILED;
use crate::account_object::AccountObject;

#[wasm_bindgen]
impl AccountObject {
    pub async fn call(
        &self,
        account: Option<String>,
        key: Option<String>,
        body: String,
    ) -> Result<String, js_sys::Error> {
        self.serve_command(account.as_deref(), key.as_deref(), &body)
            .await
            .map_err(|(status, message)| js_sys::Error::new(&format!("{OBJECT_FAILED}{status} {message}")))
    }
}
