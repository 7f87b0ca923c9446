//! The Worker's calls into an account's object, typed: one request type per
//! call, and its reply type known at compile time ([`Call::Reply`]), so a
//! caller matches exactly the answers its call can get. The object's own
//! events (the alarm, dispatch, listings, deliveries) are not calls: they
//! never cross the wire (see [`crate::driver`]).
//!
//! On the wire a call is the [`Command`] JSON the object decodes, and a
//! reply is the [`crate::wire::contract::Reply`] JSON it encodes; a reply type here
//! reads the variants its call can produce (views the Worker only passes on
//! stay raw text). Any call can be refused for reasons outside capacity
//! (storage unavailable, an unknown ticket): every reply type has `Refused`.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::admission::idempotency::Replay;
use crate::admission::request::{AdmitRequest, Admitted, Rejection};
use crate::ids::GenerationId;
use crate::ids::TicketId;
use crate::ledger::encode::LedgerPage;
use crate::operations::admin::AdminCommand;
use crate::operations::prometheus::MetricsView;
use crate::wire::contract::{Command, Refusal};

/// A call into the account's object and the reply it gets.
pub trait Call {
    type Reply: DeserializeOwned;
    /// The command the object applies.
    fn command(&self) -> Command;
}

/// May this request go to Sync now (`Command::Admit`)?
pub struct Admit<'a>(pub &'a AdmitRequest);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmitReply {
    Admitted(Admitted),
    Rejected(Rejection),
    /// A [`crate::queue::job::TicketView`]'s JSON.
    Queued(Box<RawValue>),
    Replay(Replay),
    Refused(Refusal),
}

impl Call for Admit<'_> {
    type Reply = AdmitReply;
    fn command(&self) -> Command {
        Command::Admit(self.0.clone())
    }
}

/// What Sync's answer (or its end) means for the account: `Bind`,
/// `Release`, `Unsettled`, `Observe`, `UpstreamLimited`, `Webhook`, `Unhold`,
/// and the batch lane's `BatchCreated` / `BatchesSeen`.
/// Built only from those commands ([`Settle::new`]).
pub struct Settle(Command);

impl Settle {
    pub fn new(command: Command) -> Option<Settle> {
        let settles = matches!(
            command,
            Command::Bind { .. }
                | Command::Release { .. }
                | Command::Unsettled { .. }
                | Command::Observe { .. }
                | Command::UpstreamLimited { .. }
                | Command::Webhook { .. }
                | Command::Callback { .. }
                | Command::Unhold { .. }
                | Command::BatchCreated { .. }
                | Command::BatchesSeen { .. }
        );
        settles.then_some(Settle(command))
    }

    /// Sync's answer to the create holding `permit` is unknown.
    pub fn unsettled(permit: crate::lifecycle::permits::PermitId) -> Settle {
        Settle(Command::Unsettled { permit })
    }

    /// A held request gave up its place.
    pub fn unhold(ticket: u64, reason: Option<crate::admission::request::Reason>) -> Settle {
        Settle(Command::Unhold { ticket, reason })
    }

    /// A verified webhook from Sync.
    pub fn webhook(
        generation: GenerationId,
        status: crate::lifecycle::status::GenerationStatus,
        relay: Option<crate::relay::delivery::RelayRequest>,
        output_ms: Option<crate::Ms>,
    ) -> Settle {
        Settle(Command::Webhook { generation, status, relay, output_ms })
    }

    /// A webhook on a callback URL bound to one create (see [`crate::lifecycle::callback`]).
    pub fn callback(
        callback: TicketId,
        generation: GenerationId,
        status: crate::lifecycle::status::GenerationStatus,
        relay: Option<crate::relay::delivery::RelayRequest>,
        output_ms: Option<crate::Ms>,
    ) -> Settle {
        Settle(Command::Callback { callback, generation, status, relay, output_ms })
    }
}

/// Sync accepted the account's key (`Command::KeyAccepted`): a provisional
/// account becomes a real one ([`crate::driver::provisional`]).
pub struct KeyAccepted;

