//! The batch lane's calls to Sync, as the core asks for them: a lane
//! batch's `POST /v2/batch` (multipart, built here from the JSONL bytes
//! the core gives), a read of the batch, and its result (the 302 of
//! `/v2/batches/{id}/result` followed by hand, without the account's key).
//! What an answer means is the core's ([`governor_core::batch::answer`]).

use governor_core::auth::secret::Secret;
use governor_core::batch::answer::{after_create, seen, MAX_BODY};
use governor_core::batch::lane_lines::MAX_RESULT_BYTES;
use governor_core::batch::{CreateAnswer, SeenBatch};
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Request};

use crate::timeout::Boxed;

fn path_segment(s: &str) -> Option<&str> {
    ((1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))).then_some(s)
}

/// A request with `headers`, `body`, and redirects left to the caller.
fn request(method: &str, url: &str, headers: &Headers, body: Option<&str>) -> Option<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers.0);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
    }
    init.set_redirect(web_sys::RequestRedirect::Manual);
    web_sys::Request::new_with_str_and_init(url, &init).ok().map(Request::from)
}

/// (status, `Location`, body) within `timeout_ms`.
async fn send(req: Request, timeout_ms: u64) -> Option<(u16, Option<String>, Vec<u8>)> {
    let boxed = Boxed::new();
    let signal = boxed.signal.clone();
    let call = async {
        let resp = Fetch::Request(req).send_with_signal(&signal).await.ok()?;
        let location = resp.headers().get("location").ok().flatten();
        Some((resp.status_code(), location, crate::proxy::body_bytes(resp).await))
    };
    boxed.run(timeout_ms, call).await.flatten()
}

fn keyed(key: &Secret) -> Headers {
    let headers = Headers::new();
    let _ = headers.set("x-api-key", key.expose());
    headers
}

/// A multipart boundary no JSONL line contains.
fn boundary(lines: &str) -> String {
    let mut n = 0u32;
    loop {
        let b = format!("sync-governor-lane-{n:08x}");
        if !lines.contains(&b) {
            return b;
        }
        n += 1;
    }
}

/// `POST /v2/batch` with `lines` as the `input` file.
pub async fn submit_batch(base: &str, key: &Secret, lines: &str, timeout_ms: u64) -> CreateAnswer {
    let b = boundary(lines);
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"input\"; filename=\"lane.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{lines}\r\n--{b}--\r\n"
    );
    let headers = keyed(key);
    let _ = headers.set("content-type", &format!("multipart/form-data; boundary={b}"));
    let Some(req) = request("POST", &format!("{base}/v2/batch"), &headers, Some(&body)) else {
        return CreateAnswer::Unknown;
    };
    match send(req, timeout_ms).await {
        Some((status, _, bytes)) => after_create(status, &bytes),
        None => CreateAnswer::Unknown,
    }
}

/// `GET /v2/batch/{id}`: the batch, if the answer is one.
pub async fn read_batch(base: &str, key: &Secret, id: &str, timeout_ms: u64) -> Option<SeenBatch> {
    let id = path_segment(id)?;
    let req = request("GET", &format!("{base}/v2/batch/{id}"), &keyed(key), None)?;
    match send(req, timeout_ms).await? {
        (200..=299, _, bytes) if bytes.len() <= MAX_BODY => seen(&bytes).into_iter().find(|b| b.id == id),
        _ => None,
    }
}

/// The result JSONL of batch `id`: Sync's 302 is followed once, to an
/// http(s) URL, without the account's key.
pub async fn batch_result(base: &str, key: &Secret, id: &str, timeout_ms: u64) -> Option<String> {
    let id = path_segment(id)?;
    let req = request("GET", &format!("{base}/v2/batches/{id}/result"), &keyed(key), None)?;
    let bytes = match send(req, timeout_ms).await? {
        (301 | 302 | 303 | 307 | 308, Some(location), _) => {
            let url = worker::Url::parse(&format!("{base}/")).ok()?.join(&location).ok()?;
            if !matches!(url.scheme(), "http" | "https") {
                return None;
            }
            match send(request("GET", url.as_str(), &Headers::new(), None)?, timeout_ms).await? {
                (200..=299, _, bytes) => bytes,
                _ => return None,
            }
        }
        (200..=299, _, bytes) => bytes,
        _ => return None,
    };
    (bytes.len() <= MAX_RESULT_BYTES).then(|| String::from_utf8(bytes).ok()).flatten()
}
