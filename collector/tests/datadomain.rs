//! The DataDomain adapter against the simulator over HTTPS: `X-DD-AUTH-TOKEN` login (201),
//! session reuse and renewal, `page`/`size` paging, the fixtures normalized to exact values, bad
//! answers and recovery.

mod common;

use std::time::Duration;

use common::{Setup, TIB, assert_names, assert_tls_failure};
use sdash_collector::vendors::Adapter;
use sdash_collector::vendors::datadomain::DataDomainAdapter;
use sdash_proto::{Capacity, Category, Health, Severity, Status, Vendor};
use sdash_testkit::sim::{Fault, Mode, Scenario};

async fn setup(mode: Mode, page_cap: Option<usize>) -> Setup {
    common::setup(Vendor::Datadomain, mode, page_cap).await
}

impl Setup {
    fn adapter(&self) -> DataDomainAdapter {
        DataDomainAdapter::new(&self.config).expect("adapter")
    }
}

fn fixture_capacity() -> Capacity {
    Capacity {
        total_bytes: 500 * TIB,
        used_bytes: 346_346_162_749_440,
        free_bytes: 203_409_651_138_560,
        data_reduction: Some(18.4),
        provisioned_bytes: None,
    }
}

#[tokio::test]
async fn fixtures_normalize_to_exact_values() {
    let s = setup(Mode::Fixture, None).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.status, Status::Online, "{:?}", out.events);
    assert_eq!(snap.error, None, "{:?}", out.events);
    assert_eq!(snap.name.as_deref(), Some("dd9410-a.example.com"));
    assert_eq!(
        snap.version.as_deref(),
        Some("Data Domain OS 8.3.0.15-1161254")
    );
    assert_eq!(
        (snap.model.as_deref(), snap.serial.as_deref()),
        (Some("DD9410"), Some("APM00242100071"))
    );
    assert_eq!(snap.capacity, Some(fixture_capacity()));
    assert_eq!(
        snap.capacity
            .as_ref()
            .map(|c| c.used_bytes * 100 / c.total_bytes),
        Some(63)
    );
    assert_eq!(s.fleet.expected_capacity(&s.id()), Some(fixture_capacity()));
    // 3 active alerts (the cleared one is not listed): CRITICAL, WARNING, NOTICE.
    let sev: Vec<_> = snap
        .alerts
        .iter()
        .map(|a| (a.vendor_severity.as_str(), a.severity))
        .collect();
    assert_eq!(
        sev,
        vec![
            ("CRITICAL", Severity::Critical),
            ("WARNING", Severity::Warning),
            ("NOTICE", Severity::Info)
        ]
    );
    assert_eq!(snap.alerts[0].opened_at, Some(1_795_147_200_000));
    // The FAILED disk (and its hardware alert) -> hardware error; HA and replication are fine.
    assert_eq!(snap.hardware, Health::Error);
    assert_eq!(snap.cluster, Health::Ok);
    let bad: Vec<_> = snap
        .components
        .iter()
        .filter(|c| c.status != Health::Ok)
        .map(|c| (c.kind.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(bad, vec![("disks", "disks"), ("disk", "3.9")]);
    let kinds = |k: &str| snap.components.iter().filter(|c| c.kind == k).count();
    assert_eq!((kinds("ha_node"), kinds("replication")), (2, 2));
    assert_eq!(s.logins(), 1);
    // Only spec paths: none of the predecessor's nonexistent ones.
    let stats = s.fleet.stats(&s.id()).expect("stats");
    for path in stats.requests.keys() {
        assert!(
            !path.starts_with("/rest/v1.0/dd-systems/0/ha")
                && !path.contains("hardware")
                && !path.contains("replication/contexts"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn lists_are_paged() {
    let s = setup(Mode::Fixture, Some(10)).await;
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.alerts.len(), 3);
    let stats = s.fleet.stats(&s.id()).expect("stats");
    // 62 disks in pages of 10.
    assert_eq!(
        stats.requests.get("/api/v1/dd-systems/0/storage/disks"),
        Some(&7)
    );
    assert!(
        out.snapshot
            .components
            .iter()
            .any(|c| c.name == "3.9" && c.status == Health::Error)
    );
    let s = setup(Mode::Fixture, Some(2)).await;
    let out = s.adapter().poll().await;
    let sev: Vec<_> = out.snapshot.alerts.iter().map(|a| a.severity).collect();
    assert_eq!(
        sev,
        vec![Severity::Critical, Severity::Warning, Severity::Info]
    );
    assert_eq!(
        s.fleet
            .stats(&s.id())
            .expect("stats")
            .requests
            .get("/rest/v1.0/dd-systems/0/alerts"),
        Some(&2)
    );
}

#[tokio::test]
async fn the_session_is_kept_renewed_on_401_and_logged_out() {
    let s = setup(Mode::Fixture, None).await;
    let id = s.id();
    let mut a = s.adapter();
    assert_eq!(a.poll().await.snapshot.status, Status::Online);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);
    assert_eq!(s.logins(), 1, "the token is reused across polls");

    s.fleet.set_fault(&id, Fault::ExpireSessions);
    let out = a.poll().await;
    assert_eq!(
        (out.snapshot.status, out.snapshot.error.as_deref()),
        (Status::Online, None),
        "{:?}",
        out.events
    );
    assert_eq!((s.logins(), a.logins()), (2, 2));
    assert!(
        out.events
            .iter()
            .any(|e| e.category == Category::Authentication && e.http_status == Some(401))
    );

    s.fleet.set_fault(&id, Fault::WrongCredentials);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::AuthFailed, "{:?}", out.events);
    assert!(out.events.iter().any(|e| e.endpoint.as_deref() == Some("/rest/v1.0/auth") && e.http_status == Some(401)));
    s.fleet.set_fault(&id, Fault::None);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);

    a.logout().await;
    assert_eq!(s.fleet.stats(&id).expect("stats").logouts, 1);
}

#[tokio::test]
async fn dispatch_and_live_values() {
    let s = setup(Mode::Live, None).await;
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
    let s = setup(Mode::Fixture, None).await;
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
        ("500", Fault::Status { code: 500 }, Status::Error),
        ("closed", Fault::Unreachable, Status::Unreachable),
    ];
    for (label, fault, status) in faults {
        s.fleet
            .set_fault_on(&id, "/rest/v1.0/system", fault.clone());
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, status, "{label}: {:?}", out.events);
        assert_names(label, &out, "/rest/v1.0/system");
        s.fleet.set_fault_on(&id, "/storage/disks", fault);
        let out = a.poll().await;
        assert_eq!(out.snapshot.status, Status::Online, "{label}");
        assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
        assert_eq!(out.snapshot.alerts.len(), 3);
        assert_names(label, &out, "/api/v1/dd-systems/0/storage/disks");
        s.fleet.set_fault(&id, Fault::None);
        let out = a.poll().await;
        assert_eq!(
            (out.snapshot.status, out.snapshot.error.as_deref()),
            (Status::Online, None),
            "{label}: {:?}",
            out.events
        );
    }
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
}