impl Call for KeyAccepted {
    type Reply = SettleReply;
    fn command(&self) -> Command {
        Command::KeyAccepted
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleReply {
    Ack {
        released: u32,
    },
    /// A Sync 429 became the governor's own refusal (`UpstreamLimited`).
    Rejected(Rejection),
    Refused(Refusal),
}

impl Call for Settle {
    type Reply = SettleReply;
    fn command(&self) -> Command {
        self.0.clone()
    }
}

/// The account's status (`GET /governor/v1/status`, the admin account view).
pub struct Status;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReply {
    /// A [`crate::wire::view::StatusView`]'s JSON.
    Status(Box<RawValue>),
    Refused(Refusal),
}

impl Call for Status {
    type Reply = StatusReply;
    fn command(&self) -> Command {
        Command::Status
    }
}

/// Read a ticket, or cancel it (`client`: managed mode's owner check).
pub struct Ticket {
    pub ticket: TicketId,
    pub client: Option<String>,
    pub cancel: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketReply {
    /// A [`crate::queue::job::TicketView`]'s JSON.
    Ticket(Box<RawValue>),
    Refused(Refusal),
}

impl Call for Ticket {
    type Reply = TicketReply;
    fn command(&self) -> Command {
        let (ticket, client) = (self.ticket.clone(), self.client.clone());
        if self.cancel {
            Command::Cancel { ticket, client }
        } else {
            Command::Ticket { ticket, client }
        }
    }
}

/// An operator's command (the admin API), metrics aside ([`Metrics`]).
pub struct Admin(pub AdminCommand);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminReply {
    /// The body of the admin response ([`crate::operations::admin::AdminReply`]'s JSON).
    Admin(Box<RawValue>),
    /// A canceled job's ticket view.
    Ticket(Box<RawValue>),
    Refused(Refusal),
}

impl Call for Admin {
    type Reply = AdminReply;
    fn command(&self) -> Command {
        Command::Admin(self.0.clone())
    }
}

/// The account's metrics, for the Worker to render.
pub struct Metrics;

// A reply, moved once (as `Reply` is).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsReply {
    Metrics(MetricsView),
    Refused(Refusal),
}

impl Call for Metrics {
    type Reply = MetricsReply;
    fn command(&self) -> Command {
        Command::Admin(AdminCommand::Metrics)
    }
}

/// A page of the job ledger (`query` as the client gave it; `client`: its own rows only).
pub struct Ledger {
    pub query: String,
    pub client: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerReply {
    Ledger(LedgerPage),
    Refused(Refusal),
}

impl Call for Ledger {
    type Reply = LedgerReply;
    fn command(&self) -> Command {
        Command::Ledger { query: self.query.clone(), client: self.client.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::contract::Reply;

    fn wire<C: Call>(reply: &Reply) -> C::Reply {
        crate::wire::json::from_str(&serde_json::to_string(reply).expect("encode"))
            .expect("the call's reply type reads it")
    }

    #[test]
    fn every_reply_a_call_gets_reads_as_its_type() {
        let refused = Reply::Refused(Refusal::StorageUnavailable);
        assert!(matches!(wire::<Admit>(&Reply::Admitted(Admitted::default())), AdmitReply::Admitted(_)));
        assert!(matches!(wire::<Admit>(&refused), AdmitReply::Refused(_)));
        assert!(matches!(wire::<Settle>(&Reply::Ack { released: 1 }), SettleReply::Ack { released: 1 }));
        assert!(matches!(wire::<Status>(&refused), StatusReply::Refused(_)));
        assert!(matches!(wire::<Ticket>(&Reply::Refused(Refusal::UnknownTicket)), TicketReply::Refused(_)));
        assert!(matches!(wire::<Admin>(&refused), AdminReply::Refused(_)));
    }

    #[test]
    fn a_settle_is_built_only_from_settling_commands() {
        assert!(Settle::new(Command::Release { permit: crate::ids::PermitId(1) }).is_some());
        assert!(Settle::new(Command::Status).is_none());
        assert!(Settle::new(Command::Tick).is_none());
    }
}
