//! Per-account limits set at runtime (`PUT /governor/v1/admin/accounts/{account}/limits`):
//! what an override may change, how a patch is read and checked, how the
//! overrides combine with the configured limits, and where each effective
//! value came from (default, var, override).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::config::limits::{plan_cap, Limits};
use crate::rates::class::RateClass;
use crate::rates::window::RateLimit;

/// The largest per-minute limit and concurrency cap an override may set
/// (the same bounds as the vars).
const MAX_PER_MINUTE: u32 = 100_000;
const MAX_CONCURRENCY: u32 = 10_000;
/// At most this many extra-class overrides (the classes must exist).
const MAX_CLASSES: usize = 64;

/// Where a limit's value comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Nothing set: the built-in default.
    #[default]
    Default,
    /// A wrangler var.
    Var,
    /// An admin override on this account.
    Override,
}

/// One class's override.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassOverride {
    pub per_minute: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// An account's overrides, as stored (its `meta` row `overrides`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<(RateClass, ClassOverride)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// A key present with `null` clears that override; absent leaves it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of `PUT .../limits`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsPatch {
    #[serde(default, deserialize_with = "present")]
    pub generate_per_minute: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub generate_burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub requests_per_minute: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub requests_burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub classes: Option<Option<BTreeMap<String, Box<RawValue>>>>,
    #[serde(default, deserialize_with = "present")]
    pub concurrency: Option<Option<u32>>,
    /// A plan name (`hobbyist`, `creator`, `growth`, `scale`): sets `concurrency`.
    #[serde(default)]
    pub plan: Option<String>,
}

impl LimitsPatch {
    /// Read and check a patch against the configured limits: every value in
    /// range, bursts within their limits, classes that exist, and not both
    /// `plan` and `concurrency`. The message names the field, never echoes
    /// more than it.
    pub fn parse(body: &[u8], base: &Limits) -> Result<Self, String> {
        // serde would read a struct from an array too: only an object is a patch.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err("expected a JSON object {generatePerMinute, ..., concurrency, plan}".into());
        }
        let mut patch: LimitsPatch = serde_json::from_slice(body).map_err(|e| {
            format!(
                "expected {{generatePerMinute, generateBurst, requestsPerMinute, requestsBurst, classes, concurrency, plan}}: {}",
                e.to_string().chars().take(120).collect::<String>()
            )
        })?;
        if let Some(plan) = patch.plan.take() {
            if patch.concurrency.is_some() {
                return Err("set either plan or concurrency, not both".into());
            }
            let cap = plan_cap(&plan).ok_or("unknown plan: use hobbyist, creator, growth or scale, or concurrency")?;
            patch.concurrency = Some(Some(cap));
        }
        let in_range = |name: &str, v: Option<Option<u32>>, max: u32| match v {
            Some(Some(n)) if n == 0 || n > max => Err(format!("{name} must be between 1 and {max}")),
            _ => Ok(()),
        };
        in_range("generatePerMinute", patch.generate_per_minute, MAX_PER_MINUTE)?;
        in_range("generateBurst", patch.generate_burst, MAX_PER_MINUTE)?;
        in_range("requestsPerMinute", patch.requests_per_minute, MAX_PER_MINUTE)?;
        in_range("requestsBurst", patch.requests_burst, MAX_PER_MINUTE)?;
        in_range("concurrency", patch.concurrency, MAX_CONCURRENCY)?;
        if let Some(Some(classes)) = &patch.classes {
            if classes.len() > MAX_CLASSES {
                return Err(format!("at most {MAX_CLASSES} classes"));
            }
            for (name, raw) in classes {
                if !base.extra.iter().any(|e| e.name.as_str() == name) {
                    return Err("classes: only classes named in RATE_CLASSES can be overridden".into());
                }
                if let Some(c) = class_override(raw)? {
                    in_range("classes.perMinute", Some(Some(c.per_minute)), MAX_PER_MINUTE)?;
                    in_range("classes.burst", Some(c.burst), MAX_PER_MINUTE)?;
                }
            }
        }
        Ok(patch)
    }
}

/// One class's patch: an override, or `null` to clear it.
fn class_override(raw: &RawValue) -> Result<Option<ClassOverride>, String> {
    crate::wire::json::from_str(raw.get())
        .map_err(|_| "classes: expected {\"<class>\": {\"perMinute\", \"burst\"?} or null}".into())
}

