//! An operator's overrides of one client's limits
//! (`PUT|DELETE /governor/v1/admin/accounts/{account}/clients/{client}/limits`):
//! the body is a `CLIENT_LIMITS` limit object, every field optional; set
//! fields win over the var from the next decision on, `DELETE` goes back to
//! the var. The answer is the client's view with each field's source.

use super::client::is_client_name;
use super::limits::LimitSpec;
use crate::account::AccountState;
use crate::config::limits::Limits;
use crate::operations::admin::AdminReply;
use crate::wire::contract::{Refusal, Reply};
use crate::Ms;

/// Largest override body read.
const MAX_BODY: usize = 4_096;

impl AccountState {
    pub(crate) fn client_limits_admin(&mut self, limits: &Limits, now: Ms, client: &str, body: Option<&str>) -> Reply {
        let invalid = |m: &str| Reply::Refused(Refusal::Invalid(m.to_owned()));
        if !is_client_name(client) {
            return invalid("a client name is letters, digits, '.', '_', '-' (at most 64)");
        }
        let limit = match body {
            None => None,
            Some(b) if b.len() > MAX_BODY => return invalid("the body is over 4096 bytes"),
            Some(b) => {
                let spec: LimitSpec = match crate::wire::json::from_str(b) {
                    Ok(s) => s,
                    Err(_) => {
                        return invalid(
                            "expected {\"weight\", \"reserved\", \"concurrency\", \"generatePerMinute\", \
                             \"requestsPerMinute\", \"usdPerDay\", \"usdPerMonth\"} (every field optional)",
                        )
                    }
                };
                match spec.check() {
                    Ok(l) => Some(l),
                    Err(m) => return invalid(&m),
                }
            }
        };
        if let Err(m) = self.shares.set_override(client, limit) {
            return invalid(m);
        }
        Reply::Admin(AdminReply::Client { client: self.client_view(limits, now, client) })
    }
}
