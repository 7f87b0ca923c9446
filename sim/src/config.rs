//! Runtime knobs: the simulator's configuration, and partial updates of it.
//!
//! Every knob can be changed while running through `POST /_sim/config`; changes
//! apply to the next request (limits, faults) or the next generation created
//! (durations). The `*_per_minute` limits are counts per `window_ms` window
//! (which is 60 000 ms by default, hence the names).

use serde::{Deserialize, Serialize};

/// Key used when no `--key` is given.
pub const DEFAULT_KEY: &str = "sk-sim-local";

/// All knobs of the simulator.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Config {
    /// API keys accepted in `x-api-key`; each one is its own account.
    pub keys: Vec<String>,
    /// Accepted `POST /v2/generate` requests per key per window.
    pub generate_per_minute: u32,
    /// Accepted requests of class `other` per key per window.
    pub other_per_minute: u32,
    /// Accepted `POST /v2/assets/upload` requests per key per window;
    /// `None` means `ceil(other_per_minute / 5)`.
    pub upload_per_minute: Option<u32>,
    /// Length of the strict sliding window, in ms.
    pub window_ms: u64,
    /// Generations in PENDING or PROCESSING allowed at once per key.
    pub concurrency: u32,
    /// Default time a generation stays PENDING.
    pub pending_ms: u64,
    /// Default time a generation stays PROCESSING.
    pub processing_ms: u64,
    /// Secret for `Sync-Signature`; `None` sends unsigned webhooks.
    pub webhook_secret: Option<String>,
    /// Extra latency added to every authenticated request.
    pub latency_ms: u64,
    /// Accept `POST /v2/generate` and answer only after this many ms (0 =
    /// at once). The request counts against the rate budget first; the
    /// generation is created only if the caller is still there at the end,
    /// so a caller that gives up leaves nothing behind ("never answers"
    /// for any caller with a shorter timeout).
    pub stall_create_ms: u64,
    /// The same for `GET /v2/generate/{id}` and every other authenticated
    /// read except the list.
    pub stall_read_ms: u64,
    /// The same for `GET /v2/generations` (the list reconciliation reads).
    pub stall_list_ms: u64,
    /// Probability of an injected 503 per authenticated request.
    pub error_rate: f64,
    /// Probability of an injected 429 per authenticated request.
    pub inject_429_rate: f64,
    /// Probability that a webhook is not sent at all.
    pub webhook_drop_rate: f64,
    /// Probability that a webhook is sent twice.
    pub webhook_dup_rate: f64,
    /// Fixed extra delay before each webhook delivery.
    pub webhook_delay_ms: u64,
    /// Random extra delay `0..=webhook_reorder_ms` before each delivery.
    pub webhook_reorder_ms: u64,
    /// Seed of the random generator (faults, ids); `None` = from entropy.
    pub seed: Option<u64>,
    /// Log one line per request to stderr.
    pub log_requests: bool,
    /// Route as Express does (Sync's NestJS default): static path segments in
    /// any case, one trailing slash ignored. On by default, so the simulator
    /// is never kinder than Sync (see [`crate::routing`]).
    pub lenient_routing: bool,
    /// Relative bias of a generation's actual `outputDuration` over what the
    /// estimate endpoints priced (0.2: the output is 20 % longer than
    /// estimated, so Sync's estimate is too low). See [`crate::cost`].
    pub estimate_bias: f64,
    /// Largest random relative error added to the bias, per generation
    /// (uniform in `[-e, +e]`).
    pub estimate_error: f64,
    /// `0`: the estimate endpoints answer; otherwise they fail with this
    /// HTTP status (Sync's error shape), e.g. 404 or 503.
    pub estimate_status: u16,
    /// Completed generations report `outputDuration`; `false` leaves it
    /// `null` (Sync's docs list the field, not when it is filled).
    pub report_output_duration: bool,
    /// The plan has the Batch API (Scale and Enterprise); off answers 402.
    pub batches_enabled: bool,
    /// Batches not yet terminal allowed at once per key (over it, 429
    /// `concurrency_limit_reached`).
    pub batch_concurrency: u32,
    /// Time a batch stays PENDING before its generations are created.
    pub batch_pending_ms: u64,
    /// Default total duration of a batch-spawned generation.
    pub batch_generation_ms: u64,
    /// Probability that a batch webhook is not sent at all.
    pub batch_webhook_drop_rate: f64,
    /// Probability that a batch line is rejected (besides the rule on
    /// inputs longer than `batch_max_input_ms`).
    pub batch_line_reject_rate: f64,
    /// Longest input a batch line may have (`options.sim_input_ms`; Sync: 30 s).
    pub batch_max_input_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: vec![DEFAULT_KEY.to_string()],
            generate_per_minute: 60,
            other_per_minute: 600,
            upload_per_minute: None,
            window_ms: 60_000,
            concurrency: 3,
            pending_ms: 300,
            processing_ms: 2_000,
            webhook_secret: None,
            latency_ms: 0,
            stall_create_ms: 0,
            stall_read_ms: 0,
            stall_list_ms: 0,
            error_rate: 0.0,
            inject_429_rate: 0.0,
            webhook_drop_rate: 0.0,
            webhook_dup_rate: 0.0,
            webhook_delay_ms: 0,
            webhook_reorder_ms: 0,
            seed: None,
            log_requests: false,
            lenient_routing: true,
            estimate_bias: 0.0,
            estimate_error: 0.0,
            estimate_status: 0,
            report_output_duration: true,
            batches_enabled: true,
            batch_concurrency: 2,
            batch_pending_ms: 200,
            batch_generation_ms: 500,
            batch_webhook_drop_rate: 0.0,
            batch_line_reject_rate: 0.0,
            batch_max_input_ms: 30_000,
        }
    }
}

