//! `PRICES`: USD per output second per model, supplied by the operator
//! (`{"lipsync-2": 0.04, "sync-3": 0.133}`). There are no built-in prices:
//! a model without one is priced by Sync's estimate or what was learned.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::MicroUsd;

/// Models priced at most.
pub const MAX_MODELS: usize = 64;
/// Longest model name accepted.
pub const MAX_MODEL_LEN: usize = 64;

/// Micro-dollars per output second, per model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(BTreeMap<String, MicroUsd>);

impl Prices {
    /// Parses the var's JSON; the error says what is wrong without echoing
    /// more than a model name.
    pub fn parse(raw: &str) -> Result<Prices, String> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw) else {
            return Err("must be a JSON object of model name to USD per output second".into());
        };
        if map.len() > MAX_MODELS {
            return Err(format!("at most {MAX_MODELS} models"));
        }
        let mut out = BTreeMap::new();
        for (model, v) in map {
            if model.is_empty() || model.len() > MAX_MODEL_LEN || !model.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("model names are 1-{MAX_MODEL_LEN} printable ASCII characters"));
            }
            let price = v.as_f64().and_then(MicroUsd::from_usd).filter(|p| p.0 > 0);
            let Some(price) = price else {
                return Err(format!("the price of {model} must be a positive number of USD per second"));
            };
            out.insert(model, price);
        }
        Ok(Prices(out))
    }

    pub fn per_second(&self, model: &str) -> Option<MicroUsd> {
        self.0.get(model).copied()
    }

    /// What `seconds` of output of `model` cost.
    pub fn cost(&self, model: &str, seconds: f64) -> Option<MicroUsd> {
        self.per_second(model)?.times_seconds(seconds)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let p = Prices::parse(r#"{"lipsync-2": 0.04, "sync-3": 0.133}"#).unwrap();
        assert_eq!(p.per_second("lipsync-2"), Some(MicroUsd(40_000)));
        assert_eq!(p.cost("sync-3", 10.0), Some(MicroUsd(1_330_000)));
        assert_eq!(p.cost("react-1", 10.0), None);
        for bad in ["[]", "{\"a\": -1}", "{\"a\": 0}", "{\"a\": \"0.1\"}", "{\"\": 1}", "nope"] {
            assert!(Prices::parse(bad).is_err(), "{bad}");
        }
        let many: String = (0..65).map(|i| format!("\"m{i}\":1")).collect::<Vec<_>>().join(",");
        assert!(Prices::parse(&format!("{{{many}}}")).is_err());
    }
}
