//! Unit tests of the ONTAP rules against the recorded fixtures.

use sdash_proto::{Capacity, Severity};

use super::*;
use crate::http::percent_decode;

const TIB: u64 = 1 << 40;
const T0_MS: i64 = 1_795_161_600_000; // 2026-11-20T08:00:00Z

fn coll<T: for<'de> Deserialize<'de>>(text: &str) -> Vec<T> {
    serde_json::from_str::<OntapCollection<T>>(text)
        .map(|c| c.records)
        .unwrap_or_default()
}

#[test]
fn cluster_version_is_text_before_colon() {
    let c: ClusterInfo = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/ontap/api_cluster.json"
    ))
    .unwrap_or_default();
    assert_eq!(c.name, "cl-prod-a");
    assert_eq!(c.version().as_deref(), Some("NetApp Release 9.15.1P4"));
    assert_eq!(ClusterInfo::default().version(), None);
}

#[test]
fn aggregates_sum_to_two_times_250_tib() {
    let aggs: Vec<Aggregate> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_storage_aggregates.json"
    ));
    assert_eq!(aggs.len(), 2);
    let cap = aggregate_capacity(&aggs);
    let total = 500 * TIB;
    let used = 173_173_081_374_720 * 2;
    assert_eq!(
        cap,
        Some(Capacity {
            total_bytes: total,
            used_bytes: used,
            free_bytes: total - used,
            data_reduction: Some(2.41),
            provisioned_bytes: None,
        })
    );
    assert_eq!(used * 100 / total, 63);
    assert!(
        aggregate_components(&aggs)
            .iter()
            .all(|c| c.status == Health::Ok)
    );
}

#[test]
fn aggregate_without_available_uses_size_minus_used() {
    let aggs = vec![Aggregate {
        name: "a".into(),
        state: "offline".into(),
        space: AggregateSpace {
            block_storage: BlockStorage {
                size: 100,
                used: 30,
                available: None,
            },
            efficiency: None,
        },
    }];
    let cap = aggregate_capacity(&aggs);
    assert_eq!(
        cap.map(|c| (c.free_bytes, c.data_reduction)),
        Some((70, None))
    );
    assert_eq!(aggregate_components(&aggs)[0].status, Health::Error);
    assert_eq!(aggregate_capacity(&[]), None);
}

#[test]
fn nodes_from_fixture_are_healthy() {
    let nodes: Vec<Node> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_cluster_nodes.json"
    ));
    assert_eq!(nodes.len(), 2);
    let comps: Vec<_> = nodes.iter().map(node_component).collect();
    assert!(comps.iter().all(|c| c.status == Health::Ok), "{comps:?}");
    assert_eq!(nodes_model(&nodes).as_deref(), Some("AFF-A400"));
}

#[test]
fn node_rules() {
    let mut n = Node {
        name: "n1".into(),
        state: "up".into(),
        ..Default::default()
    };
    assert_eq!(node_component(&n).status, Health::Ok);
    n.controller.failed_fan.count = 1;
    assert_eq!(node_component(&n).status, Health::Warning);
    n.controller.over_temperature = "over".into();
    assert_eq!(node_component(&n).status, Health::Error);
    for (state, want) in [
        ("down", Health::Error),
        ("taken_over", Health::Error),
        ("degraded", Health::Error),
        ("booting", Health::Warning),
    ] {
        let n = Node {
            state: state.into(),
            ..Default::default()
        };
        assert_eq!(node_component(&n).status, want, "{state}");
    }
    let mut n = Node {
        state: "up".into(),
        ..Default::default()
    };
    n.ha.giveback.state = "failed".into();
    assert_eq!(node_component(&n).status, Health::Warning);
}

#[test]
fn disks_fixture_has_no_broken_disk() {
    let disks: Vec<Disk> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_storage_disks.json"
    ));
    assert_eq!(disks.len(), 48);
    let comps = disk_components(&disks);
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0].status, Health::Ok);
    let broken = vec![Disk {
        name: "1.0.1".into(),
        state: "broken".into(),
        container_type: "broken".into(),
    }];
    let comps = disk_components(&broken);
    assert_eq!(
        (comps[0].status, comps[1].status),
        (Health::Error, Health::Error)
    );
}

