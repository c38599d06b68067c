//! The Pure adapter against the simulator (`sdash_testkit::sim`) over real HTTPS: the fixtures
//! normalized to exact values, the session flow, every kind of bad answer, and a live fleet.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TIB, assert_hidden};
use sdash_collector::inventory::{AuthConfig, SystemConfig, TlsConfig};
use sdash_collector::vendors::{Adapter, PollOutput};
use sdash_proto::{Category, Health, Severity, Status, Vendor};
use sdash_testkit::sim::{Fault, Fleet, Mode, Scenario, SimConfig};

async fn fleet(systems: usize, mode: Mode) -> Fleet {
    Fleet::start(SimConfig {
        systems,
        seed: 7,
        // Pages of at most 20 items: the 48 drives come in 3 pages.
        page_cap: Some(20),
        ..common::sim_config(mode)
    })
    .await
    .expect("simulator starts")
}

/// A system config for one simulated system; the CA and the token are files in `dir`.
fn config(fleet: &Fleet, id: &str, dir: &Path) -> SystemConfig {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, fleet.ca_pem()).expect("write ca");
    let token = dir.join(format!("{id}.token"));
    std::fs::write(&token, fleet.system(id).expect("system").secret).expect("write token");
    SystemConfig {
        id: id.to_owned(),
        name: id.to_owned(),
        vendor: Vendor::Pure,
        address: fleet.base_url(id),
        interval: Duration::from_secs(60),
        tags: Default::default(),
        enabled: true,
        tls: TlsConfig {
            ca_file: Some(ca),
            insecure: false,
        },
        auth: AuthConfig {
            api_token_file: Some(token),
            ..AuthConfig::default()
        },
        proxy: None,
        timeout: Duration::from_secs(2),
    }
}

/// The system of a one-array fleet.
const ONE: &str = "sim-pure-0001";

