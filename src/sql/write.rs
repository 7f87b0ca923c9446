//! The executor of the core's [`Write`]s: one command's writes in order,
//! all or none (one `transactionSync`), or without a transaction when they
//! are one statement plus prunes (the common admission).

use std::cell::Cell;

use governor_core::rates::class::RateClass;
use governor_core::relay::delivery::Delivery;
use governor_core::storage::store::{IdempotencyState, Write};
use governor_core::Ms;
use worker::SqlStorageValue as V;

use super::store::SqlStore;
use super::values::{int, json, text};

/// A prune of admission rows: it deletes only rows that every span has
/// left (a reload would drop them anyway), so it is safe on its own, whatever
/// happens to the rest of its command's writes.
fn is_prune(w: &Write) -> bool {
    matches!(w, Write::PruneAdmissions { .. })
}

/// Lone prunes (an admission's row in, the rows that left its span out)
/// wait in memory for at most this many admissions, then run as one
/// statement per class: one SQLite statement per admission instead of two.
/// Safe to defer: a prune deletes only rows every span has left, and no
/// decision reads those (`WindowLog::used`, `remaining` and `reset_in`
/// count what is inside the span; `check` indexes from the newest; a
/// reload keeps at most `limit` newest), so until it runs, or after a
/// restart that lost it, they are stale rows the next prune of the class
/// deletes (`at < before` covers every earlier prune). Any other write runs
/// the pending prunes first, so a limits change never sees them.
const PRUNE_EVERY: u32 = 32;

/// `Some(the one other write)` (or `Some(None)`: prunes only) when a
/// command's writes need no transaction: prunes, plus at most one write that
/// is one statement. `None`: several rows change together.
fn lone_statement(writes: &[Write]) -> Option<Option<&Write>> {
    let mut others = writes.iter().filter(|w| !is_prune(w));
    let one = others.next();
    let single = one.is_none_or(|w| {
        matches!(w, Write::Admission { .. } | Write::Meta { .. } | Write::PutPermit(_) | Write::DeletePermit(_))
    });
    (single && others.next().is_none()).then_some(one)
}

impl SqlStore {
    /// Apply a command's writes, in order, all or none (see [`SqlStore::atomic`]).
    pub fn write(&self, writes: &[Write]) -> worker::Result<()> {
        use js_sys::{Function, Reflect};
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::{JsCast, JsValue};
        let Some(storage) = self.storage.as_ref().filter(|_| !writes.is_empty()) else {
            return self.write_rows(writes);
        };
        if let Some(last) = lone_statement(writes) {
            // No transaction needed (the common admission: one row in, the
            // rows that left the span out): the prunes go first (deferred
            // while only admissions come), each safe alone, then the one
            // statement, atomic by itself.
            let admission = matches!(last, Some(Write::Admission { .. }));
            for w in writes.iter() {
                if let Write::PruneAdmissions { class, before } = w {
                    self.defer_prune(class, *before);
                }
            }
            if !admission || self.prunes.borrow().1 >= PRUNE_EVERY {
                self.run_prunes()?;
            }
            return last.map_or(Ok(()), |w| self.write_rows(std::slice::from_ref(w)));
        }
        self.run_prunes()?;
        let transaction: Option<Function> =
            Reflect::get(storage, &JsValue::from_str("transactionSync")).ok().and_then(|f| f.dyn_into().ok());
        let Some(transaction) = transaction else { return self.write_rows(writes) };
        let inner =
            SqlStore { sql: self.sql.clone(), skipped: Cell::new(0), storage: None, prunes: Default::default() };
        let rows = writes.to_vec();
        // Throwing inside the callback rolls the transaction back.
        let body = Closure::once(move || -> Result<JsValue, JsValue> {
            inner.write_rows(&rows).map(|()| JsValue::UNDEFINED).map_err(|e| JsValue::from_str(&e.to_string()))
        });
        let f: &Function = body.as_ref().unchecked_ref();
        transaction.call1(storage, f).map(|_| ()).map_err(|e| {
            worker::Error::RustError(format!(
                "account storage: {}",
                e.as_string().unwrap_or_else(|| "write failed".into())
            ))
        })
    }

    /// Keep a prune for later: the latest `before` of its class.
    fn defer_prune(&self, class: &RateClass, before: Ms) {
        let mut prunes = self.prunes.borrow_mut();
        match prunes.0.iter_mut().find(|(c, _)| c == class) {
            Some((_, b)) => *b = (*b).max(before),
            None => prunes.0.push((class.clone(), before)),
        }
        prunes.1 += 1;
    }

