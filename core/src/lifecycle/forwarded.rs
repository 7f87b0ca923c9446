//! Sync's answer to a request the governor admitted and forwarded, read in
//! one place: what it means for the account (bind, release, observe, a
//! batch's end, a 429) and whether the client's answer waits for that. The
//! Worker only reads the body when [`Forwarded::needs_body`] asks for it, and
//! sends what [`Forwarded::read`] returns.

use crate::admission::idempotency::IdempotencyKey;
use crate::batch::{self, BatchPermitId, CreateAnswer, SeenBatch};
use crate::ids::GenerationId;
use crate::lifecycle::limited::limit_kind;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::settle;
use crate::wire::contract::Command;
use crate::wire::path::canonical_path;
use crate::wire::route::{Proxy, ProxyKind};
use crate::Ms;

/// What the account admitted, as the answer's reader needs it.
#[derive(Clone, Debug)]
pub struct Forwarded {
    pub proxy: Proxy,
    pub permit: Option<PermitId>,
    /// The batch permit of a batch create.
    pub batch_permit: Option<BatchPermitId>,
    /// The batch whose result this read asks for (`/v2/batches/{id}/result`).
    pub batch_result: Option<String>,
    /// The client's `Idempotency-Key` of a create.
    pub idempotency: Option<IdempotencyKey>,
    /// Generations the account holds permits for, of the ones a read may show.
    pub in_flight: Vec<GenerationId>,
}

/// What the answer means for the account.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settlement {
    /// The command the answer means, if any.
    pub command: Option<Command>,
    /// After a bind: the generation already ended (Sync replayed an old one).
    pub ended: Option<Command>,
    /// A 429 of Sync's: the client's answer is the governor's own 429, so it
    /// waits for the account's reply.
    pub limited: bool,
    /// The generation a create bound (for the decision's log line).
    pub generation: Option<GenerationId>,
}

/// How an answer is read: one match decides both whether the body is needed
/// and what it means, so the two cannot disagree.
enum Reading {
    Create(PermitId),
    BatchCreate(BatchPermitId),
    /// A batch's result was served (behind its redirect): the batch ended.
    BatchEnded(String),
    /// A read of batches: the terminal ones end.
    Batches,
    /// A read of generations the account holds permits for.
    Generations,
    /// A 429 of Sync's.
    Limited,
    Nothing,
}

impl Reading {
    fn needs_body(&self) -> bool {
        !matches!(self, Reading::BatchEnded(_) | Reading::Nothing)
    }
}

impl Forwarded {
    fn reading(&self, status: u16) -> Reading {
        let (ok, redirect) = ((200..300).contains(&status), (300..400).contains(&status));
        match (&self.proxy.kind, self.permit, self.batch_permit) {
            (ProxyKind::Create, Some(permit), _) => Reading::Create(permit),
            (ProxyKind::BatchCreate, _, Some(permit)) => Reading::BatchCreate(permit),
            (ProxyKind::ReadsBatches, _, _) if redirect => {
                self.batch_result.clone().map_or(Reading::Nothing, Reading::BatchEnded)
            }
            (ProxyKind::ReadsBatches, _, _) if ok && self.batch_result.is_none() => Reading::Batches,
            (ProxyKind::ReadsGenerations, _, _) if ok && !self.in_flight.is_empty() => Reading::Generations,
            _ if status == 429 => Reading::Limited,
            _ => Reading::Nothing,
        }
    }

    /// Whether [`Forwarded::read`] needs the answer's body (else it is
    /// streamed to the client untouched and `read` gets an empty one).
    pub fn needs_body(&self, status: u16) -> bool {
        self.reading(status).needs_body()
    }

    /// What Sync's answer (`status`, the body if [`Forwarded::needs_body`],
    /// its `Retry-After` capped) means for the account.
    pub fn read(self, status: u16, body: &[u8], retry_after_ms: Option<Ms>) -> Settlement {
        let mut ended = None;
        let command = match self.reading(status) {
            Reading::Create(permit) => {
                ended = settle::ended_in_create(status, body);
                settle::after_create(permit, status, body, retry_after_ms, self.idempotency)
            }
            Reading::BatchCreate(permit) => {
                let answer = batch::answer::after_create(status, body);
                Some(Command::BatchCreated { permit, answer, retry_after_ms })
            }
            Reading::BatchEnded(id) => {
                Some(Command::BatchesSeen { batches: vec![SeenBatch { id, terminal: true, pending: Some(0) }] })
            }
            Reading::Batches => {
                let batches: Vec<SeenBatch> = batch::answer::seen(body).into_iter().filter(|b| b.terminal).collect();
                (!batches.is_empty()).then_some(Command::BatchesSeen { batches })
            }
            Reading::Generations => settle::observed(body, &self.in_flight),
            Reading::Limited => Some(Command::UpstreamLimited {
                class: self.proxy.class,
                kind: limit_kind(body),
                permit: None,
                retry_after_ms,
            }),
            Reading::Nothing => None,
        };
        let generation = match &command {
            Some(Command::Bind { generation, .. }) => Some(generation.clone()),
            _ => None,
        };
        let limited = matches!(
            command,
            Some(
                Command::UpstreamLimited { .. }
                    | Command::BatchCreated {
                        answer: CreateAnswer::ConcurrencyLimited | CreateAnswer::RateLimited,
                        ..
                    }
            )
        );
        Settlement { command, ended, limited, generation }
    }

    /// When the forward itself failed (no answer, or past its time box):
    /// Sync may have taken a create, so its permit waits for a listing to
    /// tell; a batch create's outcome is unknown too.
    pub fn unanswered(&self) -> Vec<Command> {
        let permit = self.permit.map(|permit| Command::Unsettled { permit });
        let batch = self.batch_permit.map(|permit| Command::BatchCreated {
            permit,
            answer: CreateAnswer::Unknown,
            retry_after_ms: None,
        });
        permit.into_iter().chain(batch).collect()
    }
}

/// `/v2/batches/{id}/result` (as Sync routes it): the batch id, as the
/// client spelled it (the canonical form is lower-cased).
pub fn batch_result_id(path: &str) -> Option<String> {
    let canonical = canonical_path(path).ok()?;
    let id = canonical.strip_prefix("/v2/batches/")?.strip_suffix("/result")?;
    let start = "/v2/batches/".len();
    path.get(start..start + id.len()).filter(|s| !s.is_empty() && !s.contains('/')).map(str::to_owned)
}

#[cfg(test)]
mod tests;
