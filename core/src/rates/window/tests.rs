use super::*;

#[test]
fn persists_compactly() {
    let c = RateLimit::per_window(5, 1_000, 0);
    let mut log = WindowLog::default();
    for t in [1_795_856_248_123, 1_795_856_248_135, 1_795_856_248_135, 1_795_856_248_475] {
        log.record(&c, t);
    }
    let json = serde_json::to_string(&log).unwrap();
    assert_eq!(json, r#"{"s":"1795856248123,12,0,340"}"#);
    assert_eq!(serde_json::from_str::<WindowLog>(&json).unwrap(), log);
    assert_eq!(serde_json::from_str::<WindowLog>(r#"{"s":""}"#).unwrap(), WindowLog::default());
}

fn cfg(limit: u32) -> RateLimit {
    RateLimit::per_window(limit, 1_000, 0)
}

#[test]
fn admits_a_whole_burst_then_refuses_until_the_oldest_leaves() {
    let c = cfg(3);
    let mut log = WindowLog::default();
    for t in [0, 10, 20] {
        assert_eq!(log.check(&c, t), Ok(()));
        log.record(&c, t);
    }
    assert_eq!(log.check(&c, 30), Err(1_000));
    assert_eq!(log.check(&c, 1_000), Ok(()));
    log.record(&c, 1_000);
    assert_eq!(log.check(&c, 1_001), Err(1_010));
}

#[test]
fn margin_widens_the_span() {
    let c = RateLimit::per_window(1, 1_000, 250);
    let mut log = WindowLog::default();
    log.record(&c, 0);
    assert_eq!(log.check(&c, 1_000), Err(1_250));
}

#[test]
fn pacing_spreads_admissions() {
    let c = RateLimit { limit: 10, window_ms: 1_000, margin_ms: 0, burst: 2 };
    let mut log = WindowLog::default();
    log.record(&c, 0);
    assert_eq!(log.check(&c, 0), Ok(()));
    log.record(&c, 0);
    assert_eq!(log.check(&c, 0), Err(100));
}

#[test]
fn remaining_and_reset() {
    let c = cfg(2);
    let mut log = WindowLog::default();
    assert_eq!(log.remaining(&c, 0), 2);
    assert_eq!(log.reset_in(&c, 0), 0);
    log.record(&c, 100);
    assert_eq!(log.remaining(&c, 200), 1);
    assert_eq!(log.reset_in(&c, 200), 900);
    assert!(log.is_idle(&c, 1_100));
}

#[test]
fn zero_limit_never_admits() {
    assert_eq!(WindowLog::default().check(&cfg(0), 5), Err(Ms::MAX));
}