    /// Run the deferred prunes (each safe alone); forgotten only once run.
    fn run_prunes(&self) -> worker::Result<()> {
        let pending = std::mem::take(&mut *self.prunes.borrow_mut());
        for (i, (class, before)) in pending.0.iter().enumerate() {
            if let Err(e) = self.write_rows(&[Write::PruneAdmissions { class: class.clone(), before: *before }]) {
                let mut prunes = self.prunes.borrow_mut();
                prunes.0.extend(pending.0[i..].iter().cloned());
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_rows(&self, writes: &[Write]) -> worker::Result<()> {
        for w in writes {
            match w {
                Write::Meta { key, value } => self.exec(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    vec![text(key), text(value)],
                )?,
                Write::Admission { class, at } => {
                    self.exec("INSERT INTO admissions (class, at) VALUES (?, ?)", vec![text(class.as_str()), int(*at)])?
                }
                Write::TrimAdmissions { class, keep } => self.exec(
                    "DELETE FROM admissions WHERE class = ? AND id NOT IN \
                     (SELECT id FROM admissions WHERE class = ? ORDER BY at DESC, id DESC LIMIT ?)",
                    vec![text(class.as_str()), text(class.as_str()), V::Integer(i64::from(*keep))],
                )?,
                Write::MoveAdmissions { class, from, to } => self.exec(
                    "UPDATE admissions SET at = ? WHERE class = ? AND at = ?",
                    vec![int(*to), text(class.as_str()), int(*from)],
                )?,
                Write::PruneAdmissions { class, before } => {
                    self.exec("DELETE FROM admissions WHERE class = ? AND at < ?", vec![text(class.as_str()), int(*before)])?
                }
                Write::PutPermit(p) => {
                    self.exec("INSERT OR REPLACE INTO permits (id, row) VALUES (?, ?)", vec![int(p.id.0), json(p)])?
                }
                Write::DeletePermit(id) => self.exec("DELETE FROM permits WHERE id = ?", vec![int(id.0)])?,
                Write::PutIdempotency(r) => {
                    let in_flight = matches!(r.state, IdempotencyState::InFlight { .. });
                    self.exec(
                        "INSERT OR REPLACE INTO idempotency (key, at, in_flight, bytes, row) VALUES (?, ?, ?, ?, ?)",
                        vec![text(&r.key), int(r.at), V::Integer(i64::from(in_flight)), int(r.bytes()), json(r)],
                    )?
                }
                Write::DeleteIdempotency(key) => {
                    self.exec("DELETE FROM idempotency WHERE key = ?", vec![text(key)])?
                }
                Write::PutJob(j) => {
                    let generation = match &j.state {
                        governor_core::queue::job::JobState::Submitted { generation } => text(generation.as_str()),
                        _ => V::Null,
                    };
                    let client_key = j.spec.idempotency_key.as_deref().map_or(V::Null, text);
                    self.exec(
                        "INSERT OR REPLACE INTO jobs (ticket, waiting, client, client_key, generation, updated_at, row) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                        vec![
                            text(j.ticket.as_str()),
                            V::Integer(i64::from(j.is_waiting())),
                            text(&j.spec.client),
                            client_key,
                            generation,
                            int(j.updated_at),
                            json(j),
                        ],
                    )?
                }
                Write::PutJobBody { ticket, body } => self.exec(
                    "INSERT OR REPLACE INTO job_bodies (ticket, body) VALUES (?, ?)",
                    vec![text(ticket.as_str()), text(body)],
                )?,
                Write::DeleteJobBody(ticket) => {
                    self.exec("DELETE FROM job_bodies WHERE ticket = ?", vec![text(ticket.as_str())])?
                }
                Write::DeleteJob(ticket) => {
                    self.exec("DELETE FROM jobs WHERE ticket = ?", vec![text(ticket.as_str())])?;
                    self.exec("DELETE FROM job_bodies WHERE ticket = ?", vec![text(ticket.as_str())])?
                }
                Write::PutDelivery(d) => self.exec(
                    "INSERT OR REPLACE INTO outbox (id, head, body) VALUES (?, ?, ?)",
                    vec![int(d.id), json(&d.without_body()), text(&d.body)],
                )?,
                Write::RescheduleDelivery { id, attempts, next_at } => {
                    // The head is small: read, change, write it back.
                    let heads: Vec<Delivery> = self
                        .records("SELECT head FROM outbox WHERE id = ?", vec![int(*id)])
                        .map_err(|e| worker::Error::RustError(e.0))?;
                    if let Some(mut d) = heads.into_iter().next() {
                        d.attempts = *attempts;
                        d.next_at = *next_at;
                        self.exec("UPDATE outbox SET head = ? WHERE id = ?", vec![json(&d), int(*id)])?;
                    }
                }
                Write::DeleteDelivery(id) => self.exec("DELETE FROM outbox WHERE id = ?", vec![int(*id)])?,
                Write::PutRelayed { generation, status, at } => self.exec(
                    "INSERT OR REPLACE INTO relayed (generation, status, at) VALUES (?, ?, ?)",
                    vec![text(generation.as_str()), text(status.as_str()), int(*at)],
                )?,
                Write::DeleteRelayed { generation, status } => self.exec(
                    "DELETE FROM relayed WHERE generation = ? AND status = ?",
                    vec![text(generation.as_str()), text(status.as_str())],
                )?,
                Write::Ledger(w) => self.write_ledger(w)?,
            }
        }
        Ok(())
    }
}
