//! #17 in a real browser against the whole pipeline (`sdash-sim`, a collector, a real
//! nats-server, the writer, the API): a system page shows performance charts, capacity per pool,
//! the provisioned capacity, the topology and network sections and the link to the array's own
//! web UI, with the values the simulator serves; an array without a performance endpoint gets a
//! note instead of an error; the fleet's cluster-type filter narrows the list to the systems of
//! that type and stays in the address.
//!
//! The expected values are read from the simulator's own vendor APIs over HTTPS (a FlashArray's
//! REST 2.x, an ONTAP cluster's REST API), with the simulated clock frozen so they hold still,
//! and mapped the way each vendor documents its fields. Headless Chromium through chromedriver
//! (`sdash_testkit::webdriver`), as in `dashboard.rs`; on SQLite and on PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use sdash_harness::{Backend, wait_for};
use sdash_proto::Vendor;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Fleet, Mix, Scenario, SimConfig};
use sdash_testkit::webdriver::{
    Browser, Tools, ensure_chromium, get_json, is_local, requested_urls, screenshot_dir,
    start_driver,
};
use serde_json::{Value, json};

/// The metrics in the order of the contract (and of the page's tiles).
const METRICS: [&str; 6] = [
    "read_iops",
    "write_iops",
    "read_latency_us",
    "write_latency_us",
    "read_bytes_per_s",
    "write_bytes_per_s",
];
/// The performance charts: (svg id, read metric, write metric).
const CHARTS: [(&str, &str, &str); 3] = [
    ("perf-iops", "read_iops", "write_iops"),
    ("perf-latency", "read_latency_us", "write_latency_us"),
    ("perf-bandwidth", "read_bytes_per_s", "write_bytes_per_s"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_page_shows_topology_pools_and_performance_and_the_fleet_filters_by_cluster_type()
{
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    if let Err(e) = run(&tools, Backend::Sqlite).await {
        panic!("{e:#}");
    }
}

/// The same on PostgreSQL: the writer's deep rows and the API's reads of them are per backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_page_shows_topology_pools_and_performance_on_postgres() {
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    if let Err(e) = run(&tools, Backend::Postgres).await {
        panic!("{e:#}");
    }
}

// ------------------------------------------------------------------------------------------------
// What the simulator serves

/// What one system's page must show, from the simulator's answers.
#[derive(Debug, Clone)]
struct Expected {
    id: String,
    cluster_type: &'static str,
    site_count: u64,
    /// Per metric of [`METRICS`]; `None` when the array has no performance endpoint.
    performance: Option<[f64; 6]>,
    /// (`<kind>:<name>`, used, total).
    pools: Vec<(String, u64, u64)>,
    /// (name, model, serial, state, version).
    nodes: Vec<[Option<String>; 5]>,
    /// (name, kind, state).
    partners: Vec<(String, String, Option<String>)>,
    addresses: Vec<String>,
    provisioned: Option<u64>,
    web_ui: String,
}

/// A client of the simulator's vendor APIs (HTTPS with its CA).
struct SimApi<'a> {
    http: reqwest::Client,
    fleet: &'a Fleet,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn num(v: &Value) -> anyhow::Result<f64> {
    v.as_f64().ok_or_else(|| anyhow!("not a number: {v}"))
}

fn bytes(v: &Value) -> anyhow::Result<u64> {
    v.as_u64().ok_or_else(|| anyhow!("not a byte count: {v}"))
}

