//! Shared test plumbing: a fresh database written through the real writer (`sdash_writer::Store`),
//! the API served on port 0 against it, and record builders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use sdash_harness::{Backend, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{Incoming, Store};
use serde_json::Value;

pub const DAY_MS: i64 = 86_400_000;
pub const GIB: u64 = 1 << 30;

/// Runs an async test body once per backend: `both!(name);` next to `async fn name(backend)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(sdash_harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(sdash_harness::Backend::Postgres).await
            }
        }
    };
}

pub struct Env {
    pub db: TestDatabase,
    pub store: Store,
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
    pub http: reqwest::Client,
    pub token: Option<String>,
    seq: AtomicU64,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Env {
    pub async fn new(backend: Backend) -> Env {
        Env::with(backend, |_| {}).await
    }

    pub async fn with(backend: Backend, tweak: impl FnOnce(&mut sdash_api::Config)) -> Env {
        install_crypto();
        let db = TestDatabase::new(backend).await;
        let store = Store::open(&db.url)
            .await
            .unwrap_or_else(|e| panic!("open store {}: {e}", db.url));
        let mut config = sdash_api::Config::new(&db.url);
        tweak(&mut config);
        let token = config.auth_token.clone();
        let (addr, task) = sdash_api::spawn(config)
            .await
            .unwrap_or_else(|e| panic!("spawn api: {e}"));
        Env {
            db,
            store,
            addr,
            task,
            http: reqwest::Client::new(),
            token,
            seq: AtomicU64::new(1),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Writes records through the real writer, in one batch.
    pub async fn write(&self, messages: Vec<(String, Vec<u8>)>) {
        let batch: Vec<Incoming> = messages
            .into_iter()
            .map(|(subject, payload)| Incoming {
                stream_seq: self.seq.fetch_add(1, Ordering::SeqCst),
                subject,
                payload,
                deliveries: 1,
            })
            .collect();
        self.store
            .write_batch(&batch)
            .await
            .unwrap_or_else(|e| panic!("write batch: {e}"));
    }

    pub async fn write_one(&self, message: (String, Vec<u8>)) {
        self.write(vec![message]).await
    }

    pub fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// GET returning status and JSON body (panics when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get_text(path).await;
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path} -> {status}: not JSON ({e}): {text}"));
        (status, body)
    }

    /// GET expecting 200 JSON.
    pub async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET expecting 200 with `Content-Type: content_type`; the response, its body unread.
    pub async fn ok_of_type(&self, path: &str, content_type: &str) -> reqwest::Response {
        let resp = self
            .request(path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type)
        );
        resp
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self
            .request(path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }
}

/// reqwest is built without a default rustls provider: install ring once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::new()
}

fn env<T>(system: &str, at: i64, body: T) -> Envelope<T> {
    Envelope {
        schema: SCHEMA_VERSION,
        event_id: new_event_id(),
        collector_id: "c1".into(),
        system_id: system.into(),
        observed_at: at,
        body,
    }
}

fn enc<T: serde::Serialize>(value: &T) -> Vec<u8> {
    encode(value).unwrap_or_else(|e| panic!("encode: {e}"))
}

pub fn system_rec(
    id: &str,
    name: &str,
    vendor: Vendor,
    tags: &[(&str, &str)],
    at: i64,
) -> (String, Vec<u8>) {
    let body = SystemRecord {
        name: name.into(),
        vendor,
        address: format!("https://{id}.example.net"),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        interval_s: 60,
        enabled: true,
        removed: false,
    };
    (Kind::System.subject(id), enc(&env(id, at, body)))
}

pub fn removed_rec(id: &str, vendor: Vendor, at: i64) -> (String, Vec<u8>) {
    let body = SystemRecord {
        name: id.into(),
        vendor,
        address: String::new(),
        tags: BTreeMap::new(),
        interval_s: 60,
        enabled: false,
        removed: true,
    };
    (Kind::System.subject(id), enc(&env(id, at, body)))
}

pub fn alert(id: &str, severity: Severity, title: &str) -> Alert {
    Alert {
        id: id.into(),
        severity,
        vendor_severity: severity.as_str().to_uppercase(),
        title: title.into(),
        component: Some("ct0".into()),
        opened_at: None,
    }
}

