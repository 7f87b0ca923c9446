//! Paths and names as the Worker reads them: the canonical form of a
//! request path (or a refusal when routers could disagree on it), and
//! whether a name is an account object's. A leaf: routing, the config and
//! the shares read names through here.

/// A path that could be read as more than one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmbiguousPath;

/// The path as an Express router matches it: ASCII lower-case, with one
/// trailing slash dropped (`/v2/Generate/` → `/v2/generate`). Refuses what
/// routers, proxies and URL normalisers disagree on: no leading `/`, empty
/// segments (`//`), `;` parameters, `.` / `..` segments, backslashes, and a
/// percent-escape of anything that never needs one (only controls, space,
/// non-ASCII and ``"#<>?[]^`{|}`` may be escaped; `%2F`, `%2E`, `%5C`,
/// `%25`, an escaped letter, ... are refused, as is a malformed escape).
pub fn canonical_path(path: &str) -> Result<String, AmbiguousPath> {
    let rest = path.strip_prefix('/').ok_or(AmbiguousPath)?;
    if path.contains(['\\', ';']) {
        return Err(AmbiguousPath);
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3).ok_or(AmbiguousPath)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| AmbiguousPath)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !needs_escape(byte) {
                return Err(AmbiguousPath);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    if rest.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(AmbiguousPath);
    }
    Ok(format!("/{}", rest.to_ascii_lowercase()))
}

/// Bytes a URL path may carry only percent-encoded.
fn needs_escape(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || b"\"#<>?[]^`{|}".contains(&b)
}

/// Is this an account's object name as the governor names them: `k-` and
/// the key's 32-hex fingerprint (pass-through), or `a-` and a managed
/// account's name (letters, digits, `.`, `_`, `-`, at most 128)?
pub fn is_account_name(name: &str) -> bool {
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match (name.strip_prefix("k-"), name.strip_prefix("a-")) {
        (Some(fp), _) => fp.len() == 32 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        (_, Some(n)) => !n.is_empty() && n.len() <= 128 && plain(n),
        _ => false,
    }
}
