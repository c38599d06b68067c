//! The ONTAP adapter against the simulator over HTTPS with HTTP Basic: the fixtures normalized to
//! exact values, paging through `_links.next.href`, bad answers and recovery.

mod common;

use std::time::Duration;

use common::{Setup, TIB, assert_hidden, assert_names, assert_tls_failure};
use sdash_collector::vendors::Adapter;
use sdash_collector::vendors::ontap::OntapAdapter;
use sdash_proto::{Capacity, Health, Severity, Status, Vendor};
use sdash_testkit::sim::{Fault, Mode, Scenario};

/// The fixtures' reference time, 2026-11-20T08:00:00Z.
const T0_MS: i64 = 1_795_161_600_000;

async fn setup(mode: Mode, page_cap: Option<usize>) -> Setup {
    common::setup(Vendor::Ontap, mode, page_cap).await
}

impl Setup {
    fn adapter(&self) -> OntapAdapter {
        let mut a = OntapAdapter::new(&self.config).expect("adapter");
        a.freeze_clock(T0_MS);
        a
    }
}

fn fixture_capacity() -> Capacity {
    Capacity {
        total_bytes: 500 * TIB,
        used_bytes: 2 * 173_173_081_374_720,
        free_bytes: 2 * 101_704_825_569_280,
        data_reduction: Some(2.41),
        // The four volumes of api_storage_volumes.json: 200 + 300 + 150 + 350 TiB.
        provisioned_bytes: Some(1000 * TIB),
    }
}

#[tokio::test]
async fn fixtures_normalize_to_exact_values() {
    let s = setup(Mode::Fixture, None).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(
        snap.status,
        Status::Online,
        "{:?} {:?}",
        snap.error,
        out.events
    );
    assert_eq!(snap.error, None, "{:?}", out.events);
    assert_eq!(snap.name.as_deref(), Some("cl-prod-a"));
    assert_eq!(snap.version.as_deref(), Some("NetApp Release 9.15.1P4"));
    assert_eq!(snap.model.as_deref(), Some("AFF-A400"));
    assert_eq!(snap.capacity, Some(fixture_capacity()));
    assert_eq!(
        snap.capacity
            .as_ref()
            .map(|c| c.used_bytes * 100 / c.total_bytes),
        Some(63)
    );
    assert_eq!(s.fleet.expected_capacity(&s.id()), Some(fixture_capacity()));

    // EMS: 5 problems, the peer one recovered, one older than 96 h -> alert, alert, error.
    let sev: Vec<_> = snap
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
    assert_eq!(snap.alerts[0].opened_at, Some(T0_MS - 2 * 3600 * 1000));
    assert_eq!(snap.alerts[1].component.as_deref(), Some("cl-prod-a-01"));

    // Hardware: nodes, aggregates and disks are fine; open EMS hardware events make it a warning.
    assert_eq!(snap.hardware, Health::Warning);
    // Cluster: the unhealthy SnapMirror relationship.
    assert_eq!(snap.cluster, Health::Warning);
    let kinds = |k: &str| snap.components.iter().filter(|c| c.kind == k).count();
    assert_eq!(
        (
            kinds("node"),
            kinds("aggregate"),
            kinds("disks"),
            kinds("disk")
        ),
        (2, 2, 1, 0)
    );
    assert_eq!(
        (kinds("peer"), kinds("replication"), kinds("metrocluster")),
        (3, 2, 1)
    );
    let unhealthy: Vec<_> = snap
        .components
        .iter()
        .filter(|c| c.status != Health::Ok)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        unhealthy,
        vec!["svm_br2:vol_sql -> svm_nfs01:vol_sql_mirror"]
    );

    // Every call carried Basic credentials; nothing was rejected, no session endpoint exists.
    let stats = s.fleet.stats(&s.id()).expect("stats");
    assert_eq!(stats.unauthorized, 0);
    assert_eq!(stats.requests.get("/api/support/ems/events"), Some(&2));
}

