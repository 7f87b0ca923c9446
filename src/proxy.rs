//! Streaming forward to Sync. Method, path, query, headers (minus
//! hop-by-hop, the governor's own and the client's credentials) and body go
//! through unchanged; bodies are streamed both ways unless the caller
//! already holds them as bytes.

use governor_core::auth::secret::Secret;
use governor_core::rates::backoff::upstream_retry_ms;
use governor_core::wire::error::GovernorError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Fetch, Headers, Response, ResponseBody};

use crate::request::Request;

use crate::timeout::Boxed;

/// How long Sync may take to answer a forwarded request.
#[derive(Clone, Copy)]
pub struct Deadline {
    pub ms: u64,
    /// Read the whole answer inside the box (a create's small JSON, which the
    /// governor reads anyway); otherwise the box ends at the response head
    /// and the body streams to the client untimed.
    pub whole: bool,
}

/// Request headers never forwarded (RFC 9110 §7.6.1 hop-by-hop, the host,
/// Cloudflare's own, and the governor's control headers).
fn is_dropped_request_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "prefer"
    ) || name.starts_with("cf-")
        || name.starts_with("x-governor-")
}

/// The response headers never passed back (hop-by-hop).
const DROPPED_RESPONSE_HEADERS: [&str; 6] =
    ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"];

fn is_dropped_response_header(name: &str) -> bool {
    DROPPED_RESPONSE_HEADERS.contains(&name)
}

/// The body to send upstream.
pub enum Body {
    /// The caller's body stream, untouched (None for GET/HEAD).
    Stream(Option<web_sys::ReadableStream>),
    /// A body the governor had to read (small JSON).
    Bytes(Vec<u8>),
}

/// Headers that carry the client's credentials. Never forwarded: the key
/// Sync sees is always the one [`UpstreamAuth`] sets, and cookies are for the
/// governor's origin, not Sync's.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "cookie"];

/// How the upstream key is set. Whatever the variant, the client's own
/// credential headers are dropped first.
pub enum UpstreamAuth<'a> {
    /// Pass-through: send the caller's own Sync key as `x-api-key` (also
    /// when the caller presented it as a bearer token).
    Key(&'a Secret),
    /// Managed keys: send the account's Sync key, or nothing on a public
    /// endpoint called without a key. No client credential ever travels.
    Managed(Option<&'a Secret>),
    /// Pass-through, public endpoint called without a key.
    None,
}

pub async fn forward(
    req: &Request,
    url: &str,
    body: Body,
    auth: UpstreamAuth<'_>,
    deadline: Deadline,
) -> Result<Response, GovernorError> {
    // Which of the client's headers stay is decided here, from the names
    // read with the request; the copy, the removals and the key are one call.
    let drop = dropped_request_headers(req);
    let key = match auth {
        UpstreamAuth::Key(key) | UpstreamAuth::Managed(Some(key)) => JsValue::from_str(key.expose()),
        UpstreamAuth::Managed(None) | UpstreamAuth::None => JsValue::UNDEFINED,
    };
    let headers = forward_headers(req.inner().headers().as_ref(), &drop, &key)
        .map_err(|_| GovernorError::BadRequest("request cannot be forwarded".into()))?;
    let body: Option<JsValue> = match body {
        Body::Stream(stream) => stream.map(JsValue::from),
        Body::Bytes(bytes) => Some(js_sys::Uint8Array::from(bytes.as_slice()).into()),
    };
    // Built on web_sys directly: the `worker` crate's `RequestInit`
    // conversion (cf properties, redirects, ...) is the larger part of the
    // bundle for nothing the governor sets.
    let init = web_sys::RequestInit::new();
    init.set_method(req.method().as_ref());
    init.set_headers(&headers);
    if let Some(body) = &body {
        init.set_body(body);
    }
    // A redirect (a batch result's signed URL) goes back to the client: the
    // Sync key the governor set must never travel to another host.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if !deadline.whole {
        return boxed_head(url, &init, deadline.ms).await;
    }
    let upstream: worker::Request = web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|_| GovernorError::BadRequest("request cannot be forwarded".into()))?
        .into();
    let boxed = Boxed::new();
    let signal = boxed.signal.clone();
    let call = async {
        let resp = Fetch::Request(upstream)
            .send_with_signal(&signal)
            .await
            .map_err(|_| GovernorError::Upstream("the request to Sync failed".into()))?;
        let (resp, _) = read(rebuild(resp)).await;
        Ok(resp)
    };
    boxed.run(deadline.ms, call).await.unwrap_or(Err(GovernorError::UpstreamTimeout { ms: deadline.ms }))
}

/// The names of the client's headers that are not forwarded: credentials,
/// hop-by-hop (also those its `Connection` names), the host, Cloudflare's
/// and the governor's own; `\n`-separated.
fn dropped_request_headers(req: &Request) -> String {
    let named: Vec<String> = req
        .field("connection")
        .map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut drop = String::new();
    for name in req.field_names() {
        let credential = CREDENTIAL_HEADERS.contains(&name);
        if credential || is_dropped_request_header(name) || named.iter().any(|n| n == name) {
            drop.push_str(name);
            drop.push('\n');
        }
    }
    drop
}

