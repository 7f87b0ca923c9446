//! What Sync's answer to a create says, read once for every create (a
//! client's through the proxy, a queued job's through the driver): a
//! generation or a list of them, hostile input read by its first byte.

use serde::Deserialize;

use crate::ids::GenerationId;
use crate::lifecycle::limited::{limit_kind, LimitKind};
use crate::lifecycle::status::{GenerationStatus, Observed};

#[derive(Deserialize)]
pub(crate) struct Generation {
    pub(crate) id: GenerationId,
    #[serde(default)]
    pub(crate) status: Option<GenerationStatus>,
    /// Any JSON (Sync's answers are hostile input): read by
    /// [`crate::budget::estimate::output_ms`].
    #[serde(default, rename = "outputDuration")]
    output_duration: Option<serde_json::Value>,
}

impl Generation {
    pub(crate) fn output_ms(&self) -> Option<u64> {
        self.output_duration.as_ref().and_then(crate::budget::estimate::output_ms)
    }
}

/// One generation, or a list of them: what a Sync response body holds.
pub(crate) enum OneOrMany {
    One(Generation),
    Many(Vec<Generation>),
}

/// Read a body as one generation (an object) or a list (an array), by its
/// first byte: no buffering of an untagged enum.
pub(crate) fn one_or_many(body: &[u8]) -> Result<OneOrMany, serde_json::Error> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).map(OneOrMany::Many),
        _ => serde_json::from_slice(body).map(OneOrMany::One),
    }
}

/// What Sync answered a `POST /v2/generate`: read here once, for a direct
/// create (the Worker's proxy, [`crate::lifecycle::settle::after_create`]) and a queued job's
/// submission (the object's, `DispatchOutcome::from`) alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateAnswer {
    /// A 2xx naming one generation; `ended` when it had already ended (Sync
    /// replaying an old generation for a reused `Idempotency-Key`).
    Created { generation: GenerationId, ended: Option<Observed> },
    /// A 429: which limit, and Sync's `Retry-After` when it sent one.
    Limited { kind: LimitKind, retry_after_ms: Option<u64> },
    /// A 4xx other than 429: nothing was created.
    Refused { status: u16, error: String },
    /// A 2xx without a generation, a 5xx, anything else: Sync may have it.
    Unknown,
}

/// Read Sync's answer to a create (hostile input: anything unreadable is
/// [`CreateAnswer::Unknown`], never a guess that nothing was created).
pub fn read_create(status: u16, body: &[u8], retry_after_ms: Option<u64>) -> CreateAnswer {
    match status {
        200..=299 => match one_or_many(body) {
            Ok(OneOrMany::One(g)) => {
                let ended = g.status.as_ref().filter(|s| s.is_terminal()).map(|s| Observed {
                    id: g.id.clone(),
                    status: s.clone(),
                    output_ms: g.output_ms(),
                });
                CreateAnswer::Created { generation: g.id, ended }
            }
            _ => CreateAnswer::Unknown,
        },
        429 => CreateAnswer::Limited { kind: limit_kind(body), retry_after_ms },
        400..=499 => CreateAnswer::Refused { status, error: String::from_utf8_lossy(body).chars().take(500).collect() },
        _ => CreateAnswer::Unknown,
    }
}

/// The generation id in a create response.
pub fn created_id(body: &[u8]) -> Option<GenerationId> {
    match one_or_many(body) {
        Ok(OneOrMany::One(g)) => Some(g.id),
        _ => None,
    }
}