#[tokio::test]
async fn timeouts_and_tls_failures() {
    let s = setup(Mode::Fixture, None).await;
    let id = s.id();
    let mut a = s.adapter();
    s.fleet.set_fault(&id, Fault::Hang);
    let out = a.poll().await;
    assert_eq!(out.snapshot.status, Status::Unreachable, "{:?}", out.events);
    s.fleet.set_fault(&id, Fault::None);
    assert_eq!(a.poll().await.snapshot.status, Status::Online);

    let out = DataDomainAdapter::new(&s.untrusted())
        .expect("adapter")
        .poll()
        .await;
    assert_tls_failure(&out);
}

#[tokio::test]
async fn an_unreadable_password_file_is_a_configuration_error() {
    let s = setup(Mode::Fixture, None).await;
    let mut config = s.config.clone();
    config.auth.password_file = Some(std::path::PathBuf::from("/nonexistent/sdash-test.password"));
    let out = DataDomainAdapter::new(&config)
        .expect("adapter")
        .poll()
        .await;
    assert_eq!(out.snapshot.status, Status::Error);
    assert!(out.events.iter().any(
        |e| e.category == Category::Authentication && e.message.contains("sdash-test.password")
    ));
    assert_eq!(
        s.fleet.stats(&s.id()).expect("stats").requests.len(),
        0,
        "nothing is sent without credentials"
    );
}

