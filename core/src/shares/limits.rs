//! `CLIENT_LIMITS`: what each client of an account may take.
//!
//! `{"<account>" | "*": {"<client>" | "*": {"weight": 4, "reserved": 2,
//! "concurrency": 3, "generatePerMinute": 20, "requestsPerMinute": 200,
//! "usdPerDay": 5, "usdPerMonth": 100}}}`: every field optional, `*` the
//! default. A client's value of a field is the first set among
//! (account, client), (account, `*`), (`*`, client), (`*`, `*`), where a
//! pass-through client named by `X-Governor-Client: one` (the client
//! `h-one`) is found under `h-one`, then under `one` (the name as sent).
//! Parsing never echoes a name or a value of the map (a map written the
//! wrong way round would put a client key there): errors say where, by
//! position.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rates::class::RateClass;

/// Most of a count field (`weight`, `reserved`, `concurrency`).
pub const MAX_COUNT: u32 = 10_000;
/// Most of a per-minute field.
pub const MAX_PER_MINUTE: u32 = 100_000;
/// Most of a USD budget field.
pub use crate::budget::money::MAX_USD;
/// Most accounts and clients named (the map is read on every decision).
pub const MAX_ENTRIES: usize = 10_000;

/// Money in millionths of a US dollar: one type for limits and the book.
pub use crate::budget::MicroUsd;

/// One client's limits; `None` is "not set here".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientLimit {
    /// Share of the account's permits and create rate among clients with demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Permits guaranteed whenever the client has demand (lent when idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u32>,
    /// Most permits the client holds at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_day: Option<MicroUsd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_month: Option<MicroUsd>,
    /// `"batch"`: every queued job of the client is batch-lane work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<crate::batch::lane::LaneChoice>,
}

/// A limit object as written (USD as JSON numbers).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LimitSpec {
    weight: Option<u64>,
    reserved: Option<u64>,
    concurrency: Option<u64>,
    generate_per_minute: Option<u64>,
    requests_per_minute: Option<u64>,
    usd_per_day: Option<f64>,
    usd_per_month: Option<f64>,
    lane: Option<crate::batch::lane::LaneChoice>,
}

impl LimitSpec {
    /// Validate; the error names the field only.
    pub(crate) fn check(self) -> Result<ClientLimit, String> {
        let count = |v: Option<u64>, field: &str, min: u64, max: u32| -> Result<Option<u32>, String> {
            match v {
                Some(n) if n < min || n > u64::from(max) => Err(format!("{field} must be between {min} and {max}")),
                v => Ok(v.map(|n| n as u32)),
            }
        };
        let usd = |v: Option<f64>, field: &str| -> Result<Option<MicroUsd>, String> {
            v.map(|u| MicroUsd::from_usd(u).ok_or_else(|| format!("{field} must be a number of USD from 0 to 1e9")))
                .transpose()
        };
        let limit = ClientLimit {
            weight: count(self.weight, "weight", 1, MAX_COUNT)?,
            reserved: count(self.reserved, "reserved", 0, MAX_COUNT)?,
            concurrency: count(self.concurrency, "concurrency", 0, MAX_COUNT)?,
            generate_per_minute: count(self.generate_per_minute, "generatePerMinute", 1, MAX_PER_MINUTE)?,
            requests_per_minute: count(self.requests_per_minute, "requestsPerMinute", 1, MAX_PER_MINUTE)?,
            usd_per_day: usd(self.usd_per_day, "usdPerDay")?,
            usd_per_month: usd(self.usd_per_month, "usdPerMonth")?,
            lane: self.lane,
        };
        if let (Some(r), Some(c)) = (limit.reserved, limit.concurrency) {
            if r > c {
                return Err("reserved must not be above concurrency".into());
            }
        }
        Ok(limit)
    }
}