#[tokio::test]
async fn the_look_back_window_follows_the_clock() {
    let s = setup(Mode::Fixture, None).await;
    let mut a = s.adapter();
    // Four days later every fixture event is outside the 96 h window.
    a.freeze_clock(T0_MS + 4 * 24 * 3600 * 1000);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert!(out.snapshot.alerts.is_empty(), "{:?}", out.snapshot.alerts);
}

#[tokio::test]
async fn collections_are_followed_through_next_links() {
    let s = setup(Mode::Fixture, Some(7)).await;
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
    assert_eq!(out.snapshot.alerts.len(), 3);
    let stats = s.fleet.stats(&s.id()).expect("stats");
    // 48 disks in pages of 7.
    assert_eq!(stats.requests.get("/api/storage/disks"), Some(&7));
    assert_eq!(stats.requests.get("/api/cluster/nodes"), Some(&1));
}

#[tokio::test]
async fn dispatch_uses_the_ontap_adapter() {
    let s = setup(Mode::Live, None).await;
    let mut adapter = Adapter::new(&s.config).expect("adapter");
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online, "{:?}", out.events);
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    // Live mode: the capacity the simulator serves right now, and EMS times shifted to "now".
    assert_eq!(out.snapshot.capacity, s.fleet.expected_capacity(&s.id()));
    assert!(!out.snapshot.alerts.is_empty());
    adapter.logout().await;
}

#[tokio::test]
async fn live_capacity_moves_and_scenarios_change_health() {
    let s = setup(Mode::Live, None).await;
    let mut a = OntapAdapter::new(&s.config).expect("adapter");
    let first = a.poll().await.snapshot;
    s.fleet.advance(Duration::from_secs(6 * 3600));
    let second = a.poll().await.snapshot;
    let used =
        |snap: &sdash_proto::Snapshot| snap.capacity.as_ref().map(|c| c.used_bytes).unwrap_or(0);
    assert!(used(&second) > used(&first));
    assert_eq!(second.capacity, s.fleet.expected_capacity(&s.id()));
    // The DualPath problem is raised in one 6 h phase and cleared in the other.
    assert_ne!(first.alerts.len(), second.alerts.len());

    s.fleet.set_scenario(&s.id(), Scenario::Degraded);
    let degraded = a.poll().await.snapshot;
    assert_eq!(degraded.hardware, Health::Error);
    assert!(
        degraded
            .alerts
            .iter()
            .any(|al| al.severity == Severity::Critical)
    );
    assert!(
        degraded
            .components
            .iter()
            .any(|c| c.kind == "node" && c.status == Health::Warning)
    );
}

#[tokio::test]
async fn bad_answers_fail_or_degrade_and_recover() {
    let s = setup(Mode::Fixture, None).await;
    let id = s.id();
    let mut a = s.adapter();
    let faults = [
        ("html 500", Fault::Html500, Status::Error, Some(500)),
        ("invalid json", Fault::InvalidJson, Status::Error, None),
        ("wrong types", Fault::WrongTypes, Status::Error, None),
        ("empty body", Fault::EmptyBody, Status::Error, None),
        (
            "401",
            Fault::Status { code: 401 },
            Status::AuthFailed,
            Some(401),
        ),
        (
            "403",
            Fault::Status { code: 403 },
            Status::AuthFailed,
            Some(403),
        ),
        ("429", Fault::Status { code: 429 }, Status::Error, Some(429)),
        ("500", Fault::Status { code: 500 }, Status::Error, Some(500)),
        ("closed", Fault::Unreachable, Status::Unreachable, None),
    ];
    for (label, fault, status, http) in faults {
        // On the essential call: the poll fails with the right status.
        s.fleet.set_fault_on(&id, "/api/cluster", fault.clone());
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, status, "{label}: {:?}", out.snapshot);
        assert_names(label, &out, "/api/cluster");
        let event = out
            .events
            .iter()
            .find(|e| e.endpoint.as_deref() == Some("/api/cluster"))
            .expect("event");
        assert_eq!(event.http_status, http, "{label}");
        // On a non-essential call: online, degraded, the event names the endpoint.
        s.fleet.set_fault_on(&id, "/api/storage/disks", fault);
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, Status::Online, "{label}");
        assert!(
            out.snapshot
                .error
                .as_deref()
                .unwrap_or("")
                .contains("/api/storage/disks"),
            "{label}: {:?}",
            out.snapshot.error
        );
        assert_names(label, &out, "/api/storage/disks");
        assert_eq!(out.snapshot.capacity, Some(fixture_capacity()), "{label}");
        // Fault cleared: the next poll is clean again.
        s.fleet.set_fault(&id, Fault::None);
        let out = a.poll().await;
        assert_eq!(
            (out.snapshot.status, out.snapshot.error.as_deref()),
            (Status::Online, None),
            "{label}: {:?}",
            out.events
        );
    }
}