// ---- #17: NICs, topology, tiers ----

#[tokio::test]
async fn fixtures_give_topology_nics_and_tiers() {
    use sdash_proto::{ClusterType, Partner, Pool, PoolKind, TopologyNode};
    let s = setup(Mode::Fixture, None).await;
    let out = s.adapter().poll().await;
    let snap = &out.snapshot;
    assert_eq!(snap.error, None, "{:?}", out.events);
    let topo = snap.topology.as_ref().expect("topology");
    assert_eq!(topo.cluster_type, Some(ClusterType::Ha));
    assert_eq!(topo.site_count, Some(1));
    assert_eq!(
        topo.nodes,
        vec![
            TopologyNode {
                name: "dd9410-a-n0".into(),
                model: Some("DD9410".into()),
                serial: Some("APM00242100071".into()),
                state: Some("online".into()),
                version: Some("Data Domain OS 8.3.0.15-1161254".into()),
            },
            TopologyNode {
                name: "dd9410-a-n1".into(),
                model: Some("DD9410".into()),
                serial: Some("APM00242100072".into()),
                state: Some("online".into()),
                version: None,
            },
        ]
    );
    // ethMa and its HA alias ethMa:95; ethMb has no address.
    assert_eq!(topo.management_addresses, vec!["10.60.0.21", "10.60.0.20"]);
    assert_eq!(
        topo.partners,
        vec![
            Partner {
                name: "dd9410-a-n1".into(),
                kind: "ha".into(),
                state: Some("online".into()),
            },
            Partner {
                name: "dd6900-dr.example.com".into(),
                kind: "mtree-replication".into(),
                state: Some("NORMAL".into()),
            },
        ]
    );
    // DD System Manager listens on 443, not on the API's port.
    let base = s.fleet.base_url(&s.id());
    let (_, rest) = base.split_once("://").expect("url");
    let (authority, path) = rest.split_once('/').expect("prefix");
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    assert_eq!(
        topo.management_url.as_deref(),
        Some(format!("https://{host}/{path}/").as_str())
    );

    // 5 NICs: ethMb disabled, ethMa:95 an alias: 3 checked, all with link.
    let nics = snap
        .components
        .iter()
        .find(|c| c.kind == "nics")
        .expect("nics");
    assert_eq!(
        (nics.status, nics.detail.as_deref()),
        (Health::Ok, Some("3 NICs, 0 without link"))
    );
    assert!(!snap.alerts.iter().any(|a| a.id.starts_with("sdash:")));

    assert_eq!(
        snap.pools,
        vec![Pool {
            kind: PoolKind::ActiveTier,
            name: "active".into(),
            total_bytes: 500 * TIB,
            used_bytes: 346_346_162_749_440,
            free_bytes: Some(203_409_651_138_560),
        }]
    );
    // DataDomain reports no provisioned bytes: absent, and the system is online.
    assert_eq!(
        snap.capacity.as_ref().and_then(|c| c.provisioned_bytes),
        None
    );
    assert_eq!(snap.status, Status::Online);
}

/// The newest sample of `api_v3_dd-systems_0_stats_performance.json` (collectionEpoch
/// 1795161300): IOPS = sequential + random, latency weighted by IOPS (ms → µs).
fn fixture_performance() -> sdash_proto::Performance {
    sdash_proto::Performance {
        read_iops: Some(1500.0),
        write_iops: Some(4000.0),
        // (1.5 ms × 1200 + 6.0 ms × 300) / 1500; (2.0 ms × 3800 + 4.0 ms × 200) / 4000
        read_latency_us: Some(2400.0),
        write_latency_us: Some(2100.0),
        read_bytes_per_s: Some(734_003_200),
        write_bytes_per_s: Some(1_572_864_000),
    }
}

