//! `/metrics/fleet`: the fleet in the Prometheus text format, from the fleet cache, behind the
//! API's bearer token, and scraped by a real Prometheus (Debian's `prometheus`) whose PromQL
//! answers give back a system's exact used bytes and the number of systems per status.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use sdash_harness::{Backend, PrometheusServer, wait_for};
use sdash_proto::{Health, Severity, Status, Vendor, now_ms};
use serde_json::Value;

const TOKEN: &str = "fleet-metrics-token";
/// More than 2^32 and below 2^53: exact as a Prometheus float, wrong if truncated to 32 bits.
const USED: u64 = 123_456_789_012_345;
const TOTAL: u64 = 200_000_000_000_000;

/// Four systems: two online (one with alerts), one unreachable, one never polled.
async fn seeded(backend: Backend) -> Env {
    let env = Env::with(backend, |c| {
        c.auth_token = Some(TOKEN.into());
        c.metrics_tag_labels = vec!["environment".into(), "storage-type".into()];
    })
    .await;
    let now = now_ms();
    let prod = [("environment", "prod"), ("storage-type", "block")];
    let mut down = snapshot_body(Vendor::Ontap, 0, 1, Vec::new());
    down.status = Status::Unreachable;
    down.hardware = Health::Unknown;
    down.cluster = Health::Unknown;
    down.capacity = None;
    down.error = Some("connection refused".into());
    env.write(vec![
        system_rec("fa-1", "FA 1", Vendor::Pure, &prod, now - 10_000),
        system_rec(
            "fa-2",
            "FA 2",
            Vendor::Pure,
            &[("environment", "dev")],
            now - 10_000,
        ),
        system_rec("nas-1", "NAS 1", Vendor::Ontap, &[], now - 10_000),
        system_rec("dd-1", "DD 1", Vendor::Datadomain, &[], now - 10_000),
        snapshot(
            "fa-1",
            now - 5_000,
            snapshot_body(
                Vendor::Pure,
                USED,
                TOTAL,
                vec![
                    alert("a1", Severity::Critical, "Controller down"),
                    alert("a2", Severity::Warning, "Fan"),
                    alert("a3", Severity::Warning, "PSU"),
                ],
            ),
        ),
        simple_snapshot("fa-2", now - 5_000, Vendor::Pure, 10, 100),
        snapshot("nas-1", now - 5_000, down),
    ])
    .await;
    env
}

