//! Unit tests of the StorageGRID rules against the recorded fixtures.

use std::collections::BTreeMap;

use sdash_proto::Severity;

use super::rules::sample_bytes;
use super::*;
const TIB: u64 = 1 << 40;

fn env<T: Default + for<'de> Deserialize<'de>>(text: &str) -> T {
    serde_json::from_str::<Envelope<T>>(text)
        .map(|e| e.data)
        .unwrap_or_default()
}

#[test]
fn version_choice_and_max_age() {
    let v: Vec<u32> = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_versions.json"
    ));
    assert_eq!(choose_version(&v), 4);
    assert_eq!(choose_version(&[2, 3]), 3);
    assert_eq!(choose_version(&[]), 4);
    assert_eq!(max_age("private, no-cache, max-age=57599"), Some(57599));
    assert_eq!(max_age("no-cache"), None);
    let token: String = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_authorize.json"
    ));
    assert_eq!(token, "8f5e2c1a-7b3d-4e9f-a6c2-1d0b9e8f7a65");
}

#[test]
fn capacity_from_metric_queries() {
    let total: MetricData = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.total_space.json"
    ));
    let data: MetricData = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.data.json"
    ));
    let usable: MetricData = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.usable_space.json"
    ));
    let cap = capacity(&total, &data, Some(&usable));
    assert_eq!(cap.total_bytes, 500 * TIB);
    assert_eq!(cap.used_bytes, 346_346_162_749_440);
    assert_eq!(cap.used_bytes * 100 / cap.total_bytes, 63);
    assert_eq!(cap.free_bytes, 196_812_581_371_904);
    assert_eq!(cap.data_reduction, None);
    let cap = capacity(&total, &data, None);
    assert_eq!(cap.free_bytes, 500 * TIB - 346_346_162_749_440);
    let nodes: Vec<NodeHealth> = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_node-health.json"
    ));
    assert!(missing_storage_nodes(&nodes, &data).is_empty());
    let mut short = data.clone();
    short.result.pop();
    assert_eq!(
        missing_storage_nodes(&nodes, &short),
        vec!["DC2-S2".to_owned()]
    );
}

#[test]
fn sample_values_tolerate_floats_and_garbage() {
    let row = |v: serde_json::Value| MetricRow {
        metric: BTreeMap::new(),
        value: vec![serde_json::json!(1.0), v],
    };
    assert_eq!(sample_bytes(&row(serde_json::json!("1.5e3"))), Some(1500));
    assert_eq!(sample_bytes(&row(serde_json::json!(42))), Some(42));
    assert_eq!(sample_bytes(&row(serde_json::json!("NaN"))), None);
    assert_eq!(sample_bytes(&row(serde_json::json!({}))), None);
}

#[test]
fn alerts_map_severities() {
    let list: Vec<GridAlert> = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_alerts.json"
    ));
    let a = alerts(&list);
    let sev: Vec<_> = a.iter().map(|a| a.severity).collect();
    assert_eq!(
        sev,
        vec![Severity::Critical, Severity::Error, Severity::Warning]
    );
    assert_eq!(a[0].component.as_deref(), Some("DC2-S1"));
    assert_eq!(a[0].opened_at, Some(1_795_161_600_000 - 3 * 3600 * 1000));
}

#[test]
fn nodes_and_sites() {
    let nodes: Vec<NodeHealth> = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_node-health.json"
    ));
    assert_eq!(nodes.len(), 7);
    let st: Vec<_> = nodes.iter().map(|n| node_component(n).status).collect();
    use Health::*;
    assert_eq!(st, vec![Ok, Warning, Warning, Ok, Ok, Error, Ok]);
    assert_eq!(site_health(&nodes), Ok);
    let mut down = nodes.clone();
    down[6].state = "unknown".into();
    assert_eq!(site_health(&down), Warning);
    assert_eq!(node_component(&down[6]).status, Error);
    down[6].state = "administratively-down".into();
    assert_eq!(node_component(&down[6]).status, Warning);
    for n in down.iter_mut().filter(|n| n.site_name == "DC2") {
        n.state = "unknown".into();
    }
    assert_eq!(site_health(&down), Error);
}

#[test]
fn tokens_are_replaced_shortly_before_they_expire() {
    let now = Instant::now();
    assert!(!token_expiring(None, now));
    assert!(!token_expiring(Some(now + Duration::from_secs(57599)), now));
    assert!(token_expiring(Some(now + Duration::from_secs(30)), now));
    assert!(token_expiring(Some(now), now));
}

#[test]
fn error_envelope() {
    let r = error_reason(include_bytes!(
        "../../../../testkit/fixtures/storagegrid/error.json"
    ));
    assert_eq!(
        r.as_deref(),
        Some("401: The provided credentials are invalid or the session has expired.")
    );
}

fn perf_rows(rows: &[(&str, &str)]) -> MetricData {
    MetricData {
        result: rows
            .iter()
            .map(|(label, value)| MetricRow {
                metric: BTreeMap::from([("sdash".to_owned(), (*label).to_owned())]),
                value: vec![
                    serde_json::json!(1_795_161_600.371),
                    serde_json::json!(value),
                ],
            })
            .collect(),
    }
}

#[test]
fn performance_fields_come_from_the_rows_their_label_names() {
    let all: MetricData = env(include_str!(
        "../../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.performance.json"
    ));
    assert_eq!(
        deep::performance(Some(&all)),
        Some(sdash_proto::Performance {
            read_iops: Some(1843.2),
            write_iops: Some(612.4),
            read_latency_us: Some(412.0),
            write_latency_us: Some(1375.0),
            read_bytes_per_s: Some(1_251_232_768),
            write_bytes_per_s: Some(402_653_184),
        })
    );
    // A grid without the private metrics: bandwidth only. An idle load balancer's latency is
    // 0/0 (NaN): absent, not 0. Unknown labels are ignored.
    let public_only = perf_rows(&[
        ("read_bytes", "1000.4"),
        ("write_bytes", "0"),
        ("read_latency", "NaN"),
        ("something_else", "5"),
    ]);
    assert_eq!(
        deep::performance(Some(&public_only)),
        Some(sdash_proto::Performance {
            read_bytes_per_s: Some(1000),
            write_bytes_per_s: Some(0),
            ..sdash_proto::Performance::default()
        })
    );
    assert_eq!(deep::performance(Some(&perf_rows(&[]))), None);
    assert_eq!(deep::performance(None), None);
}

#[test]
fn the_performance_query_names_every_field_once() {
    for label in [
        deep::SERIES_READ_BYTES,
        deep::SERIES_WRITE_BYTES,
        deep::SERIES_READ_IOPS,
        deep::SERIES_WRITE_IOPS,
        deep::SERIES_READ_LATENCY,
        deep::SERIES_WRITE_LATENCY,
    ] {
        let tag = format!(r#""sdash", "{label}", "", "")"#);
        assert_eq!(deep::PERFORMANCE_QUERY.matches(&tag).count(), 1, "{label}");
    }
    assert_eq!(deep::PERFORMANCE_QUERY.matches(" or ").count(), 5);
}
