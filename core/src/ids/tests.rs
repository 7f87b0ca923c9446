use super::*;

#[test]
fn ids_keep_their_bytes_on_the_wire() {
    assert_eq!(serde_json::to_string(&PermitId(7)).unwrap(), "7");
    assert_eq!(serde_json::from_str::<PermitId>("7").unwrap(), PermitId(7));
    let t = TicketId::random([0xab; 16]);
    assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"tk_{}\"", "ab".repeat(16)));
    assert_eq!(serde_json::from_str::<TicketId>("\"tk_1_2\"").unwrap(), TicketId::numbered(1, 2));
    let g = GenerationId::new("gen-1");
    assert_eq!(serde_json::to_string(&g).unwrap(), "\"gen-1\"");
    assert_eq!(serde_json::from_str::<GenerationId>("\"gen-1\"").unwrap(), g);
    // As map keys too (JSON object keys are strings).
    let m: std::collections::BTreeMap<PermitId, GenerationId> = [(PermitId(3), g.clone())].into();
    assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"3":"gen-1"}"#);
    assert_eq!(
        serde_json::from_str::<std::collections::BTreeMap<PermitId, GenerationId>>(r#"{"3":"gen-1"}"#).unwrap(),
        m
    );
}

#[test]
fn hostile_ids_are_checked_where_they_enter() {
    assert!(TicketId::parse(&format!("tk_{}", "0".repeat(32))).is_some());
    for bad in ["", "tk_", "tk_1_2", "tk_zz", &format!("tk_{}", "0".repeat(33)), &format!("TK_{}", "0".repeat(32))] {
        assert!(TicketId::parse(bad).is_none(), "{bad:?}");
    }
    assert_eq!(TicketId::from_path("tk_1").map(|t| t.to_string()), Some("tk_1".to_owned()));
    assert!(TicketId::from_path("").is_none());
    assert!(TicketId::from_path("a/b").is_none());
    assert!(GenerationId::parse("gen_1-a.b~c").is_some());
    for bad in ["", "a b", "a/b", "\u{202e}x", &"x".repeat(129)] {
        assert!(GenerationId::parse(bad).is_none(), "{bad:?}");
    }
    assert!(is_sync_id(&"x".repeat(128)));
}
