//! What a Sync response tells the account's object: a created generation
//! binds its permit, a refusal frees it, a 429 teaches backoff, and any
//! generation seen in a terminal status frees its permit at once.

use crate::admission::idempotency::{IdempotencyKey, Replay};
use crate::ids::GenerationId;
use crate::lifecycle::answer::{one_or_many, read_create, CreateAnswer, OneOrMany};
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::status::GenerationStatus;
use crate::lifecycle::status::Observed;
use crate::rates::class::RateClass;
use crate::wire::contract::Command;

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

/// Terminal statuses in a generation or list response of generations the
/// account holds permits for (`held`), if any.
pub fn observed(body: &[u8], held: &[GenerationId]) -> Option<Command> {
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
    use crate::ids::PermitId;
    use crate::lifecycle::answer::created_id;
    use crate::lifecycle::limited::{limit_kind, LimitKind};

    #[test]
    fn create_outcomes() {
        let body = br#"{"id":"g1","status":"PENDING"}"#;
        assert_eq!(
            after_create(PermitId(7), 201, body, None, None),
            Some(Command::Bind { permit: PermitId(7), generation: "g1".into(), replay: None })
        );
        assert_eq!(
            after_create(PermitId(7), 201, b"{}", None, None),
            Some(Command::Unsettled { permit: PermitId(7) }),
            "2xx without an id"
        );
        for status in [500, 502, 503, 504] {
            assert_eq!(
                after_create(PermitId(7), status, b"{}", None, None),
                Some(Command::Unsettled { permit: PermitId(7) }),
                "{status}"
            );
        }
        assert_eq!(after_create(PermitId(7), 400, b"{}", None, None), Some(Command::Release { permit: PermitId(7) }));
        let busy = br#"{"statusCode":429,"errorCode":"concurrency_limit_exceeded"}"#;
        assert!(matches!(
            after_create(PermitId(7), 429, busy, Some(2_000), None),
            Some(Command::UpstreamLimited { kind: LimitKind::Concurrency, retry_after_ms: Some(2_000), .. })
        ));
        let key = IdempotencyKey { client: "c".into(), key: "k".into() };
        let Some(Command::Bind { replay: Some(r), .. }) = after_create(PermitId(7), 201, body, None, Some(key)) else {
            panic!()
        };
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
        let held: Vec<GenerationId> = vec!["a".into(), "b".into()];
        assert_eq!(
            observed(list, &held),
            Some(Command::Observe {
                generations: vec![Observed { id: "a".into(), status: GenerationStatus::Completed, output_ms: None }]
            })
        );
        assert_eq!(observed(list, &[]), None);
        assert_eq!(created_id(br#"{"id":"g9"}"#).as_ref().map(GenerationId::as_str), Some("g9"));
    }
}
