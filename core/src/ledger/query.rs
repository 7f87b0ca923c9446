//! `GET /governor/v1/ledger?since=&until=&client=&cursor=&limit=&format=`:
//! parsed strictly (hostile input is a 400 naming the parameter, never an
//! echo of its value), and who may see what.

use crate::Ms;

/// Rows per page unless `limit` says otherwise, and at most.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1_000;
/// Longest query string read.
pub const MAX_QUERY_LEN: usize = 2_048;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Json,
    Ndjson,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// A page request: rows received in `[since, until)`, of `client` if set,
/// after the row `cursor`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerQuery {
    pub since: Option<Ms>,
    pub until: Option<Ms>,
    pub client: Option<String>,
    pub cursor: Option<u64>,
    pub limit: u32,
    pub format: Format,
}

impl Default for LedgerQuery {
    fn default() -> Self {
        LedgerQuery { since: None, until: None, client: None, cursor: None, limit: DEFAULT_LIMIT, format: Format::Json }
    }
}

/// Why a query was refused (mapped to a 400 / 403 in one place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// `param` is unknown, repeated, or its value is not valid.
    Invalid { param: String, problem: &'static str },
    /// A client asked for another client's rows.
    OtherClient,
}

fn invalid(param: &str, problem: &'static str) -> QueryError {
    let param = if param.len() <= 32 && param.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        param.to_owned()
    } else {
        "(unreadable)".to_owned()
    };
    QueryError::Invalid { param, problem }
}

/// A client name as the ledger accepts it: 1-128 of `[A-Za-z0-9._~-]`.
pub fn valid_client(c: &str) -> bool {
    (1..=128).contains(&c.len())
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn time(param: &str, v: &str) -> Result<Ms, QueryError> {
    if !v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().map_err(|_| invalid(param, "must be epoch milliseconds or an RFC 3339 UTC time"));
    }
    crate::time::parse_rfc3339(v).ok_or_else(|| invalid(param, "must be epoch milliseconds or an RFC 3339 UTC time"))
}

/// Percent-decodes a query component (`+` is a space); `None` when the
/// escapes or the UTF-8 are broken.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl LedgerQuery {
    /// Parses the query string (without `?`). `caller`: the client asking,
    /// or `None` for the admin key (every client).
    pub fn parse(query: &str, caller: Option<&str>) -> Result<LedgerQuery, QueryError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(invalid("query", "is too long"));
        }
        let mut q = LedgerQuery::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k).ok_or_else(|| invalid("query", "has a broken escape"))?;
            let v = decode(v).ok_or_else(|| invalid(&k, "has a broken escape"))?;
            if seen.contains(&k) {
                return Err(invalid(&k, "is given twice"));
            }
            seen.push(k.clone());
            match k.as_str() {
                "since" => q.since = Some(time("since", &v)?),
                "until" => q.until = Some(time("until", &v)?),
                "client" if valid_client(&v) => q.client = Some(v),
                "client" => return Err(invalid("client", "must be 1-128 characters of [A-Za-z0-9._~-]")),
                "cursor" => {
                    let ok = !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
                    q.cursor = Some(
                        v.parse()
                            .ok()
                            .filter(|_| ok)
                            .ok_or_else(|| invalid("cursor", "is not a cursor this endpoint gave"))?,
                    );
                }
                "limit" => {
                    q.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| invalid("limit", "must be a whole number from 1 to 1000"))?;
                }
                "format" => {
                    q.format = match v.as_str() {
                        "json" => Format::Json,
                        "ndjson" => Format::Ndjson,
                        "csv" => Format::Csv,
                        _ => return Err(invalid("format", "must be json, ndjson or csv")),
                    }
                }
                other => return Err(invalid(other, "is not a parameter of this endpoint")),
            }
        }
        if let (Some(s), Some(u)) = (q.since, q.until) {
            if s > u {
                return Err(invalid("since", "must not be after until"));
            }
        }
        if let Some(me) = caller {
            match &q.client {
                Some(c) if c != me => return Err(QueryError::OtherClient),
                _ => q.client = Some(me.to_owned()),
            }
        }
        Ok(q)
    }

    /// Does `row` belong to the page's filter (the cursor aside)?
    pub fn matches(&self, row: &crate::ledger::LedgerRow) -> bool {
        self.since.is_none_or(|s| row.received >= s)
            && self.until.is_none_or(|u| row.received < u)
            && self.client.as_ref().is_none_or(|c| *c == row.client)
            && self.cursor.is_none_or(|c| row.id > c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_scopes() {
        let q = LedgerQuery::parse("since=2026-12-01T00:00:00Z&until=1800000000000&limit=5&format=csv&cursor=42", None)
            .unwrap();
        assert_eq!(q.since, Some(1_796_083_200_000));
        assert_eq!((q.until, q.limit, q.format, q.cursor), (Some(1_800_000_000_000), 5, Format::Csv, Some(42)));
        assert_eq!(q.client, None);
        // A client sees its own rows only.
        assert_eq!(LedgerQuery::parse("", Some("mobile")).unwrap().client.as_deref(), Some("mobile"));
        assert_eq!(LedgerQuery::parse("client=mobile", Some("mobile")).unwrap().client.as_deref(), Some("mobile"));
        assert_eq!(LedgerQuery::parse("client=web", Some("mobile")), Err(QueryError::OtherClient));
        assert_eq!(LedgerQuery::parse("client=web", None).unwrap().client.as_deref(), Some("web"));
    }

    #[test]
    fn hostile_queries() {
        for bad in [
            "since=yesterday",
            "since=1&since=2",
            "limit=0",
            "limit=1001",
            "limit=-1",
            "format=xml",
            "cursor=abc",
            "cursor=99999999999999999999999",
            "client=a%2Fb",
            "client=",
            "nope=1",
            "since=%ZZ",
            "since=2&until=1",
            "%C3%28=1",
        ] {
            match LedgerQuery::parse(bad, None) {
                Err(QueryError::Invalid { param, .. }) => assert!(!param.contains('%') && param.len() <= 32, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(LedgerQuery::parse(&"a".repeat(3000), None).is_err());
        let Err(QueryError::Invalid { param, .. }) = LedgerQuery::parse("<script>=1", None) else { panic!() };
        assert_eq!(param, "(unreadable)");
    }
}
