//! The `Prefer` request header (RFC 7240): `respond-async` and `wait=N`.

/// The preferences the governor honours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefer {
    pub respond_async: bool,
    /// Seconds the client is willing to wait.
    pub wait_s: Option<u64>,
}

impl Prefer {
    /// How long the governor holds the request (`Prefer: wait`), at most
    /// `max_wait_ms` (`MAX_WAIT_SECONDS`); `None` when it asked for no wait.
    pub fn hold_ms(&self, max_wait_ms: u64) -> Option<u64> {
        self.wait_s.map(|s| s.saturating_mul(1_000).min(max_wait_ms))
    }
}

pub fn parse(header: Option<&str>) -> Prefer {
    let mut p = Prefer::default();
    for pref in header.unwrap_or_default().split(',') {
        let token = pref.split(';').next().unwrap_or_default().trim();
        let (name, value) =
            token.split_once('=').map_or((token, None), |(n, v)| (n.trim(), Some(v.trim().trim_matches('"'))));
        match name.to_ascii_lowercase().as_str() {
            "respond-async" => p.respond_async = true,
            "wait" => p.wait_s = value.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse(None), Prefer::default());
        assert_eq!(parse(Some("respond-async, wait=10")), Prefer { respond_async: true, wait_s: Some(10) });
        assert_eq!(parse(Some("wait=\"5\"; foo")), Prefer { respond_async: false, wait_s: Some(5) });
        assert_eq!(parse(Some("wait=abc, handling=lenient")), Prefer::default());
    }

    #[test]
    fn holds_at_most_the_configured_wait() {
        assert_eq!(parse(Some("wait=10")).hold_ms(60_000), Some(10_000));
        assert_eq!(parse(Some("wait=1000")).hold_ms(60_000), Some(60_000));
        assert_eq!(parse(Some(&format!("wait={}", u64::MAX))).hold_ms(60_000), Some(60_000));
        assert_eq!(parse(None).hold_ms(60_000), None);
    }
}