async fn serves_the_fleet(backend: Backend) {
    let env = seeded(backend).await;
    let url = env.url("/metrics/fleet");
    let anonymous = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(anonymous.status().as_u16(), 401);
    let resp = env
        .ok_of_type("/metrics/fleet", "text/plain; version=0.0.4; charset=utf-8")
        .await;
    let text = resp.text().await.unwrap_or_default();
    let fa1 = r#"system="fa-1",vendor="pure",environment="prod",storage_type="block""#;
    let nas = r#"system="nas-1",vendor="ontap",environment="",storage_type="""#;
    let dd = r#"system="dd-1",vendor="datadomain",environment="",storage_type="""#;
    assert_eq!(
        metric_value(&text, &format!("sdash_system_capacity_used_bytes{{{fa1}}}")),
        USED.to_string()
    );
    assert_eq!(
        metric_value(&text, &format!("sdash_system_up{{{fa1}}}")),
        "1"
    );
    assert_eq!(
        metric_value(&text, &format!("sdash_system_up{{{nas}}}")),
        "0"
    );
    assert_eq!(
        metric_value(
            &text,
            &format!(r#"sdash_system_status{{{nas},status="unreachable"}}"#)
        ),
        "1"
    );
    assert_eq!(
        metric_value(
            &text,
            &format!(r#"sdash_system_status{{{dd},status="pending"}}"#)
        ),
        "1"
    );
    for (severity, n) in [("info", 0), ("warning", 2), ("error", 0), ("critical", 1)] {
        assert_eq!(
            metric_value(
                &text,
                &format!(r#"sdash_system_alerts_open{{{fa1},severity="{severity}"}}"#)
            ),
            n.to_string(),
            "{severity}"
        );
    }
    // Never online: no timestamp and no age, rather than a made-up one.
    assert!(!text.contains(&format!(
        "sdash_system_last_successful_poll_age_seconds{{{nas}}}"
    )));
    let age: f64 = metric_value(
        &text,
        &format!("sdash_system_last_successful_poll_age_seconds{{{fa1}}}"),
    )
    .parse()
    .unwrap_or(-1.0);
    assert!((5.0..60.0).contains(&age), "age {age}");

    // The open alert counts follow the next commit: the critical one clears. A scrape serves
    // the fleet loaded before while a reload takes longer than 100 ms, so the scrapes after.
    env.write_one(snapshot(
        "fa-1",
        now_ms(),
        snapshot_body(
            Vendor::Pure,
            USED,
            TOTAL,
            vec![alert("a2", Severity::Warning, "Fan")],
        ),
    ))
    .await;
    let critical = format!(r#"sdash_system_alerts_open{{{fa1},severity="critical"}}"#);
    let text = wait_for(Duration::from_secs(10), || async {
        let (_, text) = env.get_text("/metrics/fleet").await;
        (metric_value(&text, &critical) == "0").then_some(text)
    })
    .await
    .unwrap_or_else(|| panic!("the cleared alert stays open in /metrics/fleet"));
    assert_eq!(
        metric_value(
            &text,
            &format!(r#"sdash_system_alerts_open{{{fa1},severity="warning"}}"#)
        ),
        "1"
    );
}
both!(serves_the_fleet);

/// One PromQL query through Prometheus' HTTP API: the result vector.
async fn query(env: &Env, prometheus: &PrometheusServer, promql: &str) -> Option<Vec<Value>> {
    let resp = env
        .http
        .get(format!("{}/api/v1/query", prometheus.url()))
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?;
    let body: Value = resp.json().await.ok()?;
    let result = body["data"]["result"].as_array()?.clone();
    (!result.is_empty()).then_some(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_fleet() {
    let env = seeded(Backend::Sqlite).await;
    let secrets = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let prometheus = PrometheusServer::start(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: sdash-fleet\n    metrics_path: /metrics/fleet\n\
         \x20   authorization:\n      credentials_file: {}\n\
         \x20   static_configs:\n      - targets: ['{}']\n",
        token_file.display(),
        env.addr
    ));

    let used = wait_for(Duration::from_secs(30), || {
        query(
            &env,
            &prometheus,
            r#"sdash_system_capacity_used_bytes{system="fa-1"}"#,
        )
    })
    .await
    .unwrap_or_else(|| panic!("no used bytes in Prometheus:\n{}", prometheus.log()));
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["value"][1], USED.to_string(), "{used:?}");
    // The scrape target's labels and the tag labels came through.
    assert_eq!(used[0]["metric"]["job"], "sdash-fleet");
    assert_eq!(used[0]["metric"]["environment"], "prod");
    assert_eq!(used[0]["metric"]["storage_type"], "block");

    let by_status = query(
        &env,
        &prometheus,
        "count by (status) (sdash_system_status == 1)",
    )
    .await
    .unwrap_or_else(|| panic!("no status counts:\n{}", prometheus.log()));
    let counts: BTreeMap<String, String> = by_status
        .iter()
        .map(|r| {
            (
                r["metric"]["status"].as_str().unwrap_or("?").to_owned(),
                r["value"][1].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> =
        [("online", "2"), ("pending", "1"), ("unreachable", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(counts, expected);

    // The target is healthy: Prometheus parsed every family of the exposition.
    let up = query(&env, &prometheus, r#"up{job="sdash-fleet"}"#)
        .await
        .unwrap_or_default();
    assert_eq!(
        up.first().map(|r| r["value"][1].clone()),
        Some("1".into()),
        "{up:?}"
    );
}
