//! The typed contract for every call into an account's Durable Object.
//!
//! The Worker sends one JSON-encoded [`Command`] per call and gets one
//! [`Reply`]; the object decodes, applies the command to its state through
//! [`crate::account::apply`], persists, and encodes the reply. No path
//! strings, no ad-hoc bodies.

use serde::{Deserialize, Serialize};

use crate::admission::idempotency::Replay;
use crate::admission::request::AdmitRequest;
use crate::admission::request::Admitted;
use crate::admission::request::Reason;
use crate::admission::request::Rejection;
use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::ledger::encode::LedgerPage;
use crate::lifecycle::limited::LimitKind;
use crate::lifecycle::permits::PermitId;
use crate::lifecycle::reconcile::ActiveGeneration;
use crate::lifecycle::status::GenerationStatus;
use crate::lifecycle::status::Observed;
use crate::queue::job::Blocked;
use crate::queue::job::DispatchJob;
use crate::queue::job::DispatchOutcome;
use crate::queue::job::TicketView;
use crate::rates::class::RateClass;
use crate::relay::delivery::Attempt;
use crate::relay::delivery::RelayRequest;
use crate::wire::view::StatusView;
use crate::Ms;

/// A call into the account's object. Only the calls the Worker makes
/// travel as JSON; the object's own (alarm work, reconciliation, dispatch)
/// are `#[serde(skip)]`: no encoder or decoder is built for them.
// A message, built once and moved into `apply` once: boxing its large
// variants would add an allocation per call for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// May a request of `class` go to Sync now? For `POST /v2/generate`,
    /// `permit` asks for a concurrency permit too (all or nothing).
    Admit(AdmitRequest),
    /// Sync created `generation` for the request holding `permit`; with a
    /// client `Idempotency-Key`, Sync's answer is kept for replays.
    Bind {
        permit: PermitId,
        generation: GenerationId,
        #[serde(default)]
        replay: Option<Replay>,
    },
    /// Sync refused the request holding `permit` (nothing was created): free it.
    Release { permit: PermitId },
    /// Sync's answer to the create holding `permit` is unknown (5xx, timeout,
    /// a dropped connection, a 2xx without an id): the generation may exist.
    /// The permit stays until a reconciliation listing begun later shows
    /// what Sync has (the generation is then adopted if active), or its TTL.
    Unsettled { permit: PermitId },
    /// Generation statuses seen in responses passing through.
    Observe { generations: Vec<Observed> },
    /// Sync answered the batch create holding batch permit `permit`.
    BatchCreated {
        permit: crate::batch::BatchPermitId,
        answer: crate::batch::CreateAnswer,
        #[serde(default)]
        retry_after_ms: Option<Ms>,
    },
    /// Batches seen in a read or list passing through (or a batch webhook).
    BatchesSeen { batches: Vec<crate::batch::SeenBatch> },
    /// Sync answered 429 to a request the governor admitted.
    UpstreamLimited { class: RateClass, kind: LimitKind, permit: Option<PermitId>, retry_after_ms: Option<Ms> },
    /// A verified webhook from Sync: free the generation's permit and, if
    /// the client gave its own `webhookUrl`, queue the payload for it.
    Webhook {
        generation: GenerationId,
        status: GenerationStatus,
        relay: Option<RelayRequest>,
        /// The payload's `outputDuration`, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_ms: Option<u64>,
    },
    /// A webhook on a callback URL bound to one create (its token names
    /// `callback`): refused unless the payload's generation is that
    /// create's; deduplicated per callback (see [`crate::lifecycle::callback`]).
    Callback {
        callback: TicketId,
        generation: GenerationId,
        status: GenerationStatus,
        relay: Option<RelayRequest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_ms: Option<u64>,
    },
    /// The object listed Sync's active generations (the listing began at
    /// `listed_from`; `complete` is false when paging stopped early), and
    /// looked up the final status of those that ended unseen (`ended`).
    #[serde(skip)]
    Reconciled {
        listed_from: Ms,
        active: Vec<ActiveGeneration>,
        complete: bool,
        #[serde(default)]
        ended: Vec<Observed>,
    },
    /// The listing could not run; try again at `retry_at`.
    #[serde(skip)]
    ReconcileFailed { retry_at: Ms },
    /// Begin a reconciliation run: the reply says what to fetch first.
    #[serde(skip)]
    ListStart,
    /// How fetching the page the core asked for went.
    #[serde(skip)]
    Listed { page: crate::lifecycle::pages::ListedPage },
    /// The final statuses the core asked for.
    #[serde(skip)]
    LookedUp { ended: Vec<Observed> },
    /// One relay delivery attempt ended.
    #[serde(skip)]
    Delivered { id: u64, attempt: Attempt },
    /// A page of the job ledger. `query` was checked by the Worker
    /// ([`crate::ledger::LedgerQuery::parse`]); `client`: the caller's own
    /// rows only, `None` for every client's (the admin key, or the
    /// account's own Sync key in pass-through mode).
    Ledger { query: String, client: Option<String> },
    /// A held request gave up (client gone or deadline passed).
    Unhold {
        ticket: u64,
        /// Why the last attempt was refused (the request is counted as refused for it).
        #[serde(default)]
        reason: Option<Reason>,
    },
    /// The alarm asks for the next queued job to submit, if one may go now.
    #[serde(skip)]
    Dispatch,
    /// How submitting a queued job ended.
    #[serde(skip)]
    Dispatched { ticket: TicketId, permit: PermitId, outcome: DispatchOutcome },
    /// The batch lane's own steps ([`crate::batch::lane`]).
    #[serde(skip)]
    Lane(crate::batch::lane::LaneCommand),
    /// Queued work is ready but cannot be sent (`reason`): the queue backs
    /// off (exponentially, up to a cap) instead of waking the alarm at once.
    #[serde(skip)]
    DispatchBlocked { reason: Blocked },
    /// What blocked the queue is gone (a request brought the account's Sync
    /// key): queued work may go at once.
    #[serde(skip)]
    DispatchUnblocked,
    /// A queue ticket's state (`GET /governor/v1/queue/{ticket}`). With
    /// `client` (managed mode), a ticket of another client is unknown.
    Ticket {
        ticket: TicketId,
        #[serde(default)]
        client: Option<String>,
    },
    /// Cancel a ticket not yet submitted (`DELETE /governor/v1/queue/{ticket}`);
    /// `client` as for `Ticket`.
    Cancel {
        ticket: TicketId,
        #[serde(default)]
        client: Option<String>,
    },
    /// The alarm fired: expire leases.
    #[serde(skip)]
    Tick,
    /// Sync accepted the account's key (pass-through mode): a provisional
    /// account's tables are written out ([`crate::driver::provisional`]).
    KeyAccepted,
    /// The account's state for `GET /governor/v1/status`.
    Status,
    /// An operator's command (the admin API).
    Admin(crate::operations::admin::AdminCommand),
}

