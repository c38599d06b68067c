//! The StorageGRID adapter against the simulator over HTTPS: bearer login, session reuse and
//! renewal, the fixtures normalized to exact values, bad answers and recovery.

mod common;

use std::time::Duration;

use common::{Setup, TIB, assert_names, assert_tls_failure};
use sdash_collector::vendors::Adapter;
use sdash_collector::vendors::storagegrid::StorageGridAdapter;
use sdash_proto::{Capacity, Category, Health, Severity, Status, Vendor};
use sdash_testkit::sim::{Fault, Mode, Scenario};

async fn setup(mode: Mode) -> Setup {
    common::setup(Vendor::Storagegrid, mode, None).await
}

impl Setup {
    fn adapter(&self) -> StorageGridAdapter {
        StorageGridAdapter::new(&self.config).expect("adapter")
    }
}

fn fixture_capacity() -> Capacity {
    Capacity {
        total_bytes: 500 * TIB,
        used_bytes: 346_346_162_749_440,
        free_bytes: 196_812_581_371_904,
        data_reduction: None,
        provisioned_bytes: None,
    }
}

#[tokio::test]
async fn fixtures_normalize_to_exact_values() {
    let s = setup(Mode::Fixture).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.status, Status::Online, "{:?}", out.events);
    assert_eq!(snap.error, None, "{:?}", out.events);
    assert_eq!(
        snap.version.as_deref(),
        Some("11.8.0.7-20241113.1718.a3b5c9d")
    );
    // The grid's name: the root of the (deprecated) topology, read once per adapter.
    assert_eq!(snap.name.as_deref(), Some("SG-PROD"));
    // 4 x 125 TiB, data = 63 %, free = the usable-space metric.
    assert_eq!(snap.capacity, Some(fixture_capacity()));
    assert_eq!(
        snap.capacity
            .as_ref()
            .map(|c| c.used_bytes * 100 / c.total_bytes),
        Some(63)
    );
    assert_eq!(s.fleet.expected_capacity(&s.id()), Some(fixture_capacity()));
    let sev: Vec<_> = snap
        .alerts
        .iter()
        .map(|a| (a.vendor_severity.as_str(), a.severity))
        .collect();
    assert_eq!(
        sev,
        vec![
            ("critical", Severity::Critical),
            ("major", Severity::Error),
            ("minor", Severity::Warning)
        ]
    );
    assert_eq!(snap.alerts[0].component.as_deref(), Some("DC2-S1"));
    assert_eq!(
        snap.alerts[0].opened_at,
        Some(1_795_161_600_000 - 3 * 3600 * 1000)
    );
    // Node health: DC2-S1 is critical -> hardware error; both sites fully connected.
    assert_eq!(snap.hardware, Health::Error);
    assert_eq!(snap.cluster, Health::Ok);
    assert_eq!(
        snap.components.iter().filter(|c| c.kind == "node").count(),
        7
    );
    let bad: Vec<_> = snap
        .components
        .iter()
        .filter(|c| c.status == Health::Error)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(bad, vec!["DC2-S1"]);
    assert_eq!(s.logins(), 1);
}