impl Config {
    /// The upload limit in force (explicit, else `ceil(other / 5)`).
    pub fn upload_limit(&self) -> u32 {
        self.upload_per_minute.unwrap_or_else(|| self.other_per_minute.div_ceil(5))
    }

    /// The JSON shown by `/_sim/stats` and `/_sim/config` (adds the
    /// effective upload limit).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("upload_limit".into(), self.upload_limit().into());
        }
        v
    }

    /// Checks the knobs for values that make no sense.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("error_rate", self.error_rate),
            ("inject_429_rate", self.inject_429_rate),
            ("webhook_drop_rate", self.webhook_drop_rate),
            ("webhook_dup_rate", self.webhook_dup_rate),
            ("batch_webhook_drop_rate", self.batch_webhook_drop_rate),
            ("batch_line_reject_rate", self.batch_line_reject_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if !(self.estimate_bias.is_finite() && (-1.0..=10.0).contains(&self.estimate_bias)) {
            return Err("estimate_bias must be between -1 and 10".into());
        }
        if !(self.estimate_error.is_finite() && (0.0..=10.0).contains(&self.estimate_error)) {
            return Err("estimate_error must be between 0 and 10".into());
        }
        if self.estimate_status != 0 && !(400..=599).contains(&self.estimate_status) {
            return Err("estimate_status must be 0 or an HTTP error status (400-599)".into());
        }
        if self.window_ms == 0 {
            return Err("window_ms must be at least 1".into());
        }
        if self.keys.is_empty() {
            return Err("at least one key is needed".into());
        }
        Ok(())
    }

    /// Applies a partial update, validating the result; on error nothing changes.
    pub fn apply(&mut self, patch: ConfigPatch) -> Result<(), String> {
        let mut next = self.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
        }
        set!(
            generate_per_minute,
            other_per_minute,
            window_ms,
            concurrency,
            pending_ms,
            processing_ms,
            latency_ms,
            stall_create_ms,
            stall_read_ms,
            stall_list_ms,
            error_rate,
            inject_429_rate,
            webhook_drop_rate,
            webhook_dup_rate,
            webhook_delay_ms,
            webhook_reorder_ms,
            lenient_routing,
            estimate_bias,
            estimate_error,
            estimate_status,
            report_output_duration,
            batches_enabled,
            batch_concurrency,
            batch_pending_ms,
            batch_generation_ms,
            batch_webhook_drop_rate,
            batch_line_reject_rate,
            batch_max_input_ms
        );
        if let Some(v) = patch.upload_per_minute {
            next.upload_per_minute = v;
        }
        if let Some(v) = patch.webhook_secret {
            next.webhook_secret = v;
        }
        next.validate()?;
        *self = next;
        Ok(())
    }
}

/// A partial update for `POST /_sim/config`; unknown fields are refused so
/// that a typo does not silently do nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub generate_per_minute: Option<u32>,
    pub other_per_minute: Option<u32>,
    /// `null` goes back to the derived default.
    #[serde(default, deserialize_with = "double_option")]
    pub upload_per_minute: Option<Option<u32>>,
    pub window_ms: Option<u64>,
    pub concurrency: Option<u32>,
    pub pending_ms: Option<u64>,
    pub processing_ms: Option<u64>,
    /// `null` turns signing off.
    #[serde(default, deserialize_with = "double_option")]
    pub webhook_secret: Option<Option<String>>,
    pub latency_ms: Option<u64>,
    pub stall_create_ms: Option<u64>,
    pub stall_read_ms: Option<u64>,
    pub stall_list_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub inject_429_rate: Option<f64>,
    pub webhook_drop_rate: Option<f64>,
    pub webhook_dup_rate: Option<f64>,
    pub webhook_delay_ms: Option<u64>,
    pub webhook_reorder_ms: Option<u64>,
    pub lenient_routing: Option<bool>,
    pub estimate_bias: Option<f64>,
    pub estimate_error: Option<f64>,
    pub estimate_status: Option<u16>,
    pub report_output_duration: Option<bool>,
    pub batches_enabled: Option<bool>,
    pub batch_concurrency: Option<u32>,
    pub batch_pending_ms: Option<u64>,
    pub batch_generation_ms: Option<u64>,
    pub batch_webhook_drop_rate: Option<f64>,
    pub batch_line_reject_rate: Option<f64>,
    pub batch_max_input_ms: Option<u64>,
}

fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests;
