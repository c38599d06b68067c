//! `/api/v1/systems` and `/api/v1/systems/{id}` against data written by the real writer.

mod common;

use common::*;
use sdash_harness::Backend;
use sdash_proto::{Severity, Vendor, now_ms};

async fn empty_fleet(backend: Backend) {
    let env = Env::new(backend).await;
    let list = env.ok("/api/v1/systems").await;
    assert_eq!(list["items"], serde_json::json!([]));
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    let summary = env
        .ok("/api/v1/capacity/summary?group_by=environment")
        .await;
    assert_eq!(summary["overall"]["systems"], 0);
    assert_eq!(summary["overall"]["total_bytes"], 0);
    assert_eq!(summary["overall"]["used_pct"], serde_json::Value::Null);
    assert_eq!(
        env.ok("/api/v1/alerts").await["items"],
        serde_json::json!([])
    );
    assert_eq!(
        env.ok("/api/v1/events").await["items"],
        serde_json::json!([])
    );
    assert_eq!(
        env.ok("/api/v1/collectors").await["items"],
        serde_json::json!([])
    );
    let status = env.ok("/api/v1/status").await;
    assert_eq!(status["systems"]["total"], 0);
    assert_eq!(status["dead_letters"], 0);
    let (code, csv) = env.get_text("/api/v1/export/capacity.csv").await;
    assert_eq!(code, 200);
    assert_eq!(csv.lines().count(), 1, "{csv}");
    let (code, body) = env.get("/api/v1/systems/nope").await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("nope")));
}
both!(empty_fleet);