/// A one-array fleet from fixtures, the directory of its CA and token, and an adapter for it.
async fn one_array() -> (Fleet, tempfile::TempDir, Adapter) {
    let fleet = fleet(1, Mode::Fixture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let adapter = Adapter::new(&config(&fleet, ONE, dir.path())).expect("adapter");
    (fleet, dir, adapter)
}

fn dump(out: &PollOutput) -> String {
    format!("{:#?}\n{:#?}", out.snapshot, out.events)
}

#[tokio::test]
async fn fixtures_normalize_to_exact_values() {
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    let out = adapter.poll().await;
    let s = &out.snapshot;
    assert_eq!(s.status, Status::Online, "{}", dump(&out));
    assert_eq!(s.error, None, "{}", dump(&out));
    assert_eq!(s.vendor, Vendor::Pure);
    assert_eq!(s.name.as_deref(), Some("fa-prod-01"));
    assert_eq!(s.version.as_deref(), Some("6.7.3"));
    assert_eq!(s.model.as_deref(), Some("FA-X70R4"));
    assert_eq!(s.serial.as_deref(), Some("PCHFL2241007A"));

    let cap = s.capacity.as_ref().expect("capacity");
    assert_eq!(cap.total_bytes, 500 * TIB);
    assert_eq!(cap.used_bytes, 315 * TIB);
    assert_eq!(cap.free_bytes, 185 * TIB);
    assert_eq!(cap.data_reduction, Some(4.2));
    assert_eq!(Some(cap.clone()), fleet.expected_capacity(id));

    // CH0.PWR1 is critical; the stretched pod's mediator is unreachable.
    assert_eq!(s.hardware, Health::Error);
    assert_eq!(s.cluster, Health::Warning);
    let psu = s
        .components
        .iter()
        .find(|c| c.name == "CH0.PWR1")
        .expect("psu");
    assert_eq!((psu.kind.as_str(), psu.status), ("psu", Health::Error));
    let pod = s.components.iter().find(|c| c.kind == "pod").expect("pod");
    assert_eq!(
        (pod.name.as_str(), pod.status),
        ("pod-sql", Health::Warning)
    );
    assert!(
        pod.detail
            .as_deref()
            .unwrap_or("")
            .contains("mediator unreachable"),
        "{pod:?}"
    );
    assert_eq!(s.components.iter().filter(|c| c.kind == "peer").count(), 2);

    // Controllers without the shelf controllers; unused slots and empty bays skipped.
    let controllers: Vec<&str> = s
        .components
        .iter()
        .filter(|c| c.kind == "controller")
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(controllers, vec!["CT0", "CT1"]);
    assert!(!s.components.iter().any(|c| c.name.contains(".SC")));
    assert!(
        !s.components.iter().any(|c| c.name == "CT0.FC3"),
        "unused slot skipped"
    );
    assert_eq!(
        s.components.iter().filter(|c| c.kind == "drive").count(),
        44,
        "48 bays, 4 empty"
    );

    let alerts: Vec<(Severity, &str)> = s
        .alerts
        .iter()
        .map(|a| (a.severity, a.vendor_severity.as_str()))
        .collect();
    assert_eq!(
        alerts,
        vec![
            (Severity::Critical, "critical"),
            (Severity::Warning, "warning"),
            (Severity::Info, "info")
        ]
    );
    let psu_alert = &s.alerts[0];
    assert_eq!(psu_alert.id, "3d85d580-3c5e-5c08-a249-23ab11b4c2f1");
    assert_eq!(psu_alert.title, "(hardware:CH0.PWR1): Power supply failure");
    assert_eq!(psu_alert.component.as_deref(), Some("CH0.PWR1"));
    assert_eq!(psu_alert.opened_at, Some(1_795_143_600_000));

    // Paging: the drives took 3 pages; one login.
    let stats = fleet.stats(id).expect("stats");
    assert_eq!(
        stats.requests.get("/api/2.26/drives"),
        Some(&3),
        "{stats:?}"
    );
    assert_eq!(
        stats.requests.get("/api/2.26/hardware"),
        Some(&2),
        "{stats:?}"
    );
    assert_eq!(stats.logins, 1);

    // The session is kept across polls.
    let again = adapter.poll().await;
    assert_eq!(again.snapshot.status, Status::Online);
    assert_eq!(fleet.stats(id).expect("stats").logins, 1);

    // Logout ends the session on the array.
    adapter.logout().await;
    let stats = fleet.stats(id).expect("stats");
    assert_eq!(stats.logouts, 1);
}

#[tokio::test]
async fn an_expired_session_is_renewed_once() {
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    assert_eq!(adapter.poll().await.snapshot.status, Status::Online);

    fleet.set_fault(id, Fault::ExpireSessions);
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online, "{}", dump(&out));
    assert_eq!(out.snapshot.error, None);
    let stats = fleet.stats(id).expect("stats");
    assert_eq!(stats.logins, 2, "login called twice: {stats:?}");
    assert_eq!(stats.unauthorized, 1);
    let renewal = out
        .events
        .iter()
        .find(|e| e.category == Category::Authentication && e.http_status == Some(401))
        .expect("renewal event");
    assert_eq!(renewal.endpoint.as_deref(), Some("/api/2.26/arrays"));
}

