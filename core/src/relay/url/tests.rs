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
    assert!(
        check_client_url(&ClientUrl { scheme: "https:", host: "hooks.example.com", credentials: true }, false).is_err()
    );
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
