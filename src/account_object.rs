//! The account's Durable Object, a shell: it builds the core's [`Driver`]
//! over [`ObjectIo`] and hands it every call (over RPC, `src/object_rpc.rs`)
//! and every alarm. It holds no rule, constant or state of its own; the
//! same class also hosts the deployment key and the directory singletons,
//! each with RPC methods and a contract of its own. Rows are written with
//! synchronous SQL before the reply leaves (the output gate).

use std::rc::Rc;

use governor_core::driver::Driver;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use crate::legacy_kv::LegacyKv;
use crate::object_io::ObjectIo;
use crate::settings;

#[durable_object]
pub struct AccountObject {
    state: Rc<State>,
    driver: std::result::Result<Rc<Driver<ObjectIo>>, String>,
}

impl AccountObject {
    /// The driver, or why the object's configuration did not load.
    pub(crate) fn driver(&self) -> std::result::Result<&Rc<Driver<ObjectIo>>, &str> {
        self.driver.as_ref().map_err(String::as_str)
    }

    /// The object's SQLite storage (the singletons' tables).
    pub(crate) fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let (legacy, state) = (LegacyKv::of(&raw), Rc::new(State::from(raw)));
        let driver = settings::load(&env)
            .map_err(|e| e.to_string())
            .map(|config| Rc::new(Driver::new(ObjectIo::new(state.clone(), env, config.clone(), legacy), config)));
        Self { state, driver }
    }

    /// Nothing is served over `fetch`: every contract is an RPC method.
    async fn fetch(&self, _req: Request) -> Result<Response> {
        Response::error("the account object is called over RPC only", 404)
    }

    async fn alarm(&self) -> Result<Response> {
        if let Ok(driver) = self.driver() {
            driver.alarm().await.map_err(|e| worker::Error::RustError(e.0))?;
        }
        Response::ok("")
    }
}