#[tokio::test]
async fn bad_answers_degrade_or_fail_and_the_next_poll_recovers() {
    let cases: Vec<(&str, Fault, Status, &str)> = vec![
        ("html 500 page", Fault::Html500, Status::Error, "HTTP 500"),
        (
            "invalid json",
            Fault::InvalidJson,
            Status::Error,
            "invalid response",
        ),
        (
            "wrong field types",
            Fault::WrongTypes,
            Status::Error,
            "invalid response",
        ),
        (
            "empty body",
            Fault::EmptyBody,
            Status::Error,
            "empty response body",
        ),
        (
            "403",
            Fault::Status { code: 403 },
            Status::AuthFailed,
            "HTTP 403",
        ),
        (
            "429",
            Fault::Status { code: 429 },
            Status::Error,
            "HTTP 429",
        ),
        (
            "500",
            Fault::Status { code: 500 },
            Status::Error,
            "HTTP 500",
        ),
        ("hang", Fault::Hang, Status::Unreachable, "timed out"),
        (
            "wrong credentials",
            Fault::WrongCredentials,
            Status::AuthFailed,
            "HTTP 401",
        ),
        (
            "connection closed",
            Fault::Unreachable,
            Status::Unreachable,
            "connection failed",
        ),
    ];
    let fleet = fleet(cases.len(), Mode::Fixture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = fleet.system_ids();
    for ((name, fault, status, cause), id) in cases.into_iter().zip(ids) {
        let mut adapter = Adapter::new(&config(&fleet, &id, dir.path())).expect("adapter");
        assert_eq!(
            adapter.poll().await.snapshot.status,
            Status::Online,
            "{name}: first poll"
        );

        fleet.set_fault(&id, fault);
        let out = adapter.poll().await;
        let s = &out.snapshot;
        assert_eq!(s.status, status, "{name}: {}", dump(&out));
        assert!(
            s.error.as_deref().unwrap_or("").contains(cause),
            "{name}: {}",
            dump(&out)
        );
        assert_eq!(s.capacity, None, "{name}");
        let event = out
            .events
            .iter()
            .find(|e| e.message.contains(cause))
            .unwrap_or_else(|| panic!("{name}: no event: {}", dump(&out)));
        assert!(
            event
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("/api/")),
            "{name}: {event:?}"
        );
        // The reachability transition is in the log too.
        assert!(
            out.events.iter().any(|e| e.category == Category::Connection
                && e.message.contains("status changed from online")),
            "{name}: {}",
            dump(&out)
        );

        fleet.set_fault(&id, Fault::None);
        let out = adapter.poll().await;
        assert_eq!(
            out.snapshot.status,
            Status::Online,
            "{name}: recovery: {}",
            dump(&out)
        );
        assert_eq!(out.snapshot.error, None, "{name}");
        assert_eq!(
            out.snapshot.capacity.as_ref().map(|c| c.total_bytes),
            Some(500 * TIB),
            "{name}"
        );
        assert!(
            out.events.iter().any(|e| e.message.contains("to online")),
            "{name}: {}",
            dump(&out)
        );
    }
}

#[tokio::test]
async fn a_login_with_a_wrong_token_is_auth_failed() {
    let fleet = fleet(1, Mode::Fixture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "sim-pure-0001";
    let mut cfg = config(&fleet, id, dir.path());
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token").expect("write");
    cfg.auth.api_token_file = Some(wrong.clone());
    let mut adapter = Adapter::new(&cfg).expect("adapter");
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::AuthFailed, "{}", dump(&out));
    let event = out
        .events
        .iter()
        .find(|e| e.http_status == Some(401))
        .expect("401 event");
    assert_eq!(event.endpoint.as_deref(), Some("/api/2.26/login"));
    assert_eq!(event.category, Category::Authentication);
    assert_hidden("not-the-token", &dump(&out), "the token never shows");

    // The token file is reread at the next login: fixing it recovers.
    std::fs::write(&wrong, fleet.system(id).expect("system").secret).expect("write");
    assert_eq!(adapter.poll().await.snapshot.status, Status::Online);
}

