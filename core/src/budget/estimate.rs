//! The estimate rule and the settle rule.
//!
//! Estimate (at admission): Sync's own estimate (`POST /v2/analyze/cost`)
//! where it answered, else the cost learned from this model's completed
//! jobs, else `PRICES` × the assumed output length
//! ([`ASSUMED_OUTPUT_SECONDS`]); without any of them the cost is unknown
//! and a budgeted create is refused (the governor never guesses zero).
//!
//! Settle (when Sync reports the end): a completed job costs
//! `outputDuration × PRICES[model]`; without a usable `outputDuration` or a
//! price it costs its estimate; a failed or rejected job costs nothing (its
//! reservation is released).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::learned::LearnedCosts;
use crate::budget::{MicroUsd, Prices};

/// The output length assumed when only `PRICES` can price a job.
pub const ASSUMED_OUTPUT_SECONDS: f64 = 60.0;
/// The longest `outputDuration` believed (a day of video): a larger value
/// from Sync is treated as unusable, and the job costs its estimate.
pub const MAX_OUTPUT_SECONDS: f64 = 86_400.0;

/// Where an estimate or a settled cost came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// Sync's estimate endpoint.
    Sync,
    /// The mean of completed jobs of the model.
    Learned,
    /// `PRICES` (× the assumed length for an estimate, × `outputDuration` when settled).
    Prices,
    /// Settled at the estimate (Sync reported no usable `outputDuration`, or no price).
    Estimate,
    /// A failed or rejected job: nothing spent.
    Released,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub cost: MicroUsd,
    pub source: CostSource,
}

/// Reads Sync's `POST /v2/analyze/cost` answer
/// (`[{"estimatedFrameCount": n, "estimatedGenerationCost": usd}]`); also
/// accepts the bare object. Anything else (hostile, NaN, negative, huge)
/// is `None`: the rule falls back.
pub fn parse_sync_estimate(body: &str) -> Option<MicroUsd> {
    let v: Value = serde_json::from_str(body).ok()?;
    let first = match &v {
        Value::Array(items) => items.first()?,
        o @ Value::Object(_) => o,
        _ => return None,
    };
    first.get("estimatedGenerationCost")?.as_f64().and_then(MicroUsd::from_usd)
}

/// The estimate of one job of `model`.
pub fn choose(sync: Option<MicroUsd>, learned: &LearnedCosts, prices: &Prices, model: &str) -> Option<Estimate> {
    if let Some(cost) = sync {
        return Some(Estimate { cost, source: CostSource::Sync });
    }
    if let Some(cost) = learned.cost(model) {
        return Some(Estimate { cost, source: CostSource::Learned });
    }
    prices.cost(model, ASSUMED_OUTPUT_SECONDS).map(|cost| Estimate { cost, source: CostSource::Prices })
}

/// How a job ended, as far as its cost goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ending {
    /// COMPLETED, with Sync's `outputDuration` if it reported one.
    Completed { output_seconds: Option<f64> },
    /// FAILED, REJECTED, CANCELED, TIMED_OUT, or refused before creating.
    Failed,
}

/// What a job settles at, and from what.
pub fn settle(ending: Ending, model: &str, prices: &Prices, estimate: MicroUsd) -> (MicroUsd, CostSource) {
    match ending {
        Ending::Failed => (MicroUsd::ZERO, CostSource::Released),
        Ending::Completed { output_seconds } => {
            let usable = output_seconds.filter(|s| s.is_finite() && (0.0..=MAX_OUTPUT_SECONDS).contains(s));
            match usable.and_then(|s| prices.cost(model, s)) {
                Some(cost) => (cost, CostSource::Prices),
                None => (estimate, CostSource::Estimate),
            }
        }
    }
}

/// Reads `outputDuration` (seconds) from a generation object or webhook
/// payload: a number, or a numeric string; anything else is `None`.
pub fn output_seconds(generation: &Value) -> Option<f64> {
    output_ms(generation.get("outputDuration")?).map(|ms| ms as f64 / 1000.0)
}

