//! Property tests of the admission core with an injected clock.

use governor_core::admission::request::{AdmitRequest, Reason};
use governor_core::config::limits::Limits;
use governor_core::lifecycle::status::GenerationStatus;
use governor_core::lifecycle::status::Observed;
use governor_core::rates::window::{RateLimit, WindowLog};
use governor_core::storage::mem::MemAccount;
use governor_core::wire::contract::{Command, Reply};
use proptest::prelude::*;

fn admit(class: &str, permit: bool) -> Command {
    Command::Admit(AdmitRequest { class: class.into(), permit, ..AdmitRequest::default() })
}

proptest! {
    /// In any span of `window` ms, at most `limit` admissions; and whenever
    /// the span ending now has room, the request is admitted.
    #[test]
    fn sliding_window_is_exact(
        limit in 1u32..20,
        window in 10u64..5_000,
        gaps in prop::collection::vec(0u64..400, 1..300),
    ) {
        let cfg = RateLimit::per_window(limit, window, 0);
        let mut log = WindowLog::default();
        let mut admitted: Vec<u64> = Vec::new();
        let mut now = 1_000u64;
        for gap in gaps {
            now += gap;
            let in_span = admitted.iter().filter(|&&a| a + window > now).count() as u32;
            match log.check(&cfg, now) {
                Ok(()) => {
                    prop_assert!(in_span < limit);
                    log.record(&cfg, now);
                    admitted.push(now);
                }
                Err(at) => {
                    prop_assert!(in_span >= limit, "refused with room: {in_span} < {limit}");
                    prop_assert!(at > now);
                    // Waiting exactly until `at` (and alone) is admitted.
                    prop_assert_eq!(log.check(&cfg, at), Ok(()));
                    // One millisecond earlier is not: the retry time is the earliest.
                    prop_assert!(log.check(&cfg, at - 1).is_err());
                }
            }
        }
        for (i, a) in admitted.iter().enumerate() {
            if let Some(b) = admitted.get(i + limit as usize) {
                prop_assert!(b - a >= window, "{} admissions within {} ms", limit + 1, b - a);
            }
        }
    }

    /// A margin never lets more than `limit` fall within `window + margin`.
    #[test]
    fn margin_is_respected(limit in 1u32..10, margin in 0u64..500, gaps in prop::collection::vec(0u64..300, 1..200)) {
        let cfg = RateLimit::per_window(limit, 1_000, margin);
        let mut log = WindowLog::default();
        let mut admitted = Vec::new();
        let mut now = 0u64;
        for gap in gaps {
            now += gap;
            if log.check(&cfg, now).is_ok() {
                log.record(&cfg, now);
                admitted.push(now);
            }
        }
        for (i, a) in admitted.iter().enumerate() {
            if let Some(b) = admitted.get(i + limit as usize) {
                prop_assert!(b - a >= 1_000 + margin);
            }
        }
    }

    /// Permits never exceed the cap, generate spends rate only with a permit,
    /// and a client honouring the whole-second Retry-After alone is admitted.
    #[test]
    fn account_all_or_nothing(
        cap in 1u32..5,
        ops in prop::collection::vec((0u8..4, 0u64..2_000), 1..200),
    ) {
        let limits = Limits::for_window(5, 50, cap, 1_000, 0);
        let mut st = MemAccount::default();
        let mut now = 10_000u64;
        let mut bound: Vec<String> = Vec::new();
        let mut next = 0;
        for (op, gap) in ops {
            now += gap % 300;
            match op {
                0 | 1 => {
                    let used_before = st.state.policies(&limits, now, &governor_core::rates::class::RateClass::Generate, false)[0].remaining;
                    match st.apply(&limits, now, 0.5, admit("generate", true)) {
                        Reply::Admitted(a) => {
                            let permit = a.permit.expect("generate admission carries a permit");
                            next += 1;
                            let id = format!("g{next}");
                            st.apply(&limits, now, 0.5, Command::Bind { permit, generation: id.clone().into(), replay: None });
                            bound.push(id);
                        }
                        Reply::Rejected(r) => {
                            let used_after = st.state.policies(&limits, now, &governor_core::rates::class::RateClass::Generate, false)[0].remaining;
                            prop_assert_eq!(used_before, used_after, "a refusal spent budget");
                            prop_assert!(r.retry_after_ms >= 1);
                            if r.reason == Reason::Rate {
                                let mut alone = st.clone();
                                let later = now + r.retry_after_secs() * 1_000;
                                let rate_ok = !matches!(
                                    alone.apply(&limits, later, 0.5, admit("generate", false)),
                                    Reply::Rejected(x) if x.reason == Reason::Rate
                                );
                                prop_assert!(rate_ok, "retry-after was not honest");
                            }
                        }
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                2 => {
                    if !bound.is_empty() {
                        let id = bound.remove(0);
                        let obs = Command::Observe { generations: vec![Observed { id: id.into(), status: GenerationStatus::Completed, output_ms: None }] };
                        st.apply(&limits, now, 0.5, obs);
                    }
                }
                _ => {
                    st.apply(&limits, now, 0.5, admit("other", false));
                }
            }
            prop_assert!(st.state.permits.in_use() <= cap);
            prop_assert_eq!(st.state.permits.in_use() as usize, bound.len());
        }
    }
}

#[test]
fn concurrency_retry_after_comes_from_observed_durations() {
    let limits = Limits::for_window(100, 100, 1, 60_000, 0);
    let mut st = MemAccount::default();
    // Learn that generations take 8 s.
    for i in 0..3u64 {
        let t = i * 10_000;
        let Reply::Admitted(a) = st.apply(&limits, t, 0.5, admit("generate", true)) else { panic!() };
        let id = format!("g{i}");
        st.apply(
            &limits,
            t,
            0.5,
            Command::Bind { permit: a.permit.unwrap(), generation: id.clone().into(), replay: None },
        );
        st.apply(
            &limits,
            t + 8_000,
            0.5,
            Command::Webhook {
                generation: id.into(),
                status: GenerationStatus::Completed,
                relay: None,
                output_ms: None,
            },
        );
    }
    let t = 100_000;
    let Reply::Admitted(a) = st.apply(&limits, t, 0.5, admit("generate", true)) else { panic!() };
    st.apply(&limits, t, 0.5, Command::Bind { permit: a.permit.unwrap(), generation: "g9".into(), replay: None });
    let Reply::Rejected(r) = st.apply(&limits, t + 3_000, 0.5, admit("generate", true)) else { panic!() };
    assert_eq!(r.reason, Reason::Concurrency);
    assert_eq!(r.retry_after_ms, 5_000, "8 s expected, 3 s elapsed");
    assert_eq!(r.retry_after_secs(), 5);
}

#[test]
fn upstream_429_pauses_the_class() {
    let limits = Limits::for_window(100, 100, 3, 60_000, 0);
    let mut st = MemAccount::default();
    let cmd = Command::UpstreamLimited {
        class: "other".into(),
        kind: governor_core::lifecycle::limited::LimitKind::Rate,
        permit: None,
        retry_after_ms: Some(2_000),
    };
    st.apply(&limits, 0, 0.0, cmd);
    let Reply::Rejected(r) = st.apply(&limits, 500, 0.5, admit("other", false)) else { panic!() };
    assert_eq!(r.reason, Reason::UpstreamBackoff);
    assert_eq!(r.retry_at_ms, 2_000);
    assert!(matches!(st.apply(&limits, 2_000, 0.5, admit("other", false)), Reply::Admitted(_)));
}

#[test]
fn state_survives_serialisation() {
    let limits = Limits::for_window(2, 100, 1, 60_000, 0);
    let mut st = MemAccount::default();
    st.apply(&limits, 0, 0.5, admit("generate", true));
    st.apply(&limits, 1, 0.5, admit("other", false));
    st.restart(&limits);
    let Reply::Rejected(r) = st.apply(&limits, 2, 0.5, admit("generate", true)) else { panic!() };
    assert_eq!(r.reason, Reason::Concurrency, "the reloaded permit still counts");
}