impl ClientLimit {
    /// Fields set here win; the rest come from `fallback`.
    pub fn or(self, fallback: ClientLimit) -> ClientLimit {
        ClientLimit {
            weight: self.weight.or(fallback.weight),
            reserved: self.reserved.or(fallback.reserved),
            concurrency: self.concurrency.or(fallback.concurrency),
            generate_per_minute: self.generate_per_minute.or(fallback.generate_per_minute),
            requests_per_minute: self.requests_per_minute.or(fallback.requests_per_minute),
            usd_per_day: self.usd_per_day.or(fallback.usd_per_day),
            usd_per_month: self.usd_per_month.or(fallback.usd_per_month),
            lane: self.lane.or(fallback.lane),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ClientLimit::default()
    }

    /// Is every queued job of the client batch-lane work?
    pub fn lane_batch(&self) -> bool {
        self.lane == Some(crate::batch::lane::LaneChoice::Batch)
    }

    /// The client's weight (1 unless set).
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(1).max(1)
    }

    /// The rate limit of `class` for this client, if it has one.
    pub fn rate(&self, class: &RateClass) -> Option<u32> {
        match class {
            RateClass::Generate => self.generate_per_minute,
            RateClass::Other => self.requests_per_minute,
            RateClass::Extra(_) => None,
        }
    }
}

/// `CLIENT_LIMITS`, parsed: account → client → limits (`*` for defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLimits {
    accounts: BTreeMap<String, BTreeMap<String, ClientLimit>>,
}

/// Is `name` an account key of `CLIENT_LIMITS`: `*`, a managed account's
/// name (`acme`) or an account's object name (`a-acme`, `k-<fingerprint>`)?
fn is_account_key(name: &str) -> bool {
    name == "*" || crate::wire::path::is_account_name(name) || crate::wire::path::is_account_name(&format!("a-{name}"))
}

impl ClientLimits {
    /// Parse `CLIENT_LIMITS`. The error never quotes the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        const SHAPE: &str =
            "must be a JSON object {\"<account>\"|\"*\": {\"<client>\"|\"*\": {\"weight\", \"reserved\", \
                             \"concurrency\", \"generatePerMinute\", \"requestsPerMinute\", \"usdPerDay\", \
                             \"usdPerMonth\", \"lane\"}}}";
        let raw: BTreeMap<String, BTreeMap<String, LimitSpec>> =
            crate::wire::json::from_str(text).map_err(|_| SHAPE.to_owned())?;
        if raw.len() > MAX_ENTRIES || raw.values().map(BTreeMap::len).sum::<usize>() > MAX_ENTRIES {
            return Err(format!("names at most {MAX_ENTRIES} accounts and clients"));
        }
        let mut accounts = BTreeMap::new();
        for (a, (account, clients)) in raw.into_iter().enumerate() {
            let at = a + 1;
            if !is_account_key(&account) {
                return Err(format!("account entry {at}: not \"*\" or an account name"));
            }
            let mut parsed = BTreeMap::new();
            for (c, (client, spec)) in clients.into_iter().enumerate() {
                let where_ = format!("account entry {at}, client entry {}", c + 1);
                if client != "*" && !super::client::is_client_name(&client) {
                    return Err(format!(
                        "{where_}: a client name is \"*\" or letters, digits, '.', '_', '-' (at most 64)"
                    ));
                }
                parsed.insert(client, spec.check().map_err(|e| format!("{where_}: {e}"))?);
            }
            let account = account.strip_prefix("a-").map_or(account.clone(), str::to_owned);
            accounts.insert(account, parsed);
        }
        Ok(ClientLimits { accounts })
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The limits of `client` in the account whose object is `account`
    /// (`a-acme` or `k-<fingerprint>`), merged field by field.
    pub fn resolve(&self, account: &str, client: &str) -> ClientLimit {
        let name = account.strip_prefix("a-").unwrap_or(account);
        let get = |a: &str, c: &str| self.accounts.get(a).and_then(|m| m.get(c)).copied().unwrap_or_default();
        let named = |a: &str| super::client::entry_names(client).fold(ClientLimit::default(), |l, c| l.or(get(a, c)));
        named(name).or(get(name, "*")).or(named("*")).or(get("*", "*"))
    }

