//! The command line.

use clap::Parser;

use crate::config::{Config, DEFAULT_KEY};

/// A faithful local simulator of the Sync lip-sync API.
#[derive(Debug, Parser)]
#[command(name = "sync-sim", version, about)]
pub struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to bind; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// An accepted API key (repeatable; each key is its own account).
    #[arg(long = "key", value_name = "KEY", num_args = 1.., action = clap::ArgAction::Append)]
    pub keys: Vec<String>,
    /// Accepted POST /v2/generate per key per window.
    #[arg(long, default_value_t = 60)]
    pub generate_per_minute: u32,
    /// Accepted other requests per key per window.
    #[arg(long, default_value_t = 600)]
    pub other_per_minute: u32,
    /// Accepted POST /v2/assets/upload per key per window [default: ceil(other/5)].
    #[arg(long)]
    pub upload_per_minute: Option<u32>,
    /// Sliding window length in ms.
    #[arg(long, default_value_t = 60_000)]
    pub window_ms: u64,
    /// Active (PENDING/PROCESSING) generations allowed per key.
    #[arg(long, default_value_t = 3)]
    pub concurrency: u32,
    /// Time in PENDING, ms.
    #[arg(long, default_value_t = 300)]
    pub pending_ms: u64,
    /// Time in PROCESSING, ms.
    #[arg(long, default_value_t = 2_000)]
    pub processing_ms: u64,
    /// Webhook signing secret (whsec_...); unsigned when absent.
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Extra latency per authenticated request, ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Answer POST /v2/generate only after this many ms (0 = at once).
    #[arg(long, default_value_t = 0)]
    pub stall_create_ms: u64,
    /// Answer authenticated reads (GET, except the list) only after this many ms.
    #[arg(long, default_value_t = 0)]
    pub stall_read_ms: u64,
    /// Answer GET /v2/generations only after this many ms.
    #[arg(long, default_value_t = 0)]
    pub stall_list_ms: u64,
    /// Probability of an injected 503.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Probability of an injected 429.
    #[arg(long = "inject-429-rate", default_value_t = 0.0)]
    pub inject_429_rate: f64,
    /// Probability that a webhook is dropped.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_drop_rate: f64,
    /// Probability that a webhook is sent twice.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_dup_rate: f64,
    /// Fixed delay before each webhook, ms.
    #[arg(long, default_value_t = 0)]
    pub webhook_delay_ms: u64,
    /// Random extra delay 0..=N ms before each webhook.
    #[arg(long, default_value_t = 0)]
    pub webhook_reorder_ms: u64,
    /// Seed for faults and ids.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Do not log requests to stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Route strictly: exact-case paths, no trailing slash. By default the
    /// simulator routes as Express does (any case, one trailing slash).
    #[arg(long)]
    pub strict_routing: bool,
    /// Relative bias of actual outputDuration over the estimate (0.2 = 20 % longer).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub estimate_bias: f64,
    /// Largest random relative error of actual over estimate, per generation.
    #[arg(long, default_value_t = 0.0)]
    pub estimate_error: f64,
    /// Make the estimate endpoints fail with this HTTP status (0 = answer).
    #[arg(long, default_value_t = 0)]
    pub estimate_status: u16,
    /// Completed generations report no outputDuration.
    #[arg(long)]
    pub no_output_duration: bool,
    /// A plan without the Batch API: `POST /v2/batch` answers 402.
    #[arg(long)]
    pub no_batches: bool,
    /// Batches not yet terminal allowed at once per key.
    #[arg(long, default_value_t = 2)]
    pub batch_concurrency: u32,
}

impl Args {
    /// `host:port` to bind.
    pub fn bind(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn config(&self) -> Config {
        let keys = if self.keys.is_empty() { vec![DEFAULT_KEY.to_string()] } else { self.keys.clone() };
        Config {
            keys,
            generate_per_minute: self.generate_per_minute,
            other_per_minute: self.other_per_minute,
            upload_per_minute: self.upload_per_minute,
            window_ms: self.window_ms,
            concurrency: self.concurrency,
            pending_ms: self.pending_ms,
            processing_ms: self.processing_ms,
            webhook_secret: self.webhook_secret.clone(),
            latency_ms: self.latency_ms,
            stall_create_ms: self.stall_create_ms,
            stall_read_ms: self.stall_read_ms,
            stall_list_ms: self.stall_list_ms,
            error_rate: self.error_rate,
            inject_429_rate: self.inject_429_rate,
            webhook_drop_rate: self.webhook_drop_rate,
            webhook_dup_rate: self.webhook_dup_rate,
            webhook_delay_ms: self.webhook_delay_ms,
            webhook_reorder_ms: self.webhook_reorder_ms,
            seed: self.seed,
            log_requests: !self.quiet,
            lenient_routing: !self.strict_routing,
            estimate_bias: self.estimate_bias,
            estimate_error: self.estimate_error,
            estimate_status: self.estimate_status,
            report_output_duration: !self.no_output_duration,
            batches_enabled: !self.no_batches,
            batch_concurrency: self.batch_concurrency,
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let a = Args::try_parse_from([
            "sync-sim",
            "--key",
            "a",
            "--key",
            "b",
            "--window-ms",
            "500",
            "--inject-429-rate",
            "0.5",
            "--webhook-secret",
            "whsec_x",
        ])
        .unwrap();
        let c = a.config();
        assert_eq!(c.keys, ["a", "b"]);
        assert_eq!(c.window_ms, 500);
        assert_eq!(c.inject_429_rate, 0.5);
        assert_eq!(a.bind(), "127.0.0.1:0");
        assert!(c.lenient_routing);
        assert!(!Args::try_parse_from(["sync-sim", "--strict-routing"]).unwrap().config().lenient_routing);
        let d = Args::try_parse_from(["sync-sim"]).unwrap().config();
        assert_eq!(d.keys, [DEFAULT_KEY]);
        assert_eq!(d, Config { log_requests: true, ..Config::default() });
    }
}
