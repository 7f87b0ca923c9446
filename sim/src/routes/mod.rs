//! The router: Sync's `/v2` API, the `/_sim` control plane, and a Sync-shaped
//! 404 for everything else. The [`crate::gate`] middleware wraps it all.

pub mod assets;
pub mod batch;
pub mod body;
pub mod catalog;
pub mod control;
pub mod generate;
pub mod generations;
pub mod query;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::errors::ApiError;
use crate::state::Sim;

/// Builds the whole application.
pub fn router(sim: Arc<Sim>) -> Router {
    let api = Router::new()
        .route("/v2/generate", post(generate::create))
        .route("/v2/generate/estimate-cost", post(catalog::estimate))
        .route("/v2/generate/{id}", get(generations::get_one))
        .route("/v2/generations", get(generations::list))
        .route("/v2/generations/count", get(generations::count))
        .route("/v2/generations/estimate", post(catalog::estimate))
        .route("/v2/generations/{id}", delete(generations::remove))
        .route("/v2/generations/{id}/download", get(generations::download))
        .route("/v2/analyze/cost", post(catalog::analyze_cost))
        .route("/v2/assets/upload", post(assets::upload))
        .route("/v2/batch", post(batch::create).get(batch::list))
        .route("/v2/batch/{id}", get(batch::get_one))
        .route("/v2/batches/{id}/result", get(batch::result))
        .route("/v2/models", get(catalog::models))
        .route("/v2/errors", get(catalog::errors));
    let sim_routes = Router::new()
        .route("/_sim/health", get(control::health))
        .route("/_sim/stats", get(control::stats))
        .route("/_sim/requests", get(control::requests))
        .route("/_sim/webhooks", get(control::webhooks))
        .route("/_sim/config", get(control::get_config).post(control::set_config))
        .route("/_sim/outside", post(control::outside))
        .route("/_sim/reset", post(control::reset))
        .route("/_sim/generations/{id}", get(control::generation))
        .route("/_sim/files/batches/{id}/result.jsonl", get(batch::result_file));
    let inner = api
        .merge(sim_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(sim.clone(), crate::gate::gate))
        .with_state(sim.clone());
    // Middleware on a router runs after its routing, so the path rewrite of
    // lenient routing sits on an outer router whose only route is the inner one.
    Router::new()
        .fallback_service(inner)
        .layer(middleware::from_fn_with_state(sim.clone(), crate::routing::lenient))
        .with_state(sim)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("Cannot {method} {}", uri.path()))
}