/// The object's answer. Encoded by the object only: the Worker reads it as
/// the reply type of its call ([`crate::wire::calls`], the same JSON), which keeps
/// the views it only passes on as raw text, so it carries no decoder for them.
#[allow(clippy::large_enum_variant)] // a message, moved once (see `Command`)
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Admitted(Admitted),
    Rejected(Rejection),
    Ack {
        released: u32,
    },
    Status(StatusView),
    /// The job was queued (or an idempotent retry found its ticket).
    Queued(TicketView),
    Ticket(TicketView),
    /// A retried `Idempotency-Key`: Sync's original answer.
    Replay(Replay),
    /// The queue has a job to submit now.
    #[serde(skip)]
    Dispatch(DispatchJob),
    /// The request cannot be served as asked (unknown ticket, ...).
    Refused(Refusal),
    /// What a reconciliation run fetches next.
    #[serde(skip)]
    List(crate::lifecycle::pages::ListStep),
    /// What the batch lane does next.
    #[serde(skip)]
    Lane(crate::batch::lane::LaneStep),
    /// The answer to an operator's command: the body of its response.
    Admin(crate::operations::admin::AdminReply),
    /// The account's metrics, for the Worker to render.
    Metrics(Box<crate::operations::prometheus::MetricsView>),
    /// A page of the job ledger, encoded as asked.
    Ledger(LedgerPage),
}

/// A refusal that is not about capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    UnknownTicket,
    AlreadySubmitted,
    /// The same `Idempotency-Key` is still on its way to Sync; its outcome
    /// is expected within `retry_after_ms`.
    InProgress {
        retry_after_ms: Ms,
    },
    /// The account's storage could not be read; nothing was decided.
    StorageUnavailable,
    /// What the request names does not exist (a permit to release, ...).
    NotFound,
    /// The request's body is not what the command takes.
    Invalid(String),
    /// A body to queue is larger than a queued body may be
    /// ([`crate::queue::job::MAX_QUEUED_BODY_BYTES`]).
    BodyTooLarge {
        limit: u64,
    },
}
