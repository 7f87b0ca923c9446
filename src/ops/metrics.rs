//! `GET /governor/v1/metrics`: every account's metrics snapshot (from its
//! object) as Prometheus text, behind the admin key.

use governor_core::config::Config;
use governor_core::operations::prometheus::{render, MetricsView};
use governor_core::wire::calls::{Metrics, MetricsReply};
use governor_core::wire::error::GovernorError;
use governor_core::wire::path::is_account_name;
use worker::{Env, Headers, Response};

use crate::request::Request;

use crate::account_client;
use crate::cors::{self, Origin};
use crate::directory;

/// Accounts whose live usage one listing or scrape reads (one subrequest each).
pub(super) const FAN_OUT: usize = 40;

/// Each account's metrics snapshot (the first [`FAN_OUT`]; `None` for an
/// account that could not answer).
pub(super) async fn snapshots(env: &Env, accounts: &[String]) -> Vec<Option<MetricsView>> {
    // One at a time: a few milliseconds each, and one small future.
    let mut out = Vec::new();
    for a in accounts.iter().take(FAN_OUT) {
        out.push(match account_client::call(env, a, None, &Metrics).await {
            Ok(MetricsReply::Metrics(m)) => Some(m),
            Ok(MetricsReply::Refused(_)) | Err(_) => None,
        });
    }
    out
}

/// Accounts one scrape page reads (one subrequest each; Cloudflare allows
/// 1,000 per request): a deployment with more is scraped page by page.
pub const SCRAPE_PAGE: u32 = 200;

/// `GET /governor/v1/metrics[?account=NAME | ?page=N]`: Prometheus text.
/// Every account of the directory, [`SCRAPE_PAGE`] per page by name (page 0
/// unless asked); `sync_governor_scrape_accounts` / `_pages` say how many
/// there are, so a scrape that reads one page knows what it did not read.
pub async fn metrics(req: &Request, env: &Env, config: &Config, origin: &Origin) -> Result<Response, GovernorError> {
    super::auth::authorize(req, config)?;
    let url = req.inner().url();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let one = param("account").filter(|a| is_account_name(a)).map(str::to_owned);
    let page_no = match param("page") {
        None => 0,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 10_000)
            .ok_or_else(|| GovernorError::BadRequest("page must be a whole number from 0 to 10000".into()))?,
    };
    let (names, scope) = match one {
        Some(a) => (vec![a], None),
        None => {
            let page = directory::page(env, page_no.saturating_mul(SCRAPE_PAGE), SCRAPE_PAGE)
                .await
                .map_err(|_| GovernorError::Unavailable("the directory could not be read".into()))?;
            (page.accounts, Some(page.total))
        }
    };
    let mut rows: Vec<(String, MetricsView)> = Vec::with_capacity(names.len());
    for a in names {
        if let Ok(MetricsReply::Metrics(m)) = account_client::call(env, &a, None, &Metrics).await {
            rows.push((a, m));
        }
    }
    let mut text = render(&rows);
    if let Some(total) = scope {
        text.push_str(&scrape_lines(total, page_no, rows.len()));
    }
    let headers = Headers::new();
    let _ = headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    cors::decorate(&headers, origin);
    Ok(Response::builder().with_status(200).with_headers(headers).fixed(text.into_bytes()))
}

/// What the scrape covers: the directory's accounts, its pages, this page
/// and how many of its accounts answered.
fn scrape_lines(total: u64, page: u32, answered: usize) -> String {
    let pages = total.div_ceil(u64::from(SCRAPE_PAGE)).max(1);
    format!(
        "# HELP sync_governor_scrape_accounts Accounts in the deployment's directory (every page).\n\
         # TYPE sync_governor_scrape_accounts gauge\nsync_governor_scrape_accounts {total}\n\
         # HELP sync_governor_scrape_pages Scrape pages (?page=0..pages-1), {SCRAPE_PAGE} accounts each.\n\
         # TYPE sync_governor_scrape_pages gauge\nsync_governor_scrape_pages {pages}\n\
         # HELP sync_governor_scrape_page This page.\n# TYPE sync_governor_scrape_page gauge\nsync_governor_scrape_page {page}\n\
         # HELP sync_governor_scrape_answered Accounts of this page whose object answered.\n\
         # TYPE sync_governor_scrape_answered gauge\nsync_governor_scrape_answered {answered}\n"
    )
}