impl<'a> SimApi<'a> {
    fn new(fleet: &'a Fleet) -> anyhow::Result<SimApi<'a>> {
        let ca = reqwest::Certificate::from_pem(fleet.ca_pem().as_bytes())?;
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(SimApi { http, fleet })
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.send().await?.error_for_status()?;
        Ok(resp.json().await?)
    }

    /// The expectations of a FlashArray (REST 2.x field names; see the Pure adapter's `deep.rs`).
    async fn pure(&self, id: &str) -> anyhow::Result<Expected> {
        let info = self
            .fleet
            .system(id)
            .ok_or_else(|| anyhow!("no {id} in the simulator"))?;
        let base = self.fleet.base_url(id);
        let login = self
            .http
            .post(format!("{base}/api/2.26/login"))
            .header("api-token", &info.secret)
            .send()
            .await?
            .error_for_status()?;
        let token = login
            .headers()
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("the simulated FlashArray gave no session"))?
            .to_owned();
        let get = |resource: &str| {
            self.json(
                self.http
                    .get(format!("{base}/api/2.26/{resource}"))
                    .header("x-auth-token", &token),
            )
        };
        let perf = get("arrays/performance").await?;
        let p = &perf["items"][0];
        let performance = [
            num(&p["reads_per_sec"])?,
            num(&p["writes_per_sec"])?,
            num(&p["usec_per_read_op"])?,
            num(&p["usec_per_write_op"])?,
            num(&p["read_bytes_per_sec"])?.round(),
            num(&p["write_bytes_per_sec"])?.round(),
        ];
        let space = get("arrays/space").await?;
        let item = &space["items"][0];
        let total = bytes(&item["capacity"])?;
        let pools = ["unique", "snapshots", "shared", "system", "replication"]
            .iter()
            .filter_map(|k| {
                item["space"][k]
                    .as_u64()
                    .map(|used| (format!("space:{k}"), used, total))
            })
            .collect();
        let controllers = get("controllers").await?;
        let nodes: Vec<[Option<String>; 5]> = controllers["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|c| c["type"] != "shelf_controller")
            .map(|c| {
                [
                    text(&c["name"]),
                    text(&c["model"]),
                    None,
                    text(&c["status"]),
                    text(&c["version"]),
                ]
            })
            .collect();
        let connections = get("array-connections").await?;
        let connections = connections["items"].as_array().cloned().unwrap_or_default();
        let partners: Vec<(String, String, Option<String>)> = connections
            .iter()
            .map(|c| {
                (
                    text(&c["name"]).unwrap_or_default(),
                    text(&c["type"]).unwrap_or_else(|| "replication".into()),
                    text(&c["status"]),
                )
            })
            .collect();
        let stretched_pod = get("pods").await?["items"].as_array().is_some_and(|pods| {
            pods.iter().any(|p| {
                p["array_count"].as_u64().unwrap_or(0) > 1
                    || p["arrays"].as_array().is_some_and(|a| a.len() > 1)
            })
        });
        let cluster_type = if partners.iter().any(|p| p.1 == "sync-replication") || stretched_pod {
            "active-cluster"
        } else if nodes.len() >= 2 {
            "ha"
        } else {
            "local"
        };
        let interfaces = get("network-interfaces?filter=services='management'").await?;
        let mut addresses: Vec<String> = Vec::new();
        for i in interfaces["items"].as_array().cloned().unwrap_or_default() {
            if let Some(a) = text(&i["eth"]["address"])
                && !addresses.contains(&a)
            {
                addresses.push(a);
            }
        }
        Ok(Expected {
            id: id.to_owned(),
            cluster_type,
            site_count: 1 + connections.len() as u64,
            performance: Some(performance),
            pools,
            nodes,
            partners,
            addresses,
            provisioned: item["space"]["total_provisioned"].as_u64(),
            web_ui: format!("{base}/"),
        })
    }

    /// The expectations of an ONTAP cluster (its REST API; see the adapter's `topology.rs`).
    async fn ontap(&self, id: &str, performance: bool) -> anyhow::Result<Expected> {
        let info = self
            .fleet
            .system(id)
            .ok_or_else(|| anyhow!("no {id} in the simulator"))?;
        let base = self.fleet.base_url(id);
        let get = |path: &str| {
            self.json(
                self.http
                    .get(format!("{base}{path}"))
                    .basic_auth(&info.username, Some(&info.secret)),
            )
        };
        let performance = if performance {
            let cluster = get("/api/cluster?fields=metric").await?;
            let m = &cluster["metric"];
            Some([
                num(&m["iops"]["read"])?,
                num(&m["iops"]["write"])?,
                num(&m["latency"]["read"])?,
                num(&m["latency"]["write"])?,
                num(&m["throughput"]["read"])?.round(),
                num(&m["throughput"]["write"])?.round(),
            ])
        } else {
            None
        };
        let cluster = get("/api/cluster?fields=management_interfaces").await?;
        let mut addresses: Vec<String> = Vec::new();
        for m in cluster["management_interfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if let Some(a) = text(&m["ip"]["address"])
                && !addresses.contains(&a)
            {
                addresses.push(a);
            }
        }
        let aggregates = get("/api/storage/aggregates?fields=space").await?;
        let mut pools = Vec::new();
        for a in aggregates["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let b = &a["space"]["block_storage"];
            pools.push((
                format!("aggregate:{}", text(&a["name"]).unwrap_or_default()),
                bytes(&b["used"])?,
                bytes(&b["size"])?,
            ));
        }
        let nodes_body = get("/api/cluster/nodes?fields=model,serial_number,state").await?;
        let nodes: Vec<[Option<String>; 5]> = nodes_body["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|n| {
                [
                    text(&n["name"]),
                    text(&n["model"]),
                    text(&n["serial_number"]),
                    text(&n["state"]),
                    // The page shows the release as the adapter shortens it; not compared.
                    None,
                ]
            })
            .collect();
        let mc = get("/api/cluster/metrocluster").await?;
        let metrocluster = mc["local"]["configuration_state"] == "configured";
        let peers = get("/api/cluster/peers?fields=status").await?;
        let mut partners: Vec<(String, String, Option<String>)> = peers["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    text(&p["name"]).unwrap_or_default(),
                    "cluster-peer".to_owned(),
                    text(&p["status"]["state"]),
                )
            })
            .collect();
        if metrocluster && let Some(remote) = text(&mc["remote"]["cluster"]["name"]) {
            partners.push((remote, "metrocluster".into(), text(&mc["remote"]["mode"])));
        }
        let volumes = get("/api/storage/volumes?fields=space.size").await?;
        let provisioned = volumes["records"]
            .as_array()
            .map(|v| v.iter().filter_map(|v| v["space"]["size"].as_u64()).sum());
        Ok(Expected {
            id: id.to_owned(),
            cluster_type: if metrocluster {
                "metrocluster"
            } else if nodes.len() >= 2 {
                "ha"
            } else {
                "local"
            },
            site_count: if metrocluster { 2 } else { 1 },
            performance,
            pools,
            nodes,
            partners,
            addresses,
            provisioned,
            web_ui: format!("{base}/"),
        })
    }
}

