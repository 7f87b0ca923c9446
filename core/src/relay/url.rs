//! Which client URLs the relay may deliver to: a WHATWG-parsed URL's scheme
//! and host, every spelling of an internal address refused (SSRF), loopback
//! allowed in local mode only.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A client webhook URL as the runtime's own URL parser (the one `fetch`
/// uses) read it: the check below sees exactly what a delivery would reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientUrl<'a> {
    /// `https:` or `http:` (with the colon, as WHATWG `protocol`).
    pub scheme: &'a str,
    /// WHATWG `hostname`: IPv4 canonicalised, IPv6 in brackets, lower case.
    pub host: &'a str,
    /// A user name or password was present.
    pub credentials: bool,
}

enum Host {
    Domain,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// One part of a WHATWG IPv4 host: decimal, `0x` hex or `0` octal.
fn ipv4_number(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        // `0x` alone is zero in WHATWG.
        return (radix == 16).then_some(0);
    }
    if digits.len() > 32 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Does the host "end in a number" (WHATWG): then URL parsers read it as an
/// IPv4 address, whatever its spelling.
fn ends_in_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit('.').next().unwrap_or(host);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The address a WHATWG URL parser reads from an IPv4 host in any of its
/// spellings (`127.0.0.1`, `2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`).
fn whatwg_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| ipv4_number(p)).collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn classify(host: &str) -> Result<Host, String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse().map(Host::V6).map_err(|_| "webhookUrl has a malformed IPv6 host".to_owned());
    }
    if !ends_in_number(host) {
        return Ok(Host::Domain);
    }
    let ip = whatwg_ipv4(host).ok_or_else(|| "webhookUrl has a malformed IPv4 host".to_owned())?;
    if ip.to_string() != host {
        // `2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`: parsers disagree on
        // such spellings, so only the canonical one is accepted.
        return Err("webhookUrl must write an IPv4 address as four decimal numbers (a.b.c.d)".into());
    }
    Ok(Host::V4(ip))
}

/// Is this IPv4 address outside the public internet (RFC 6890 special
/// purpose: this network, private, shared CGNAT, loopback, link-local,
/// IETF protocol, documentation, benchmarking, 6to4 relay, multicast,
/// reserved, broadcast)?
fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224
}

/// Is this IPv6 address outside the public internet, or one that carries
/// an IPv4 address (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64
/// `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo
/// `2001::/32`): those reach whatever the IPv4 address is, so they are
/// refused outright.
fn v6_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first96_zero = s[..6].iter().all(|x| *x == 0);
    ip.is_unspecified()
        || ip.is_loopback()
        || first96_zero
        || ip.to_ipv4_mapped().is_some()
        || (s[..4].iter().all(|x| *x == 0) && s[4] == 0xffff && s[5] == 0)
        || (s[0] == 0x0064 && s[1] == 0xff9b && (s[2..6].iter().all(|x| *x == 0) || s[2] == 1))
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0)
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0))
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xff00) == 0xff00
}

/// Is this host (a URL's WHATWG `hostname`) the machine itself?
pub fn is_loopback_host(host: &str) -> bool {
    match classify(host) {
        Ok(Host::Domain) => host == "localhost" || host.ends_with(".localhost"),
        Ok(Host::V4(ip)) => ip.is_loopback(),
        Ok(Host::V6(ip)) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// May the relay deliver to this client URL? `https` to a public host;
/// plain `http` only to loopback, and only in local mode.
pub fn check_client_url(url: &ClientUrl<'_>, local_mode: bool) -> Result<(), String> {
    if url.credentials {
        return Err("webhookUrl must not carry credentials".into());
    }
    if url.host.is_empty() {
        return Err("webhookUrl has no host".into());
    }
    if url.host.ends_with('.') {
        // `localhost.` is localhost to a resolver but not to a suffix check.
        return Err("webhookUrl host must not end with a dot".into());
    }
    let host = classify(url.host)?;
    let loopback = match &host {
        Host::Domain => url.host == "localhost" || url.host.ends_with(".localhost"),
        Host::V4(ip) => ip.is_loopback(),
        Host::V6(ip) => ip.is_loopback(),
    };
    if loopback {
        return if local_mode && (url.scheme == "http:" || url.scheme == "https:") {
            Ok(())
        } else {
            Err("webhookUrl must not point at loopback".into())
        };
    }
    if url.scheme != "https:" {
        return Err("webhookUrl must be https".into());
    }
    let internal = match host {
        Host::Domain => {
            [".internal", ".local", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"]
                .iter()
                .any(|suffix| url.host.ends_with(suffix))
                || !url.host.contains('.')
        }
        Host::V4(ip) => v4_internal(ip),
        Host::V6(ip) => v6_internal(ip),
    };
    if internal {
        return Err("webhookUrl must point at a public host".into());
    }
    Ok(())
}

/// The host as the raw URL spells it (lower case, without user info and
/// port), for the special schemes' authority rules; `None` when there is
/// no authority.
pub fn spelled_host(raw: &str) -> Option<String> {
    // URL parsers drop ASCII tab and newline anywhere.
    let raw: String = raw.trim().chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let (_, rest) = raw.split_once(':')?;
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        host.split(':').next().unwrap_or(host)
    };
    Some(host.to_ascii_lowercase())
}

/// The check for a client's `webhookUrl`, at creation and again at each
/// delivery: the host the runtime's parser read (`parsed`, what a fetch
/// reaches) and the host as written in `raw` (refusing spellings that
/// parsers read differently, such as `2130706433` or `0x7f.1`).
pub fn check_webhook_url(raw: &str, parsed: &ClientUrl<'_>, local_mode: bool) -> Result<(), String> {
    check_client_url(parsed, local_mode)?;
    match spelled_host(raw) {
        Some(spelled) if spelled != parsed.host => {
            check_client_url(&ClientUrl { host: &spelled, ..*parsed }, local_mode)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