#[tokio::test]
async fn fixtures_give_the_performance_of_the_newest_sample() {
    let s = setup(Mode::Fixture, None).await;
    let mut adapter = s.adapter();
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.performance, Some(fixture_performance()));
    // Every poll reads it (topology is the slower cadence, performance is not).
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.performance, Some(fixture_performance()));
    let stats = s.fleet.stats(&s.id()).expect("stats");
    assert_eq!(
        stats.requests.get("/api/v3/dd-systems/0/stats/performance"),
        Some(&2)
    );
}

#[tokio::test]
async fn live_performance_is_read_within_the_window_of_the_arrays_clock() {
    let s = setup(Mode::Live, None).await;
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    // The live samples are the fixture's moved to the simulated clock: the window by the
    // array's `Date` still holds the newest one.
    assert_eq!(out.snapshot.performance, Some(fixture_performance()));
}

#[tokio::test]
async fn a_dd_os_without_the_performance_endpoint_or_a_slow_one_has_no_performance() {
    let s = setup(Mode::Fixture, None).await;
    let mut adapter = s.adapter();
    s.fleet.set_scenario(&s.id(), Scenario::NoPerformance);
    for _ in 0..2 {
        let out = adapter.poll().await;
        assert_eq!(out.snapshot.status, Status::Online);
        assert_eq!(out.snapshot.error, None, "{:?}", out.events);
        assert_eq!(out.snapshot.performance, None);
        assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
        assert_eq!(out.snapshot.pools.len(), 1);
    }
    // A 404 means "no such endpoint on this DD OS": not asked again.
    let stats = s.fleet.stats(&s.id()).expect("stats");
    assert_eq!(
        stats.requests.get("/api/v3/dd-systems/0/stats/performance"),
        Some(&1)
    );

    let s = setup(Mode::Fixture, None).await;
    s.fleet.set_scenario(&s.id(), Scenario::SlowPerformance);
    let out = s.adapter().poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.error, None, "{:?}", out.events);
    assert_eq!(out.snapshot.performance, None);
    assert_eq!(out.snapshot.capacity, Some(fixture_capacity()));
    assert!(out.snapshot.poll_ms < 2900, "{} ms", out.snapshot.poll_ms);
    assert!(
        out.events
            .iter()
            .any(|e| e.endpoint.as_deref() == Some("/api/v3/dd-systems/0/stats/performance")),
        "{:?}",
        out.events
    );
}

#[tokio::test]
async fn a_nic_without_link_is_a_warning_alert_until_the_link_is_back() {
    let s = setup(Mode::Fixture, None).await;
    let mut adapter = s.adapter();
    s.fleet.set_scenario(&s.id(), Scenario::NicNoLink);
    let down = adapter.poll().await.snapshot;
    let alert = down
        .alerts
        .iter()
        .find(|a| a.id == "sdash:nic:ethV0")
        .unwrap_or_else(|| panic!("{:?}", down.alerts));
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.title, "NIC ethV0 has no link");
    let nic = down
        .components
        .iter()
        .find(|c| c.kind == "nic")
        .expect("nic");
    assert_eq!(
        (nic.name.as_str(), nic.status, nic.detail.as_deref()),
        ("ethV0", Health::Warning, Some("no link, up"))
    );
    assert!(down.hardware >= Health::Warning);
    s.fleet.set_scenario(&s.id(), Scenario::Healthy);
    let up = adapter.poll().await.snapshot;
    assert!(!up.alerts.iter().any(|a| a.id.starts_with("sdash:nic:")));
    assert!(!up.components.iter().any(|c| c.kind == "nic"));
}