#[wasm_bindgen(
    inline_js = "export function forwardHeaders(s,drop,key){const h=new Headers(s);for(const n of drop.split('\\n'))if(n)h.delete(n);\
if(key!==undefined)h.set('x-api-key',key);return h}"
)]
extern "C" {
    /// A copy of the client's headers without the `\n`-separated `drop`,
    /// with `x-api-key: key` unless `key` is undefined.
    #[wasm_bindgen(js_name = forwardHeaders, catch)]
    fn forward_headers(src: &JsValue, dropped: &str, key: &JsValue) -> Result<web_sys::Headers, JsValue>;
}

#[wasm_bindgen(
    inline_js = "export function boxedFetch(u,i,ms,drop){let q;const c=new AbortController();i.signal=c.signal;\
try{q=new Request(u,i)}catch{return Promise.reject('invalid')}const t=setTimeout(()=>c.abort(),ms);\
return fetch(q).then(r=>{clearTimeout(t);const h=new Headers(r.headers);for(const n of drop)h.delete(n);return[r,h]},\
e=>{clearTimeout(t);throw c.signal.aborted?'timeout':e})}"
)]
extern "C" {
    /// `fetch` boxed until the response head (`ms`), in one call: the timer
    /// is cleared once the head is in, so the body streams untimed. Resolves
    /// to `[response, its headers copied without `drop`]`; rejects with
    /// `'invalid'` (no request can be built), `'timeout'`, or the fetch's error.
    #[wasm_bindgen(js_name = boxedFetch)]
    fn boxed_fetch(url: &str, init: &web_sys::RequestInit, ms: f64, dropped: &js_sys::Array) -> js_sys::Promise;
}

/// A forward whose time box ends at Sync's response head (anything but a
/// create): the same as the boxed `Fetch` + [`rebuild`] path, with the
/// timer, the request and the header copy on the JavaScript side.
async fn boxed_head(url: &str, init: &web_sys::RequestInit, ms: u64) -> Result<Response, GovernorError> {
    thread_local! {
        static DROP: js_sys::Array = DROPPED_RESPONSE_HEADERS.iter().map(|n| JsValue::from_str(n)).collect();
    }
    let promise = DROP.with(|drop| boxed_fetch(url, init, ms as f64, drop));
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(pair) => {
            let pair: js_sys::Array = pair.unchecked_into();
            let raw: web_sys::Response = pair.get(0).unchecked_into();
            let headers = Headers(pair.get(1).unchecked_into());
            let builder = Response::builder().with_status(raw.status()).with_headers(headers);
            Ok(match raw.body() {
                Some(stream) => builder.stream(stream),
                None => builder.empty(),
            })
        }
        Err(e) if e.as_string().as_deref() == Some("invalid") => {
            Err(GovernorError::BadRequest("request cannot be forwarded".into()))
        }
        Err(e) if e.as_string().as_deref() == Some("timeout") => Err(GovernorError::UpstreamTimeout { ms }),
        Err(_) => Err(GovernorError::Upstream("the request to Sync failed".into())),
    }
}

/// A copy of an upstream response with mutable headers, hop-by-hop removed.
fn rebuild(resp: Response) -> Response {
    let status = resp.status_code();
    let headers = resp.headers().clone();
    let names: Vec<String> = headers.keys().filter(|n| is_dropped_response_header(n)).collect();
    for n in names {
        let _ = headers.delete(&n);
    }
    let (_, body) = resp.into_parts();
    Response::builder().with_status(status).with_headers(headers).body(body)
}

/// Read a whole upstream response body (only for small JSON answers) and
/// hand back an equivalent response to return.
pub async fn read(resp: Response) -> (Response, Vec<u8>) {
    let status = resp.status_code();
    let headers = resp.headers().clone();
    let bytes = body_bytes(resp).await;
    let copy = Response::builder().with_status(status).with_headers(headers).body(ResponseBody::Body(bytes.clone()));
    (copy, bytes)
}

/// A response's whole body: one `arrayBuffer()` rather than the `worker`
/// crate's chunked stream reader (much slower per call). Empty on failure.
pub async fn body_bytes(resp: Response) -> Vec<u8> {
    let raw: web_sys::Response = resp.into();
    match raw.array_buffer() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
            .await
            .map(|b| js_sys::Uint8Array::new(&b).to_vec())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Sync's `Retry-After` (seconds) or `retry-after-ms`, if it ever sends one,
/// capped at `cap_ms` (`UPSTREAM_BACKOFF_CAP_MS`).
pub fn upstream_retry_after_ms(resp: &Response, cap_ms: u64) -> Option<u64> {
    let h = resp.headers();
    let get = |name: &str| h.get(name).ok().flatten();
    upstream_retry_ms(get("retry-after-ms").as_deref(), get("retry-after").as_deref(), cap_ms)
}
