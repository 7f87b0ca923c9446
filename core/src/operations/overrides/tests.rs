use super::*;
use crate::config::Config;

fn base(vars: &[(&str, &str)]) -> Limits {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(&|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap().limits
}

#[test]
fn a_patch_sets_clears_and_reports_its_source() {
    let base = base(&[("SYNC_PLAN", "creator")]);
    let mut o = Overrides::default();
    o.merge(&LimitsPatch::parse(br#"{"plan":"scale","generatePerMinute":120}"#, &base).unwrap());
    let eff = o.apply(&base);
    assert_eq!((eff.concurrency.cap, eff.generate.limit, eff.generate.burst), (15, 120, 120));
    let src = o.sources(&base);
    let find = |n: &str| src.iter().find(|l| l.name == n).unwrap().clone();
    assert_eq!(find("concurrency").source, Source::Override);
    assert_eq!(find("requests.perMinute").source, Source::Default);
    o.merge(&LimitsPatch::parse(br#"{"concurrency":null}"#, &base).unwrap());
    assert_eq!(o.apply(&base).concurrency.cap, 3);
    assert_eq!(o.sources(&base).iter().find(|l| l.name == "concurrency").unwrap().source, Source::Var);
    o.merge(&LimitsPatch::parse(br#"{"generatePerMinute":null}"#, &base).unwrap());
    assert!(o.is_empty());
}

#[test]
fn bad_patches_are_refused_with_the_field_named() {
    let base = base(&[]);
    for (body, needle) in [
        (&br#"{"generatePerMinute":0}"#[..], "generatePerMinute"),
        (br#"{"concurrency":100001}"#, "concurrency"),
        (br#"{"plan":"gold"}"#, "plan"),
        (br#"{"plan":"scale","concurrency":3}"#, "not both"),
        (br#"{"classes":{"nope":{"perMinute":3}}}"#, "RATE_CLASSES"),
        (br#"{"surprise":1}"#, "expected"),
        (br#"[1]"#, "expected"),
    ] {
        let e = LimitsPatch::parse(body, &base).expect_err(std::str::from_utf8(body).unwrap());
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn bursts_stay_within_their_limits() {
    let base = base(&[("GENERATE_PER_MINUTE", "60"), ("GENERATE_BURST", "10")]);
    let mut o = Overrides::default();
    o.merge(&LimitsPatch::parse(br#"{"generatePerMinute":5}"#, &base).unwrap());
    assert_eq!(o.apply(&base).generate.burst, 5);
    o.merge(
        &LimitsPatch::parse(br#"{"generatePerMinute":100,"classes":{"upload":{"perMinute":7,"burst":9}}}"#, &base)
            .unwrap(),
    );
    let eff = o.apply(&base);
    assert_eq!(eff.generate.burst, 10, "a paced class stays paced");
    assert_eq!((eff.extra[0].rate.limit, eff.extra[0].rate.burst), (7, 7));
}