impl Overrides {
    fn class(&self, class: &RateClass) -> Option<&ClassOverride> {
        self.classes.iter().find(|(n, _)| n == class).map(|(_, c)| c)
    }

    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Apply a checked patch. Bursts above their (new) limit are clamped
    /// when the limits are combined, so any order of patches is valid.
    pub fn merge(&mut self, patch: &LimitsPatch) {
        fn set(slot: &mut Option<u32>, v: Option<Option<u32>>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        set(&mut self.generate_per_minute, patch.generate_per_minute);
        set(&mut self.generate_burst, patch.generate_burst);
        set(&mut self.requests_per_minute, patch.requests_per_minute);
        set(&mut self.requests_burst, patch.requests_burst);
        set(&mut self.concurrency, patch.concurrency);
        match &patch.classes {
            Some(None) => self.classes.clear(),
            Some(Some(classes)) => {
                for (name, raw) in classes {
                    let class = RateClass::from(name.as_str());
                    self.classes.retain(|(n, _)| *n != class);
                    // Checked by `LimitsPatch::parse`.
                    if let Ok(Some(c)) = class_override(raw) {
                        self.classes.push((class, c));
                    }
                }
            }
            None => {}
        }
    }

    /// The configured limits with these overrides applied.
    pub fn apply(&self, base: &Limits) -> Limits {
        let mut limits = base.clone();
        let rate = |r: &mut RateLimit, limit: Option<u32>, burst: Option<u32>| {
            if let Some(l) = limit {
                // A new limit without a new burst: unpaced, as the vars default.
                r.burst = if r.burst >= r.limit { l } else { r.burst };
                r.limit = l;
            }
            if let Some(b) = burst {
                r.burst = b;
            }
            // A stored row is read as hostile: never a zero limit.
            r.limit = r.limit.max(1);
            r.burst = r.burst.min(r.limit).max(1);
        };
        rate(&mut limits.generate, self.generate_per_minute, self.generate_burst);
        rate(&mut limits.other, self.requests_per_minute, self.requests_burst);
        for class in &mut limits.extra {
            if let Some(c) = self.class(&class.name) {
                rate(&mut class.rate, Some(c.per_minute), c.burst);
            }
        }
        if let Some(cap) = self.concurrency {
            limits.concurrency.cap = cap.max(1);
        }
        limits
    }

    /// Every limit with its effective value and where it came from.
    pub fn sources(&self, base: &Limits) -> Vec<LimitView> {
        let eff = self.apply(base);
        let vars = &base.sources;
        let src = |overridden: bool, var: bool| {
            if overridden {
                Source::Override
            } else if var {
                Source::Var
            } else {
                Source::Default
            }
        };
        let mut out = vec![
            LimitView::new(
                "generate.perMinute",
                eff.generate.limit,
                src(self.generate_per_minute.is_some(), vars.generate),
            ),
            LimitView::new(
                "generate.burst",
                eff.generate.burst,
                src(self.generate_burst.is_some(), vars.generate_burst),
            ),
            LimitView::new(
                "requests.perMinute",
                eff.other.limit,
                src(self.requests_per_minute.is_some(), vars.requests),
            ),
            LimitView::new("requests.burst", eff.other.burst, src(self.requests_burst.is_some(), vars.requests_burst)),
        ];
        for class in &eff.extra {
            let o = self.class(&class.name);
            out.push(LimitView::new(
                &format!("{}.perMinute", class.name),
                class.rate.limit,
                src(o.is_some(), vars.classes),
            ));
            out.push(LimitView::new(
                &format!("{}.burst", class.name),
                class.rate.burst,
                src(o.is_some_and(|o| o.burst.is_some()), vars.classes),
            ));
        }
        out.push(LimitView::new("concurrency", eff.concurrency.cap, src(self.concurrency.is_some(), vars.concurrency)));
        out
    }
}

/// One effective limit, as status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitView {
    pub name: String,
    pub value: u32,
    pub source: Source,
}

impl LimitView {
    fn new(name: &str, value: u32, source: Source) -> Self {
        Self { name: name.to_owned(), value, source }
    }
}

#[cfg(test)]
mod tests;
