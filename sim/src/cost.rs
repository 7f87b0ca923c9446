//! The cost model: how long a generation's output is, what Sync's estimate
//! endpoints say it costs, and how far the actual output is from the
//! estimate.
//!
//! A generate body's *media length* (the seconds the estimate sees) is
//! `options.sim_output_seconds` when given, else a length between 3 and 30 s
//! derived from the input urls (the same body always has the same length).
//! The estimate prices that length; the generation's reported
//! `outputDuration` is the length times `1 + estimate_bias + u` with `u`
//! drawn uniformly in `[-estimate_error, +estimate_error]` when the
//! generation is created. So with the knobs at 0 the estimate is exact, and
//! a positive bias makes Sync's estimate too low (the riskier reading: a
//! governor reserving the estimate spends more than it reserved).
//!
//! Frames are counted at [`FPS`]; credits are cents (neither is documented).

use serde_json::Value;

/// Frames per second used for `estimatedFrameCount`.
pub const FPS: f64 = 25.0;
/// Largest `options.sim_output_seconds` accepted.
pub const MAX_SECONDS: f64 = 86_400.0;

/// `(model, description, simulated USD per output second)`.
pub const MODELS: &[(&str, &str, f64)] = &[
    ("sync-3", "Sync's newest studio-grade model", 0.133),
    ("lipsync-2", "Zero-shot lip-sync, natural speaking style", 0.04),
    ("lipsync-2-pro", "lipsync-2 with higher fidelity for close-ups", 0.067),
    ("lipsync-1.9.0-beta", "Fast, earlier generation model", 0.02),
    ("react-1", "Performance editing: emotions and head motion", 0.067),
];

/// Whether `m` is one of Sync's models.
pub fn is_model(m: &str) -> bool {
    MODELS.iter().any(|(id, _, _)| *id == m)
}

/// USD per output second of `model`, if it is a model.
pub fn price(model: &str) -> Option<f64> {
    MODELS.iter().find(|(id, _, _)| *id == model).map(|(_, _, p)| *p)
}

/// USD rounded to 1/10 000 (as a price list would print it).
pub fn usd(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The media length of a generate body, in seconds.
pub fn media_seconds(body: &Value) -> Result<f64, String> {
    match body.get("options").and_then(|o| o.get("sim_output_seconds")) {
        None | Some(Value::Null) => {}
        Some(v) => {
            return match v.as_f64() {
                Some(s) if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) => Ok(s),
                _ => Err(format!("'options.sim_output_seconds' must be a number from 0 to {MAX_SECONDS}")),
            }
        }
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let urls = body.get("input").and_then(Value::as_array).into_iter().flatten();
    for url in urls.filter_map(|i| i.get("url").and_then(Value::as_str)) {
        for b in url.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(3.0 + (h % 27_001) as f64 / 1000.0)
}

/// `{estimatedFrameCount, estimatedGenerationCost}` for `seconds` of `model`.
pub fn estimate(model: &str, seconds: f64) -> Option<(u64, f64)> {
    let p = price(model)?;
    Some(((seconds * FPS).round() as u64, usd(p * seconds)))
}

/// The output duration a generation will report: the media length scaled
/// by `1 + bias + u` (never below 0), `u` the caller's uniform draw in
/// `[-1, 1]` times `error`.
pub fn actual_seconds(media: f64, bias: f64, error: f64, unit_draw: f64) -> f64 {
    let factor = (1.0 + bias + error * unit_draw.clamp(-1.0, 1.0)).max(0.0);
    (media * factor * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_length_is_stable_and_bounded() {
        let b = json!({"model": "lipsync-2", "input": [{"type": "video", "url": "https://x/a.mp4"}]});
        let s = media_seconds(&b).unwrap();
        assert_eq!(s, media_seconds(&b).unwrap());
        assert!((3.0..=30.0).contains(&s));
        let set = json!({"options": {"sim_output_seconds": 12.5}});
        assert_eq!(media_seconds(&set).unwrap(), 12.5);
        assert!(media_seconds(&json!({"options": {"sim_output_seconds": -1}})).is_err());
        assert!(media_seconds(&json!({"options": {"sim_output_seconds": "x"}})).is_err());
    }

    #[test]
    fn estimate_and_actual() {
        assert_eq!(estimate("lipsync-2", 10.0), Some((250, 0.4)));
        assert_eq!(estimate("nope", 10.0), None);
        assert_eq!(actual_seconds(10.0, 0.0, 0.0, 0.7), 10.0);
        assert_eq!(actual_seconds(10.0, 0.2, 0.0, -1.0), 12.0);
        assert_eq!(actual_seconds(10.0, 0.0, 0.1, 1.0), 11.0);
        assert_eq!(actual_seconds(10.0, 0.0, 0.1, -1.0), 9.0);
        assert_eq!(actual_seconds(10.0, -2.0, 0.0, 0.0), 0.0);
    }
}