#[tokio::test]
async fn wrong_credentials_timeouts_and_tls_failures() {
    let s = setup(Mode::Fixture, None).await;
    let id = s.id();
    let mut a = s.adapter();

    s.fleet.set_fault(&id, Fault::WrongCredentials);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::AuthFailed);
    assert!(
        out.events
            .iter()
            .any(|e| e.http_status == Some(401) && e.endpoint.as_deref() == Some("/api/cluster"))
    );
    s.fleet.set_fault(&id, Fault::None);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);

    s.fleet.set_fault(&id, Fault::Hang);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::Unreachable);
    assert!(
        out.snapshot
            .error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{:?}",
        out.snapshot.error
    );
    s.fleet.set_fault(&id, Fault::None);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);

    // Without the simulator's CA the certificate is not trusted.
    let out = OntapAdapter::new(&s.untrusted())
        .expect("adapter")
        .poll()
        .await;
    assert_tls_failure(&out);
}

#[tokio::test]
async fn the_password_never_shows_up() {
    let s = setup(Mode::Fixture, None).await;
    let secret = s.fleet.system(&s.id()).expect("system").secret;
    let mut a = s.adapter();
    s.fleet.set_fault(&s.id(), Fault::WrongCredentials);
    let failed = a.poll().await;
    s.fleet.set_fault(&s.id(), Fault::None);
    let ok = a.poll().await;
    for out in [failed, ok] {
        assert_hidden(&secret, &format!("{out:?}"), "poll output");
    }
    assert_hidden(&secret, &format!("{a:?}"), "adapter");
}

#[tokio::test]
async fn an_unknown_node_field_falls_back_to_the_basic_fields() {
    let s = setup(Mode::Fixture, None).await;
    let id = s.id();
    let mut a = s.adapter();
    // Both node queries answer 400/262197: one retry, then the poll is degraded, not failed.
    s.fleet
        .set_fault_on(&id, "/api/cluster/nodes", Fault::Status { code: 400 });
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert!(
        out.snapshot
            .error
            .as_deref()
            .unwrap_or("")
            .contains("/api/cluster/nodes")
    );
    assert!(
        out.events
            .iter()
            .any(|e| e.details.as_deref().unwrap_or("").starts_with("262197")),
        "{:?}",
        out.events
    );
    assert_eq!(
        s.fleet
            .stats(&id)
            .expect("stats")
            .requests
            .get("/api/cluster/nodes"),
        Some(&2)
    );
    assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
    s.fleet.set_fault(&id, Fault::None);
    let out = a.poll().await;
    assert_eq!(out.snapshot.error, None);
    assert_eq!(
        out.snapshot
            .components
            .iter()
            .filter(|c| c.kind == "node")
            .count(),
        2
    );
}

// ---- #17: topology, network checks, pools, performance ----