// ------------------------------------------------------------------------------------------------
// The test

async fn run(tools: &Tools, backend: Backend) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // One FlashArray and three ONTAP clusters (MetroCluster or an HA pair, per system), the
    // clock frozen so capacity and performance hold still; the last ONTAP cluster runs a
    // release without the performance endpoint.
    let pipeline = Pipeline::start(PipelineOptions {
        backend,
        sim: SimConfig {
            systems: 4,
            seed: 1,
            mix: Mix(vec![(Vendor::Pure, 1), (Vendor::Ontap, 3)]),
            frozen_clock: true,
            ..SimConfig::default()
        },
        interval: "1s".into(),
        collectors: 1,
    })
    .await?;
    let ids = pipeline.fleet.system_ids();
    ensure!(ids.len() == 4, "the simulator runs {ids:?}");
    let pure = ids[0].clone();
    let ontaps = ids[1..].to_vec();
    let no_perf = ids[3].clone();
    ensure!(
        pipeline
            .fleet
            .set_scenario(&no_perf, Scenario::NoPerformance)
    );
    let api = pipeline.api_url();

    let sim = SimApi::new(&pipeline.fleet)?;
    let mut expected = vec![sim.pure(&pure).await.context("the FlashArray's answers")?];
    for id in &ontaps {
        expected.push(
            sim.ontap(id, id != &no_perf)
                .await
                .with_context(|| format!("{id}'s answers"))?,
        );
    }

    // Through the pipeline: every system online with its cluster type, its pools with history,
    // and its performance (none for the old release) with at least two samples.
    for e in &expected {
        let (http, api) = (http.clone(), api.clone());
        let ready = wait_for(Duration::from_secs(90), || {
            let (http, api, e) = (http.clone(), api.clone(), e.clone());
            async move { through_pipeline(&http, &api, &e).await }
        })
        .await;
        if ready.is_none() {
            let detail = get_json(&http, &format!("{api}/api/v1/systems/{}", e.id)).await;
            bail!(
                "{} did not reach the API with its topology, pools and performance within 90 s; \
                 the API shows {detail:?}",
                e.id
            );
        }
    }

    let driver = start_driver(tools, &http).await?;
    let b = Browser::open(&driver, tools, &http).await?;
    let result = async {
        b.goto("about:blank").await?;
        let _ = requested_urls(&b).await?;
        for e in &expected {
            let dns = get_json(&http, &format!("{api}/api/v1/systems/{}", e.id))
                .await
                .and_then(|d| d["topology"]["dns_names"].as_array().cloned())
                .unwrap_or_default();
            let history = get_json(
                &http,
                &format!("{api}/api/v1/systems/{}/performance?range=1d", e.id),
            )
            .await
            .and_then(|v| v["points"].as_array().map(Vec::len))
            .unwrap_or(0);
            system_page(&b, &api, e, &dns, history)
                .await
                .with_context(|| format!("the page of {}", e.id))?;
            if backend == Backend::Sqlite {
                screenshot(&b, &format!("system-deep-{}", e.id)).await?;
            }
        }
        fleet_filter(&b, &api, &expected).await?;
        let urls = requested_urls(&b).await?;
        let foreign: Vec<&String> = urls.iter().filter(|u| !is_local(u)).collect();
        ensure!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?}");
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        b.save_failure_screenshot().await;
    }
    b.quit().await;
    drop(driver);
    pipeline.stop().await;
    result
}