#[tokio::test]
async fn a_failing_optional_endpoint_degrades_the_snapshot() {
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    assert_eq!(adapter.poll().await.snapshot.alerts.len(), 3);

    fleet.set_fault_on(id, "/alerts", Fault::Status { code: 500 });
    fleet.set_fault_on(id, "/drives", Fault::Status { code: 503 });
    let out = adapter.poll().await;
    let s = &out.snapshot;
    // set_fault_on replaces the fault: only /drives fails now.
    assert_eq!(s.status, Status::Online, "{}", dump(&out));
    let error = s.error.as_deref().expect("degraded");
    assert!(
        error.contains("/api/2.26/drives") && error.contains("HTTP 503"),
        "{error}"
    );
    let event = out
        .events
        .iter()
        .find(|e| e.endpoint.as_deref() == Some("/api/2.26/drives"))
        .expect("event");
    assert_eq!(event.http_status, Some(503));
    assert_eq!(event.category, Category::ApiCall);
    assert_eq!(
        s.capacity.as_ref().map(|c| c.used_bytes),
        Some(315 * TIB),
        "the rest is still read"
    );
    assert_eq!(
        s.hardware,
        Health::Error,
        "the PSU error found elsewhere stays"
    );
    assert_eq!(s.components.iter().filter(|c| c.kind == "drive").count(), 0);

    // A failing /alerts keeps the last known alerts instead of clearing them.
    fleet.set_fault_on(id, "/alerts", Fault::InvalidJson);
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online);
    assert_eq!(out.snapshot.alerts.len(), 3);
    assert!(
        out.snapshot
            .error
            .as_deref()
            .unwrap_or("")
            .contains("/api/2.26/alerts")
    );
    let event = out
        .events
        .iter()
        .find(|e| e.endpoint.as_deref() == Some("/api/2.26/alerts"))
        .expect("event");
    assert_eq!(event.category, Category::DataQuery);

    fleet.set_fault(id, Fault::None);
    let out = adapter.poll().await;
    assert_eq!(
        (out.snapshot.status, out.snapshot.error),
        (Status::Online, None)
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_failure() {
    let fleet = fleet(1, Mode::Fixture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "sim-pure-0001";
    let mut cfg = config(&fleet, id, dir.path());
    cfg.tls.ca_file = None;
    let mut adapter = Adapter::new(&cfg).expect("adapter");
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Unreachable, "{}", dump(&out));
    let event = out
        .events
        .iter()
        .find(|e| e.category == Category::Connection)
        .expect("event");
    assert!(event.message.contains("TLS failure"), "{event:?}");
    assert_eq!(event.endpoint.as_deref(), Some("/api/api_version"));

    // Explicit opt-out of verification works (and is the only way around it).
    cfg.tls.insecure = true;
    let mut adapter = Adapter::new(&cfg).expect("adapter");
    assert_eq!(adapter.poll().await.snapshot.status, Status::Online);

    // A CA file that is not PEM is a setup error, not a silent fallback.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "garbage").expect("write");
    cfg.tls = TlsConfig {
        ca_file: Some(bad),
        insecure: false,
    };
    assert!(Adapter::new(&cfg).is_err());
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = sdash_harness::free_port();
    let token = dir.path().join("t");
    std::fs::write(&token, "x").expect("write");
    let cfg = SystemConfig {
        id: "gone".into(),
        name: "gone".into(),
        vendor: Vendor::Pure,
        address: format!("https://127.0.0.1:{port}/gone"),
        interval: Duration::from_secs(60),
        tags: Default::default(),
        enabled: true,
        tls: TlsConfig::default(),
        auth: AuthConfig {
            api_token_file: Some(token),
            ..AuthConfig::default()
        },
        proxy: None,
        timeout: Duration::from_secs(2),
    };
    let out = Adapter::new(&cfg).expect("adapter").poll().await;
    assert_eq!(out.snapshot.status, Status::Unreachable, "{}", dump(&out));
    assert!(
        out.events
            .iter()
            .any(|e| e.category == Category::Connection && e.message.contains("connection failed"))
    );
}

#[tokio::test]
async fn a_live_fleet_of_20_polls_online_with_the_served_capacity() {
    let fleet = fleet(20, Mode::Live).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    fleet.write_inventory(&inventory, "60s").expect("inventory");
    let text = std::fs::read_to_string(&inventory).expect("read");
    for info in fleet.systems() {
        assert_hidden(&info.secret, &text, "no secret inline");
    }
    let systems = sdash_collector::inventory::load(&inventory)
        .expect("inventory loads")
        .systems;
    assert_eq!(systems.len(), 20);
    let mut adapters = Vec::new();
    for system in &systems {
        let mut adapter = Adapter::new(system).expect("adapter");
        let out = adapter.poll().await;
        assert_eq!(
            out.snapshot.status,
            Status::Online,
            "{}: {}",
            system.id,
            dump(&out)
        );
        assert_eq!(out.snapshot.error, None, "{}", system.id);
        assert_eq!(out.snapshot.name.as_deref(), Some(system.id.as_str()));
        assert_eq!(out.snapshot.hardware, Health::Ok, "{}", system.id);
        assert_eq!(out.snapshot.cluster, Health::Ok, "{}", system.id);
        let expected = fleet.expected_capacity(&system.id).expect("capacity");
        assert_eq!(
            out.snapshot.capacity.as_ref(),
            Some(&expected),
            "{}",
            system.id
        );
        adapters.push(adapter);
    }

    // Time passes: capacity grows, and the collector sees exactly the new values.
    let id = systems[0].id.clone();
    let before = fleet.expected_capacity(&id).expect("capacity");
    fleet.advance(Duration::from_secs(6 * 3600));
    let after = fleet.expected_capacity(&id).expect("capacity");
    assert!(after.used_bytes > before.used_bytes);
    assert_eq!(after.total_bytes, before.total_bytes);
    let out = adapters[0].poll().await;
    assert_eq!(out.snapshot.capacity, Some(after));

    // Scenarios: a failed PSU with its critical alert; near full.
    fleet.set_scenario(&id, Scenario::Degraded);
    let out = adapters[0].poll().await;
    assert_eq!(out.snapshot.hardware, Health::Error);
    assert!(out.snapshot.alerts.iter().any(|a| a.severity == Severity::Critical && a.component.as_deref() == Some("CH0.PWR1")));
    assert!(out.events.iter().any(|e| {
        e.category == Category::Health
            && e.message
                .contains("hardware health changed from ok to error")
    }));
    fleet.set_scenario(&id, Scenario::NearFull);
    let out = adapters[0].poll().await;
    let cap = out.snapshot.capacity.expect("capacity");
    assert!(cap.used_bytes * 100 / cap.total_bytes >= 90, "{cap:?}");
    assert!(
        out.snapshot
            .alerts
            .iter()
            .any(|a| a.title.contains("above 90%"))
    );
}

#[tokio::test]
async fn faults_can_be_set_through_the_control_endpoint() {
    let fleet = fleet(1, Mode::Live).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "sim-pure-0001";
    let cfg = config(&fleet, id, dir.path());
    let mut adapter = Adapter::new(&cfg).expect("adapter");
    assert_eq!(adapter.poll().await.snapshot.status, Status::Online);

    // The control API lives on the same listener, outside every system's prefix.
    let mut control_cfg = cfg.clone();
    control_cfg.address = fleet
        .base_url(id)
        .trim_end_matches(&format!("/{id}"))
        .to_owned();
    let control = sdash_collector::http::HttpClient::new(&control_cfg).expect("client");
    let set = async |body: serde_json::Value| {
        control
            .post(&format!("/control/{id}/fault"))
            .json(&body)
            .send()
            .await
            .expect("control answers")
    };

    set(serde_json::json!({"kind": "status", "code": 503})).await;
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Error, "{}", dump(&out));
    assert!(out.events.iter().any(|e| e.http_status == Some(503)));

    // Latency below the timeout: still online, and the poll took at least that long.
    set(serde_json::json!({"kind": "latency", "ms": 150})).await;
    let out = adapter.poll().await;
    assert_eq!(out.snapshot.status, Status::Online, "{}", dump(&out));
    assert!(out.snapshot.poll_ms >= 150, "{}", out.snapshot.poll_ms);

    set(serde_json::json!({"kind": "none"})).await;
    assert_eq!(adapter.poll().await.snapshot.error, None);
    let unknown = control
        .post("/control/no-such-system/fault")
        .json(&serde_json::json!({"kind": "none"}))
        .send()
        .await;
    assert_eq!(unknown.err().and_then(|e| e.http_status()), Some(404));
}