/// An `outputDuration` value (seconds: a number or a numeric string) in
/// milliseconds; negative, not finite or over [`MAX_OUTPUT_SECONDS`] is `None`.
pub fn output_ms(v: &Value) -> Option<u64> {
    let s = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.len() <= 32 => s.trim().parse().ok(),
        _ => None,
    }?;
    (s.is_finite() && (0.0..=MAX_OUTPUT_SECONDS).contains(&s)).then(|| (s * 1000.0).round() as u64)
}

/// What the account needs to price and budget a create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRequest {
    pub client: String,
    /// Sync's estimate (`POST /v2/analyze/cost`), when it answered.
    #[serde(default)]
    pub sync_estimate: Option<crate::budget::MicroUsd>,
    /// The client's budgets (`CLIENT_LIMITS` usdPerDay / usdPerMonth).
    #[serde(default)]
    pub budgets: crate::budget::BudgetLimits,
    /// The queue ticket or the client's `Idempotency-Key`.
    #[serde(default)]
    pub key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_order() {
        let prices = Prices::parse(r#"{"lipsync-2": 0.04}"#).unwrap();
        let mut learned = LearnedCosts::default();
        let e = choose(None, &learned, &prices, "lipsync-2").unwrap();
        assert_eq!(e, Estimate { cost: MicroUsd(2_400_000), source: CostSource::Prices });
        assert_eq!(choose(None, &learned, &prices, "sync-3"), None);
        learned.learn("lipsync-2", MicroUsd(400_000), 1);
        assert_eq!(choose(None, &learned, &prices, "lipsync-2").unwrap().source, CostSource::Learned);
        assert_eq!(choose(Some(MicroUsd(7)), &learned, &prices, "lipsync-2").unwrap().source, CostSource::Sync);
    }

    #[test]
    fn hostile_sync_answers() {
        assert_eq!(
            parse_sync_estimate(r#"[{"estimatedFrameCount":250,"estimatedGenerationCost":0.4}]"#),
            Some(MicroUsd(400_000))
        );
        assert_eq!(parse_sync_estimate(r#"{"estimatedGenerationCost":1}"#), Some(MicroUsd(1_000_000)));
        for bad in [
            "",
            "[]",
            "[1]",
            r#"[{"estimatedGenerationCost":-1}]"#,
            r#"[{"estimatedGenerationCost":"1"}]"#,
            r#"[{"estimatedGenerationCost":1e300}]"#,
            "null",
        ] {
            assert_eq!(parse_sync_estimate(bad), None, "{bad}");
        }
    }

    #[test]
    fn settle_rule() {
        let prices = Prices::parse(r#"{"lipsync-2": 0.04}"#).unwrap();
        let done = |s| Ending::Completed { output_seconds: s };
        assert_eq!(
            settle(done(Some(10.0)), "lipsync-2", &prices, MicroUsd(1)),
            (MicroUsd(400_000), CostSource::Prices)
        );
        assert_eq!(settle(done(None), "lipsync-2", &prices, MicroUsd(9)), (MicroUsd(9), CostSource::Estimate));
        assert_eq!(settle(done(Some(1e12)), "lipsync-2", &prices, MicroUsd(9)), (MicroUsd(9), CostSource::Estimate));
        assert_eq!(settle(done(Some(10.0)), "sync-3", &prices, MicroUsd(9)), (MicroUsd(9), CostSource::Estimate));
        assert_eq!(settle(Ending::Failed, "lipsync-2", &prices, MicroUsd(9)), (MicroUsd::ZERO, CostSource::Released));
        assert_eq!(output_seconds(&serde_json::json!({"outputDuration": 12.5})), Some(12.5));
        assert_eq!(output_seconds(&serde_json::json!({"outputDuration": "3"})), Some(3.0));
        assert_eq!(output_seconds(&serde_json::json!({"outputDuration": -3})), None);
        assert_eq!(output_seconds(&serde_json::json!({"outputDuration": null})), None);
    }
}
