//! The core's [`Store`] over the account's tables: every read the core makes.

use governor_core::ids::{GenerationId, TicketId};
use governor_core::lifecycle::permits::Permit;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::queue::job::Job;
use governor_core::rates::class::RateClass;
use governor_core::relay::delivery::Delivery;
use governor_core::storage::row::StoreResult;
use governor_core::storage::store::{IdempotencyRecord, Store};
use governor_core::Ms;

use super::store::SqlStore;
use super::values::{col_str, col_u64, int, text};

impl Store for SqlStore {
    fn meta(&self) -> StoreResult<Vec<(String, String)>> {
        self.rows("SELECT key, value FROM meta", Vec::new(), |r| Some((col_str(r, 0)?, col_str(r, 1)?)))
    }

    fn admissions(&self) -> StoreResult<Vec<(RateClass, Ms)>> {
        self.rows("SELECT class, at FROM admissions ORDER BY at", Vec::new(), |r| {
            Some((RateClass::from(col_str(r, 0)?), col_u64(r, 1)?))
        })
    }

    fn permits(&self) -> StoreResult<Vec<Permit>> {
        self.records("SELECT row FROM permits", Vec::new())
    }

    fn waiting_jobs(&self) -> StoreResult<Vec<Job>> {
        self.records("SELECT row FROM jobs WHERE waiting = 1", Vec::new())
    }

    fn outbox_schedule(&self) -> StoreResult<Vec<Delivery>> {
        self.rows("SELECT head, length(body) FROM outbox", Vec::new(), |r| {
            let mut d: Delivery = governor_core::wire::json::from_str(&col_str(r, 0)?).ok()?;
            d.body_bytes = col_u64(r, 1)?;
            Some(d)
        })
    }

    fn in_flight_idempotency(&self) -> StoreResult<Vec<IdempotencyRecord>> {
        self.records("SELECT row FROM idempotency WHERE in_flight = 1", Vec::new())
    }

    fn idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Ok(self.records("SELECT row FROM idempotency WHERE key = ?", vec![text(key)])?.into_iter().next())
    }

    fn idempotency_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<IdempotencyRecord>> {
        self.records(
            "SELECT row FROM idempotency WHERE at < ? ORDER BY at LIMIT ?",
            vec![int(before), int(u64::from(limit))],
        )
    }

    fn job(&self, ticket: &TicketId) -> StoreResult<Option<Job>> {
        Ok(self.records("SELECT row FROM jobs WHERE ticket = ?", vec![text(ticket.as_str())])?.into_iter().next())
    }

    fn job_body(&self, ticket: &TicketId) -> StoreResult<Option<String>> {
        let rows =
            self.rows("SELECT body FROM job_bodies WHERE ticket = ?", vec![text(ticket.as_str())], |r| col_str(r, 0))?;
        Ok(rows.into_iter().next())
    }

    fn job_by_client_key(&self, client: &str, key: &str) -> StoreResult<Option<Job>> {
        Ok(self
            .records("SELECT row FROM jobs WHERE client = ? AND client_key = ? LIMIT 1", vec![text(client), text(key)])?
            .into_iter()
            .next())
    }

    fn jobs_by_generation(&self, generation: &GenerationId) -> StoreResult<Vec<Job>> {
        self.records("SELECT row FROM jobs WHERE generation = ?", vec![text(generation.as_str())])
    }

    fn finished_jobs_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<TicketId>> {
        self.rows(
            "SELECT ticket FROM jobs WHERE waiting = 0 AND updated_at < ? LIMIT ?",
            vec![int(before), int(u64::from(limit))],
            |r| col_str(r, 0).map(TicketId::from),
        )
    }

    fn relayed(&self, generation: &GenerationId, status: &GenerationStatus) -> StoreResult<Option<Ms>> {
        let rows = self.rows(
            "SELECT at FROM relayed WHERE generation = ? AND status = ?",
            vec![text(generation.as_str()), text(status.as_str())],
            |r| col_u64(r, 0),
        )?;
        Ok(rows.into_iter().next())
    }

    fn relayed_older_than(&self, before: Ms, limit: u32) -> StoreResult<Vec<(GenerationId, GenerationStatus)>> {
        self.rows(
            "SELECT generation, status FROM relayed WHERE at < ? ORDER BY at, generation, status LIMIT ?",
            vec![int(before), int(u64::from(limit))],
            |r| Some((col_str(r, 0)?.into(), GenerationStatus::parse(&col_str(r, 1)?))),
        )
    }

    fn delivery(&self, id: u64) -> StoreResult<Option<Delivery>> {
        let rows = self.rows("SELECT head, body FROM outbox WHERE id = ?", vec![int(id)], |r| {
            let mut d: Delivery = governor_core::wire::json::from_str(&col_str(r, 0)?).ok()?;
            d.body = col_str(r, 1)?;
            Some(d)
        })?;
        Ok(rows.into_iter().next())
    }

    fn ledger(&self) -> &dyn governor_core::ledger::LedgerStore {
        self
    }
}