#[test]
fn ems_pairing_and_window_leave_three_alerts() {
    let problems: Vec<EmsEvent> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_support_ems_events.json"
    ));
    let recoveries: Vec<EmsEvent> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_support_ems_events.recovery.json"
    ));
    assert_eq!((problems.len(), recoveries.len()), (5, 2));
    let state = ems_alerts(&problems, &recoveries, T0_MS, EMS_WINDOW);
    let sev: Vec<_> = state
        .alerts
        .iter()
        .map(|a| (a.vendor_severity.as_str(), a.severity))
        .collect();
    assert_eq!(
        sev,
        vec![
            ("alert", Severity::Error),
            ("alert", Severity::Error),
            ("error", Severity::Error)
        ]
    );
    let ids: Vec<_> = state.alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "cl-prod-a-02/8812051",
            "cl-prod-a-01/8811977",
            "cl-prod-a-01/8811802"
        ]
    );
    assert_eq!(state.alerts[0].opened_at, Some(T0_MS - 2 * 3600 * 1000));
    assert_eq!(state.hardware, Health::Warning);
    // Without the recovery the peer problem stays open.
    let state = ems_alerts(&problems, &[], T0_MS, EMS_WINDOW);
    assert_eq!(state.alerts.len(), 4);
    // An older recovery does not clear a newer problem.
    let mut old = recoveries.clone();
    old[0].time = "2026-11-17T09:00:00+00:00".into();
    assert_eq!(
        ems_alerts(&problems, &old, T0_MS, EMS_WINDOW).alerts.len(),
        4
    );
}

#[test]
fn ems_emergency_is_hardware_error_and_non_hw_error_dropped() {
    let ev = |name: &str, sev: &str| EmsEvent {
        index: 1,
        time: "2026-11-20T07:00:00Z".into(),
        message: EmsMessage {
            name: name.into(),
            severity: sev.into(),
        },
        ..Default::default()
    };
    let state = ems_alerts(&[ev("wafl.vol.full", "error")], &[], T0_MS, EMS_WINDOW);
    assert!(state.alerts.is_empty());
    let state = ems_alerts(&[ev("wafl.panic", "emergency")], &[], T0_MS, EMS_WINDOW);
    assert_eq!(
        (state.alerts[0].severity, state.hardware),
        (Severity::Critical, Health::Error)
    );
}

#[test]
fn peers_snapmirror_metrocluster() {
    let peers: Vec<Peer> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_cluster_peers.json"
    ));
    let comps = peer_components(&peers);
    assert_eq!(comps.len(), 3);
    assert_eq!(worst_health(&comps), Health::Ok);
    let sm: Vec<SnapMirror> = coll(include_str!(
        "../../../../testkit/fixtures/ontap/api_snapmirror_relationships.json"
    ));
    let comps = snapmirror_components(&sm);
    let st: Vec<_> = comps.iter().map(|c| c.status).collect();
    assert_eq!(st, vec![Health::Ok, Health::Warning]);
    assert!(
        comps[1]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("Failed to complete update")
    );
    let mc: MetroCluster = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/ontap/api_cluster_metrocluster.json"
    ))
    .unwrap_or_default();
    assert_eq!(
        metrocluster_component(&mc).map(|c| c.status),
        Some(Health::Ok)
    );
    let mc: MetroCluster = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/ontap/api_cluster_metrocluster.not_configured.json"
    ))
    .unwrap_or_default();
    assert_eq!(metrocluster_component(&mc), None);
}

#[test]
fn status_errors_carry_the_ontap_reason() {
    let body = include_str!("../../../../testkit/fixtures/ontap/error.json");
    let e = HttpError::Status {
        endpoint: "/api/storage/disks".into(),
        status: 400,
        excerpt: crate::http::excerpt(body.as_bytes()),
    };
    let event = with_reason(e).event(sdash_proto::Level::Warning);
    assert_eq!(event.http_status, Some(400));
    assert!(event.details.unwrap_or_default().starts_with("262197: "));
}

#[test]
fn error_body_reason() {
    let r = error_reason(include_bytes!(
        "../../../../testkit/fixtures/ontap/error.json"
    ));
    assert!(
        r.unwrap_or_default()
            .starts_with("262197: The value \"raid_state\"")
    );
    assert_eq!(error_reason(b"<html>"), None);
}

#[test]
fn ems_paths_are_encoded() {
    let since =
        OffsetDateTime::from_unix_timestamp(1_794_816_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let p = ems_problems_path(since);
    assert!(
        p.contains("message.severity=emergency%7Calert%7Cerror"),
        "{p}"
    );
    assert!(p.contains("time=%3E2026-11-16T08%3A00%3A00Z"), "{p}");
}

#[test]
fn hrefs_split_and_reject_absolute_urls() {
    let (path, q) =
        split_href("/api/storage/disks?start.uuid=a%20b&max_records=2").expect("relative");
    assert_eq!(path, "/api/storage/disks");
    assert_eq!(
        q,
        vec![
            ("start.uuid".into(), "a b".into()),
            ("max_records".into(), "2".into())
        ]
    );
    assert!(split_href("https://evil.example/api").is_none());
    assert!(split_href("//evil.example/api").is_none());
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("%zz%41"), "%zzA");
}