#[tokio::test]
async fn live_alerts_open_and_close_over_time() {
    let fleet = fleet(3, Mode::Live).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = std::collections::BTreeSet::new();
    let mut sets = Vec::new();
    for id in fleet.system_ids() {
        let mut adapter = Adapter::new(&config(&fleet, &id, dir.path())).expect("adapter");
        for _ in 0..8 {
            let out = adapter.poll().await;
            assert_eq!(out.snapshot.status, Status::Online);
            let ids: Vec<String> = out.snapshot.alerts.iter().map(|a| a.id.clone()).collect();
            assert!(
                out.snapshot
                    .alerts
                    .iter()
                    .all(|a| a.severity != Severity::Critical),
                "healthy: no critical alert"
            );
            seen.extend(ids.iter().cloned());
            sets.push(ids);
            fleet.advance(Duration::from_secs(900));
        }
    }
    assert!(seen.len() >= 4, "alerts come and go: {seen:?}");
    assert!(
        sets.iter().any(Vec::is_empty) || sets.windows(2).any(|w| w[0] != w[1]),
        "{sets:?}"
    );
}

#[tokio::test]
async fn an_unreadable_token_file_is_reported_not_sent() {
    let fleet = fleet(1, Mode::Fixture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "sim-pure-0001";
    let mut cfg = config(&fleet, id, dir.path());
    cfg.auth.api_token_file = Some(dir.path().join("missing.token"));
    let out = Adapter::new(&cfg).expect("adapter").poll().await;
    assert_eq!(out.snapshot.status, Status::Error, "{}", dump(&out));
    assert!(
        out.events
            .iter()
            .any(|e| e.category == Category::Authentication && e.message.contains("missing.token"))
    );
    assert_eq!(
        fleet.stats(id).expect("stats").requests.len(),
        0,
        "nothing sent to the array"
    );
}

// ---- #17: topology, management interfaces, pools, provisioned, performance ----

#[tokio::test]
async fn fixtures_give_topology_pools_provisioned_and_performance() {
    use sdash_proto::{ClusterType, Partner, Performance, PoolKind, TopologyNode};
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    let out = adapter.poll().await;
    let s = &out.snapshot;
    assert_eq!(s.error, None, "{}", dump(&out));

    let topo = s.topology.as_ref().expect("topology");
    // fa-prod-02 is a sync-replication connection: ActiveCluster.
    assert_eq!(topo.cluster_type, Some(ClusterType::ActiveCluster));
    let ct = |name: &str| TopologyNode {
        name: name.into(),
        model: Some("FA-X70R4".into()),
        serial: None,
        state: Some("ready".into()),
        version: Some("6.7.3".into()),
    };
    assert_eq!(topo.nodes, vec![ct("CT0"), ct("CT1")]);
    assert_eq!(topo.site_count, Some(3));
    assert_eq!(
        topo.management_addresses,
        vec!["10.20.0.11", "10.20.0.12", "10.20.0.10"]
    );
    assert_eq!(topo.dns_names, Vec::<String>::new());
    assert_eq!(
        topo.partners,
        vec![
            Partner {
                name: "fa-prod-02".into(),
                kind: "sync-replication".into(),
                state: Some("connected".into()),
            },
            Partner {
                name: "fa-dr-01".into(),
                kind: "async-replication".into(),
                state: Some("connected".into()),
            },
        ]
    );
    assert_eq!(
        topo.management_url.as_deref(),
        Some(format!("{}/", fleet.base_url(id)).as_str())
    );

    let mgmt = s
        .components
        .iter()
        .find(|c| c.kind == "management_interfaces")
        .expect("management interfaces");
    assert_eq!(
        (mgmt.status, mgmt.detail.as_deref()),
        (Health::Ok, Some("3 interfaces, 0 down"))
    );
    assert!(!s.alerts.iter().any(|a| a.id.starts_with("sdash:")));

    let cap = s.capacity.as_ref().expect("capacity");
    assert_eq!(cap.provisioned_bytes, Some(3_154_498_860_089_344));

    let pools: Vec<(PoolKind, &str, u64, u64)> = s
        .pools
        .iter()
        .map(|p| (p.kind, p.name.as_str(), p.total_bytes, p.used_bytes))
        .collect();
    let total = 549_755_813_888_000;
    assert_eq!(
        pools,
        vec![
            (PoolKind::Space, "unique", total, 269_380_348_805_120),
            (PoolKind::Space, "snapshots", total, 29_686_813_949_952),
            (PoolKind::Space, "shared", total, 46_179_488_366_592),
            (PoolKind::Space, "system", total, 1_099_511_627_776),
            (PoolKind::Space, "replication", total, 0),
        ]
    );
    assert!(s.pools.iter().all(|p| p.free_bytes.is_none()));

    assert_eq!(
        s.performance,
        Some(Performance {
            read_iops: Some(42150.0),
            write_iops: Some(18320.0),
            read_latency_us: Some(310.0),
            write_latency_us: Some(420.0),
            read_bytes_per_s: Some(1_729_382_256),
            write_bytes_per_s: Some(751_619_276),
        })
    );
}

#[tokio::test]
async fn a_disabled_management_interface_is_a_warning_alert_until_enabled() {
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    fleet.set_scenario(id, Scenario::MgmtInterfaceDown);
    let out = adapter.poll().await;
    let s = &out.snapshot;
    let alert = s
        .alerts
        .iter()
        .find(|a| a.id == "sdash:mgmt:ct1.eth0")
        .unwrap_or_else(|| panic!("{}", dump(&out)));
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.title, "Management interface ct1.eth0 is down");
    let c = s
        .components
        .iter()
        .find(|c| c.kind == "management_interface")
        .expect("component");
    assert_eq!(
        (c.name.as_str(), c.status, c.detail.as_deref()),
        (
            "ct1.eth0",
            Health::Warning,
            Some("disabled, address 10.20.0.12")
        )
    );
    fleet.set_scenario(id, Scenario::Healthy);
    let out = adapter.poll().await;
    assert!(
        !out.snapshot
            .alerts
            .iter()
            .any(|a| a.id.starts_with("sdash:mgmt:"))
    );
}