async fn list_detail_and_unpolled_systems(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec(
            "fa-prod-01",
            "FlashArray Prod 01",
            Vendor::Pure,
            &[("environment", "production")],
            now - 5000,
        ),
        system_rec(
            "ontap-dev",
            "ONTAP dev",
            Vendor::Ontap,
            &[("environment", "dev")],
            now - 5000,
        ),
        // In the inventory but never polled.
        system_rec(
            "dd-new",
            "DataDomain new",
            Vendor::Datadomain,
            &[],
            now - 5000,
        ),
    ])
    .await;
    env.write(vec![
        snapshot(
            "fa-prod-01",
            now - 1000,
            snapshot_body(
                Vendor::Pure,
                40 * GIB,
                100 * GIB,
                vec![alert("a1", Severity::Critical, "Drive failed")],
            ),
        ),
        simple_snapshot("ontap-dev", now - 1000, Vendor::Ontap, 10 * GIB, 100 * GIB),
        // Polled but not (yet) in the inventory.
        simple_snapshot("sg-orphan", now - 1000, Vendor::Storagegrid, 1, 4),
    ])
    .await;

    let list = env.ok("/api/v1/systems").await;
    assert_eq!(
        ids(&list),
        ["dd-new", "fa-prod-01", "ontap-dev", "sg-orphan"]
    );
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let dd = &items[0];
    assert_eq!(dd["status"], serde_json::Value::Null, "never polled: {dd}");
    assert_eq!(dd["capacity"], serde_json::Value::Null);
    assert_eq!(dd["in_inventory"], true);
    assert_eq!(dd["vendor"], "datadomain");
    let fa = &items[1];
    assert_eq!(fa["status"], "online");
    assert_eq!(fa["name"], "FlashArray Prod 01");
    assert_eq!(fa["capacity"]["total_bytes"], 100 * GIB);
    assert_eq!(fa["capacity"]["used_bytes"], 40 * GIB);
    assert_eq!(fa["capacity"]["used_pct"], 40.0);
    assert_eq!(fa["tags"]["environment"], "production");
    assert_eq!(fa["alert_count"], 1);
    assert!(
        fa["last_poll_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(fa["last_poll_at_ms"], now - 1000);
    let orphan = &items[3];
    assert_eq!(orphan["in_inventory"], false);
    assert_eq!(orphan["name"], "reported");
    assert_eq!(orphan["capacity"]["used_pct"], 25.0);

    // Filters.
    assert_eq!(
        ids(&env.ok("/api/v1/systems?vendor=pure").await),
        ["fa-prod-01"]
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?vendor=pure,ontap").await),
        ["fa-prod-01", "ontap-dev"]
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?status=pending").await),
        ["dd-new"]
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?status=online&hardware=ok").await).len(),
        3
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?tag=environment:production").await),
        ["fa-prod-01"]
    );
    assert_eq!(
        ids(&env
            .ok("/api/v1/systems?tag=environment:production&tag=environment:dev")
            .await)
        .len(),
        0
    );
    assert_eq!(ids(&env.ok("/api/v1/systems?q=PROD").await), ["fa-prod-01"]);
    assert_eq!(ids(&env.ok("/api/v1/systems?q=example.net").await).len(), 3);
    assert_eq!(
        ids(&env.ok("/api/v1/systems?q=%25").await).len(),
        0,
        "% is literal"
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?q=%27%20OR%201%3D1%20--").await).len(),
        0
    );
    assert_eq!(
        ids(&env.ok("/api/v1/systems?sort=-used_pct").await),
        ["fa-prod-01", "sg-orphan", "ontap-dev", "dd-new"]
    );

    // Detail.
    let d = env.ok("/api/v1/systems/fa-prod-01").await;
    assert_eq!(d["model"], "FA-X70R4");
    assert_eq!(d["serial"], "PCTFL1234");
    assert_eq!(d["version"], "6.7.3");
    assert_eq!(d["last_poll_duration_ms"], 120);
    assert_eq!(d["components"][0]["name"], "CT0");
    assert_eq!(d["open_alerts"][0]["alert_id"], "a1");
    assert_eq!(d["open_alerts"][0]["severity"], "critical");
    assert!(d["open_alerts"][0]["first_seen"].is_string());
    assert_eq!(d["error"], serde_json::Value::Null);
    let d = env.ok("/api/v1/systems/dd-new").await;
    assert_eq!(d["status"], serde_json::Value::Null);
    assert_eq!(d["components"], serde_json::json!([]));
    assert_eq!(d["open_alerts"], serde_json::json!([]));

    // Removed systems disappear unless asked for.
    env.write_one(removed_rec("dd-new", Vendor::Datadomain, now))
        .await;
    assert_eq!(ids(&env.ok("/api/v1/systems").await).len(), 3);
    assert_eq!(
        ids(&env.ok("/api/v1/systems?include_removed=true").await).len(),
        4
    );
}
both!(list_detail_and_unpolled_systems);

async fn paging_across_pages(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    let mut batch = Vec::new();
    for i in 0..23u64 {
        let id = format!("sys-{i:02}");
        batch.push(system_rec(
            &id,
            &format!("System {}", 22 - i),
            Vendor::Pure,
            &[],
            now - 10_000,
        ));
        if i % 4 != 0 {
            // Several systems share a percentage so ties are broken by id across pages.
            batch.push(simple_snapshot(
                &id,
                now - 1000,
                Vendor::Pure,
                (i % 5) * GIB,
                10 * GIB,
            ));
        }
    }
    env.write(batch).await;
    for sort in [
        "id",
        "-id",
        "name",
        "-used_pct",
        "used_pct",
        "status",
        "-last_poll",
        "alert_count",
    ] {
        let all = env
            .ok(&format!("/api/v1/systems?sort={sort}&limit=1000"))
            .await;
        let expected = ids(&all);
        assert_eq!(expected.len(), 23);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/systems?sort={sort}&limit=5&cursor={c}"),
                None => format!("/api/v1/systems?sort={sort}&limit=5"),
            };
            let page = env.ok(&path).await;
            pages += 1;
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages < 10, "paging does not end for sort {sort}");
        }
        assert_eq!(seen, expected, "sort {sort}");
        assert_eq!(pages, 5, "sort {sort}");
    }
    let names: Vec<String> = env.ok("/api/v1/systems?sort=name&limit=3").await["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["System 0", "System 1", "System 10"]);
    // A cursor from one sort order is refused for another.
    let page = env.ok("/api/v1/systems?sort=name&limit=2").await;
    let c = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let (code, body) = env
        .get(&format!("/api/v1/systems?sort=-used_pct&cursor={c}"))
        .await;
    assert_eq!(code, 400, "{body}");
}
both!(paging_across_pages);
