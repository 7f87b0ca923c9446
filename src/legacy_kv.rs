//! The previous layout's key-value storage (schema 1: one JSON string under
//! `account`, `job:*` keys, `queue-cursor`), read and cleared once, at
//! migration, through the runtime's own `state.storage` API. The `worker`
//! crate's wrapper decodes every value with serde (and its code is most of
//! the migration's size): these values are plain strings.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `state.storage`, as JavaScript sees it.
pub struct LegacyKv(JsValue);

fn js_error(what: &str) -> worker::Error {
    worker::Error::RustError(format!("legacy storage: {what}"))
}

impl LegacyKv {
    /// From the object's `state` (a `DurableObjectState`).
    pub fn of(state: &JsValue) -> Self {
        LegacyKv(Reflect::get(state, &JsValue::from_str("storage")).unwrap_or(JsValue::UNDEFINED))
    }

    /// `state.storage` itself (for `transactionSync`).
    pub fn storage(&self) -> JsValue {
        self.0.clone()
    }

    async fn call(&self, method: &str, arg: &JsValue) -> worker::Result<JsValue> {
        let f: Function = Reflect::get(&self.0, &JsValue::from_str(method))
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| js_error(method))?;
        let p: Promise = f.call1(&self.0, arg).ok().and_then(|p| p.dyn_into().ok()).ok_or_else(|| js_error(method))?;
        JsFuture::from(p).await.map_err(|_| js_error(method))
    }

    /// A string value, if the key holds one.
    pub async fn get(&self, key: &str) -> worker::Result<Option<String>> {
        Ok(self.call("get", &JsValue::from_str(key)).await?.as_string())
    }

    /// Every `(key, string value)` under `prefix`.
    pub async fn list(&self, prefix: &str) -> worker::Result<Vec<(String, Option<String>)>> {
        let options = Object::new();
        Reflect::set(&options, &JsValue::from_str("prefix"), &JsValue::from_str(prefix))
            .map_err(|_| js_error("list options"))?;
        let map = self.call("list", &options).await?;
        let entries = Reflect::get(&map, &JsValue::from_str("entries"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .and_then(|f| f.call0(&map).ok())
            .ok_or_else(|| js_error("list entries"))?;
        Ok(Array::from(&entries)
            .iter()
            .filter_map(|pair| {
                let pair: Array = pair.dyn_into().ok()?;
                Some((pair.get(0).as_string()?, pair.get(1).as_string()))
            })
            .collect())
    }

    /// Delete these keys (at most 128 per call, as the API allows).
    pub async fn delete(&self, keys: &[String]) -> worker::Result<()> {
        for chunk in keys.chunks(128) {
            let array: Array = chunk.iter().map(|k| JsValue::from_str(k)).collect();
            self.call("delete", &array).await?;
        }
        Ok(())
    }
}

/// The previous layout's keys (schema 1).
const LEGACY_STATE_KEY: &str = "account";
const LEGACY_JOB_PREFIX: &str = "job:";
const LEGACY_CURSOR_KEY: &str = "queue-cursor";

impl LegacyKv {
    /// An account written by the previous release (one JSON value plus
    /// `job:*` keys) becomes rows of `store`; the old keys go in the same breath.
    pub async fn migrate_into(&self, sql: worker::SqlStorage) -> worker::Result<()> {
        let store = crate::sql::SqlStore::open(sql)?;
        let stored = self.get(LEGACY_STATE_KEY).await.unwrap_or(None);
        let cursor = self.get(LEGACY_CURSOR_KEY).await.unwrap_or(None);
        let listed = self.list(LEGACY_JOB_PREFIX).await?;
        let jobs: Vec<String> = listed.iter().filter_map(|(_, v)| v.clone()).collect();
        let mut keys: Vec<String> = listed.into_iter().map(|(k, _)| k).collect();
        let migrated = governor_core::storage::migrate::from_legacy(stored.as_deref(), &jobs, cursor);
        if migrated.skipped > 0 {
            worker::console_warn!("legacy account state: {} unreadable parts skipped", migrated.skipped);
        }
        store.write(&migrated.writes)?;
        if stored.is_some() || !keys.is_empty() {
            keys.push(LEGACY_STATE_KEY.to_owned());
            keys.push(LEGACY_CURSOR_KEY.to_owned());
            self.delete(&keys).await?;
        }
        Ok(())
    }
}
