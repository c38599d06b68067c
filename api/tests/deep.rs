//! The deeper state of each array (#17) through the real writer: cluster type, web UI and
//! provisioned bytes in the list, the `cluster_type` filter, topology, pools and performance in
//! the detail, the performance and pool histories from the tier that covers the range, and the
//! fleet metrics of performance, provisioned bytes and pools.

mod common;

use common::*;
use sdash_harness::Backend;
use sdash_proto::{ClusterType, PoolKind, Snapshot, Vendor, format_ms, now_ms};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

/// The start of the UTC hour `ago` ms before `now`.
fn hour_before(now: i64, ago: i64) -> i64 {
    (now - ago).div_euclid(HOUR) * HOUR
}

/// `GET /api/v1/systems/<path>?<query>`, 200.
async fn series(env: &Env, path: &str, query: String) -> Value {
    env.ok(&format!("/api/v1/systems/{path}?{query}")).await
}

/// `from=` `days` before `now`.
fn from_days(now: i64, days: i64) -> String {
    format!("from={}", format_ms(now - days * 86_400_000))
}

async fn list_detail_and_filter(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec("fa-1", "FA 1", Vendor::Pure, &[], now - 10_000),
        system_rec("nas-1", "NAS 1", Vendor::Ontap, &[], now - 10_000),
        system_rec("nas-2", "NAS 2", Vendor::Ontap, &[], now - 10_000),
        system_rec("dd-1", "DD 1", Vendor::Datadomain, &[], now - 10_000),
    ])
    .await;
    let at = now - 2_000;
    let mut fa = snapshot_body(Vendor::Pure, 40 * GIB, 100 * GIB, Vec::new());
    if let Some(c) = fa.capacity.as_mut() {
        c.provisioned_bytes = Some(250 * GIB);
    }
    fa.topology = Some(topology(
        ClusterType::ActiveCluster,
        "https://fa-1.example.net/",
    ));
    fa.pools = vec![
        pool(PoolKind::Space, "unique", 30 * GIB, 100 * GIB, None),
        pool(
            PoolKind::Space,
            "snapshots",
            10 * GIB,
            100 * GIB,
            Some(90 * GIB),
        ),
    ];
    fa.performance = Some(performance(
        [Some(1500.5), Some(700.0), Some(250.0), None],
        [Some(1_048_576), None],
    ));
    let mut nas1 = snapshot_body(Vendor::Ontap, GIB, 10 * GIB, Vec::new());
    nas1.topology = Some(topology(ClusterType::Ha, "https://nas-1.example.net/"));
    let mut nas2 = snapshot_body(Vendor::Ontap, GIB, 10 * GIB, Vec::new());
    nas2.topology = Some(topology(
        ClusterType::Metrocluster,
        "https://nas-2.example.net/",
    ));
    // An empty aggregate: no percentage rather than a division by zero.
    nas2.pools = vec![pool(PoolKind::Aggregate, "aggr1", 0, 0, None)];
    env.write(vec![
        snapshot("fa-1", at, fa),
        snapshot("nas-1", at, nas1),
        snapshot("nas-2", at, nas2),
        simple_snapshot("dd-1", at, Vendor::Datadomain, GIB, 10 * GIB),
    ])
    .await;

    // The list items.
    let list = env.ok("/api/v1/systems").await;
    let item = |id: &str| {
        list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id).cloned())
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
    };
    let fa1 = item("fa-1");
    assert_eq!(fa1["cluster_type"], "active-cluster", "{fa1}");
    assert_eq!(fa1["management_url"], "https://fa-1.example.net/");
    assert_eq!(fa1["capacity"]["provisioned_bytes"], 250 * GIB);
    assert_eq!(item("nas-2")["cluster_type"], "metrocluster");
    let dd = item("dd-1");
    assert_eq!(
        (
            &dd["cluster_type"],
            &dd["management_url"],
            &dd["capacity"]["provisioned_bytes"]
        ),
        (&Value::Null, &Value::Null, &Value::Null),
        "{dd}"
    );

    // The cluster type filter, alone and with the others.
    for (query, expected) in [
        ("cluster_type=ha", vec!["nas-1"]),
        ("cluster_type=ha,metrocluster", vec!["nas-1", "nas-2"]),
        (
            "cluster_type=active-cluster&cluster_type=metrocluster",
            vec!["fa-1", "nas-2"],
        ),
        ("cluster_type=ha,active-cluster&vendor=ontap", vec!["nas-1"]),
        ("cluster_type=metrocluster&q=nas", vec!["nas-2"]),
        ("cluster_type=local", vec![]),
        ("cluster_type=active-cluster&status=unreachable", vec![]),
    ] {
        let list = env.ok(&format!("/api/v1/systems?{query}")).await;
        assert_eq!(ids(&list), expected, "{query}");
    }
    let (code, body) = env.get("/api/v1/systems?cluster_type=cluster").await;
    assert_eq!(code, 400, "{body}");

    // The detail.
    let detail = env.ok("/api/v1/systems/fa-1").await;
    assert_eq!(detail["cluster_type"], "active-cluster");
    assert_eq!(detail["management_url"], "https://fa-1.example.net/");
    assert_eq!(detail["capacity"]["provisioned_bytes"], 250 * GIB);
    assert_eq!(
        detail["topology"],
        json!({
            "cluster_type": "active-cluster",
            "nodes": [{
                "name": "ct0", "model": "FA-X70R4", "serial": "CT0SERIAL",
                "state": "ready", "version": "6.7.3",
            }],
            "site_count": 2,
            "management_addresses": ["10.0.0.10"],
            "dns_names": ["array.example.net"],
            "partners": [{"name": "fa-dr-01", "kind": "sync-replication", "state": "connected"}],
            "management_url": "https://fa-1.example.net/",
        })
    );
    assert_eq!(
        detail["pools"],
        json!([
            {
                "pool": "space:unique", "kind": "space", "name": "unique",
                "total_bytes": 100 * GIB, "used_bytes": 30 * GIB, "free_bytes": null,
                "used_pct": 30.0,
            },
            {
                "pool": "space:snapshots", "kind": "space", "name": "snapshots",
                "total_bytes": 100 * GIB, "used_bytes": 10 * GIB, "free_bytes": 90 * GIB,
                "used_pct": 10.0,
            },
        ])
    );
    assert_eq!(
        detail["performance"],
        json!({
            "read_iops": 1500.5, "write_iops": 700.0,
            "read_latency_us": 250.0, "write_latency_us": null,
            "read_bytes_per_s": 1_048_576.0, "write_bytes_per_s": null,
            "observed_at": format_ms(at), "observed_at_ms": at,
        })
    );
    let nas2 = env.ok("/api/v1/systems/nas-2").await;
    assert_eq!(
        nas2["pools"],
        json!([{
            "pool": "aggregate:aggr1", "kind": "aggregate", "name": "aggr1",
            "total_bytes": 0, "used_bytes": 0, "free_bytes": null, "used_pct": null,
        }])
    );
    assert_eq!(nas2["topology"]["cluster_type"], "metrocluster");
    let dd = env.ok("/api/v1/systems/dd-1").await;
    assert_eq!(
        (&dd["topology"], &dd["pools"], &dd["performance"]),
        (&Value::Null, &json!([]), &Value::Null),
        "{dd}"
    );

    // The fleet metrics: performance where present, provisioned bytes, every pool.
    let (code, text) = env.get_text("/metrics/fleet").await;
    assert_eq!(code, 200);
    let fa = r#"system="fa-1",vendor="pure""#;
    for (name, value) in [
        ("sdash_system_capacity_provisioned_bytes", Some(250 * GIB)),
        (
            "sdash_system_performance_read_bytes_per_second",
            Some(1_048_576),
        ),
        ("sdash_system_performance_write_bytes_per_second", None),
    ] {
        assert_eq!(
            metric_sample(&text, &format!("{name}{{{fa}}}")),
            value.map(|v| v.to_string()),
            "{name}"
        );
    }
    for (name, value) in [
        ("sdash_system_performance_read_iops", Some("1500.5")),
        ("sdash_system_performance_write_iops", Some("700")),
        (
            "sdash_system_performance_read_latency_seconds",
            Some("0.00025"),
        ),
        ("sdash_system_performance_write_latency_seconds", None),
    ] {
        assert_eq!(
            metric_sample(&text, &format!("{name}{{{fa}}}")).as_deref(),
            value,
            "{name}"
        );
    }
    for (series, value) in [
        (
            format!(r#"sdash_system_pool_total_bytes{{{fa},pool="space:unique"}}"#),
            100 * GIB,
        ),
        (
            format!(r#"sdash_system_pool_used_bytes{{{fa},pool="space:unique"}}"#),
            30 * GIB,
        ),
        (
            format!(r#"sdash_system_pool_used_bytes{{{fa},pool="space:snapshots"}}"#),
            10 * GIB,
        ),
        (
            r#"sdash_system_pool_total_bytes{system="nas-2",vendor="ontap",pool="aggregate:aggr1"}"#
                .to_owned(),
            0,
        ),
    ] {
        assert_eq!(metric_sample(&text, &series), Some(value.to_string()), "{series}");
    }
    // No performance, no pools: no sample at all.
    assert!(
        !text.lines().any(|l| l.contains(r#"system="dd-1""#)
            && (l.contains("_performance_") || l.contains("_pool_"))),
        "{text}"
    );
    assert_eq!(
        metric_sample(
            &text,
            r#"sdash_system_capacity_provisioned_bytes{system="dd-1",vendor="datadomain"}"#
        ),
        None
    );
}
both!(list_detail_and_filter);

/// A snapshot of `p` with this performance.
fn perf_snapshot(at: i64, p: sdash_proto::Performance) -> (String, Vec<u8>) {
    let mut body: Snapshot = snapshot_body(Vendor::Pure, 10 * GIB, 100 * GIB, Vec::new());
    body.performance = Some(p);
    snapshot("p", at, body)
}

/// A performance point as the API serves it: its time, how many samples it averages and the six
/// metrics (null where no sample had the metric).
fn perf_point(at: i64, samples: i64, [a, b, c, d, e, f]: [Option<f64>; 6]) -> Value {
    json!({
        "at": format_ms(at), "at_ms": at, "samples": samples,
        "read_iops": a, "write_iops": b, "read_latency_us": c, "write_latency_us": d,
        "read_bytes_per_s": e, "write_bytes_per_s": f,
    })
}

/// Raw samples for the last days, hourly rollups with the averages of their hour, daily
/// rollups for what only they still hold; `tier` says which, and explicit tiers are kept.
async fn performance_by_tier(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write_one(system_rec(
        "p",
        "P",
        Vendor::Pure,
        &[],
        now - 30 * 86_400_000,
    ))
    .await;
    let (h20, h10, h2) = (
        hour_before(now, 20 * 86_400_000),
        hour_before(now, 10 * 86_400_000),
        hour_before(now, 2 * HOUR),
    );
    let (m1, m2) = (60_000, 120_000);
    let samples = [
        (
            h20 + m1,
            performance(
                [Some(100.0), Some(10.0), Some(400.0), None],
                [Some(1000), Some(2000)],
            ),
        ),
        (
            h20 + m2,
            performance(
                [Some(300.0), Some(30.0), Some(600.0), Some(800.0)],
                [Some(3000), None],
            ),
        ),
        (
            h10 + m1,
            performance(
                [Some(50.0), Some(5.0), Some(100.0), Some(200.0)],
                [Some(10), Some(20)],
            ),
        ),
        (
            h2 + m1,
            performance(
                [Some(1000.0), Some(100.0), Some(250.0), Some(350.0)],
                [Some(4096), Some(8192)],
            ),
        ),
        (
            h2 + m2,
            performance(
                [Some(3000.0), Some(300.0), Some(750.0), None],
                [Some(8192), None],
            ),
        ),
        (
            now - 1000,
            performance(
                [Some(7.0), Some(8.0), Some(9.0), Some(10.0)],
                [Some(11), Some(12)],
            ),
        ),
    ];
    for (at, p) in samples {
        env.write_one(perf_snapshot(at, p)).await;
    }
    env.store
        .apply_retention(&sdash_writer::RetentionPolicy {
            performance_raw_days: 5,
            capacity_raw_days: 5,
            capacity_hourly_days: 15,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    let get = |query: String| series(&env, "p/performance", query);
    let from = |days: i64| from_days(now, days);
    let raw_points = vec![
        perf_point(
            h2 + m1,
            1,
            [
                Some(1000.0),
                Some(100.0),
                Some(250.0),
                Some(350.0),
                Some(4096.0),
                Some(8192.0),
            ],
        ),
        perf_point(
            h2 + m2,
            1,
            [
                Some(3000.0),
                Some(300.0),
                Some(750.0),
                None,
                Some(8192.0),
                None,
            ],
        ),
        perf_point(
            now - 1000,
            1,
            [
                Some(7.0),
                Some(8.0),
                Some(9.0),
                Some(10.0),
                Some(11.0),
                Some(12.0),
            ],
        ),
    ];
    // The sample of 10 days ago, alone in its hour and in its day.
    let h10_point = perf_point(
        h10 + m1,
        1,
        [
            Some(50.0),
            Some(5.0),
            Some(100.0),
            Some(200.0),
            Some(10.0),
            Some(20.0),
        ],
    );

    // A short range: the raw samples hold it.
    let s = get(from(3)).await;
    assert_eq!(
        (s["tier"].as_str(), s["requested_tier"].as_str()),
        (Some("raw"), Some("auto")),
        "{s}"
    );
    assert_eq!(s["system_id"], "p");
    assert_eq!(arr(&s["points"]), raw_points, "{s}");

    // From 12 days: only the hourly rollups hold the sample of 10 days ago; each point is the
    // average of its hour's samples (a metric only some samples had: theirs).
    let s = get(from(12)).await;
    assert_eq!(s["tier"], "hourly", "{s}");
    assert_eq!(
        arr(&s["points"]),
        vec![
            h10_point.clone(),
            perf_point(
                h2 + m2,
                2,
                [
                    Some(2000.0),
                    Some(200.0),
                    Some(500.0),
                    Some(350.0),
                    Some(6144.0),
                    Some(8192.0)
                ],
            ),
            raw_points[2].clone(),
        ],
        "{s}"
    );

    // The default range (30 days): the sample of 20 days ago is only in the daily rollups.
    let s = get(String::new()).await;
    assert_eq!(s["tier"], "daily", "{s}");
    let days = arr(&s["points"]);
    assert_eq!(
        days[..2.min(days.len())],
        [
            perf_point(
                h20 + m2,
                2,
                [
                    Some(200.0),
                    Some(20.0),
                    Some(500.0),
                    Some(800.0),
                    Some(2000.0),
                    Some(2000.0)
                ],
            ),
            h10_point,
        ],
        "{s}"
    );
    let counted: i64 = days
        .iter()
        .map(|p| p["samples"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(counted, 6, "{s}");
    // range=all starts at the first day with data, which only the daily rollups hold.
    let s = get("range=all".into()).await;
    assert_eq!(s["tier"], "daily", "{s}");
    assert_eq!(s["from_ms"], h20.div_euclid(86_400_000) * 86_400_000);

    // Explicit tiers are kept, whatever they hold.
    let s = get(format!("{}&tier=raw", from(30))).await;
    assert_eq!(
        (s["tier"].as_str(), s["requested_tier"].as_str()),
        (Some("raw"), Some("raw"))
    );
    assert_eq!(arr(&s["points"]).len(), 3, "{s}");
    let s = get(format!("{}&tier=hourly", from(30))).await;
    assert_eq!(s["tier"], "hourly");
    assert_eq!(arr(&s["points"]).len(), 3, "{s}");
    let (code, body) = env.get("/api/v1/systems/p/performance?tier=weekly").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = env.get("/api/v1/systems/nope/performance").await;
    assert_eq!(code, 404, "{body}");
}
both!(performance_by_tier);

/// A snapshot of `q` with these aggregates (used, total).
fn pool_snapshot(at: i64, pools: &[(&str, u64, u64)]) -> (String, Vec<u8>) {
    let mut body = snapshot_body(Vendor::Ontap, 10 * GIB, 100 * GIB, Vec::new());
    body.pools = pools
        .iter()
        .map(|(name, used, total)| pool(PoolKind::Aggregate, name, *used, *total, None))
        .collect();
    snapshot("q", at, body)
}

/// Each pool's (at_ms, used, total) points.
/// A pool's key, kind, name and (at_ms, used, total) points.
type PoolPoints = (String, String, String, Vec<(i64, i64, i64)>);

fn pool_points(body: &Value) -> Vec<PoolPoints> {
    arr(&body["pools"])
        .iter()
        .map(|p| {
            (
                p["pool"].as_str().unwrap_or_default().to_owned(),
                p["kind"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
                arr(&p["points"])
                    .iter()
                    .map(|q| {
                        (
                            q["at_ms"].as_i64().unwrap_or(-1),
                            q["used_bytes"].as_i64().unwrap_or(-1),
                            q["total_bytes"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Each pool's last value per hour (or day), from the hourly rollups while they hold the range.
async fn pools_by_tier(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec("q", "Q", Vendor::Ontap, &[], now - 30 * 86_400_000),
        system_rec("bare", "Bare", Vendor::Ontap, &[], now - 30 * 86_400_000),
    ])
    .await;
    let (h20, h10) = (
        hour_before(now, 20 * 86_400_000),
        hour_before(now, 10 * 86_400_000),
    );
    let (t1, t2, t3, t4) = (h20 + 60_000, h20 + 120_000, h10 + 60_000, now - 1000);
    for (at, pools) in [
        (t1, vec![("aggr1", 100, 1000)]),
        (t2, vec![("aggr1", 200, 1000)]),
        (t3, vec![("aggr1", 300, 1000), ("aggr2", 50, 500)]),
        (t4, vec![("aggr2", 60, 500), ("aggr1", 400, 1000)]),
    ] {
        env.write_one(pool_snapshot(at, &pools)).await;
    }
    env.write_one(simple_snapshot("bare", now - 1000, Vendor::Ontap, 1, 2))
        .await;
    env.store
        .apply_retention(&sdash_writer::RetentionPolicy {
            capacity_hourly_days: 15,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    let get = |query: String| series(&env, "q/pools", query);
    let from = |days: i64| from_days(now, days);
    let pool = |name: &str, points: Vec<(i64, i64, i64)>| {
        (
            format!("aggregate:{name}"),
            "aggregate".to_owned(),
            name.to_owned(),
            points,
        )
    };

    // From 12 days: the hourly rollups hold it.
    let s = get(from(12)).await;
    assert_eq!(
        (
            s["tier"].as_str(),
            s["requested_tier"].as_str(),
            s["system_id"].as_str()
        ),
        (Some("hourly"), Some("auto"), Some("q")),
        "{s}"
    );
    assert_eq!(
        pool_points(&s),
        vec![
            pool("aggr1", vec![(t3, 300, 1000), (t4, 400, 1000)]),
            pool("aggr2", vec![(t3, 50, 500), (t4, 60, 500)]),
        ],
        "{s}"
    );
    // The default 30 days reach before the hourly rollups: daily, the last value of each day.
    let s = get(String::new()).await;
    assert_eq!(s["tier"], "daily", "{s}");
    assert_eq!(
        pool_points(&s),
        vec![
            pool(
                "aggr1",
                vec![(t2, 200, 1000), (t3, 300, 1000), (t4, 400, 1000)]
            ),
            pool("aggr2", vec![(t3, 50, 500), (t4, 60, 500)]),
        ],
        "{s}"
    );
    // An explicit tier is kept.
    let s = get(format!("{}&tier=hourly", from(30))).await;
    assert_eq!(
        (s["tier"].as_str(), s["requested_tier"].as_str()),
        (Some("hourly"), Some("hourly"))
    );
    assert_eq!(pool_points(&s).len(), 2, "{s}");
    assert_eq!(pool_points(&s)[0].3.len(), 2, "{s}");
    // Pools have no raw tier.
    let (code, body) = env.get("/api/v1/systems/q/pools?tier=raw").await;
    assert_eq!(code, 400, "{body}");
    // A system without pools.
    let s = env.ok("/api/v1/systems/bare/pools").await;
    assert_eq!((&s["tier"], &s["pools"]), (&json!("hourly"), &json!([])));
    let (code, body) = env.get("/api/v1/systems/nope/pools").await;
    assert_eq!(code, 404, "{body}");
}
both!(pools_by_tier);
