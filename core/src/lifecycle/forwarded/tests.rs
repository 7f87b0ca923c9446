use super::*;
use crate::ids::{GenerationId, PermitId};
use crate::lifecycle::status::{GenerationStatus, Observed};
use crate::rates::class::RateClass;

fn forwarded(kind: ProxyKind, class: RateClass) -> Forwarded {
    Forwarded {
        proxy: Proxy { class, kind },
        permit: None,
        batch_permit: None,
        batch_result: None,
        idempotency: None,
        in_flight: Vec::new(),
    }
}

#[test]
fn a_create_binds_its_permit_and_reads_the_body() {
    let f = Forwarded { permit: Some(PermitId(7)), ..forwarded(ProxyKind::Create, RateClass::Generate) };
    assert!(f.needs_body(201));
    let s = f.read(201, br#"{"id":"g1","status":"PENDING"}"#, None);
    assert_eq!(s.command, Some(Command::Bind { permit: PermitId(7), generation: "g1".into(), replay: None }));
    assert_eq!((s.generation.as_ref().map(GenerationId::as_str), s.limited, s.ended), (Some("g1"), false, None));
}

#[test]
fn a_create_that_already_ended_frees_its_permit_after_the_bind() {
    let f = Forwarded { permit: Some(PermitId(7)), ..forwarded(ProxyKind::Create, RateClass::Generate) };
    let s = f.read(200, br#"{"id":"g1","status":"COMPLETED"}"#, None);
    assert!(matches!(s.command, Some(Command::Bind { .. })));
    assert!(
        matches!(&s.ended, Some(Command::Observe { generations }) if generations[0].status == GenerationStatus::Completed)
    );
}

#[test]
fn a_429_is_the_governors_own_answer_for_every_kind() {
    for (kind, class) in [
        (ProxyKind::Other, RateClass::Other),
        (ProxyKind::ReadsGenerations, RateClass::Other),
        (ProxyKind::Create, RateClass::Generate),
    ] {
        let f =
            Forwarded { permit: (kind == ProxyKind::Create).then_some(PermitId(3)), ..forwarded(kind.clone(), class) };
        assert!(f.needs_body(429), "{kind:?}");
        let s = f.read(429, br#"{"errorCode":"rate_limit_exceeded"}"#, Some(2_000));
        assert!(s.limited, "{kind:?}");
        assert!(
            matches!(s.command, Some(Command::UpstreamLimited { retry_after_ms: Some(2_000), .. })),
            "{kind:?}: {:?}",
            s.command
        );
    }
}

#[test]
fn a_read_observes_only_what_the_account_holds_and_streams_otherwise() {
    let list = br#"[{"id":"a","status":"FAILED"},{"id":"b","status":"COMPLETED"}]"#;
    let held = Forwarded { in_flight: vec!["a".into()], ..forwarded(ProxyKind::ReadsGenerations, RateClass::Other) };
    assert!(held.needs_body(200));
    let observed = Observed { id: "a".into(), status: GenerationStatus::Failed, output_ms: None };
    assert_eq!(held.read(200, list, None).command, Some(Command::Observe { generations: vec![observed] }));
    let none = forwarded(ProxyKind::ReadsGenerations, RateClass::Other);
    assert!(!none.needs_body(200), "nothing held: the body streams through");
    assert_eq!(none.read(200, b"", None), Settlement::default());
    assert!(!forwarded(ProxyKind::Other, RateClass::Other).needs_body(500));
}

#[test]
fn batches_end_by_a_result_redirect_or_a_terminal_read() {
    let result = Forwarded {
        batch_result: batch_result_id("/v2/batches/Bx1/result"),
        ..forwarded(ProxyKind::ReadsBatches, RateClass::Other)
    };
    assert!(!result.needs_body(302));
    let s = result.read(302, b"", None);
    assert!(
        matches!(&s.command, Some(Command::BatchesSeen { batches }) if batches[0].id == "Bx1" && batches[0].terminal)
    );
    let read = forwarded(ProxyKind::ReadsBatches, RateClass::Other);
    assert!(read.needs_body(200));
    assert_eq!(read.read(200, br#"{"id":"b1","status":"PROCESSING"}"#, None).command, None);
}

#[test]
fn a_batch_create_that_sync_refuses_for_its_limits_is_limited() {
    let f = Forwarded { batch_permit: Some(4), ..forwarded(ProxyKind::BatchCreate, RateClass::Other) };
    assert!(f.needs_body(429));
    let s = f.read(429, br#"{"errorCode":"concurrency_limit_exceeded"}"#, None);
    assert!(s.limited, "{:?}", s.command);
    assert!(matches!(s.command, Some(Command::BatchCreated { permit: 4, .. })));
}

#[test]
fn an_unanswered_forward_leaves_its_permits_unsettled() {
    let f = Forwarded {
        permit: Some(PermitId(1)),
        batch_permit: Some(2),
        ..forwarded(ProxyKind::Create, RateClass::Generate)
    };
    let commands = f.unanswered();
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[0], Command::Unsettled { permit: PermitId(1) });
    assert!(matches!(commands[1], Command::BatchCreated { permit: 2, answer: CreateAnswer::Unknown, .. }));
    assert!(forwarded(ProxyKind::Other, RateClass::Other).unanswered().is_empty());
}

#[test]
fn batch_result_ids_keep_the_clients_spelling() {
    assert_eq!(batch_result_id("/v2/batches/AbC/result").as_deref(), Some("AbC"));
    assert_eq!(batch_result_id("/v2/batches/AbC/result/").as_deref(), Some("AbC"));
    assert_eq!(batch_result_id("/v2/batches/AbC"), None);
    assert_eq!(batch_result_id("/v2/batches//result"), None);
}
