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
mod tests {
    use super::*;

    fn check(scheme: &str, host: &str, local: bool) -> Result<(), String> {
        check_client_url(&ClientUrl { scheme, host, credentials: false }, local)
    }

    #[test]
    fn client_urls() {
        assert!(check("https:", "hooks.example.com", false).is_ok());
        assert!(check("https:", "93.184.216.34", false).is_ok());
        assert!(check("https:", "[2606:2800:220:1:248:1893:25c8:1946]", false).is_ok());
        assert!(check("http:", "hooks.example.com", false).is_err());
        assert!(check("ftp:", "hooks.example.com", false).is_err());
        assert!(check("http:", "127.0.0.1", false).is_err());
        assert!(check("http:", "127.0.0.1", true).is_ok());
        assert!(check("http:", "[::1]", true).is_ok());
        assert!(check("https:", "localhost", false).is_err());
        assert!(check("https:", "10.0.0.5", false).is_err());
        assert!(check("https:", "169.254.169.254", false).is_err());
        assert!(check("https:", "[fd00::1]", false).is_err());
        assert!(check("https:", "[::ffff:10.0.0.1]", false).is_err());
        assert!(check("https:", "metadata.internal", false).is_err());
        assert!(check("https:", "intranet", false).is_err());
        assert!(check("https:", "", false).is_err());
        assert!(check("https:", "[nope]", false).is_err());
        assert!(check_client_url(&ClientUrl { scheme: "https:", host: "hooks.example.com", credentials: true }, false)
            .is_err());
    }

    /// Every form finding 4 of issue 10 names, refused with and without
    /// local mode (none of them is plain loopback spelled canonically).
    #[test]
    fn ssrf_forms_are_refused() {
        let refused = [
            // Trailing-dot hosts.
            "localhost.",
            "api.localhost.",
            "hooks.example.com.",
            "127.0.0.1.",
            // Shared address space (CGNAT) and benchmarking.
            "100.64.0.1",
            "100.127.255.254",
            "198.18.0.1",
            "198.19.255.255",
            // Other special-purpose IPv4.
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.88.99.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            // IPv4-mapped, -compatible, -translated and NAT64 IPv6.
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::ffff:0:7f00:1]",
            "[::7f00:1]",
            "[::127.0.0.1]",
            "[::]",
            "[64:ff9b::7f00:1]",
            "[64:ff9b::8.8.8.8]",
            "[64:ff9b:1::a00:1]",
            "[2002:7f00:1::]",
            "[2001:0:4136:e378::1]",
            "[fe80::1]",
            "[fec0::1]",
            "[ff02::1]",
            "[2001:db8::1]",
            // Non-canonical IPv4 spellings (a URL parser reads 127.0.0.1 or another address).
            "2130706433",
            "0177.0.0.1",
            "0x7f.1",
            "0x7f.0.0.1",
            "0X7F.0.0.1",
            "127.1",
            "127.0.1",
            "017700000001",
            "0x7f000001",
            "10.1",
            "134744072",
            "08.8.8.8",
            "1.2.3.256",
            "example.123",
        ];
        for host in refused {
            for local in [false, true] {
                for scheme in ["https:", "http:"] {
                    assert!(check(scheme, host, local).is_err(), "{scheme}//{host} (local {local}) must be refused");
                }
            }
        }
    }

    #[test]
    fn whatwg_ipv4_reads_every_spelling() {
        let lo = Some(Ipv4Addr::new(127, 0, 0, 1));
        for s in ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "127.0.1", "0x7f000001", "127.0.0.1."] {
            assert_eq!(whatwg_ipv4(s), lo, "{s}");
        }
        assert_eq!(whatwg_ipv4("1.2.3.256"), None);
        assert_eq!(whatwg_ipv4("09.1.1.1"), None);
        assert_eq!(whatwg_ipv4("1.2.3.4.5"), None);
        assert!(is_loopback_host("127.0.0.1") && is_loopback_host("[::1]") && is_loopback_host("localhost"));
        assert!(!is_loopback_host("gov.example.com") && !is_loopback_host("10.0.0.1"));
    }

    #[test]
    fn the_spelling_in_the_raw_url_is_checked_too() {
        // What a runtime parser hands over for `http://2130706433:8787/x`.
        let parsed = ClientUrl { scheme: "http:", host: "127.0.0.1", credentials: false };
        assert!(check_webhook_url("http://127.0.0.1:8787/x", &parsed, true).is_ok());
        for raw in [
            "http://2130706433:8787/x",
            "http://0177.0.0.1:8787/x",
            "http://0x7f.1/x",
            "http://127.1/x",
            "http://user@127.1:1/x",
            "HTTP://0X7F.1/x",
            "http:\\\\127.1\\x",
            "http://127.0.0.1./x",
            "http://12\t7.1/x",
        ] {
            assert!(check_webhook_url(raw, &parsed, true).is_err(), "{raw}");
        }
        let public = ClientUrl { scheme: "https:", host: "hooks.example.com", credentials: false };
        assert!(check_webhook_url("https://Hooks.Example.com:8443/a?b#c", &public, false).is_ok());
        assert!(check_webhook_url("https://u:p@hooks.example.com/", &public, false).is_ok());
        assert_eq!(spelled_host("https://[::1]:80/x").as_deref(), Some("[::1]"));
        assert_eq!(spelled_host("https://a@b@host.example:1/").as_deref(), Some("host.example"));
    }
}
