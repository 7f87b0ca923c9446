//! The account object's I/O: the core's [`Io`] over the object's SQLite
//! storage, `fetch` to Sync and to relay targets, `setAlarm`, `Date.now`
//! and a jitter generator seeded from `getrandom`. It executes and decides nothing: every rule is the
//! driver's ([`governor_core::driver`]).

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use governor_core::batch::{CreateAnswer, SeenBatch};
use governor_core::driver::{Io, IoError, IoResult};
use governor_core::ids::GenerationId;
use governor_core::lifecycle::{pages::ListedPage, status::Observed};
use governor_core::queue::job::{DispatchJob, DispatchOutcome};
use governor_core::relay::delivery::{Attempt, Delivery};
use governor_core::storage::store::{Store, Write};
use governor_core::{auth::secret::Secret, config::Config, Ms};
use worker::{Date, Env, State};

use crate::legacy_kv::LegacyKv;
use crate::sql::SqlStore;
use crate::{lane_upstream, upstream};

/// The object's I/O, as the driver sees it.
pub struct ObjectIo {
    state: Rc<State>,
    env: Env,
    config: Config,
    store: RefCell<Option<SqlStore>>,
    legacy: LegacyKv,
    /// Retry jitter (seeded once from the runtime's randomness).
    jitter: RefCell<fastrand::Rng>,
}

impl ObjectIo {
    pub fn new(state: Rc<State>, env: Env, config: Config, legacy: LegacyKv) -> Self {
        let jitter = RefCell::new(fastrand::Rng::with_seed(crate::deployment::random_seed()));
        ObjectIo { state, env, config, store: RefCell::new(None), legacy, jitter }
    }
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
        self.jitter.borrow_mut().f64()
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

    async fn lookup(&self, key: &Secret, ids: &[GenerationId], timeout_ms: Ms) -> Vec<Observed> {
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
