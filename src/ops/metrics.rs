//! `GET /governor/v1/metrics`: every account's metrics snapshot (from its
//! object) as Prometheus text, behind the admin key.

use governor_core::config::Config;
use governor_core::operations::prometheus::{render, MetricsView};
use governor_core::wire::calls::{Metrics, MetricsReply};
use governor_core::wire::error::GovernorError;
use governor_core::wire::path::is_account_name;
use worker::{Env, Headers, Request, Response};

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

/// `GET /governor/v1/metrics[?account=NAME]`: Prometheus text.
pub async fn metrics(req: &Request, env: &Env, config: &Config, origin: &Origin) -> Result<Response, GovernorError> {
    super::auth::authorize(req, config)?;
    let url = req.inner().url();
    let one = url.split_once('?').and_then(|(_, q)| {
        q.split('&').find_map(|kv| kv.strip_prefix("account=")).filter(|a| is_account_name(a)).map(str::to_owned)
    });
    let names = match one {
        Some(a) => vec![a],
        None => directory::list(env, FAN_OUT as u32)
            .await
            .map_err(|_| GovernorError::Unavailable("the directory could not be read".into()))?
            .into_iter()
            .map(|e| e.account)
            .collect(),
    };
    let snaps = snapshots(env, &names).await;
    let rows: Vec<(String, MetricsView)> =
        names.into_iter().zip(snaps).filter_map(|(a, m)| m.map(|m| (a, m))).collect();
    let headers = Headers::new();
    let _ = headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    cors::decorate(&headers, origin);
    Ok(Response::builder().with_status(200).with_headers(headers).fixed(render(&rows).into_bytes()))
}