#[tokio::test]
async fn the_session_is_kept_renewed_on_401_and_logged_out() {
    let s = setup(Mode::Fixture).await;
    let id = s.id();
    let mut a = s.adapter();
    assert_eq!(a.poll().await.snapshot.status, Status::Online);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);
    assert_eq!(s.logins(), 1, "the token is reused across polls");

    // The grid forgets the session: one 401, one renewal, the poll still succeeds.
    s.fleet.set_fault(&id, Fault::ExpireSessions);
    let out = a.poll().await;
    assert_eq!(
        (out.snapshot.status, out.snapshot.error.as_deref()),
        (Status::Online, None),
        "{:?}",
        out.events
    );
    assert_eq!(s.logins(), 2);
    assert_eq!(a.logins(), 2);
    assert!(
        out.events
            .iter()
            .any(|e| e.category == Category::Authentication && e.http_status == Some(401))
    );
    assert_eq!(s.fleet.stats(&id).expect("stats").unauthorized, 1);

    // Wrong credentials: the renewal fails too -> auth_failed, then recovery.
    s.fleet.set_fault(&id, Fault::WrongCredentials);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::AuthFailed, "{:?}", out.events);
    assert!(
        out.events
            .iter()
            .any(|e| e.endpoint.as_deref() == Some("/api/v4/authorize")
                && e.http_status == Some(401))
    );
    s.fleet.set_fault(&id, Fault::None);
    let later = a.poll().await.snapshot;
    assert_eq!(later.status, Status::Online);
    assert_eq!(
        later.name.as_deref(),
        Some("SG-PROD"),
        "the grid name is kept"
    );

    a.logout().await;
    let stats = s.fleet.stats(&id).expect("stats");
    assert_eq!(stats.logouts, 1);
    assert_eq!(
        stats.requests.get("/api/versions"),
        Some(&1),
        "the API version is asked once"
    );
    assert_eq!(
        stats.requests.get("/api/v4/grid/health/topology"),
        Some(&1),
        "the grid name is read once"
    );
}

#[tokio::test]
async fn dispatch_and_live_values() {
    let s = setup(Mode::Live).await;
    let mut adapter = Adapter::new(&s.config).expect("adapter");
    let out = adapter.poll().await;
    assert_eq!(
        (out.snapshot.status, out.snapshot.error.as_deref()),
        (Status::Online, None),
        "{:?}",
        out.events
    );
    assert_eq!(out.snapshot.capacity, s.fleet.expected_capacity(&s.id()));
    assert_eq!(out.snapshot.hardware, Health::Ok);
    s.fleet.advance(Duration::from_secs(6 * 3600));
    s.fleet.set_scenario(&s.id(), Scenario::Degraded);
    let later = adapter.poll().await.snapshot;
    assert_eq!(later.capacity, s.fleet.expected_capacity(&s.id()));
    assert!(
        later.capacity.as_ref().map(|c| c.used_bytes)
            > out.snapshot.capacity.as_ref().map(|c| c.used_bytes)
    );
    assert_eq!(later.hardware, Health::Error);
    assert!(
        later
            .alerts
            .iter()
            .any(|al| al.severity == Severity::Critical)
    );
    adapter.logout().await;
    assert_eq!(s.fleet.stats(&s.id()).expect("stats").logouts, 1);
}

#[tokio::test]
async fn bad_answers_fail_or_degrade_and_recover() {
    let s = setup(Mode::Fixture).await;
    let id = s.id();
    let mut a = s.adapter();
    assert_eq!(a.poll().await.snapshot.status, Status::Online);
    let faults = [
        ("html 500", Fault::Html500, Status::Error),
        ("invalid json", Fault::InvalidJson, Status::Error),
        ("wrong types", Fault::WrongTypes, Status::Error),
        ("empty body", Fault::EmptyBody, Status::Error),
        ("403", Fault::Status { code: 403 }, Status::AuthFailed),
        ("429", Fault::Status { code: 429 }, Status::Error),
        ("503", Fault::Status { code: 503 }, Status::Error),
        ("closed", Fault::Unreachable, Status::Unreachable),
    ];
    for (label, fault, status) in faults {
        s.fleet.set_fault_on(&id, "/grid/health", fault.clone());
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, status, "{label}: {:?}", out.events);
        assert_names(label, &out, "/api/v4/grid/health");
        s.fleet.set_fault_on(&id, "/grid/alerts", fault);
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, Status::Online, "{label}");
        // A failed alert query keeps the last known alerts (never "all cleared").
        assert_eq!(
            out.snapshot.alerts.len(),
            3,
            "{label}: the last known alerts are kept"
        );
        assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
        assert_names(label, &out, "/api/v4/grid/alerts");
        s.fleet.set_fault(&id, Fault::None);
        let out = a.poll().await;
        assert_eq!(
            (out.snapshot.status, out.snapshot.error.as_deref()),
            (Status::Online, None),
            "{label}: {:?}",
            out.events
        );
        assert_eq!(out.snapshot.alerts.len(), 3);
    }
    // Faults on every call, the login included.
    for (label, fault) in [
        ("all html", Fault::Html500),
        ("all wrong types", Fault::WrongTypes),
        ("all 401", Fault::Status { code: 401 }),
    ] {
        s.fleet.set_fault(&id, fault);
        let out = a.poll().await;
        assert_ne!(out.snapshot.status, Status::Online, "{label}");
        assert!(out.events.iter().any(|e| e.endpoint.is_some()), "{label}");
        s.fleet.set_fault(&id, Fault::None);
        assert_eq!(a.poll().await.snapshot.status, Status::Online, "{label}");
    }
    // A metric query that fails leaves capacity unknown but keeps the rest.
    s.fleet
        .set_fault_on(&id, "/grid/metric-query", Fault::Status { code: 500 });
    let out = a.poll().await;
    assert_eq!(
        (out.snapshot.status, out.snapshot.capacity.is_none()),
        (Status::Online, true)
    );
    assert_eq!(out.snapshot.alerts.len(), 3);
}

