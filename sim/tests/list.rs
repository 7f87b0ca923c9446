//! `GET /v2/generations`: filters, both status forms, paging with cursors.

mod common;

use common::*;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn list_filters_paging_and_cursor() {
    let mut conf = cfg();
    conf.concurrency = 10;
    conf.pending_ms = 60_000;
    let s = start(conf).await;
    let c = client();
    let base = s.url();

    // Two quick ones end (COMPLETED, FAILED), four stay PENDING.
    let mut quick = body_for("https://x/v.mp4");
    quick["options"] = serde_json::json!({"sim_duration_ms": 20});
    let (_, done) = create(&c, &base, K1, &quick).await;
    let mut failing = body_for("https://x/fail.mp4");
    failing["options"] = serde_json::json!({"sim_duration_ms": 20});
    let (_, failed) = create(&c, &base, K1, &failing).await;
    let mut created = vec![done["id"].as_str().unwrap().to_string(), failed["id"].as_str().unwrap().to_string()];
    for _ in 0..4 {
        let (_, g) = create(&c, &base, K1, &body_for("https://x/v.mp4")).await;
        created.push(g["id"].as_str().unwrap().to_string());
    }
    create(&c, &base, K2, &body_for("https://x/v.mp4")).await;
    wait_status(&c, &base, K1, &created[0], "COMPLETED").await;
    wait_status(&c, &base, K1, &created[1], "FAILED").await;

    // Newest first, only this key's.
    let (st, all) = get(&c, &base, K1, "/v2/generations").await;
    assert_eq!(st, 200);
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(ids(&all), newest_first);

    // Both status forms.
    let (_, a) = get(&c, &base, K1, "/v2/generations?status=COMPLETED,FAILED").await;
    let (_, b) = get(&c, &base, K1, "/v2/generations?status=COMPLETED&status=FAILED").await;
    assert_eq!(ids(&a), vec![created[1].clone(), created[0].clone()]);
    assert_eq!(ids(&a), ids(&b));
    let (_, p) = get(&c, &base, K1, "/v2/generations?status=PENDING").await;
    assert_eq!(p.as_array().unwrap().len(), 4);
    let (_, p) = get(&c, &base, K1, "/v2/generations?status=PENDING%2CPROCESSING").await;
    assert_eq!(p.as_array().unwrap().len(), 4);

    // ids filter.
    let (_, f) = get(&c, &base, K1, &format!("/v2/generations?ids={},{}", created[2], created[4])).await;
    assert_eq!(ids(&f), vec![created[4].clone(), created[2].clone()]);

    // Paging with cursor = id of the last item of the previous page.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v2/generations?limit=4".to_string(),
            Some(c) => format!("/v2/generations?limit=4&cursor={c}"),
        };
        let (st, page) = get(&c, &base, K1, &path).await;
        assert_eq!(st, 200);
        let page = ids(&page);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        cursor = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen, newest_first);

    // Paging combined with a status filter.
    let (_, p1) = get(&c, &base, K1, "/v2/generations?status=PENDING&limit=3").await;
    let p1 = ids(&p1);
    let (_, p2) = get(&c, &base, K1, &format!("/v2/generations?status=PENDING&limit=3&cursor={}", p1[2])).await;
    assert_eq!(ids(&p2), vec![created[2].clone()]);

    // Validation.
    for q in ["limit=0", "limit=101", "limit=x", "cursor=abc", "status=BOGUS", "limit=5&cursor=unknown"] {
        let (st, v) = get(&c, &base, K1, &format!("/v2/generations?{q}")).await;
        assert_eq!(st, 400, "{q}");
        assert_error(&v, 400, "invalid_request");
    }
    let (st, _) = get(&c, &base, K1, "/v2/generations?limit=100").await;
    assert_eq!(st, 200);
    s.shutdown().await;
}