#[tokio::test]
async fn an_evergreen_array_with_zero_used_is_degraded_not_empty() {
    let (fleet, _dir, mut adapter) = one_array().await;
    let id = ONE;
    fleet.set_scenario(id, Scenario::EvergreenZeroUsed);
    let out = adapter.poll().await;
    let s = &out.snapshot;
    assert_eq!(s.status, Status::Online);
    assert_eq!(s.capacity, None, "not shown as 0 %");
    assert_eq!(s.cluster, Health::Warning);
    let error = s.error.as_deref().expect("degraded");
    assert!(
        error.contains("the system reports 0 bytes used of 549755813888000 bytes"),
        "{error}"
    );
    assert!(
        out.events
            .iter()
            .any(|e| e.level == sdash_proto::Level::Warning
                && e.category == Category::DataQuery
                && e.message.contains("0 bytes used")),
        "{}",
        dump(&out)
    );
    let alert = s
        .alerts
        .iter()
        .find(|a| a.id == "sdash:capacity:zero-used")
        .expect("zero-used alert");
    assert_eq!(alert.severity, Severity::Warning);
    // Back to a real figure: the alert clears, the capacity is back.
    fleet.set_scenario(id, Scenario::Healthy);
    let out = adapter.poll().await;
    assert!(out.snapshot.capacity.is_some());
    assert!(
        !out.snapshot
            .alerts
            .iter()
            .any(|a| a.id.starts_with("sdash:"))
    );
}