#[tokio::test]
async fn timeouts_and_tls_failures() {
    let s = setup(Mode::Fixture).await;
    let id = s.id();
    let mut a = s.adapter();
    s.fleet.set_fault(&id, Fault::Hang);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::Unreachable, "{:?}", out.events);
    s.fleet.set_fault(&id, Fault::None);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);

    let out = StorageGridAdapter::new(&s.untrusted())
        .expect("adapter")
        .poll()
        .await;
    assert_tls_failure(&out);
}

// ---- #17: topology, site pools, performance ----

#[tokio::test]
async fn fixtures_give_topology_site_pools_and_performance() {
    use sdash_proto::{ClusterType, Performance, Pool, PoolKind};
    let s = setup(Mode::Fixture).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.error, None, "{:?}", out.events);
    let topo = snap.topology.as_ref().expect("topology");
    assert_eq!(topo.cluster_type, Some(ClusterType::MultiSite));
    assert_eq!(topo.site_count, Some(2));
    let nodes: Vec<(&str, Option<&str>, Option<&str>)> = topo
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.model.as_deref(), n.state.as_deref()))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("DC1-ADM1", Some("adminNode"), Some("connected")),
            ("DC1-G1", Some("apiGatewayNode"), Some("connected")),
            ("DC1-S1", Some("storageNode"), Some("connected")),
            ("DC1-S2", Some("storageNode"), Some("connected")),
            ("DC2-ADM1", Some("adminNode"), Some("connected")),
            ("DC2-S1", Some("storageNode"), Some("connected")),
            ("DC2-S2", Some("storageNode"), Some("connected")),
        ]
    );
    assert!(
        topo.nodes
            .iter()
            .all(|n| n.version.as_deref() == snap.version.as_deref())
    );
    assert_eq!(
        topo.management_url.as_deref(),
        Some(format!("{}/", s.fleet.base_url(&s.id())).as_str())
    );
    assert_eq!(
        snap.pools,
        vec![
            Pool {
                kind: PoolKind::Site,
                name: "Data Center 1 (Frankfurt)".into(),
                total_bytes: 274_877_906_944_000,
                used_bytes: 173_585_398_235_136,
                free_bytes: Some(97_993_973_825_536),
            },
            Pool {
                kind: PoolKind::Site,
                name: "Data Center 2 (Berlin)".into(),
                total_bytes: 274_877_906_944_000,
                used_bytes: 172_760_764_514_304,
                free_bytes: Some(98_818_607_546_368),
            },
            // `api_v4_private_ilm-pools.json`: every site, then the Frankfurt site; the Berlin
            // pool is limited to a storage grade, which the metrics cannot attribute.
            Pool {
                kind: PoolKind::StoragePool,
                name: "All Storage Nodes".into(),
                total_bytes: 549_755_813_888_000,
                used_bytes: 346_346_162_749_440,
                free_bytes: Some(196_812_581_371_904),
            },
            Pool {
                kind: PoolKind::StoragePool,
                name: "Frankfurt".into(),
                total_bytes: 274_877_906_944_000,
                used_bytes: 173_585_398_235_136,
                free_bytes: Some(97_993_973_825_536),
            },
        ]
    );
    // StorageGRID reports no provisioned bytes.
    assert_eq!(
        snap.capacity.as_ref().and_then(|c| c.provisioned_bytes),
        None
    );
    // `api_v4_grid_metric-query.performance.json`, through one metric query; latency in the
    // fixture is seconds (0.000412 s, 0.001375 s).
    assert_eq!(
        snap.performance,
        Some(Performance {
            read_iops: Some(1843.2),
            write_iops: Some(612.4),
            read_latency_us: Some(412.0),
            write_latency_us: Some(1375.0),
            read_bytes_per_s: Some(1_251_232_768),
            write_bytes_per_s: Some(402_653_184),
        })
    );
    let stats = s.fleet.stats(&s.id()).expect("stats");
    // Capacity (total, data, usable) and performance: four metric queries per poll.
    assert_eq!(stats.requests.get("/api/v4/grid/metric-query"), Some(&4));
}

