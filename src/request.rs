//! Reading a request's parts: the request itself (read lazily, never its
//! `cf`), a header, a small body under a cap, the runtime's URL split in
//! two, a client's `webhookUrl` as `fetch` reads it.
//! A leaf: every handler reads through here.

use governor_core::relay::url::{check_webhook_url as check_url, ClientUrl};
use governor_core::wire::error::GovernorError;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// The request the runtime handed the Worker (`#[event(fetch)]` takes the
/// runtime's own `web_sys::Request`). The `worker` crate's `Request` reads
/// method, URL, headers and `request.cf` on every request; `cf` is the costly
/// part (the runtime builds its object on first read) and the governor never
/// needs it. This reads the URL and the headers once, the rest on demand.
pub struct Request {
    inner: web_sys::Request,
    headers: worker::Headers,
    /// Every header as `(lowercase name, value)`, read in one call into
    /// JavaScript: a header read is a lookup here, not a crossing.
    fields: Vec<(String, String)>,
    path: String,
}

#[wasm_bindgen(inline_js = "export function headerLines(h){let s='';for(const[n,v]of h)s+=n+'\\n'+v+'\\n';return s}")]
extern "C" {
    /// A `Headers` as `name\nvalue\n` lines (names lowercased and combined
    /// as the runtime iterates them; neither can hold a line break).
    #[wasm_bindgen(js_name = headerLines)]
    fn header_lines(headers: &web_sys::Headers) -> String;
}

/// `name\nvalue\n` lines as pairs.
fn fields_of(lines: &str) -> Vec<(String, String)> {
    let mut parts = lines.split('\n');
    let mut fields = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        fields.push((name.to_owned(), value.to_owned()));
    }
    fields
}

impl Request {
    pub fn new(inner: web_sys::Request) -> Self {
        let path = path_of(&inner.url());
        let js_headers = inner.headers();
        let fields = fields_of(&header_lines(&js_headers));
        Request { inner, headers: worker::Headers(js_headers), fields, path }
    }

    /// A header's value (`name` in lowercase), if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every header's lowercase name.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// The runtime's request (its body, signal, URL).
    pub fn inner(&self) -> &web_sys::Request {
        &self.inner
    }

    pub fn headers(&self) -> &worker::Headers {
        &self.headers
    }

    pub fn method(&self) -> worker::Method {
        worker::Method::from(self.inner.method())
    }

    /// The URL's path (no query), as the `worker` crate gives it.
    pub fn path(&self) -> String {
        self.path.clone()
    }

    pub fn url(&self) -> worker::Result<worker::Url> {
        worker::Url::parse(&self.inner.url()).map_err(|e| worker::Error::RustError(e.to_string()))
    }
}

/// The path of the runtime's absolute URL: up to the query, `/` when empty.
fn path_of(url: &str) -> String {
    let (_, rest) = split_url(url);
    match rest.split('?').next() {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => "/".to_owned(),
    }
}

/// A request header's value (`name` in lowercase), if present.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.field(name).map(str::to_owned)
}

/// Read a small body (a JSON generate body, a webhook), never holding more
/// than `limit` bytes: a declared `Content-Length` over the limit is refused
/// at once, and a body without one (chunked) is read chunk by chunk and cut
/// off with 413 as soon as it passes the limit.
pub async fn read_json_body(req: &mut Request, limit: u64) -> Result<Vec<u8>, GovernorError> {
    if header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > limit) {
        return Err(GovernorError::PayloadTooLarge { limit });
    }
    let Some(stream) = req.inner().body() else { return Ok(Vec::new()) };
    let unreadable = |_| GovernorError::BadRequest("unreadable body".into());
    let reader = stream.get_reader();
    let method = |name: &str| -> Result<Function, GovernorError> {
        Reflect::get(&reader, &JsValue::from_str(name)).and_then(JsCast::dyn_into::<Function>).map_err(unreadable)
    };
    let read = method("read")?;
    let mut bytes = Vec::new();
    loop {
        let next: Promise = read.call0(&reader).and_then(JsCast::dyn_into).map_err(unreadable)?;
        let chunk = JsFuture::from(next).await.map_err(unreadable)?;
        if Reflect::get(&chunk, &JsValue::from_str("done")).map_err(unreadable)?.as_bool().unwrap_or(true) {
            return Ok(bytes);
        }
        let value: Uint8Array =
            Reflect::get(&chunk, &JsValue::from_str("value")).and_then(JsCast::dyn_into).map_err(unreadable)?;
        let len = value.length() as usize;
        if (bytes.len() + len) as u64 > limit {
            // Stop the upload here; the rest is never read.
            if let Ok(cancel) = method("cancel") {
                let _ = cancel.call0(&reader);
            }
            return Err(GovernorError::PayloadTooLarge { limit });
        }
        let start = bytes.len();
        bytes.resize(start + len, 0);
        value.copy_to(&mut bytes[start..]);
    }
}

/// Check a client's `webhookUrl` as the runtime's URL parser (the one
/// `fetch` uses) reads it, and as it is spelled. The same check runs again
/// before every relay delivery.
pub fn check_webhook_url(raw: &str, local_mode: bool) -> Result<(), String> {
    let url = web_sys::Url::new(raw).map_err(|_| "webhookUrl is not a valid URL".to_owned())?;
    let (scheme, host) = (url.protocol(), url.hostname());
    let parts = ClientUrl {
        scheme: &scheme,
        host: &host,
        credentials: !url.username().is_empty() || !url.password().is_empty(),
    };
    check_url(raw, &parts, local_mode)
}

/// `(origin, path and query)` of the runtime's already-serialised absolute
/// request URL (so the `url` crate, and its Unicode tables, stay out of the
/// Worker).
pub fn split_url(url: &str) -> (&str, &str) {
    let url = url.split('#').next().unwrap_or(url);
    let after = url.find("://").map_or(0, |i| i + 3);
    let at = url[after..].find(['/', '?']).map_or(url.len(), |i| after + i);
    (&url[..at], &url[at..])
}
