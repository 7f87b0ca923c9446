//! What a Sync response tells the account's object: a created generation
//! binds its permit, a refusal frees it, a 429 teaches backoff, and any
//! generation seen in a terminal status frees its permit at once.

use crate::admission::idempotency::{IdempotencyKey, Replay};
use crate::lifecycle::limited::{limit_kind, LimitKind};
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::lifecycle::status::Observed;
use crate::rates::class::RateClass;
use crate::wire::contract::Command;
use serde::Deserialize;

#[derive(Deserialize)]
struct Generation {
    id: String,
    #[serde(default)]
    status: Option<GenerationStatus>,
    /// Any JSON (Sync's answers are hostile input): read by
    /// [`crate::budget::estimate::output_ms`].
    #[serde(default, rename = "outputDuration")]
    output_duration: Option<serde_json::Value>,
}

impl Generation {
    fn output_ms(&self) -> Option<u64> {
        self.output_duration.as_ref().and_then(crate::budget::estimate::output_ms)
    }
}

/// One generation, or a list of them: what a Sync response body holds.
enum OneOrMany {
    One(Generation),
    Many(Vec<Generation>),
}

/// Read a body as one generation (an object) or a list (an array), by its
/// first byte: no buffering of an untagged enum.
fn one_or_many(body: &[u8]) -> Result<OneOrMany, serde_json::Error> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).map(OneOrMany::Many),
        _ => serde_json::from_slice(body).map(OneOrMany::One),
    }
}

/// What Sync answered a `POST /v2/generate`: read here once, for a direct
/// create (the Worker's proxy, [`after_create`]) and a queued job's
/// submission (the object's, `DispatchOutcome::from`) alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateAnswer {
    /// A 2xx naming one generation; `ended` when it had already ended (Sync
    /// replaying an old generation for a reused `Idempotency-Key`).
    Created { generation: String, ended: Option<Observed> },
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

/// After `POST /v2/generate`: bind on 2xx (keeping the answer for a client
/// `Idempotency-Key`); free the permit when Sync refused (a 4xx: nothing was
/// created); a 429 teaches backoff. When the outcome is unknown (a 2xx
/// without a generation id, a 5xx) the permit is kept as unsettled until a
/// reconciliation listing tells what Sync has: never guess that it freed.
pub fn after_create(
    permit: PermitId,
    status: u16,
    body: &[u8],
    retry_after_ms: Option<u64>,
    key: Option<IdempotencyKey>,
) -> Option<Command> {
    Some(match read_create(status, body, retry_after_ms) {
        CreateAnswer::Created { generation, .. } => {
            let replay =
                key.map(|key| Replay { key, status, body: String::from_utf8_lossy(body).into_owned(), refetch: None });
            Command::Bind { permit, generation, replay }
        }
        CreateAnswer::Limited { kind, retry_after_ms } => {
            Command::UpstreamLimited { class: RateClass::Generate, kind, permit: Some(permit), retry_after_ms }
        }
        CreateAnswer::Refused { .. } => Command::Release { permit },
        CreateAnswer::Unknown => Command::Unsettled { permit },
    })
}

/// A create answered with a generation that already ended (Sync replaying
/// an old generation for a reused `Idempotency-Key`): after its bind, this
/// frees the permit at once.
pub fn ended_in_create(status: u16, body: &[u8]) -> Option<Command> {
    match read_create(status, body, None) {
        CreateAnswer::Created { ended: Some(o), .. } => Some(Command::Observe { generations: vec![o] }),
        _ => None,
    }
}

/// The generation id in a create response.
pub fn created_id(body: &[u8]) -> Option<String> {
    match one_or_many(body) {
        Ok(OneOrMany::One(g)) => Some(g.id),
        _ => None,
    }
}

/// Terminal statuses in a generation or list response of generations the
/// account holds permits for (`held`), if any.
pub fn observed(body: &[u8], held: &[String]) -> Option<Command> {
    let generations = match one_or_many(body).ok()? {
        OneOrMany::One(g) => vec![g],
        OneOrMany::Many(v) => v,
    };
    let seen: Vec<Observed> = generations
        .into_iter()
        .filter(|g| held.contains(&g.id))
        .filter_map(|g| {
            let output_ms = g.output_ms();
            g.status.filter(GenerationStatus::is_terminal).map(|status| Observed { id: g.id, status, output_ms })
        })
        .collect();
    (!seen.is_empty()).then_some(Command::Observe { generations: seen })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::limited::LimitKind;

    #[test]
    fn create_outcomes() {
        let body = br#"{"id":"g1","status":"PENDING"}"#;
        assert_eq!(
            after_create(7, 201, body, None, None),
            Some(Command::Bind { permit: 7, generation: "g1".into(), replay: None })
        );
        assert_eq!(
            after_create(7, 201, b"{}", None, None),
            Some(Command::Unsettled { permit: 7 }),
            "2xx without an id"
        );
        for status in [500, 502, 503, 504] {
            assert_eq!(after_create(7, status, b"{}", None, None), Some(Command::Unsettled { permit: 7 }), "{status}");
        }
        assert_eq!(after_create(7, 400, b"{}", None, None), Some(Command::Release { permit: 7 }));
        let busy = br#"{"statusCode":429,"errorCode":"concurrency_limit_exceeded"}"#;
        assert!(matches!(
            after_create(7, 429, busy, Some(2_000), None),
            Some(Command::UpstreamLimited { kind: LimitKind::Concurrency, retry_after_ms: Some(2_000), .. })
        ));
        let key = IdempotencyKey { client: "c".into(), key: "k".into() };
        let Some(Command::Bind { replay: Some(r), .. }) = after_create(7, 201, body, None, Some(key)) else { panic!() };
        assert_eq!((r.status, r.body.as_bytes()), (201, &body[..]));
    }

    #[test]
    fn limit_kinds() {
        assert_eq!(limit_kind(br#"{"errorCode":"rate_limit_exceeded"}"#), LimitKind::Rate);
        assert_eq!(limit_kind(br#"{"message":"Concurrency limit reached"}"#), LimitKind::Concurrency);
        assert_eq!(limit_kind(b"not json"), LimitKind::Rate);
    }

    #[test]
    fn observes_only_held_terminal_generations() {
        let list =
            br#"[{"id":"a","status":"COMPLETED"},{"id":"b","status":"PROCESSING"},{"id":"c","status":"FAILED"}]"#;
        let held = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            observed(list, &held),
            Some(Command::Observe {
                generations: vec![Observed { id: "a".into(), status: GenerationStatus::Completed, output_ms: None }]
            })
        );
        assert_eq!(observed(list, &[]), None);
        assert_eq!(created_id(br#"{"id":"g9"}"#).as_deref(), Some("g9"));
    }
}
