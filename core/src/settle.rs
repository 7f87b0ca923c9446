//! What a Sync response tells the account's object: a created generation
//! binds its permit, a refusal frees it, a 429 teaches backoff, and any
//! generation seen in a terminal status frees its permit at once.

use crate::contract::{Command, IdempotencyKey, LimitKind, Observed, Replay};
use crate::permits::PermitId;
use crate::status::is_terminal;
use serde::Deserialize;

#[derive(Deserialize)]
struct Generation {
    id: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Generation),
    Many(Vec<Generation>),
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Which limit a Sync 429 body speaks of.
pub fn limit_kind(body: &[u8]) -> LimitKind {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let text = parsed
        .map(|b| format!("{} {}", b.error_code.unwrap_or_default(), b.message.unwrap_or_default()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    if text.contains("concurren") {
        LimitKind::Concurrency
    } else {
        LimitKind::Rate
    }
}

/// After `POST /v2/generate`: bind on 2xx (keeping the answer for a client
/// `Idempotency-Key`), or free the permit.
pub fn after_create(
    permit: PermitId,
    status: u16,
    body: &[u8],
    retry_after_ms: Option<u64>,
    key: Option<IdempotencyKey>,
) -> Command {
    if (200..300).contains(&status) {
        if let Ok(OneOrMany::One(g)) = serde_json::from_slice::<OneOrMany>(body) {
            let replay = key.map(|key| Replay { key, status, body: String::from_utf8_lossy(body).into_owned() });
            return Command::Bind { permit, generation: g.id, replay };
        }
        // 2xx without an id: keep the reservation until its TTL or until
        // reconciliation finds the generation; never guess it freed.
        return Command::Tick;
    }
    if status == 429 {
        return Command::UpstreamLimited {
            class: "generate".into(),
            kind: limit_kind(body),
            permit: Some(permit),
            retry_after_ms,
        };
    }
    Command::Release { permit }
}

/// The generation id in a create response.
pub fn created_id(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<OneOrMany>(body) {
        Ok(OneOrMany::One(g)) => Some(g.id),
        _ => None,
    }
}

/// Terminal statuses in a generation or list response of generations the
/// account holds permits for (`held`), if any.
pub fn observed(body: &[u8], held: &[String]) -> Option<Command> {
    let generations = match serde_json::from_slice::<OneOrMany>(body).ok()? {
        OneOrMany::One(g) => vec![g],
        OneOrMany::Many(v) => v,
    };
    let seen: Vec<Observed> = generations
        .into_iter()
        .filter(|g| held.contains(&g.id))
        .filter_map(|g| g.status.filter(|s| is_terminal(s)).map(|status| Observed { id: g.id, status }))
        .collect();
    (!seen.is_empty()).then_some(Command::Observe { generations: seen })
}
