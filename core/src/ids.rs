//! Ids as types, not bare integers or strings: a concurrency permit's
//! ([`PermitId`]), a queue ticket's ([`TicketId`]) and a Sync generation's
//! ([`GenerationId`]).
//!
//! Each is `#[serde(transparent)]`: a stored row, a wire body and the
//! simulation's persisted state hold exactly the bytes they held when these
//! were a `u64` and `String`s, so old state loads unchanged. Reading one
//! back from storage never checks it (a stored id was checked when it
//! entered). Where a hostile id enters, it is checked here, once:
//! [`TicketId::parse`] for a ticket a caller names or hands in,
//! [`is_sync_id`] for an id read out of Sync's batch answers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A concurrency permit, numbered by the account (see
/// [`crate::lifecycle::permits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermitId(pub u64);

impl PermitId {
    /// The id after this one.
    pub fn next(self) -> PermitId {
        PermitId(self.0.saturating_add(1))
    }
}

impl fmt::Display for PermitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A queue ticket: `tk_` and 32 hex digits when the Worker drew it
/// ([`TicketId::random`]); older state and the core's own numbering
/// (a held request without one) also hold `tk_<now>_<seq>` shapes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(String);

impl TicketId {
    /// A ticket id from 128 random bits the caller drew: unguessable, and
    /// inside Sync's `Idempotency-Key` alphabet once prefixed.
    pub fn random(random: [u8; 16]) -> TicketId {
        TicketId(format!("tk_{}", hex::encode(random)))
    }

    /// The core's own number for a held request that came without one.
    pub fn numbered(now: crate::Ms, seq: u64) -> TicketId {
        TicketId(format!("tk_{now:x}_{seq:x}"))
    }

    /// A ticket id a caller hands in for its request: only one of
    /// [`TicketId::random`]'s shape.
    pub fn parse(id: &str) -> Option<TicketId> {
        is_random(id).then(|| TicketId(id.to_owned()))
    }

    /// Is this one of [`TicketId::random`]'s shape (a ticket handed in
    /// through the contract is checked again before it names a job)?
    pub fn is_random(&self) -> bool {
        is_random(&self.0)
    }

    /// A ticket a caller names in a path (`/governor/v1/queue/{ticket}`):
    /// any one segment, looked up as it is (an unknown one is
    /// `unknown_ticket`).
    pub fn from_path(segment: &str) -> Option<TicketId> {
        (!segment.is_empty() && !segment.contains('/')).then(|| TicketId(segment.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_random(id: &str) -> bool {
    id.strip_prefix("tk_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A generation id as Sync named it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GenerationId(String);

impl GenerationId {
    /// A generation id out of one of Sync's answers (a create, a listing, a
    /// webhook). Taken as Sync spelled it: refusing an odd one would lose
    /// track of a generation that holds a slot.
    pub fn new(id: impl Into<String>) -> GenerationId {
        GenerationId(id.into())
    }

    /// A generation id read from a batch's result line: only one
    /// [`is_sync_id`] accepts.
    pub fn parse(id: &str) -> Option<GenerationId> {
        is_sync_id(id).then(|| GenerationId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GenerationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Conversions and comparisons with plain text, for the string types the
/// ids used to be (tests, stored rows read by hand, the Worker's own ids).
macro_rules! text_id {
    ($id:ident) => {
        impl From<&str> for $id {
            fn from(s: &str) -> Self {
                $id(s.to_owned())
            }
        }
        impl From<String> for $id {
            fn from(s: String) -> Self {
                $id(s)
            }
        }
        impl PartialEq<str> for $id {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $id {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl AsRef<str> for $id {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
text_id!(TicketId);
text_id!(GenerationId);

impl From<u64> for PermitId {
    fn from(n: u64) -> Self {
        PermitId(n)
    }
}

/// Does an id read out of Sync's batch answers look like an id (1 to 128
/// bytes of `[A-Za-z0-9-_.~]`)?
pub fn is_sync_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

#[cfg(test)]
mod tests;
