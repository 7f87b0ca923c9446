//! `sync-sim` binary: parse the CLI, start the server, print one line, wait
//! for SIGINT/SIGTERM.

use std::io::Write;

use clap::Parser;
use sync_sim::cli::Args;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = args.config();
    if let Err(e) = config.validate() {
        eprintln!("sync-sim: {e}");
        std::process::exit(2);
    }
    let server = match sync_sim::start(config, &args.bind()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sync-sim: cannot listen on {}: {e}", args.bind());
            std::process::exit(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "sync-sim listening on {}", server.url());
        let _ = out.flush();
    }
    wait_for_signal().await;
    eprintln!("sync-sim: shutting down");
    let t = std::time::Instant::now();
    server.shutdown().await;
    eprintln!("sync-sim: stopped in {}ms", t.elapsed().as_millis());
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
