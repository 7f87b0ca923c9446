use super::*;
use crate::ledger::MemLedger;

fn cfg() -> CostConfig {
    let get = |k: &str| match k {
        "PRICES" => Some(r#"{"lipsync-2": 0.04}"#.to_owned()),
        "BUDGET_USD_PER_DAY" => Some("1".to_owned()),
        _ => None,
    };
    CostConfig::from_vars(&get).unwrap()
}

#[test]
fn a_job_reserves_settles_and_the_ledger_adds_up() {
    let cfg = cfg();
    let mut c = Costs::default();
    let now = 1_795_856_248_123;
    let ask = CostAsk {
        client: "mobile",
        model: Some("lipsync-2"),
        sync_estimate: Some(MicroUsd(400_000)),
        ..CostAsk::default()
    };
    assert!(wants_sync_estimate(&cfg, &ask.client_limits));
    let e = c.check(&cfg, &ask, now).unwrap();
    let row = c.arrived("mobile", Some("lipsync-2"), None, now);
    c.admitted(row, e, PermitId::from(1u64), 0, now);
    // 0.4 reserved of 1.0: a second 0.4 fits, a third does not.
    let row2 = c.arrived("mobile", Some("lipsync-2"), None, now);
    c.admitted(row2, c.check(&cfg, &ask, now).unwrap(), PermitId::from(2u64), 0, now);
    let Err(CostRefusal::Exhausted(x)) = c.check(&cfg, &ask, now) else { panic!() };
    assert_eq!(x.scope, Scope::Account);
    c.bound(PermitId::from(1u64), &"g1".into(), now + 10);
    c.upstream_429(PermitId::from(2u64));
    let r1 = c.row_of(None, Some(&"g1".into())).unwrap();
    assert_eq!(
        c.ended(&cfg, r1, FinalStatus::Sync(GenerationStatus::Completed), Some(12.0), now + 99),
        Some(MicroUsd(480_000))
    );
    let r2 = c.row_of(Some(PermitId::from(2u64)), None).unwrap();
    assert_eq!(c.ended(&cfg, r2, FinalStatus::Refused, None, now + 99), Some(MicroUsd::ZERO));
    let spend = c.book.spend(&Scope::Account, crate::budget::Period::Day, now);
    assert_eq!((spend.settled, spend.reserved), (MicroUsd(480_000), MicroUsd::ZERO));
    let mut t = MemLedger::default();
    t.write(&c.ledger.take_writes());
    let rows: Vec<_> = t.0.values().collect();
    assert_eq!(rows.iter().filter_map(|r| r.settled).map(|s| s.0).sum::<u64>(), spend.settled.0);
    assert_eq!(rows[1].upstream_429s, 1);
    // Learned from the completed job: without Sync's answer the estimate is 0.48.
    let ask = CostAsk { sync_estimate: None, ..ask };
    assert_eq!(
        c.check(&cfg, &ask, now).unwrap().map(|e| (e.cost, e.source)),
        Some((MicroUsd(480_000), CostSource::Learned))
    );
    // Unpriced model with a budget: refused, never guessed as free.
    let other = CostAsk { model: Some("sync-3"), ..ask };
    assert_eq!(c.check(&cfg, &other, now), Err(CostRefusal::Unknown));
}
