//! The floor of a Rust Worker: what workers-rs costs before any of the
//! governor's own work. Bench fixture only (section 2 of BENCHMARKS.md).
//!
//! | path | what |
//! |---|---|
//! | `/floor/direct` | the Worker answers itself (`web_sys` types in and out, nothing converted) |
//! | `/floor/rpc` | one RPC call to a Rust Durable Object method that returns a string |
//! | `/floor/fetch` | one `fetch` to the same object, answered at once |
//! | `/floor/converted` | answers itself through the `worker` crate's types: the request converted eagerly (method, URL, headers, `cf`), the answer built as a `worker::Response` and converted back |

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{durable_object, event, Context, DurableObject, Env, Request, Response, Result, State};

#[wasm_bindgen]
extern "C" {
    /// The object's stub as JavaScript sees it.
    type FloorStub;
    #[wasm_bindgen(method, catch)]
    fn call(this: &FloorStub, body: &str) -> std::result::Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch_url(this: &FloorStub, url: &str) -> std::result::Result<js_sys::Promise, JsValue>;
}

fn text(s: &str) -> Result<web_sys::Response> {
    web_sys::Response::new_with_opt_str(Some(s)).map_err(Into::into)
}

fn stub(env: &Env) -> Result<FloorStub> {
    Ok(env.durable_object("FLOOR")?.get_by_name("floor")?.into_rpc())
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let url = req.url();
    let path = url.split("://").nth(1).and_then(|r| r.find('/').map(|i| &r[i..])).unwrap_or("/");
    match path.split('?').next().unwrap_or("/") {
        "/floor/direct" => text("ok"),
        "/floor/converted" => {
            let req = Request::from(req);
            let _ = (req.path(), req.method());
            Ok(Response::ok("ok")?.into())
        }
        "/floor/rpc" => {
            let reply = JsFuture::from(stub(&env)?.call("ping")?).await?;
            text(&reply.as_string().unwrap_or_default())
        }
        "/floor/fetch" => {
            let resp: web_sys::Response =
                JsFuture::from(stub(&env)?.fetch_url("https://floor.internal/")?).await?.into();
            let body = JsFuture::from(resp.text()?).await?;
            text(&body.as_string().unwrap_or_default())
        }
        _ => web_sys::Response::new_with_opt_str_and_init(Some("not found"), &{
            let init = web_sys::ResponseInit::new();
            init.set_status(404);
            init
        })
        .map_err(Into::into),
    }
}

/// A Durable Object that does nothing.
#[durable_object(fetch)]
pub struct Floor {
    _state: State,
}

impl DurableObject for Floor {
    fn new(state: State, _env: Env) -> Self {
        Self { _state: state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        Response::ok("ok")
    }
}

#[wasm_bindgen]
impl Floor {
    /// The RPC method: a string in, a string out (scripts/rpc-classes.mjs
    /// makes the class derive from `DurableObject`, which RPC requires).
    pub fn call(&self, body: String) -> String {
        if body == "ping" {
            "ok".into()
        } else {
            body
        }
    }
}