pub fn snapshot_body(vendor: Vendor, used: u64, total: u64, alerts: Vec<Alert>) -> Snapshot {
    Snapshot {
        vendor,
        status: Status::Online,
        hardware: Health::Ok,
        cluster: Health::Ok,
        name: Some("reported".into()),
        version: Some("6.7.3".into()),
        model: Some("FA-X70R4".into()),
        serial: Some("PCTFL1234".into()),
        capacity: Some(Capacity {
            total_bytes: total,
            used_bytes: used,
            free_bytes: total - used,
            data_reduction: Some(3.5),
            provisioned_bytes: None,
        }),
        alerts,
        components: vec![Component {
            kind: "controller".into(),
            name: "CT0".into(),
            status: Health::Ok,
            detail: None,
        }],
        poll_ms: 120,
        error: None,
        topology: None,
        pools: Vec::new(),
        performance: None,
    }
}

pub fn snapshot(id: &str, at: i64, body: Snapshot) -> (String, Vec<u8>) {
    (Kind::Snapshot.subject(id), enc(&env(id, at, body)))
}

pub fn simple_snapshot(
    id: &str,
    at: i64,
    vendor: Vendor,
    used: u64,
    total: u64,
) -> (String, Vec<u8>) {
    snapshot(id, at, snapshot_body(vendor, used, total, Vec::new()))
}

pub fn event(
    id: &str,
    at: i64,
    level: Level,
    category: Category,
    message: &str,
) -> (String, Vec<u8>) {
    let body = EventRecord {
        level,
        category,
        message: message.into(),
        details: Some("details, with \"quotes\"".into()),
        http_status: Some(503),
        endpoint: Some("/api/2.x/arrays".into()),
    };
    (Kind::Event.subject(id), enc(&env(id, at, body)))
}

pub fn collector(id: &str, at: i64, systems: &[&str]) -> (String, Vec<u8>) {
    let body = CollectorRecord {
        version: "0.1.0".into(),
        systems: systems.iter().map(|s| s.to_string()).collect(),
        polls: 10,
        failures: 1,
        outbox_depth: 0,
        started_at: at - 60_000,
    };
    let e = Envelope {
        schema: SCHEMA_VERSION,
        event_id: new_event_id(),
        collector_id: id.into(),
        system_id: String::new(),
        observed_at: at,
        body,
    };
    (Kind::Collector.subject(id), enc(&e))
}

/// The elements of a JSON array (none when `v` is not one).
pub fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// An integer of a JSON body; fails the test when `v` is not one.
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The UTC day (`YYYY-MM-DD`) of a time.
pub fn day(ms: i64) -> String {
    format_ms(ms)[..10].to_owned()
}

/// The value of the sample line of `series` (`name{labels}`) in a metrics text, if it has one;
/// fails the test when it has two.
pub fn metric_sample(text: &str, series: &str) -> Option<String> {
    let values: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .collect();
    assert!(values.len() <= 1, "{series} twice in\n{text}");
    values.first().map(|v| v.to_string())
}

/// The value of the one sample line of `series` in a metrics text; fails the test without one.
pub fn metric_value(text: &str, series: &str) -> String {
    metric_sample(text, series).unwrap_or_else(|| panic!("{series} not in\n{text}"))
}

pub fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A topology with a node, a partner and a web UI (every field of the API's `Topology` set).
pub fn topology(cluster_type: ClusterType, url: &str) -> Topology {
    Topology {
        cluster_type: Some(cluster_type),
        nodes: vec![TopologyNode {
            name: "ct0".into(),
            model: Some("FA-X70R4".into()),
            serial: Some("CT0SERIAL".into()),
            state: Some("ready".into()),
            version: Some("6.7.3".into()),
        }],
        site_count: Some(2),
        management_addresses: vec!["10.0.0.10".into()],
        dns_names: vec!["array.example.net".into()],
        partners: vec![Partner {
            name: "fa-dr-01".into(),
            kind: "sync-replication".into(),
            state: Some("connected".into()),
        }],
        management_url: Some(url.into()),
    }
}

/// A pool of `kind`.
pub fn pool(kind: PoolKind, name: &str, used: u64, total: u64, free: Option<u64>) -> Pool {
    Pool {
        kind,
        name: name.into(),
        total_bytes: total,
        used_bytes: used,
        free_bytes: free,
    }
}

/// Performance with the six metrics in [`Performance`] order (latencies in µs).
pub fn performance(
    [read_iops, write_iops, read_latency_us, write_latency_us]: [Option<f64>; 4],
    [read_bytes_per_s, write_bytes_per_s]: [Option<u64>; 2],
) -> Performance {
    Performance {
        read_iops,
        write_iops,
        read_latency_us,
        write_latency_us,
        read_bytes_per_s,
        write_bytes_per_s,
    }
}