#[tokio::test]
async fn fixtures_give_topology_checks_pools_and_performance() {
    use sdash_proto::{ClusterType, Partner, Performance, Pool, PoolKind, TopologyNode};
    let s = setup(Mode::Fixture, None).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.error, None, "{:?}", out.events);

    let topo = snap.topology.as_ref().expect("topology");
    assert_eq!(topo.cluster_type, Some(ClusterType::Metrocluster));
    assert_eq!(topo.site_count, Some(2));
    let node = |name: &str, serial: &str| TopologyNode {
        name: name.into(),
        model: Some("AFF-A400".into()),
        serial: Some(serial.into()),
        state: Some("up".into()),
        version: Some("NetApp Release 9.15.1P4".into()),
    };
    assert_eq!(
        topo.nodes,
        vec![
            node("cl-prod-a-01", "721924000121"),
            node("cl-prod-a-02", "721924000122")
        ]
    );
    assert_eq!(topo.management_addresses, vec!["10.30.0.10".to_owned()]);
    assert_eq!(topo.dns_names, Vec::<String>::new());
    let peer = |name: &str| Partner {
        name: name.into(),
        kind: "cluster-peer".into(),
        state: Some("available".into()),
    };
    assert_eq!(
        topo.partners,
        vec![
            peer("cl-prod-b"),
            peer("cl-branch-01"),
            peer("cl-branch-02"),
            Partner {
                name: "cl-prod-b".into(),
                kind: "metrocluster".into(),
                state: Some("normal".into()),
            }
        ]
    );
    assert_eq!(
        topo.management_url.as_deref(),
        Some(format!("{}/", s.fleet.base_url(&s.id())).as_str())
    );

    // Checks: 9 LIFs of which one is disabled and one on a -mc SVM (both down, both skipped);
    // 20 ports of which 4 are VLANs. Nothing is down.
    let comp = |kind: &str| {
        snap.components
            .iter()
            .find(|c| c.kind == kind)
            .unwrap_or_else(|| panic!("{kind}: {:?}", snap.components))
    };
    assert_eq!(comp("lifs").detail.as_deref(), Some("7 LIFs, 0 down"));
    assert_eq!(comp("lifs").status, Health::Ok);
    assert_eq!(comp("ports").detail.as_deref(), Some("16 ports, 0 down"));
    assert!(
        !snap
            .components
            .iter()
            .any(|c| c.kind == "lif" || c.kind == "port")
    );
    assert!(!snap.alerts.iter().any(|a| a.id.starts_with("sdash:")));

    let aggr = |name: &str| Pool {
        kind: PoolKind::Aggregate,
        name: name.into(),
        total_bytes: 274_877_906_944_000,
        used_bytes: 173_173_081_374_720,
        free_bytes: Some(101_704_825_569_280),
    };
    assert_eq!(
        snap.pools,
        vec![aggr("aggr1_a01_ssd"), aggr("aggr1_a02_ssd")]
    );
    assert_eq!(
        snap.capacity.as_ref().and_then(|c| c.provisioned_bytes),
        Some(1_099_511_627_776_000)
    );

    assert_eq!(
        snap.performance,
        Some(Performance {
            read_iops: Some(18234.0),
            write_iops: Some(9120.0),
            read_latency_us: Some(301.0),
            write_latency_us: Some(274.0),
            read_bytes_per_s: Some(1_251_232_768),
            write_bytes_per_s: Some(402_653_184),
        })
    );
}

