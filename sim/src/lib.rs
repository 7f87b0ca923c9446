//! `sync-sim`: a faithful local simulator of the Sync lip-sync API
//! (`https://api.sync.so/v2`), with Sync's per-key rate and concurrency
//! limits, webhooks, fault injection and introspection endpoints.
//!
//! # Layout
//!
//! | file | concept |
//! |---|---|
//! | `main.rs` | thin binary: CLI → [`start`] → print the listening line → wait for a signal |
//! | [`cli`] | the command line (clap) |
//! | [`config`] | runtime knobs and their partial updates |
//! | [`errors`] | Sync's error shape and the `/v2/errors` catalogue |
//! | [`gate`] | front middleware: request log with body digest, auth → faults → rate check |
//! | [`limits`] | request classes, strict sliding-window log, per-key accounts |
//! | [`cost`] | media length, Sync's estimates, the error of actual over estimate |
//! | [`generation`] | the generation object, statuses, outcomes, what a new one needs |
//! | [`batch`] | the batch object, its lines, metrics, wire form and JSONL result |
//! | [`batch_input`] | reading a batch create: multipart JSONL, bounds, line validation |
//! | [`state`] | the store, accounts, concurrency reservations, reset |
//! | [`lifecycle`] | the lives of generations (inserted, PENDING → PROCESSING → terminal) and batches (stored, jobs created, terminal with their last generation, webhooks) |
//! | [`webhook_log`] | the webhook log and one webhook to send (data only) |
//! | [`webhooks`] | signed webhook delivery with drop/dup/delay/reorder faults |
//! | [`reqlog`] | the ring buffer behind `/_sim/requests` |
//! | [`stats`] | the `/_sim/stats` document |
//! | [`routing`] | lenient (Express-like) routing: any case, one trailing slash |
//! | [`routes`] | handlers: `generate`, `generations`, `batch`, `catalog`, `assets`, `control` (`/_sim`) |
//! | [`util`] | ids, clocks, digests, signatures |
//!
//! # Use in tests
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = sync_sim::start(sync_sim::config::Config::default(), "127.0.0.1:0").await?;
//! println!("{}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod batch;
pub mod batch_input;
pub mod cli;
pub mod config;
pub mod cost;
pub mod errors;
pub mod gate;
pub mod generation;
pub mod lifecycle;
pub mod limits;
pub mod reqlog;
pub mod routes;
pub mod routing;
pub mod state;
pub mod stats;
pub mod util;
pub mod webhook_log;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::state::Sim;

/// A running simulator.
pub struct Server {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish for up to 2 s.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
        self.task.abort();
    }
}

/// Binds `bind` (e.g. `127.0.0.1:0`) and serves the simulator in the
/// background of the current tokio runtime.
pub async fn start(config: Config, bind: &str) -> std::io::Result<Server> {
    config.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    let app = routes::router(sim.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(Server { addr, sim, shutdown: Some(tx), task })
}
