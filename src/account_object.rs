//! The account's Durable Object: the core's [`Io`] over SQL, `fetch`, `setAlarm`,
//! `Date.now` and `getrandom`, run by the core's [`Driver`] (which holds every rule).
//! Rows are written with synchronous SQL before the reply leaves (the output gate).

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use governor_core::batch::{CreateAnswer, SeenBatch};
use governor_core::driver::{Driver, Io, IoError, IoResult};
use governor_core::lifecycle::{pages::ListedPage, status::Observed};
use governor_core::queue::job::{DispatchJob, DispatchOutcome};
use governor_core::relay::delivery::{Attempt, Delivery};
use governor_core::storage::store::{Store, Write};
use governor_core::{auth::secret::Secret, config::Config, wire::contract::Command, Ms};
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::account_client::{body_text, CallResult, ACCOUNT_HEADER, KEY_HEADER};
use crate::legacy_kv::LegacyKv;
use crate::sql::SqlStore;
use crate::{lane_upstream, settings, upstream};

#[durable_object]
pub struct AccountObject {
    state: Rc<State>,
    driver: std::result::Result<Driver<ObjectIo>, String>,
}

/// The object's I/O, as the driver sees it.
pub struct ObjectIo {
    state: Rc<State>,
    env: Env,
    config: Config,
    store: RefCell<Option<SqlStore>>,
    legacy: LegacyKv,
}

impl ObjectIo {
    fn store(&self) -> IoResult<Ref<'_, SqlStore>> {
        Ref::filter_map(self.store.borrow(), Option::as_ref).map_err(|_| IoError("account storage not open".into()))
    }
}

impl Io for ObjectIo {
    async fn open(&self) -> IoResult<()> {
        if self.store.borrow().is_none() {
            // One command's writes in one transactionSync (see SqlStore::atomic).
            let store = SqlStore::open(self.state.storage().sql()).map_err(IoError::of)?.atomic(self.legacy.storage());
            *self.store.borrow_mut() = Some(store);
        }
        if self.store()?.schema_version()?.is_none() {
            self.legacy.migrate_into(self.state.storage().sql()).await.map_err(IoError::of)?;
        }
        Ok(())
    }

    fn with_store<T>(&self, f: impl FnOnce(&dyn Store) -> T) -> IoResult<T> {
        Ok(f(&*self.store()?))
    }

    fn write(&self, writes: &[Write]) -> IoResult<()> {
        self.store()?.write(writes).map_err(IoError::of)
    }

    fn stores_nothing(&self) -> IoResult<bool> {
        // A read only: an object that never writes is not kept.
        let sql = self.state.storage().sql();
        let n: Vec<serde_json::Value> = sql
            .exec("SELECT 1 AS t FROM sqlite_master LIMIT 1", None)
            .and_then(|c| c.to_array())
            .map_err(IoError::of)?;
        Ok(n.is_empty())
    }

    fn stored_account(&self) -> Option<String> {
        self.store.borrow().as_ref().and_then(SqlStore::account_name)
    }

    fn store_account(&self, name: &str) -> IoResult<()> {
        self.store()?.set_account_name(name).map_err(IoError::of)
    }

    async fn set_alarm(&self, in_ms: Ms) -> IoResult<()> {
        self.state.storage().set_alarm(in_ms as i64).await.map_err(IoError::of)
    }

    fn now(&self) -> Ms {
        Date::now().as_millis()
    }

    fn jitter(&self) -> f64 {
        crate::deployment::random_unit()
    }

    async fn master_key(&self) -> Option<Secret> {
        crate::deployment::master(&self.env, &self.config).await
    }

    async fn submit(&self, key: &Secret, job: &DispatchJob, timeout_ms: Ms) -> DispatchOutcome {
        upstream::submit(&self.config.api_base, key, job, timeout_ms).await
    }

    async fn list_page(&self, key: &Secret, limit: u32, cursor: Option<&str>, timeout_ms: Ms) -> ListedPage {
        upstream::list_active(&self.config.api_base, key, limit, cursor, timeout_ms).await
    }

    async fn list_batches(&self, key: &Secret, limit: u32, timeout_ms: Ms) -> ListedPage {
        upstream::list_batches(&self.config.api_base, key, limit, timeout_ms).await
    }

    async fn lookup(&self, key: &Secret, ids: &[String], timeout_ms: Ms) -> Vec<Observed> {
        upstream::statuses(&self.config.api_base, key, ids, timeout_ms).await
    }

    async fn deliver(&self, delivery: &Delivery, local_mode: bool, timeout_ms: Ms) -> Attempt {
        upstream::relay(delivery, local_mode, timeout_ms).await
    }

    async fn submit_batch(&self, key: &Secret, lines: &str, timeout_ms: Ms) -> CreateAnswer {
        lane_upstream::submit_batch(&self.config.api_base, key, lines, timeout_ms).await
    }

    async fn read_batch(&self, key: &Secret, id: &str, timeout_ms: Ms) -> Option<SeenBatch> {
        lane_upstream::read_batch(&self.config.api_base, key, id, timeout_ms).await
    }

    async fn batch_result(&self, key: &Secret, id: &str, timeout_ms: Ms) -> Option<String> {
        lane_upstream::batch_result(&self.config.api_base, key, id, timeout_ms).await
    }
}

impl AccountObject {
    /// The one call entry: a JSON command in, its JSON reply out (over `fetch`, or RPC).
    pub(crate) async fn serve_command(&self, account: Option<&str>, key: Option<&str>, body: &str) -> CallResult {
        let driver = self.driver.as_ref().map_err(|e| (500, e.clone()))?;
        let command: Command =
            governor_core::wire::json::from_str(body).map_err(|_| (400, "malformed command".into()))?;
        let reply = driver.call(command, account, key.map(|k| Secret::new(k.to_owned()))).await;
        serde_json::to_string(&reply.map_err(|e| (500, e.0))?).map_err(|e| (500, e.to_string()))
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let (legacy, state) = (LegacyKv::of(&raw), Rc::new(State::from(raw)));
        let driver = settings::load(&env).map_err(|e| e.to_string()).map(|config| {
            let (state, store) = (state.clone(), RefCell::new(None));
            Driver::new(ObjectIo { state, env, config: config.clone(), store, legacy }, config)
        });
        Self { state, driver }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if let Some(served) = crate::deployment::singleton(&self.state.storage().sql(), &req).await {
            return served;
        }
        let key = req.headers().get(KEY_HEADER).ok().flatten();
        let account = req.headers().get(ACCOUNT_HEADER).ok().flatten();
        match self.serve_command(account.as_deref(), key.as_deref(), &body_text(&req).await).await {
            Ok(reply) => Response::ok(reply),
            Err((status, message)) => Response::error(message, status),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Ok(driver) = &self.driver {
            driver.alarm().await.map_err(|e| worker::Error::RustError(e.0))?;
        }
        Response::ok("")
    }
}