    /// The clients named for `account` (not `*`), with their merged limits.
    /// A pass-through account's (`k-…`) clients are headers' names: `one`
    /// is shown as the client it names, `h-one`.
    pub fn named(&self, account: &str) -> Vec<(String, ClientLimit)> {
        let name = account.strip_prefix("a-").unwrap_or(account);
        let pass_through = account.starts_with("k-");
        let mut names: Vec<String> = Vec::new();
        for a in [name, "*"] {
            for c in self.accounts.get(a).into_iter().flat_map(|m| m.keys()).filter(|c| *c != "*") {
                let header = pass_through && !c.starts_with("c-");
                names.push(if header {
                    super::client::header_client(c).unwrap_or_else(|| c.clone())
                } else {
                    c.clone()
                });
            }
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|c| {
                let limit = self.resolve(account, &c);
                (c, limit)
            })
            .collect()
    }

    /// The limits in force for `account` only (what its object needs).
    pub fn for_account(&self, account: &str) -> ClientLimits {
        let name = account.strip_prefix("a-").unwrap_or(account);
        let accounts =
            [name, "*"].into_iter().filter_map(|a| self.accounts.get(a).map(|m| (a.to_owned(), m.clone()))).collect();
        ClientLimits { accounts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_field_by_field() {
        let l = ClientLimits::parse(
            r#"{"*":{"*":{"weight":1,"concurrency":5},"batch":{"weight":4}},
                "acme":{"*":{"concurrency":3},"mobile":{"reserved":2,"usdPerDay":5.25}}}"#,
        )
        .unwrap();
        let m = l.resolve("a-acme", "mobile");
        assert_eq!((m.weight, m.reserved, m.concurrency), (Some(1), Some(2), Some(3)));
        assert_eq!(m.usd_per_day, Some(MicroUsd(5_250_000)));
        assert_eq!(l.resolve("a-acme", "batch").weight, Some(4));
        assert_eq!(l.resolve("a-other", "x").concurrency, Some(5));
        assert_eq!(l.resolve("k-0123", "batch").concurrency, Some(5));
        assert_eq!(l.named("a-acme").iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["batch", "mobile"]);
        // Pass-through: the names are headers' (`batch` is the client `h-batch`).
        assert_eq!(l.named("k-0123").iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["h-batch"]);
        assert_eq!(l.named("k-0123")[0].1.weight, Some(4));
    }

    #[test]
    fn hostile_input_is_a_clear_error_that_quotes_nothing() {
        let secret = "ck-very-secret-client-key";
        for bad in [
            format!(r#"{{"{secret}":"acme"}}"#),
            format!(r#"{{"acme":{{"{secret} x":{{}}}}}}"#),
            format!(r#"{{"acme":{{"mobile":{{"{secret}":1}}}}}}"#),
            format!(r#"{{"acme {secret}":{{}}}}"#),
            r#"{"acme":{"m":{"weight":0}}}"#.into(),
            r#"{"acme":{"m":{"weight":-1}}}"#.into(),
            r#"{"acme":{"m":{"weight":1.5}}}"#.into(),
            r#"{"acme":{"m":{"concurrency":10001}}}"#.into(),
            r#"{"acme":{"m":{"usdPerDay":-1}}}"#.into(),
            r#"{"acme":{"m":{"usdPerDay":1e300}}}"#.into(),
            r#"{"acme":{"m":{"reserved":3,"concurrency":2}}}"#.into(),
            r#"[]"#.into(),
            r#"{"acme":{"m":{"weight":"4"}}}"#.into(),
        ] {
            let e = ClientLimits::parse(&bad).unwrap_err();
            assert!(!e.contains("secret") && !e.contains("acme"), "{bad} -> {e}");
        }
        assert!(ClientLimits::parse("{}").unwrap().is_empty());
    }
}