/// Saves the whole page (a tall window) as `<name>.png` in the screenshot directory.
async fn screenshot(b: &Browser, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let height = b
        .js("return document.documentElement.scrollHeight", vec![])
        .await?
        .as_u64()
        .unwrap_or(800);
    b.window(1280, (height as u32 + 140).clamp(800, 4000))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = b.screenshot().await?;
    ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    b.window(1280, 800).await?;
    Ok(())
}

/// `Some` once the API shows what the page needs of `e`.
async fn through_pipeline(http: &reqwest::Client, api: &str, e: &Expected) -> Option<()> {
    let d = get_json(http, &format!("{api}/api/v1/systems/{}", e.id)).await?;
    if d["status"] != "online" || d["cluster_type"] != e.cluster_type {
        return None;
    }
    if e.performance.is_some() == d["performance"].is_null() {
        return None;
    }
    if d["pools"].as_array()?.len() != e.pools.len() {
        return None;
    }
    let pools = get_json(
        http,
        &format!("{api}/api/v1/systems/{}/pools?range=1d", e.id),
    )
    .await?;
    let with_history = pools["pools"]
        .as_array()?
        .iter()
        .filter(|p| p["points"].as_array().is_some_and(|p| !p.is_empty()))
        .count();
    if with_history != e.pools.len() {
        return None;
    }
    if e.performance.is_some() {
        let perf = get_json(
            http,
            &format!("{api}/api/v1/systems/{}/performance?range=1d", e.id),
        )
        .await?;
        if perf["points"].as_array()?.len() < 2 {
            return None;
        }
    }
    Some(())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The number in a data attribute the page wrote (a JS number as text).
fn attr_num(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// One system's page: the sections of #17 with `e`'s values.
async fn system_page(
    b: &Browser,
    api: &str,
    e: &Expected,
    dns: &[Value],
    history: usize,
) -> anyhow::Result<()> {
    let id = &e.id;
    b.goto(&format!("{api}/#/systems/{id}?perf=1h")).await?;
    b.wait(
        "the topology and the pools",
        &format!(
            "document.getElementById('topo-cluster-type') && document.querySelectorAll('#sys-pools .pool').length === {} \
             && document.getElementById('pools-tier')",
            e.pools.len()
        ),
    )
    .await?;

    // Performance: the latest values and three charts of read and write lines, or the note.
    match e.performance {
        Some(values) => {
            let charts = json!(CHARTS.iter().map(|c| c.0).collect::<Vec<_>>());
            b.wait(
                "the performance charts",
                &format!(
                    "{charts}.every((c) => document.getElementById(c)) && document.getElementById('perf-tier')"
                ),
            )
            .await?;
            let shown = b
                .js(
                    "return Object.fromEntries([...document.querySelectorAll('#perf-now [data-metric]')].map((t) => [t.dataset.metric, t.dataset.value]))",
                    vec![],
                )
                .await?;
            for (m, want) in METRICS.iter().zip(values) {
                let got = attr_num(&shown[*m]);
                ensure!(
                    got.is_some_and(|g| close(g, want)),
                    "{m}: the page shows {:?}, the simulator serves {want}",
                    shown[*m]
                );
            }
            for (chart, read, write) in CHARTS {
                let drawn = b
                    .js(
                        "const svg = document.getElementById(arguments[0]);\
                         const g = (l) => svg.querySelector(`g.series-group[data-label=\"${l}\"]`);\
                         return {series: svg.dataset.series, read: g('Read') && [g('Read').dataset.last, g('Read').dataset.points],\
                                 write: g('Write') && [g('Write').dataset.last, g('Write').dataset.points],\
                                 drawn: [...svg.querySelectorAll('path.series')].every((p) => p.getTotalLength() > 0)}",
                        vec![json!(chart)],
                    )
                    .await?;
                ensure!(drawn["series"] == "2", "{chart}: two lines, got {drawn}");
                for (line, metric) in [("read", read), ("write", write)] {
                    let want = values[METRICS.iter().position(|m| *m == metric).unwrap_or(0)];
                    let last = attr_num(&drawn[line][0]);
                    ensure!(
                        last.is_some_and(|l| close(l, want)),
                        "{chart}: the {line} line ends at {:?}, the simulator serves {want}",
                        drawn[line][0]
                    );
                    let points = attr_num(&drawn[line][1]).unwrap_or(0.0) as usize;
                    ensure!(
                        points >= history.min(2) && points >= 2,
                        "{chart}: the {line} line has {points} points ({history} in the API's last day)"
                    );
                }
            }
        }
        None => {
            // The old release: a note, and no error. With samples from before the switch the
            // history is still drawn, under a note that the latest poll had none.
            let note = if history == 0 {
                "no-performance"
            } else {
                "no-performance-now"
            };
            b.wait(
                "the note that performance is not reported",
                &format!("document.getElementById('{note}')"),
            )
            .await?;
            let text = b.text(&format!("#{note}")).await?;
            ensure!(
                text.contains("not reported") || text.contains("no performance"),
                "the note says {text:?}"
            );
        }
    }
    let errors = b
        .js(
            "return [...document.querySelectorAll('#main .error-box')].map((e) => e.textContent)",
            vec![],
        )
        .await?;
    ensure!(errors == json!([]), "the page shows errors: {errors}");

    // Capacity per pool: its bar and its history chart, ending at the served value.
    for (pool, used, total) in &e.pools {
        let shown = b
            .js(
                "const p = document.querySelector(`#sys-pools .pool[data-pool=\"${arguments[0]}\"]`);\
                 if (!p) return null;\
                 const g = p.querySelector('g.series-group[data-label=\"Used\"]');\
                 return {used: p.dataset.used, total: p.dataset.total, history: p.dataset.history,\
                         bar: p.querySelector('.bar') !== null, text: p.querySelector('.cap-text').textContent,\
                         last: g && g.dataset.last, points: g && g.dataset.points}",
                vec![json!(pool)],
            )
            .await?;
        ensure!(!shown.is_null(), "no pool {pool} on the page");
        ensure!(
            attr_num(&shown["used"]) == Some(*used as f64)
                && attr_num(&shown["total"]) == Some(*total as f64),
            "{pool}: the page shows {shown}, the simulator serves {used} of {total}"
        );
        ensure!(
            shown["bar"] == true && attr_num(&shown["last"]) == Some(*used as f64),
            "{pool}: bar and chart {shown}"
        );
        ensure!(
            attr_num(&shown["history"]).unwrap_or(0.0) >= 1.0
                && attr_num(&shown["points"]).unwrap_or(0.0) >= 1.0,
            "{pool}: the history chart has no points: {shown}"
        );
    }

    // Provisioned capacity.
    if let Some(p) = e.provisioned {
        let shown = b
            .js(
                "const p = document.getElementById('provisioned'); return p && p.dataset.bytes",
                vec![],
            )
            .await?;
        ensure!(
            attr_num(&shown) == Some(p as f64),
            "provisioned: the page shows {shown}, the simulator serves {p}"
        );
    }

    // Topology: cluster type, sites, nodes, partners.
    let topo = b
        .js(
            "const cell = (r, c) => { const e = r.querySelector(c); return e ? e.textContent.trim() : null; };\
             return {type: document.getElementById('topo-cluster-type').dataset.value,\
                     sites: document.getElementById('topo-sites').textContent,\
                     nodes: [...document.querySelectorAll('#sys-topology .nodes-table tbody tr')].map((r) =>\
                       [r.dataset.node, cell(r, '.n-model'), cell(r, '.n-serial'), cell(r, '.n-state'), cell(r, '.n-version')]),\
                     partners: [...document.querySelectorAll('#sys-topology .partners-table tbody tr')].map((r) =>\
                       [r.dataset.partner, r.dataset.kind, cell(r, '.p-state')])}",
            vec![],
        )
        .await?;
    ensure!(topo["type"] == e.cluster_type, "cluster type: {topo}");
    ensure!(
        topo["sites"] == json!(e.site_count.to_string()),
        "sites: {topo}, expected {}",
        e.site_count
    );
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let nodes = topo["nodes"].as_array().cloned().unwrap_or_default();
    ensure!(
        nodes.len() == e.nodes.len(),
        "nodes: {topo}, expected {:?}",
        e.nodes
    );
    for (row, want) in nodes.iter().zip(&e.nodes) {
        for (i, w) in want.iter().enumerate() {
            // The version (index 4) is compared only where the vendor reports it as is.
            if i == 4 && w.is_none() {
                continue;
            }
            ensure!(row[i] == json!(dash(w)), "node {row}: expected {want:?}");
        }
    }
    let partners = topo["partners"].as_array().cloned().unwrap_or_default();
    let want: Vec<Value> = e
        .partners
        .iter()
        .map(|(n, k, s)| json!([n, k, dash(s)]))
        .collect();
    ensure!(
        partners == want,
        "partners: {partners:?}, expected {want:?}"
    );

    // Network: the management addresses, the DNS names the collector found, the link out.
    let net = b
        .js(
            "const a = document.getElementById('mgmt-link');\
             return {addresses: [...document.querySelectorAll('#mgmt-addresses [data-address]')].map((l) => l.dataset.address),\
                     dns: [...document.querySelectorAll('#dns-names [data-dns]')].map((l) => l.dataset.dns),\
                     link: a && [a.getAttribute('href'), a.target, a.rel],\
                     inline: [...document.querySelectorAll('#sys-network a.mgmt-url')].map((l) => [l.getAttribute('href'), l.target, l.rel])}",
            vec![],
        )
        .await?;
    ensure!(
        net["addresses"] == json!(e.addresses),
        "management addresses: {net}, expected {:?}",
        e.addresses
    );
    ensure!(
        net["dns"] == json!(dns),
        "DNS names: {net}, the API has {dns:?}"
    );
    for link in [&net["link"], &net["inline"][0]] {
        ensure!(
            link[0] == json!(e.web_ui)
                && link[1] == "_blank"
                && link[2]
                    .as_str()
                    .is_some_and(|r| r.split(' ').any(|w| w == "noopener")),
            "the web UI link: {link}, expected {} in a new tab with rel=noopener",
            e.web_ui
        );
    }
    Ok(())
}

/// The fleet's cluster-type filter: each type narrows the list to exactly its systems, lands
/// in the address, and a shared address opens filtered.
async fn fleet_filter(b: &Browser, api: &str, expected: &[Expected]) -> anyhow::Result<()> {
    let shown_ids = "[...document.querySelectorAll('#fleet-body [data-system-id]')].map((c) => c.dataset.systemId).sort()";
    b.goto(&format!("{api}/")).await?;
    b.wait(
        "every system with its cluster type",
        &format!(
            "document.querySelectorAll('#fleet-body [data-system-id]').length === {} && \
             [...document.querySelectorAll('#fleet-body [data-system-id] .ct [data-value]')].every((c) => c.dataset.value)",
            expected.len()
        ),
    )
    .await?;
    let badges = b
        .js(
            "return Object.fromEntries([...document.querySelectorAll('#fleet-body [data-system-id]')].map((c) => [c.dataset.systemId, c.querySelector('.ct [data-value]').dataset.value]))",
            vec![],
        )
        .await?;
    for e in expected {
        ensure!(
            badges[&e.id] == e.cluster_type,
            "{}'s card shows cluster type {}, the simulator says {}",
            e.id,
            badges[&e.id],
            e.cluster_type
        );
    }
    let types: BTreeSet<&str> = expected.iter().map(|e| e.cluster_type).collect();
    ensure!(
        types.len() >= 2,
        "the fleet has one cluster type only ({types:?}): the filter would not narrow it"
    );
    for t in &types {
        let want: Vec<&str> = expected
            .iter()
            .filter(|e| e.cluster_type == *t)
            .map(|e| e.id.as_str())
            .collect();
        b.choose("#f-cluster_type", t).await?;
        b.wait(
            &format!("the {t} systems only"),
            &format!(
                "JSON.stringify({shown_ids}) === '{}' && location.hash.includes('cluster_type={t}')",
                json!(want)
            ),
        )
        .await?;
    }
    // A type no system has: nothing.
    b.choose("#f-cluster_type", "single-site").await?;
    b.wait(
        "no single-site systems",
        "document.getElementById('no-systems') !== null",
    )
    .await?;
    // The address keeps the filter: opened afresh, in the table view, it shows the same.
    let t = expected[0].cluster_type;
    b.goto(&format!("{api}/#/?cluster_type={t}")).await?;
    b.js("location.reload()", vec![]).await?;
    let want: Vec<&str> = expected
        .iter()
        .filter(|e| e.cluster_type == t)
        .map(|e| e.id.as_str())
        .collect();
    b.wait(
        "the shared filtered address",
        &format!(
            "document.getElementById('f-cluster_type').value === '{t}' && JSON.stringify({shown_ids}) === '{}'",
            json!(want)
        ),
    )
    .await?;
    b.click("button[data-view=\"table\"]").await?;
    b.wait(
        "the cluster type column",
        &format!(
            "[...document.querySelectorAll('#fleet-body tr[data-system-id] td.ct [data-value]')].map((c) => c.dataset.value).join() === '{}'",
            want.iter().map(|_| t).collect::<Vec<_>>().join(",")
        ),
    )
    .await?;
    b.click("button[data-view=\"cards\"]").await?;
    b.choose("#f-cluster_type", "").await?;
    b.wait(
        "every system again",
        &format!(
            "document.querySelectorAll('#fleet-body [data-system-id]').length === {} && !location.hash.includes('cluster_type')",
            expected.len()
        ),
    )
    .await?;
    Ok(())
}
