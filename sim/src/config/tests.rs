use super::*;

#[test]
fn upload_limit_derives_from_other() {
    let mut c = Config::default();
    assert_eq!(c.upload_limit(), 120);
    c.other_per_minute = 7;
    assert_eq!(c.upload_limit(), 2);
    c.upload_per_minute = Some(9);
    assert_eq!(c.upload_limit(), 9);
}

#[test]
fn patch_applies_and_validates() {
    let mut c = Config::default();
    let p: ConfigPatch = serde_json::from_str(r#"{"error_rate":0.5,"webhook_secret":"whsec_x"}"#).unwrap();
    c.apply(p).unwrap();
    assert_eq!(c.error_rate, 0.5);
    assert_eq!(c.webhook_secret.as_deref(), Some("whsec_x"));
    let bad: ConfigPatch = serde_json::from_str(r#"{"error_rate":2}"#).unwrap();
    assert!(c.apply(bad).is_err());
    assert_eq!(c.error_rate, 0.5);
    assert!(serde_json::from_str::<ConfigPatch>(r#"{"nope":1}"#).is_err());
    let off: ConfigPatch = serde_json::from_str(r#"{"webhook_secret":null}"#).unwrap();
    c.apply(off).unwrap();
    assert_eq!(c.webhook_secret, None);
    for bad in [r#"{"estimate_error":-0.1}"#, r#"{"estimate_bias":-2}"#, r#"{"estimate_status":200}"#] {
        assert!(c.apply(serde_json::from_str(bad).unwrap()).is_err(), "{bad}");
    }
    c.apply(serde_json::from_str(r#"{"estimate_bias":0.2,"estimate_status":404}"#).unwrap()).unwrap();
    assert_eq!((c.estimate_bias, c.estimate_status), (0.2, 404));
}
