//! Provisional accounts (issue 19 finding 5). In pass-through mode any key
//! names an account, so an account is only real once Sync has accepted its
//! key: until then the driver keeps the account's tables in memory (this),
//! arms no alarm and writes nothing durable, so a key Sync refuses leaves
//! no state behind once its object is evicted. The first answer of Sync that
//! accepts the key ([`accepts_key`], sent by the Worker as
//! `Command::KeyAccepted`) writes the tables out ([`Provisional::replay`]) and
//! the account is real from then on, as it is after an operator's command
//! that changes it ([`makes_real`]). Managed accounts are configured, so
//! never provisional.
//!
//! Bounded: the tables in memory are the same bounded tables (queue depth and
//! bytes, idempotency, ledger, outbox), and they live only as long as the
//! object's instance, which the runtime evicts when idle.

use std::collections::BTreeMap;

use crate::operations::admin::AdminCommand;
use crate::storage::mem::MemStore;
use crate::storage::store::Write;
use crate::wire::contract::Command;

/// Does Sync's answer to a forwarded request show that it accepted the key?
/// A success or a redirect, or a client error other than an authentication
/// refusal (401, 403, 407) or a 429 (which may come before authentication:
/// the riskier reading). Server errors prove nothing.
pub fn accepts_key(status: u16) -> bool {
    (200..400).contains(&status) || ((400..500).contains(&status) && !matches!(status, 401 | 403 | 407 | 429))
}

/// Does the directory hear of the account after Sync answered `status` to a
/// request whose admission said an announcement is `due`? Only of accounts
/// Sync knows: never while the key is `unproven` (this answer did not accept
/// it: a 5xx or a 429 proves nothing), never on an authentication refusal,
/// so throwaway keys cannot push real accounts out of the bounded directory.
pub fn announces(due: bool, unproven: bool, status: u16) -> bool {
    due && !unproven && !matches!(status, 401 | 403 | 407)
}

/// Does this command make a provisional account real by itself? An
/// operator's command that changes the account (the admin key is trusted:
/// a pause, limits, budgets set before the account's first request must
/// outlive its object); reading its queue or its metrics does not. So does
/// a webhook on a callback token (or a Sync-signed webhook): the Worker
/// verified the token against the deployment's key, so this deployment
/// minted it for a create Sync accepted, and its relay (retries, the alarm)
/// must outlive the object, as after a runtime that lost the account's
/// instance or a deployment moved to a new store.
pub fn makes_real(command: &Command) -> bool {
    match command {
        Command::Admin(c) => !matches!(c, AdminCommand::Metrics | AdminCommand::Queue),
        Command::Webhook { .. } | Command::Callback { .. } => true,
        _ => false,
    }
}

/// The account's tables while its key is unproven.
#[derive(Debug, Default)]
pub struct Provisional {
    store: MemStore,
    /// The meta rows as last written (their keys are the core's names).
    meta: BTreeMap<&'static str, String>,
}

impl Provisional {
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    pub fn write(&mut self, writes: &[Write]) {
        for w in writes {
            if let Write::Meta { key, value } = w {
                self.meta.insert(key, value.clone());
            }
        }
        self.store.write(writes);
    }

    /// Every row held, as writes into empty tables.
    pub fn replay(&self) -> Vec<Write> {
        let s = &self.store;
        let mut out: Vec<Write> =
            self.meta.iter().map(|(key, value)| Write::Meta { key, value: value.clone() }).collect();
        for ((class, at), n) in &s.admissions {
            out.extend((0..*n).map(|_| Write::Admission { class: class.clone(), at: *at }));
        }
        out.extend(s.permits.values().cloned().map(Write::PutPermit));
        out.extend(s.idempotency.values().cloned().map(Write::PutIdempotency));
        out.extend(s.jobs.values().cloned().map(Write::PutJob));
        out.extend(
            s.job_bodies.iter().map(|(ticket, body)| Write::PutJobBody { ticket: ticket.clone(), body: body.clone() }),
        );
        out.extend(s.outbox.values().cloned().map(Write::PutDelivery));
        out.extend(s.relayed.iter().map(|((generation, status), at)| Write::PutRelayed {
            generation: generation.clone(),
            status: status.clone(),
            at: *at,
        }));
        out.extend(s.ledger.0.values().map(|r| Write::Ledger(crate::ledger::LedgerWrite::Put(Box::new(r.clone())))));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rates::class::RateClass;

    #[test]
    fn only_answers_past_authentication_accept_a_key() {
        for s in [200, 201, 204, 302, 400, 404, 409, 413, 422] {
            assert!(accepts_key(s), "{s}");
        }
        for s in [401, 403, 407, 429, 500, 502, 503, 100] {
            assert!(!accepts_key(s), "{s}");
        }
    }

    #[test]
    fn only_known_keys_are_announced() {
        assert!(announces(true, false, 200));
        assert!(announces(true, false, 503), "a real account's key is known whatever Sync answers now");
        for s in [401, 403, 407] {
            assert!(!announces(true, false, s), "{s}");
        }
        for s in [200, 429, 503] {
            assert!(!announces(true, true, s), "unproven: {s}");
        }
        assert!(!announces(false, false, 200), "not due");
    }

    #[test]
    fn the_replay_rebuilds_the_same_tables() {
        let mut p = Provisional::default();
        let writes = vec![
            Write::Meta { key: "seq", value: "1".into() },
            Write::Meta { key: "seq", value: "2".into() },
            Write::Admission { class: RateClass::Generate, at: 5 },
            Write::Admission { class: RateClass::Generate, at: 5 },
            Write::Admission { class: RateClass::Other, at: 7 },
            Write::PruneAdmissions { class: RateClass::Other, before: 8 },
            Write::PutJobBody { ticket: "t".into(), body: "{}".into() },
        ];
        p.write(&writes);
        let mut rebuilt = MemStore::default();
        rebuilt.write(&p.replay());
        assert_eq!(&rebuilt, p.store());
        assert_eq!(rebuilt.meta.get("seq").map(String::as_str), Some("2"));
    }
}
