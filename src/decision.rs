//! One request's decision, as its log line and its Analytics Engine data
//! point: who asked (account, client, class), what the governor did, and the
//! time it added.

use governor_core::config::{Config, LogLevel};
use governor_core::ids::GenerationId;
use governor_core::rates::class::RateClass;
use worker::Env;

use crate::analytics;
use crate::log::Line;

/// One request's decision, for its log line.
pub struct Decision<'a> {
    pub config: &'a Config,
    pub account: &'a str,
    pub client: &'a str,
    pub class: &'a RateClass,
    pub env: &'a Env,
    /// Time spent held in line (`Prefer: wait`).
    pub waited_ms: u64,
    /// Time the governor added to a forwarded request.
    pub added_ms: u64,
}

impl Decision<'_> {
    /// The log line (if `LOG_LEVEL` lets it through) and the Analytics
    /// Engine data point (if `METRICS` is bound), independently.
    pub fn log(
        &self,
        level: LogLevel,
        outcome: &str,
        reason: Option<&str>,
        status: Option<u16>,
        generation: Option<&GenerationId>,
    ) {
        let (account, client, class, wait_ms, added_ms) =
            (self.account, self.client, self.class.as_str(), self.waited_ms, self.added_ms);
        let generation = generation.map(GenerationId::as_str);
        let point = analytics::Point { account, client, class, outcome, reason, generation, wait_ms, status, added_ms };
        analytics::write(self.env, &point);
        if level < self.config.log_level {
            return;
        }
        let mut line = Line::new(level, "decision")
            .str("account", self.account)
            .str("client", self.client)
            .str("class", class)
            .str("outcome", outcome)
            .opt("reason", reason)
            .num("waitMs", self.waited_ms)
            .opt("generationId", generation);
        if let Some(s) = status {
            line = line.num("upstreamStatus", u64::from(s));
        }
        line.emit(self.config.log_level);
    }
}