#[tokio::test]
async fn a_lif_down_is_a_warning_alert_until_it_comes_back() {
    let s = setup(Mode::Fixture, None).await;
    let mut adapter = s.adapter();
    let first = adapter.poll().await.snapshot;
    assert!(!first.alerts.iter().any(|a| a.id.starts_with("sdash:lif:")));
    assert!(!first.components.iter().any(|c| c.kind == "lif"));

    s.fleet.set_scenario(&s.id(), Scenario::LifDown);
    let down = adapter.poll().await.snapshot;
    assert_eq!(down.status, Status::Online);
    assert_eq!(down.cluster, Health::Warning);
    let alert = down
        .alerts
        .iter()
        .find(|a| a.id == "sdash:lif:svm_nfs01:lif_nfs01_a01")
        .unwrap_or_else(|| panic!("{:?}", down.alerts));
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.title, "LIF lif_nfs01_a01 of svm_nfs01 is down");
    assert_eq!(alert.component.as_deref(), Some("lif_nfs01_a01"));
    let lif = down
        .components
        .iter()
        .find(|c| c.kind == "lif")
        .expect("lif component");
    assert_eq!(lif.name, "lif_nfs01_a01");
    assert_eq!(lif.status, Health::Warning);
    assert_eq!(
        lif.detail.as_deref(),
        Some("state down, svm svm_nfs01, on cl-prod-a-01 a0a-200")
    );

    // A failed LIF query keeps the alert open (an absent alert would clear it).
    s.fleet.set_fault_on(
        &s.id(),
        "/api/network/ip/interfaces",
        Fault::Status { code: 503 },
    );
    let failed = adapter.poll().await.snapshot;
    assert!(
        failed.alerts.iter().any(|a| a.id == alert.id),
        "{:?}",
        failed.alerts
    );
    s.fleet.set_fault(&s.id(), Fault::None);

    s.fleet.set_scenario(&s.id(), Scenario::Healthy);
    let up = adapter.poll().await.snapshot;
    assert!(!up.components.iter().any(|c| c.kind == "lif"));
    assert!(
        !up.alerts.iter().any(|a| a.id.starts_with("sdash:")),
        "{:?}",
        up.alerts
    );
}

#[tokio::test]
async fn a_port_down_is_a_hardware_warning_alert_until_it_comes_back() {
    let s = setup(Mode::Fixture, None).await;
    let mut adapter = s.adapter();
    s.fleet.set_scenario(&s.id(), Scenario::PortDown);
    let down = adapter.poll().await.snapshot;
    let alert = down
        .alerts
        .iter()
        .find(|a| a.id == "sdash:port:cl-prod-a-01:e0c")
        .unwrap_or_else(|| panic!("{:?}", down.alerts));
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.title, "Port e0c on cl-prod-a-01 is down");
    let ports = down
        .components
        .iter()
        .find(|c| c.kind == "ports")
        .expect("ports");
    assert_eq!(ports.detail.as_deref(), Some("16 ports, 1 down"));
    assert_eq!(ports.status, Health::Warning);
    // The fixtures' hardware is otherwise healthy apart from what the EMS says; a port down is
    // at least a warning.
    assert!(down.hardware >= Health::Warning, "{:?}", down.hardware);
    s.fleet.set_scenario(&s.id(), Scenario::Healthy);
    let up = adapter.poll().await.snapshot;
    assert!(!up.alerts.iter().any(|a| a.id.starts_with("sdash:port:")));
}

#[tokio::test]
async fn an_older_release_without_the_cluster_metric_has_no_performance() {
    let s = setup(Mode::Fixture, None).await;
    s.fleet.set_scenario(&s.id(), Scenario::NoPerformance);
    let mut adapter = s.adapter();
    for _ in 0..2 {
        let out = adapter.poll().await;
        let snap = &out.snapshot;
        assert_eq!(snap.status, Status::Online);
        assert_eq!(snap.error, None, "{:?}", out.events);
        assert_eq!(snap.version.as_deref(), Some("NetApp Release 9.5P14"));
        assert_eq!(snap.performance, None);
        // Everything else is still read.
        assert_eq!(snap.pools.len(), 2);
        assert!(snap.topology.is_some());
    }
}

#[tokio::test]
async fn a_slow_metric_query_is_cut_short_and_the_poll_stays_clean() {
    let s = setup(Mode::Fixture, None).await;
    s.fleet.set_scenario(&s.id(), Scenario::SlowPerformance);
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.status, Status::Online);
    assert_eq!(snap.error, None);
    assert_eq!(snap.performance, None);
    assert!(snap.poll_ms < 2900, "{} ms", snap.poll_ms);
    assert!(
        out.events
            .iter()
            .any(|e| e.endpoint.as_deref() == Some("/api/cluster")
                && e.level == sdash_proto::Level::Warning
                && e.message.contains("2000 ms")),
        "{:?}",
        out.events
    );
    assert_eq!(snap.pools.len(), 2);
}
