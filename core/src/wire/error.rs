//! Every way a request can fail, and its HTTP mapping, in one place.
//! Bodies use Sync's error shape (`statusCode`, `errorCode`, `message`,
//! `error`) so SDKs that branch on `errorCode` keep working. Messages never
//! contain a key or a secret.

use serde::Serialize;

use crate::admission::request::{Reason, Rejection};
use crate::auth::keys::AuthError;
use crate::config::vars::ConfigError;
use crate::wire::contract::Refusal;

#[derive(Clone, Debug, PartialEq)]
pub enum GovernorError {
    Unauthorized(AuthError),
    /// An admin route without the right `GOVERNOR_ADMIN_KEY`.
    AdminUnauthorized,
    /// The route exists; what it names does not (a ticket, a permit).
    Unknown(&'static str),
    OriginNotAllowed,
    /// A client asked for another client's ledger rows.
    OtherClientsRows,
    NotFound,
    MethodNotAllowed,
    AmbiguousPath,
    BadRequest(String),
    BadWebhook(&'static str),
    /// A `Prefer: respond-async` body past the queued-body cap.
    QueuedBodyTooLarge {
        limit: u64,
    },
    PayloadTooLarge {
        limit: u64,
    },
    Limited(Rejection),
    Conflict(String),
    /// The same `Idempotency-Key` is still on its way to Sync: retry after this.
    InProgress {
        retry_after_ms: u64,
    },
    Upstream(String),
    /// Sync did not answer within its time box (`UPSTREAM_TIMEOUT_*_MS`).
    UpstreamTimeout {
        ms: u64,
    },
    /// The account's object or its storage cannot answer now: try again.
    Unavailable(String),
    /// The account's object was reached and failed on this request (its
    /// writes rolled back): nothing was decided. Unlike [`Self::Unavailable`]
    /// never a reason to forward undecided (`FAIL_MODE=open`).
    Failed(String),
    Misconfigured(ConfigError),
    Internal(String),
}

impl GovernorError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) | Self::BadWebhook(_) | Self::AdminUnauthorized => 401,
            Self::Limited(r) if matches!(r.reason, Reason::Paused | Reason::CostUnknown) => 503,
            Self::OriginNotAllowed | Self::OtherClientsRows => 403,
            Self::NotFound | Self::Unknown(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::BadRequest(_) | Self::AmbiguousPath => 400,
            Self::PayloadTooLarge { .. } | Self::QueuedBodyTooLarge { .. } => 413,
            Self::Limited(_) => 429,
            Self::Conflict(_) | Self::InProgress { .. } => 409,
            Self::Upstream(_) => 502,
            Self::UpstreamTimeout { .. } => 504,
            Self::Unavailable(_) | Self::Failed(_) => 503,
            Self::Misconfigured(_) | Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(AuthError::Missing) => "missing_api_key",
            Self::Unauthorized(AuthError::Unknown) => "invalid_api_key",
            Self::AdminUnauthorized => "admin_unauthorized",
            Self::Limited(r) if r.reason == Reason::Paused => "account_paused",
            Self::Limited(r) if r.reason == Reason::BudgetExhausted => "budget_exhausted",
            Self::Limited(r) if r.reason == Reason::CostUnknown => "cost_unknown",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::OtherClientsRows => "forbidden",
            Self::NotFound | Self::Unknown(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest(_) => "invalid_request",
            Self::AmbiguousPath => "ambiguous_path",
            Self::BadWebhook(_) => "invalid_webhook",
            Self::PayloadTooLarge { .. } | Self::QueuedBodyTooLarge { .. } => "payload_too_large",
            Self::Limited(r) if r.reason == Reason::Concurrency => "concurrency_limit_exceeded",
            Self::Limited(r) if r.reason == Reason::QueueFull => "queue_full",
            Self::Limited(r) if r.reason == Reason::LineFull => "line_full",
            Self::Limited(r) if r.reason == Reason::IdempotencyFull => "idempotency_store_full",
            Self::Conflict(_) => "conflict",
            Self::InProgress { .. } => "idempotency_key_in_progress",
            Self::Limited(_) => "rate_limit_exceeded",
            Self::Upstream(_) => "upstream_unavailable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::Unavailable(_) | Self::Failed(_) => "governor_unavailable",
            Self::Misconfigured(_) => "governor_misconfigured",
            Self::Internal(_) => "governor_internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Unauthorized(AuthError::Missing) => "missing API key: send it in x-api-key".into(),
            Self::Unauthorized(AuthError::Unknown) => "unknown API key".into(),
            Self::AdminUnauthorized => "admin routes need the admin key (GOVERNOR_ADMIN_KEY)".into(),
            Self::OriginNotAllowed => "this origin is not allowed (ALLOWED_ORIGINS)".into(),
            Self::OtherClientsRows => "a client key sees its own ledger rows only".into(),
            Self::NotFound => "no such route: the governor serves /v2/* and /governor/v1/*".into(),
            Self::Unknown(what) => format!("no such {what}"),
            Self::MethodNotAllowed => "method not allowed on this route".into(),
            Self::BadRequest(m) => m.clone(),
            Self::AmbiguousPath => "ambiguous path: empty segments, ';' parameters, dot segments, backslashes and \
                                    needless percent-escapes (%2F, %2E, %5C, ...) are refused; \
                                    spell the route plainly"
                .into(),
            Self::BadWebhook(m) => (*m).to_owned(),
            Self::PayloadTooLarge { limit } => format!("body larger than {limit} bytes"),
            Self::QueuedBodyTooLarge { limit } => format!(
                "a queued body (Prefer: respond-async) is at most {limit} bytes; send it without respond-async, or smaller"
            ),
            Self::Limited(r) => match r.reason {
                Reason::Rate => format!("rate limit of policy '{}' ({} per window) reached", r.policy, r.limit),
                Reason::Concurrency => format!("all {} concurrent generation slots are in use", r.limit),
                Reason::UpstreamBackoff => format!("Sync answered 429 for '{}'; pausing that class", r.policy),
                Reason::QueueFull if r.policy == "queue_bytes" => {
                    format!("the account's queue is full ({} bytes of queued bodies)", r.limit)
                }
                Reason::QueueFull => format!("the account's queue is full ({} jobs)", r.limit),
                Reason::Paused => "the account is paused by its operator; queued and held work waits".into(),
                Reason::LineFull => format!(
                    "more than {} requests are waiting in the account's line; retry later",
                    crate::admission::shed::MAX_AHEAD
                ),
                Reason::BudgetExhausted => format!(
                    "the cost budget '{}' cannot cover this generation's estimate; it renews at {}",
                    r.policy,
                    crate::time::rfc3339(r.retry_at_ms)
                ),
                Reason::CostUnknown => "a cost budget applies but this generation's cost cannot be estimated \
                                        (Sync's estimate did not answer, no completed job of this model, no PRICES entry)"
                    .into(),
                Reason::IdempotencyFull => format!(
                    "the account's idempotency store is full (policy '{}', bound {}); retry without Idempotency-Key or later",
                    r.policy, r.limit
                ),
            },
            Self::Conflict(m) => m.clone(),
            Self::InProgress { .. } => "a request with this Idempotency-Key is still in progress".into(),
            Self::Upstream(m) => format!("Sync could not be reached: {m}"),
            Self::UpstreamTimeout { ms } => format!(
                "Sync did not answer within {ms} ms; a create may still have been taken (retry with the same \
                 Idempotency-Key, or read GET /v2/generations)"
            ),
            Self::Unavailable(m) => format!("the account is unavailable, retry shortly: {m}"),
            Self::Failed(m) => format!("the account could not decide this request, retry shortly: {m}"),
            Self::Misconfigured(e) => e.to_string(),
            Self::Internal(m) => format!("internal error: {m}"),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        let mut body = ErrorBody {
            status_code: status,
            error_code: self.code(),
            message: self.message(),
            error: reason_phrase(status),
            retry_after_ms: None,
            policy: None,
            limit: None,
        };
        if let Self::InProgress { retry_after_ms } = self {
            body.retry_after_ms = Some(*retry_after_ms);
        }
        if let Self::Limited(r) = self {
            body.retry_after_ms = Some(r.retry_after_ms);
            body.policy = Some(r.policy.clone());
            body.limit = Some(r.limit);
        }
        body
    }
}

/// An error's JSON body: Sync's error shape, plus the retry time and the
/// policy for a refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub status_code: u16,
    pub error_code: &'static str,
    pub message: String,
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

/// What the account refused, as the client hears it.
impl From<Refusal> for GovernorError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownTicket => GovernorError::Unknown("ticket"),
            Refusal::AlreadySubmitted => {
                GovernorError::Conflict("the job was already submitted to Sync and cannot be canceled".into())
            }
            Refusal::InProgress { retry_after_ms } => GovernorError::InProgress { retry_after_ms },
            Refusal::StorageUnavailable => GovernorError::Failed("the account's storage could not be read".into()),
            Refusal::NotFound => GovernorError::Unknown("permit"),
            Refusal::Invalid(m) => GovernorError::BadRequest(m),
            Refusal::BodyTooLarge { limit } => GovernorError::QueuedBodyTooLarge { limit },
        }
    }
}

impl From<ConfigError> for GovernorError {
    fn from(e: ConfigError) -> Self {
        Self::Misconfigured(e)
    }
}

impl From<AuthError> for GovernorError {
    fn from(e: AuthError) -> Self {
        Self::Unauthorized(e)
    }
}

impl From<crate::ledger::QueryError> for GovernorError {
    fn from(e: crate::ledger::QueryError) -> Self {
        match e {
            crate::ledger::QueryError::OtherClient => GovernorError::OtherClientsRows,
            crate::ledger::QueryError::Invalid { param, problem } => {
                GovernorError::BadRequest(format!("ledger query parameter '{param}' {problem}"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
