//! Operations: the admin API (`/governor/v1/admin/*`) and the metrics
//! (`/governor/v1/metrics`), served by the governor's own script but kept
//! apart from the data path: [`crate::handler`] hands these paths here
//! before routing anything else, and nothing here is reached from `/v2/`.
//! Without `GOVERNOR_ADMIN_KEY` every path here is a 404, whatever the
//! method.
//!
//! | module | one concept |
//! |---|---|
//! | [`auth`] | the admin key: its check, the caller's fingerprint |
//! | [`admin`] | typed admin commands to the account objects and the directory |
//! | [`metrics`] | Prometheus text from every account's metrics snapshot |

pub mod admin;
pub mod auth;
pub mod metrics;

use governor_core::config::Config;
use governor_core::wire::error::GovernorError;
use governor_core::wire::route::{route, Route};
use worker::{Env, Response};

use crate::request::Request;

use crate::cors::Origin;

/// Whether a path is the operations' (every method but a CORS preflight,
/// which the data path answers).
pub fn is_ops_path(path: &str) -> bool {
    path.starts_with("/governor/v1/admin/") || path == "/governor/v1/metrics"
}

/// Serve an operations path: the admin API or the metrics.
pub async fn serve(
    req: Request,
    env: &Env,
    config: &Config,
    origin: &Origin,
    path: &str,
    method: &str,
) -> Result<Response, GovernorError> {
    match route(method, path, &config.limits) {
        Route::Admin(r) => admin::handle(req, env, config, origin, r).await,
        Route::Metrics => metrics::metrics(&req, env, config, origin).await,
        Route::MethodNotAllowed if config.admin_key.is_some() => Err(GovernorError::MethodNotAllowed),
        _ => Err(GovernorError::NotFound),
    }
}