#[tokio::test]
async fn a_grid_that_rejects_the_performance_query_is_not_asked_again_until_an_outage() {
    let s = setup(Mode::Fixture).await;
    let mut adapter = s.adapter();
    // A release that cannot evaluate the query: 400 on every metric query of this poll.
    s.fleet
        .set_fault_on(&s.id(), "/grid/metric-query", Fault::Status { code: 400 });
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.performance, None);
    s.fleet
        .set_fault_on(&s.id(), "/grid/metric-query", Fault::None);
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
    assert_eq!(out.snapshot.performance, None);
    let stats = s.fleet.stats(&s.id()).expect("stats");
    // First poll: total space (failed, so no data or usable) and performance; second poll:
    // the three capacity queries only.
    assert_eq!(stats.requests.get("/api/v4/grid/metric-query"), Some(&5));
}

#[tokio::test]
async fn a_grid_without_the_performance_metrics_or_slow_ones_has_no_performance() {
    let s = setup(Mode::Fixture).await;
    s.fleet.set_scenario(&s.id(), Scenario::NoPerformance);
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.performance, None);
    assert_eq!(out.snapshot.pools.len(), 4);

    s.fleet.set_scenario(&s.id(), Scenario::SlowPerformance);
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.performance, None);
    assert!(out.snapshot.poll_ms < 2900, "{} ms", out.snapshot.poll_ms);
}

#[tokio::test]
async fn storage_pools_are_read_at_the_topology_cadence_and_kept_in_between() {
    use sdash_proto::PoolKind;
    let s = setup(Mode::Fixture).await;
    let mut adapter = s.adapter();
    for _ in 0..3 {
        let out = adapter.poll().await;
        assert_eq!(out.snapshot.error, None, "{:?}", out.events);
        let names: Vec<&str> = out
            .snapshot
            .pools
            .iter()
            .filter(|p| p.kind == PoolKind::StoragePool)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, vec!["All Storage Nodes", "Frankfurt"]);
    }
    let stats = s.fleet.stats(&s.id()).expect("stats");
    assert_eq!(stats.requests.get("/api/v4/private/ilm-pools"), Some(&1));
}

#[tokio::test]
async fn a_grid_without_the_storage_pools_call_has_site_pools_only() {
    use sdash_proto::PoolKind;
    let s = setup(Mode::Fixture).await;
    s.fleet
        .set_fault_on(&s.id(), "/private/ilm-pools", Fault::Status { code: 404 });
    let mut adapter = s.adapter();
    for _ in 0..2 {
        let out = adapter.poll().await;
        assert_eq!(out.snapshot.status, Status::Online);
        assert_eq!(out.snapshot.error, None, "{:?}", out.events);
        assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
        let kinds: Vec<PoolKind> = out.snapshot.pools.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![PoolKind::Site, PoolKind::Site]);
        assert!(out.snapshot.performance.is_some());
    }
}
