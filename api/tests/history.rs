//! Alerts, events, collectors and pipeline status.

mod common;

use common::*;
use sdash_harness::Backend;
use sdash_proto::{Category, Level, Severity, Vendor, now_ms};
use serde_json::Value;

async fn alerts_open_and_cleared(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec("fa-1", "FA 1", Vendor::Pure, &[], now - 10_000),
        system_rec("nt-1", "NT 1", Vendor::Ontap, &[], now - 10_000),
    ])
    .await;
    env.write(vec![
        snapshot(
            "fa-1",
            now - 5000,
            snapshot_body(
                Vendor::Pure,
                GIB,
                2 * GIB,
                vec![
                    alert("a1", Severity::Critical, "Drive failed"),
                    alert("a2", Severity::Warning, "Fan slow"),
                ],
            ),
        ),
        snapshot(
            "nt-1",
            now - 4000,
            snapshot_body(
                Vendor::Ontap,
                GIB,
                2 * GIB,
                vec![alert("n1", Severity::Error, "Node down")],
            ),
        ),
    ])
    .await;
    // a2 clears.
    env.write_one(snapshot(
        "fa-1",
        now - 1000,
        snapshot_body(
            Vendor::Pure,
            GIB,
            2 * GIB,
            vec![alert("a1", Severity::Critical, "Drive failed")],
        ),
    ))
    .await;

    let open = env.ok("/api/v1/alerts").await;
    let ids: Vec<&str> = open["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["alert_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["n1", "a1"], "newest first: {open}");
    let a1 = &open["items"][1];
    assert_eq!(a1["open"], true);
    assert_eq!(a1["system_name"], "FA 1");
    assert_eq!(a1["vendor"], "pure");
    assert_eq!(a1["first_seen_ms"], now - 5000);
    assert_eq!(a1["last_seen_ms"], now - 1000);
    assert_eq!(a1["cleared_at"], Value::Null);
    let cleared = env.ok("/api/v1/alerts?state=cleared").await;
    assert_eq!(cleared["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(cleared["items"][0]["alert_id"], "a2");
    assert_eq!(cleared["items"][0]["cleared_at_ms"], now - 1000);
    assert!(cleared["items"][0]["cleared_at"].is_string());
    assert_eq!(
        env.ok("/api/v1/alerts?state=all").await["items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        env.ok("/api/v1/alerts?state=all&severity=critical,warning")
            .await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        env.ok("/api/v1/alerts?vendor=ontap").await["items"][0]["alert_id"],
        "n1"
    );
    assert_eq!(
        env.ok("/api/v1/alerts?system=fa-1&state=all").await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Paging.
    let p1 = env.ok("/api/v1/alerts?state=all&limit=2").await;
    let cursor = p1["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let p2 = env
        .ok(&format!("/api/v1/alerts?state=all&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(p2["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(p2["next_cursor"], Value::Null);
    // The detail shows the open ones only.
    let d = env.ok("/api/v1/systems/fa-1").await;
    assert_eq!(d["open_alerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["alert_count"], 1);
}
both!(alerts_open_and_cleared);

async fn events_filters_and_paging(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec("fa-1", "FA 1", Vendor::Pure, &[], now - 100_000),
        system_rec("fa-2", "FA 2", Vendor::Pure, &[], now - 100_000),
    ])
    .await;
    let levels = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];
    let mut batch = Vec::new();
    for i in 0..25i64 {
        let level = levels[(i % 5) as usize];
        let category = if i % 2 == 0 {
            Category::Connection
        } else {
            Category::ApiCall
        };
        // Pairs of events share a timestamp so paging must break ties by event id.
        batch.push(event(
            "fa-1",
            now - 60_000 + (i / 2) * 1000,
            level,
            category,
            &format!("event {i}"),
        ));
    }
    batch.push(event(
        "fa-2",
        now - 500,
        Level::Error,
        Category::Health,
        "other system",
    ));
    env.write(batch).await;

    let all = env.ok("/api/v1/events?limit=1000").await;
    let items = all["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 26);
    assert_eq!(items[0]["system_id"], "fa-2");
    let times: Vec<i64> = items
        .iter()
        .filter_map(|i| i["observed_at_ms"].as_i64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(items[0]["observed_at"].is_string());
    assert_eq!(items[0]["http_status"], 503);

    let sys = env.ok("/api/v1/systems/fa-1/events?limit=1000").await;
    assert_eq!(sys["items"].as_array().map(Vec::len), Some(25));
    let warn = env
        .ok("/api/v1/systems/fa-1/events?level=warning&limit=1000")
        .await;
    assert_eq!(
        warn["items"].as_array().map(Vec::len),
        Some(15),
        "warning and above"
    );
    let conn = env
        .ok("/api/v1/events?category=connection&system=fa-1&limit=1000")
        .await;
    assert_eq!(conn["items"].as_array().map(Vec::len), Some(13));
    let both = env
        .ok("/api/v1/events?category=connection,health&limit=1000")
        .await;
    assert_eq!(both["items"].as_array().map(Vec::len), Some(14));
    let since = sdash_proto::format_ms(now - 60_000 + 10_000);
    let until = sdash_proto::format_ms(now - 60_000 + 12_000);
    let window = env
        .ok(&format!("/api/v1/events?since={since}&until={until}"))
        .await;
    assert_eq!(
        window["items"].as_array().map(Vec::len),
        Some(4),
        "{window}"
    );

    // Paging 25 events of fa-1 by 4: 7 pages, every event once, same order as one page.
    let expected: Vec<String> = sys["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["event_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = Vec::new();
    let mut path = "/api/v1/systems/fa-1/events?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let page = env.ok(&path).await;
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["event_id"].as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/systems/fa-1/events?limit=4&cursor={c}"),
            None => break,
        }
        assert!(pages < 20);
    }
    assert_eq!(pages, 7);
    assert_eq!(seen, expected);

    // A system with no events, and an unknown one.
    env.write_one(system_rec("quiet", "Quiet", Vendor::Pure, &[], now))
        .await;
    assert_eq!(
        env.ok("/api/v1/systems/quiet/events").await["items"],
        serde_json::json!([])
    );
    let (code, body) = env.get("/api/v1/systems/ghost/events").await;
    assert_eq!(code, 404, "{body}");
}
both!(events_filters_and_paging);

async fn collectors_and_status(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        collector("col-a", now - 2000, &["fa-1", "fa-2"]),
        collector("col-b", now - 3_600_000, &[]),
        system_rec("fa-1", "FA 1", Vendor::Pure, &[], now - 10_000),
        system_rec("fa-2", "FA 2", Vendor::Pure, &[], now - 10_000),
        snapshot(
            "fa-1",
            now - 1000,
            snapshot_body(Vendor::Pure, 1, 2, vec![alert("x", Severity::Info, "note")]),
        ),
        snapshot("fa-2", now - 1000, {
            let mut s = snapshot_body(Vendor::Pure, 1, 2, Vec::new());
            s.status = sdash_proto::Status::Unreachable;
            s.error = Some("connection refused".into());
            s
        }),
    ])
    .await;
    // A message that cannot be decoded ends up as a dead letter.
    env.write_one(("sdash.v1.snapshot.fa-1".into(), b"garbage".to_vec()))
        .await;

    let c = env.ok("/api/v1/collectors").await;
    let items = c["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], "col-a");
    assert_eq!(items[0]["live"], true);
    assert_eq!(items[0]["system_count"], 2);
    assert_eq!(items[0]["last_seen_ms"], now - 2000);
    assert_eq!(items[1]["live"], false);

    let s = env.ok("/api/v1/status").await;
    assert_eq!(s["database"], backend_name(backend));
    assert_eq!(s["dead_letters"], 1, "{s}");
    assert!(s["last_commit_at"].is_string(), "{s}");
    assert!(
        s["writer_lag_ms"]
            .as_i64()
            .is_some_and(|l| (0..60_000).contains(&l)),
        "{s}"
    );
    assert!(s["last_stream_seq"].as_i64().is_some_and(|n| n >= 1), "{s}");
    assert_eq!(s["systems"]["total"], 2);
    assert_eq!(s["systems"]["online"], 1);
    assert_eq!(s["systems"]["unreachable"], 1);
    assert_eq!(s["open_alerts"], 1);
    assert_eq!(s["collectors_live"], 1);
    assert_eq!(s["nats_connected"], false);
    let d = env.ok("/api/v1/systems/fa-2").await;
    assert_eq!(d["status"], "unreachable");
    assert_eq!(d["error"], "connection refused");
}
both!(collectors_and_status);

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}
