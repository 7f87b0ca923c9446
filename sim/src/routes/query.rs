//! Query-string parsing that accepts both `a=x,y` and `a=x&a=y`.

/// All `(name, value)` pairs of a raw query string, decoded.
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Every value of `name`, repeated or comma-separated, trimmed, non-empty.
pub fn multi(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name || k == &format!("{name}[]"))
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The last value of `name`.
pub fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Parses an integer query value within `lo..=hi`.
pub fn int_in(v: &str, lo: u64, hi: u64) -> Option<u64> {
    v.trim().parse::<u64>().ok().filter(|n| (lo..=hi).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_status_forms() {
        let p = pairs(Some("status=PENDING,PROCESSING&status=COMPLETED&limit=5"));
        assert_eq!(multi(&p, "status"), ["PENDING", "PROCESSING", "COMPLETED"]);
        assert_eq!(one(&p, "limit"), Some("5"));
        assert_eq!(int_in("0", 1, 100), None);
        assert_eq!(int_in("100", 1, 100), Some(100));
        let p = pairs(Some("status=PENDING%2CFAILED"));
        assert_eq!(multi(&p, "status"), ["PENDING", "FAILED"]);
    }
}