#[tokio::test]
async fn no_performance_endpoint_or_a_slow_one_leaves_performance_absent() {
    let (fleet, dir, mut adapter) = one_array().await;
    let id = ONE;
    fleet.set_scenario(id, Scenario::NoPerformance);
    for _ in 0..2 {
        let out = adapter.poll().await;
        let s = &out.snapshot;
        assert_eq!(s.status, Status::Online);
        assert_eq!(s.error, None, "{}", dump(&out));
        assert_eq!(s.performance, None);
        assert!(s.topology.is_some() && !s.pools.is_empty());
    }
    // A 404 is remembered: the endpoint is asked once until the next outage.
    let asked = fleet.stats(id).expect("stats").requests;
    assert_eq!(asked.get("/api/2.26/arrays/performance"), Some(&1));

    let mut adapter = Adapter::new(&config(&fleet, id, dir.path())).expect("adapter");
    fleet.set_scenario(id, Scenario::SlowPerformance);
    let out = adapter.poll().await;
    let s = &out.snapshot;
    assert_eq!(s.status, Status::Online);
    assert_eq!(s.error, None, "{}", dump(&out));
    assert_eq!(s.performance, None);
    assert!(s.poll_ms < 2900, "{} ms", s.poll_ms);
    assert!(
        out.events
            .iter()
            .any(|e| e.level == sdash_proto::Level::Warning
                && e.endpoint.as_deref() == Some("/api/2.26/arrays/performance")),
        "{}",
        dump(&out)
    );
}
