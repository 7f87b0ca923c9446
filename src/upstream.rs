//! The account object's own outgoing calls: listing Sync's active
//! generations for reconciliation, and relay deliveries to clients.

use governor_core::auth::secret::Secret;
use governor_core::ids::GenerationId;
use governor_core::lifecycle::answer::read_create;
use governor_core::lifecycle::pages::ListedPage;
use governor_core::lifecycle::reconcile::ActiveGeneration;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::lifecycle::status::Observed;
use governor_core::queue::job::{DispatchJob, DispatchOutcome};
use governor_core::relay::delivery::{Attempt, Delivery};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Request};

use crate::timeout::Boxed;

#[derive(Deserialize)]
struct Listed {
    id: GenerationId,
    #[serde(default)]
    status: Option<GenerationStatus>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default, rename = "outputDuration")]
    output_duration: Option<serde_json::Value>,
}

/// Final statuses of `ids` (`GET /v2/generations?ids=...`); empty on failure
/// or after `timeout_ms`.
pub async fn statuses(base: &str, key: &Secret, ids: &[GenerationId], timeout_ms: u64) -> Vec<Observed> {
    let list = ids.iter().map(|i| urlencode(i.as_str())).collect::<Vec<_>>().join(",");
    let Some((200..=299, bytes)) = get(&format!("{base}/v2/generations?ids={list}"), key, timeout_ms).await else {
        return Vec::new();
    };
    serde_json::from_slice::<Vec<Listed>>(&bytes)
        .map(|v| {
            v.into_iter()
                .filter_map(|g| {
                    let output_ms = g.output_duration.as_ref().and_then(governor_core::budget::estimate::output_ms);
                    g.status.map(|status| Observed { id: g.id, status, output_ms })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Send `req` within `timeout_ms`: (status, whole body), or `None` when
/// Sync could not be reached or did not answer in time (the fetch is aborted).
async fn send(req: Request, timeout_ms: u64) -> Option<(u16, Vec<u8>)> {
    let boxed = Boxed::new();
    let signal = boxed.signal.clone();
    let call = async {
        let resp = Fetch::Request(req).send_with_signal(&signal).await.ok()?;
        let status = resp.status_code();
        Some((status, crate::proxy::body_bytes(resp).await))
    };
    boxed.run(timeout_ms, call).await.flatten()
}

/// One generation's current JSON (`GET /v2/generate/{id}`), if Sync has it
/// within `timeout_ms`.
pub async fn generation(base: &str, key: &Secret, id: &GenerationId, timeout_ms: u64) -> Option<String> {
    match get(&format!("{base}/v2/generate/{}", urlencode(id.as_str())), key, timeout_ms).await? {
        (200..=299, bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Sync's estimate of a generate body (`POST /v2/analyze/cost`, which
/// takes the body unchanged), if it answers 2xx within `timeout_ms`.
pub async fn analyze_cost(base: &str, key: &Secret, body: &str, timeout_ms: u64) -> Option<String> {
    let headers = Headers::new();
    let _ = headers.set("x-api-key", key.expose());
    let _ = headers.set("content-type", "application/json");
    let req = request("POST", &format!("{base}/v2/analyze/cost"), &headers, Some(body), true)?;
    match send(req, timeout_ms).await? {
        (200..=299, bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// `GET url` with the account's key: (status, body), or `None` if Sync
/// could not be reached or did not answer (body included) within `timeout_ms`.
async fn get(url: &str, key: &Secret, timeout_ms: u64) -> Option<(u16, Vec<u8>)> {
    let headers = Headers::new();
    let _ = headers.set("x-api-key", key.expose());
    let req = request("GET", url, &headers, None, false)?;
    send(req, timeout_ms).await
}

/// A request built on web_sys directly (the `worker` crate's `RequestInit`
/// conversion carries options the governor never sets, and their code).
/// `manual`: redirects are not followed.
fn request(method: &str, url: &str, headers: &Headers, body: Option<&str>, manual: bool) -> Option<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers.0);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
    }
    if manual {
        init.set_redirect(web_sys::RequestRedirect::Manual);
    }
    web_sys::Request::new_with_str_and_init(url, &init).ok().map(Request::from)
}

/// One page of Sync's active generations (`GET /v2/generations?status=`), as the
/// core asked for it; what a 429 means is for the core to read.
pub async fn list_active(base: &str, key: &Secret, limit: u32, cursor: Option<&str>, timeout_ms: u64) -> ListedPage {
    let mut url = format!("{base}/v2/generations?status={}&limit={limit}", GenerationStatus::active_query());
    if let Some(c) = cursor {
        url.push_str("&cursor=");
        url.push_str(&urlencode(c));
    }
    let Some((status, bytes)) = get(&url, key, timeout_ms).await else { return ListedPage::Failed };
    if status == 429 {
        return ListedPage::Limited { body: String::from_utf8_lossy(&bytes).into_owned() };
    }
    if !(200..300).contains(&status) {
        return ListedPage::Failed;
    }
    match serde_json::from_slice::<Vec<Listed>>(&bytes) {
        Ok(items) => {
            let count = items.len();
            let items = items
                .into_iter()
                // Asked for active ones only: whatever is not known to have
                // ended (no status, an unknown one) may hold a slot.
                .filter(|g| g.status.as_ref().is_none_or(|s| !s.is_terminal()))
                .map(|g| ActiveGeneration { id: g.id, model: g.model })
                .collect();
            ListedPage::Items { items, count }
        }
        Err(_) => ListedPage::Failed,
    }
}

/// `GET /v2/batch` of the open batches, as the core asked for it.
pub async fn list_batches(base: &str, key: &Secret, limit: u32, timeout_ms: u64) -> ListedPage {
    let url =
        format!("{base}/v2/batch?status={}&limit={limit}", governor_core::lifecycle::status::BatchStatus::open_query());
    let Some((status, bytes)) = get(&url, key, timeout_ms).await else { return ListedPage::Failed };
    if status == 429 {
        return ListedPage::Limited { body: String::from_utf8_lossy(&bytes).into_owned() };
    }
    // Only a well-formed list can prove that a batch is gone.
    match serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) {
        Ok(items) if (200..300).contains(&status) && bytes.len() <= governor_core::batch::answer::MAX_BODY => {
            let open = governor_core::batch::answer::seen(&bytes);
            let complete = items.len() < limit as usize && open.len() == items.len();
            ListedPage::Batches { open, complete }
        }
        _ => ListedPage::Failed,
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POST a relayed payload to the client's webhook URL, byte for byte. A
/// hook that has not answered within `timeout_ms` is a failed attempt.
pub async fn deliver(d: &Delivery, timeout_ms: u64) -> Attempt {
    let headers = Headers::new();
    for (name, value) in &d.headers {
        let _ = headers.set(name, value);
    }
    // Never follow a redirect: a 3xx is a failed attempt, so a hook cannot
    // send the payload on to a URL the check would refuse.
    let Some(req) = request("POST", &d.url, &headers, Some(&d.body), true) else { return Attempt::Status(400) };
    let boxed = Boxed::new();
    let signal = boxed.signal.clone();
    match boxed.run(timeout_ms, Fetch::Request(req).send_with_signal(&signal)).await {
        Some(Ok(resp)) => Attempt::Status(resp.status_code()),
        Some(Err(_)) | None => Attempt::Unreachable,
    }
}

/// May this delivery go out now? The `webhookUrl` check again, with the
/// local mode in effect now: rules tightened or `LOCAL_MODE` turned off
/// since the payload was queued stop it (given up, not retried).
pub fn deliverable(d: &Delivery, local_mode: bool) -> bool {
    match crate::request::check_webhook_url(&d.url, local_mode) {
        Ok(()) => true,
        Err(why) => {
            worker::console_warn!("relay delivery {} given up: {}", d.id, why);
            false
        }
    }
}

/// A relay delivery: refused if the URL check fails now, else sent.
pub async fn relay(d: &Delivery, local_mode: bool, timeout_ms: u64) -> Attempt {
    if deliverable(d, local_mode) {
        deliver(d, timeout_ms).await
    } else {
        Attempt::Refused
    }
}

/// Submit a queued job to Sync with the job's own `Idempotency-Key`. No
/// answer within `timeout_ms` is a transient outcome (Sync may have it).
pub async fn submit(base: &str, key: &Secret, job: &DispatchJob, timeout_ms: u64) -> DispatchOutcome {
    let headers = Headers::new();
    let _ = headers.set("x-api-key", key.expose());
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("idempotency-key", &job.idempotency_key);
    let Some(req) = request("POST", &format!("{base}/v2/generate"), &headers, Some(&job.body), false) else {
        return DispatchOutcome::Transient;
    };
    let Some((status, bytes)) = send(req, timeout_ms).await else {
        return DispatchOutcome::Transient;
    };
    // Sync's answer, read as for a direct create (its Retry-After is not
    // seen here: the backoff's own schedule applies).
    DispatchOutcome::from(read_create(status, &bytes, None))
}
