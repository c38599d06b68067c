//! Browser tests of the web dashboard, against a live pipeline: a real nats-server, the real
//! writer (`sdash_writer::run`) on SQLite and the real API (`sdash_api::spawn`) with its live
//! stream. Records are published to JetStream the way a collector publishes them (MessagePack,
//! `Nats-Msg-Id`, awaited acks), including back-dated snapshots so the capacity history spans two
//! years.
//!
//! Headless Chromium is driven through chromedriver's W3C WebDriver HTTP API with the small client
//! in `sdash_testkit::webdriver`. When `chromium`/`chromedriver` are missing the test installs Debian's packages
//! (as root); when that is not possible it FAILS with the reason (it never skips).
//!
//! The tests check what a person sees on every page, write light and dark screenshots of each page
//! (to `target/screenshots/`, or `docs/screenshots/` with `SDASH_UPDATE_SCREENSHOTS=1`), and assert that no request left 127.0.0.1 while the pages were used
//! (Chrome's performance log).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_service::bus::{NatsArgs, StreamArgs};
use sdash_testkit::webdriver::{
    Browser, Tools, ensure_chromium, get_json, is_local, requested_urls, screenshot_dir,
    start_driver,
};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;
const TIB: u64 = 1 << 40;

// ------------------------------------------------------------------------------------------------
// The pipeline: nats-server, the writer, the API (in a runtime of its own, so stopping it closes
// every connection, the live stream included)

struct Api {
    addr: SocketAddr,
    /// The database and NATS URLs it serves.
    urls: (String, String),
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    fn start(database_url: &str, nats_url: &str, token: Option<&str>) -> anyhow::Result<Api> {
        let mut config = sdash_api::Config::new(database_url);
        config.nats = Some(NatsArgs::plain(nats_url));
        config.auth_token = token.map(str::to_owned);
        let urls = (database_url.to_owned(), nats_url.to_owned());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = addr_tx.send(Err(anyhow!("runtime: {e}")));
                    return;
                }
            };
            match rt.block_on(sdash_api::spawn(config)) {
                Ok((addr, _task)) => {
                    let _ = addr_tx.send(Ok(addr));
                }
                Err(e) => {
                    let _ = addr_tx.send(Err(e));
                    return;
                }
            }
            let _ = stop_rx.recv();
            // Dropping the runtime drops the server and every connection task.
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        let addr = addr_rx
            .recv()
            .map_err(|_| anyhow!("the API thread died"))??;
        Ok(Api {
            addr,
            urls,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Publishes records the way a collector does.
struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    async fn connect(url: &str) -> anyhow::Result<Publisher> {
        let client = async_nats::connect(url).await?;
        let js = jetstream::new(client);
        sdash_service::bus::ensure_stream(&js, &StreamArgs::default()).await?;
        Ok(Publisher { js })
    }

    async fn send<T: serde::Serialize>(
        &self,
        kind: Kind,
        system: &str,
        at: i64,
        body: T,
    ) -> anyhow::Result<()> {
        let env = Envelope {
            schema: SCHEMA_VERSION,
            event_id: new_event_id(),
            collector_id: "dashboard-test".into(),
            system_id: system.into(),
            observed_at: at,
            body,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", env.event_id.as_str());
        let ack = self
            .js
            .publish_with_headers(kind.subject(system), headers, encode(&env)?.into())
            .await?;
        ack.await
            .map_err(|e| anyhow!("no PubAck for {system}: {e}"))?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// The fleet

struct Sys {
    id: &'static str,
    name: &'static str,
    vendor: Vendor,
    tags: &'static [(&'static str, &'static str)],
    status: Status,
    hardware: Health,
    /// Total TiB and used fraction now; `None` when the poll gets no capacity.
    capacity: Option<(u64, f64)>,
    /// Used-fraction growth per day (for the history).
    growth: f64,
    /// Days of daily history, and of weekly history before that.
    daily_days: i64,
    weekly_days: i64,
    alerts: &'static [(&'static str, Severity, &'static str, &'static str)],
    error: Option<&'static str>,
}

const FLEET: &[Sys] = &[
    Sys {
        id: "fa-prod-01",
        name: "FlashArray Prod 01",
        vendor: Vendor::Pure,
        tags: &[
            ("environment", "production"),
            ("storage_type", "block"),
            ("department", "apps"),
        ],
        status: Status::Online,
        hardware: Health::Ok,
        capacity: Some((100, 0.62)),
        growth: 0.0006,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[],
        error: None,
    },
    Sys {
        id: "fa-prod-02",
        name: "FlashArray Prod 02",
        vendor: Vendor::Pure,
        tags: &[
            ("environment", "production"),
            ("storage_type", "block"),
            ("department", "finance"),
        ],
        status: Status::Online,
        hardware: Health::Error,
        capacity: Some((50, 0.80)),
        growth: 0.0008,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[
            (
                "psu-1",
                Severity::Critical,
                "Power supply PSU1 failed",
                "ct0.psu1",
            ),
            (
                "rep-7",
                Severity::Warning,
                "Replication lag above threshold",
                "pod-finance",
            ),
        ],
        error: None,
    },
    Sys {
        id: "fa-dev-01",
        name: "FlashArray Dev 01",
        vendor: Vendor::Pure,
        tags: &[
            ("environment", "development"),
            ("storage_type", "block"),
            ("department", "apps"),
        ],
        status: Status::Online,
        hardware: Health::Ok,
        capacity: Some((20, 0.40)),
        growth: 0.0005,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[],
        error: None,
    },
    Sys {
        id: "ontap-cl1",
        name: "ONTAP Cluster 1",
        vendor: Vendor::Ontap,
        tags: &[
            ("environment", "production"),
            ("storage_type", "file"),
            ("department", "finance"),
        ],
        status: Status::Online,
        hardware: Health::Warning,
        capacity: Some((200, 0.93)),
        growth: 0.0008,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[(
            "aggr-1",
            Severity::Warning,
            "Aggregate aggr1 is 93 % full",
            "aggr1",
        )],
        error: None,
    },
    Sys {
        id: "ontap-cl2",
        name: "ONTAP Cluster 2",
        vendor: Vendor::Ontap,
        tags: &[
            ("environment", "test"),
            ("storage_type", "file"),
            ("department", "apps"),
        ],
        status: Status::Online,
        hardware: Health::Ok,
        capacity: Some((80, 0.55)),
        growth: 0.0004,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[],
        error: None,
    },
    Sys {
        id: "sg-grid-01",
        name: "StorageGRID Main",
        vendor: Vendor::Storagegrid,
        tags: &[
            ("environment", "production"),
            ("storage_type", "object"),
            ("department", "media"),
        ],
        status: Status::Online,
        hardware: Health::Ok,
        capacity: Some((500, 0.30)),
        growth: 0.0003,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[],
        error: None,
    },
    Sys {
        id: "sg-grid-02",
        name: "StorageGRID DR",
        vendor: Vendor::Storagegrid,
        tags: &[
            ("environment", "dr"),
            ("storage_type", "object"),
            ("department", "media"),
        ],
        status: Status::Unreachable,
        hardware: Health::Unknown,
        capacity: None,
        growth: 0.0,
        daily_days: 0,
        weekly_days: 0,
        alerts: &[],
        error: Some("connection refused (tcp connect to sg-grid-02:443)"),
    },
    Sys {
        id: "dd-backup-01",
        name: "DataDomain Backup 01",
        vendor: Vendor::Datadomain,
        tags: &[
            ("environment", "production"),
            ("storage_type", "backup"),
            ("department", "it"),
        ],
        status: Status::Online,
        hardware: Health::Ok,
        capacity: Some((300, 0.70)),
        growth: 0.0007,
        daily_days: 100,
        weekly_days: 730,
        alerts: &[],
        error: None,
    },
    Sys {
        id: "dd-backup-02",
        name: "DataDomain Backup 02",
        vendor: Vendor::Datadomain,
        tags: &[
            ("environment", "production"),
            ("storage_type", "backup"),
            ("department", "it"),
        ],
        status: Status::AuthFailed,
        hardware: Health::Unknown,
        capacity: None,
        growth: 0.0,
        daily_days: 0,
        weekly_days: 0,
        alerts: &[],
        error: Some("401 Unauthorized: the credentials were rejected"),
    },
];

fn system_record(s: &Sys) -> SystemRecord {
    SystemRecord {
        name: s.name.into(),
        vendor: s.vendor,
        address: format!("https://{}.example.net", s.id),
        tags: s
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        interval_s: 60,
        enabled: true,
        removed: false,
    }
}

fn capacity(total_tib: u64, fraction: f64) -> Capacity {
    let total = total_tib * TIB;
    let used = ((total as f64) * fraction.clamp(0.0, 1.0)) as u64;
    Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: total - used,
        data_reduction: Some(3.2),
        provisioned_bytes: None,
    }
}

fn snapshot(s: &Sys, days_ago: i64, with_alerts: bool) -> Snapshot {
    let mut snap = Snapshot::failed(
        s.vendor,
        s.status,
        s.error.unwrap_or_default().to_owned(),
        120,
    );
    snap.error = s.error.map(str::to_owned);
    snap.hardware = s.hardware;
    snap.cluster = if s.status == Status::Online {
        Health::Ok
    } else {
        Health::Unknown
    };
    if s.status == Status::Online {
        snap.name = Some(s.name.to_lowercase().replace(' ', "-"));
        snap.version = Some("6.7.3".into());
        snap.model = Some(
            match s.vendor {
                Vendor::Pure => "FA-X70R4",
                Vendor::Ontap => "AFF A400",
                Vendor::Storagegrid => "SG6060",
                Vendor::Datadomain => "DD9400",
            }
            .into(),
        );
        snap.serial = Some(format!("SN-{}", s.id.to_uppercase()));
        snap.capacity = s
            .capacity
            .map(|(t, f)| capacity(t, f - s.growth * days_ago as f64));
        snap.components = vec![
            Component {
                kind: "controller".into(),
                name: "ct0".into(),
                status: Health::Ok,
                detail: None,
            },
            Component {
                kind: "controller".into(),
                name: "ct1".into(),
                status: Health::Ok,
                detail: None,
            },
        ];
        if s.hardware == Health::Error {
            snap.components.push(Component {
                kind: "psu".into(),
                name: "ct0.psu1".into(),
                status: Health::Error,
                detail: Some("failed: no input power".into()),
            });
        }
        if with_alerts {
            snap.alerts = s
                .alerts
                .iter()
                .map(|(id, sev, title, comp)| Alert {
                    id: (*id).into(),
                    severity: *sev,
                    vendor_severity: sev.as_str().into(),
                    title: (*title).into(),
                    component: Some((*comp).into()),
                    opened_at: None,
                })
                .collect();
        }
    }
    snap
}

fn event(level: Level, category: Category, message: &str) -> EventRecord {
    EventRecord {
        level,
        category,
        message: message.into(),
        details: None,
        http_status: None,
        endpoint: None,
    }
}

async fn seed(p: &Publisher) -> anyhow::Result<()> {
    let now = now_ms();
    for s in FLEET {
        p.send(Kind::System, s.id, now - 800 * DAY_MS, system_record(s))
            .await?;
    }
    for s in FLEET {
        // Weekly history first (oldest first), then daily, then the current poll.
        let mut days: Vec<i64> = (1..=s.weekly_days / 7)
            .map(|w| w * 7)
            .filter(|d| *d > s.daily_days)
            .collect();
        days.extend(1..=s.daily_days);
        days.sort_unstable_by(|a, b| b.cmp(a));
        for d in days {
            p.send(
                Kind::Snapshot,
                s.id,
                now - d * DAY_MS,
                snapshot(s, d, d <= 3),
            )
            .await?;
            if s.id == "ontap-cl2" && d == 20 {
                // A cleared alert: open for a day, 20 days ago.
                let mut with = snapshot(s, 20, false);
                with.alerts.push(Alert {
                    id: "takeover-2".into(),
                    severity: Severity::Error,
                    vendor_severity: "error".into(),
                    title: "Node cl2-02 was taken over by its partner".into(),
                    component: Some("cl2-02".into()),
                    opened_at: None,
                });
                p.send(Kind::Snapshot, s.id, now - d * DAY_MS + 3_600_000, with)
                    .await?;
            }
        }
        p.send(Kind::Snapshot, s.id, now - 5_000, snapshot(s, 0, true))
            .await?;
    }
    // Events: 60 routine ones on fa-prod-01 (more than one page), failures on the broken systems.
    for i in 0..60 {
        let mut e = event(
            Level::Info,
            Category::ApiCall,
            &format!("GET /api/2.30/arrays answered in {} ms", 40 + i),
        );
        e.endpoint = Some("/api/2.30/arrays".into());
        e.http_status = Some(200);
        p.send(Kind::Event, "fa-prod-01", now - (i + 10) * 60_000, e)
            .await?;
    }
    for i in 0..6 {
        let mut e = event(Level::Error, Category::Connection, "connection refused");
        e.details = Some("tcp connect to sg-grid-02:443 failed".into());
        p.send(Kind::Event, "sg-grid-02", now - (i * 5 + 1) * 60_000, e)
            .await?;
    }
    for i in 0..4 {
        let mut e = event(
            Level::Error,
            Category::Authentication,
            "login rejected: 401 Unauthorized",
        );
        e.http_status = Some(401);
        e.endpoint = Some("/rest/v1.0/auth".into());
        p.send(Kind::Event, "dd-backup-02", now - (i * 7 + 2) * 60_000, e)
            .await?;
    }
    p.send(
        Kind::Event,
        "fa-prod-02",
        now - 3 * 60_000,
        event(
            Level::Critical,
            Category::Health,
            "hardware health changed from ok to error: ct0.psu1 failed",
        ),
    )
    .await?;
    p.send(
        Kind::Event,
        "ontap-cl1",
        now - 4 * 60_000,
        event(
            Level::Warning,
            Category::Health,
            "hardware health changed from ok to warning",
        ),
    )
    .await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Screenshots and the network log

/// Saves the current page in the light and the dark theme as `<name>-light.png`, `<name>-dark.png`.
async fn screenshots(b: &Browser, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    // The whole page, not only the first screen: grow the window to the page's height (at most 1300 px).
    let size = b
        .js(
            "document.activeElement && document.activeElement.blur(); \
             return [window.outerWidth, window.outerHeight, window.outerHeight - window.innerHeight, \
                     document.documentElement.scrollHeight]",
            vec![],
        )
        .await?;
    let n = |i: usize| size[i].as_u64().unwrap_or(0) as u32;
    let (width, height) = (n(0), n(1));
    let full = (n(3) + n(2)).clamp(height, 1300);
    b.window(width, full).await?;
    for theme in ["light", "dark"] {
        b.js(
            "localStorage.setItem('sdash.theme', arguments[0]); document.documentElement.dataset.theme = arguments[0]; window.scrollTo(0, 0);",
            vec![json!(theme)],
        )
        .await?;
        b.wait(
            "the theme to apply",
            &format!("getComputedStyle(document.documentElement).colorScheme === '{theme}'"),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = b.screenshot().await?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(dir.join(format!("{name}-{theme}.png")), png)?;
    }
    b.js("localStorage.setItem('sdash.theme', 'light'); document.documentElement.dataset.theme = 'light';", vec![])
        .await?;
    b.window(width, height).await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_browser() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tools = ensure_chromium();
    if let Err(e) = run(&tools).await {
        panic!("{e:#}");
    }
}

async fn run(tools: &Tools) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    // The pipeline.
    let nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Sqlite).await;
    let publisher = Publisher::connect(&nats.url()).await?;
    let writer_stop = sdash_service::Shutdown::new();
    let writer = tokio::spawn(sdash_writer::run(
        sdash_writer::WriterConfig::new(&nats.url(), &db.url),
        writer_stop.clone(),
    ));
    seed(&publisher).await?;
    let db_file = db
        .dir()
        .map(|d| d.join("sdash.db"))
        .ok_or_else(|| anyhow!("no SQLite dir"))?;
    sdash_harness::wait_for(Duration::from_secs(30), || {
        let exists = db_file.exists();
        async move { exists.then_some(()) }
    })
    .await
    .ok_or_else(|| anyhow!("the writer did not create {}", db_file.display()))?;
    let mut api = Api::start(&db.url, &nats.url(), None)?;
    let base = api.url("/");
    sdash_harness::wait_for(Duration::from_secs(60), || {
        let (http, url) = (http.clone(), api.url("/api/v1/events?limit=1000"));
        async move {
            let v = get_json(&http, &url).await?;
            (v["items"].as_array()?.len() >= 72).then_some(())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the writer did not store the seeded events within 60 s"))?;
    sdash_harness::wait_for(Duration::from_secs(30), || {
        let (http, url) = (http.clone(), api.url("/api/v1/status"));
        async move {
            let v = get_json(&http, &url).await?;
            v["nats_connected"].as_bool()?.then_some(())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the API's live stream did not connect to NATS"))?;

    // The dashboard's own responses: embedded, strict CSP, nosniff.
    let resp = http.get(&base).send().await?;
    anyhow::ensure!(resp.status().is_success(), "GET / -> {}", resp.status());
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        anyhow::ensure!(csp.contains(part), "CSP {csp:?} lacks {part:?}");
    }
    anyhow::ensure!(
        resp.headers()
            .get("x-content-type-options")
            .is_some_and(|v| v == "nosniff"),
        "no nosniff on /"
    );
    let html = resp.text().await?;
    anyhow::ensure!(
        html.contains("/assets/") && !html.contains("{{VERSION}}"),
        "index.html does not link the assets"
    );

    // The browser.
    let driver = start_driver(tools, &http).await?;
    let b = Browser::open(&driver, tools, &http).await?;
    let mut result = browse(&b, &publisher, &http, &mut api, &base).await;
    if let Err(e) = result {
        // Say what the page showed when it went wrong.
        let page = b
            .js(
                "return location.href + '\\n' + document.body.innerText.slice(0, 2000)",
                vec![],
            )
            .await
            .unwrap_or_default();
        b.save_failure_screenshot().await;
        result = Err(e.context(format!("the page showed:\n{}", page.as_str().unwrap_or(""))));
    }
    b.quit().await;
    drop(driver);
    writer_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    result
}

async fn browse(
    b: &Browser,
    p: &Publisher,
    http: &reqwest::Client,
    api: &mut Api,
    base: &str,
) -> anyhow::Result<()> {
    let mut urls: Vec<String> = Vec::new();
    let page = |hash: &str| format!("{base}#{hash}");

    // Forget what the browser's own start page loaded (chrome:// pages), then count from here.
    b.goto("about:blank").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = requested_urls(b).await?;

    // ---- Fleet overview
    b.goto(base).await?;
    b.wait(
        "nine systems on the fleet page",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 9",
    )
    .await?;
    let groups = b
        .js(
            "return [...document.querySelectorAll('.vendor-group')].map(g => g.dataset.vendor)",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        groups == json!(["pure", "ontap", "storagegrid", "datadomain"]),
        "vendor groups: {groups}"
    );
    let card = |id: &str| format!("#fleet-body [data-system-id=\"{id}\"]");
    anyhow::ensure!(
        b.text(&format!("{} .st", card("sg-grid-02"))).await? == "unreachable",
        "sg-grid-02 status badge"
    );
    anyhow::ensure!(
        b.text(&format!("{} .st", card("dd-backup-02"))).await? == "auth failed",
        "dd-backup-02 status badge"
    );
    anyhow::ensure!(
        b.text(&format!("{} .hw", card("fa-prod-02"))).await? == "error",
        "fa-prod-02 hardware badge"
    );
    anyhow::ensure!(
        b.text(&format!("{} .alerts", card("fa-prod-02"))).await? == "2 open",
        "fa-prod-02 alert count"
    );
    let levels = b
        .js(
            "const l = id => document.querySelector(`#fleet-body [data-system-id=\"${id}\"] .bar`).dataset.level; \
             return [l('fa-prod-01'), l('fa-prod-02'), l('ontap-cl1')]",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        levels == json!(["ok", "warn", "crit"]),
        "capacity bar colours (62 %, 80 %, 93 %): {levels}"
    );
    let cap_text = b.text(&format!("{} .cap-text", card("fa-prod-01"))).await?;
    anyhow::ensure!(
        cap_text.contains("62.0 TiB of 100 TiB"),
        "capacity text in TiB: {cap_text}"
    );
    b.wait(
        "the live marker",
        "document.getElementById('live').dataset.state === 'live'",
    )
    .await?;
    anyhow::ensure!(
        !b.displayed("#stale").await?,
        "the stale marker shows while connected"
    );
    screenshots(b, "fleet").await?;

    // Filters narrow the list and land in the URL.
    b.choose("#f-vendor", "ontap").await?;
    b.wait(
        "two ONTAP systems",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 2",
    )
    .await?;
    anyhow::ensure!(
        b.js("return location.hash", vec![]).await? == json!("#/?vendor=ontap"),
        "vendor filter not in the URL"
    );
    b.choose("#f-vendor", "").await?;
    b.type_text("#f-q", "backup").await?;
    b.wait("the two backup systems", "document.querySelectorAll('#fleet-body [data-system-id]').length === 2 && location.hash.includes('q=backup')").await?;
    b.type_text("#f-q", "").await?;
    // A shared URL opens with its filters applied.
    b.goto(&page("/?tag=environment:production&status=online"))
        .await?;
    b.wait(
        "five online production systems from a shared URL",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 5 && document.getElementById('f-tag').value === 'environment:production'",
    )
    .await?;
    // The table view is remembered.
    b.goto(base).await?;
    b.wait(
        "the fleet",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 9",
    )
    .await?;
    b.click("button[data-view=\"table\"]").await?;
    b.wait(
        "the table view",
        "document.querySelectorAll('#fleet-body tr[data-system-id]').length === 9",
    )
    .await?;
    b.goto(&page("/alerts")).await?;
    b.goto(base).await?;
    b.wait(
        "the table view after a reload",
        "document.querySelectorAll('#fleet-body tr[data-system-id]').length === 9",
    )
    .await?;
    screenshots(b, "fleet-table").await?;
    b.click("button[data-view=\"cards\"]").await?;
    b.wait(
        "the card view",
        "document.querySelectorAll('#fleet-body article[data-system-id]').length === 9",
    )
    .await?;

    // Live: a new snapshot changes a card, a new system appears, without a reload.
    b.wait(
        "the live stream",
        "document.getElementById('live').dataset.state === 'live'",
    )
    .await?;
    b.js("window.__sameDocument = 'yes'", vec![]).await?;
    let dev = FLEET
        .iter()
        .find(|s| s.id == "fa-dev-01")
        .ok_or_else(|| anyhow!("fa-dev-01"))?;
    let mut snap = snapshot(dev, 0, true);
    snap.capacity = Some(capacity(20, 0.95));
    snap.hardware = Health::Warning;
    p.send(Kind::Snapshot, "fa-dev-01", now_ms(), snap).await?;
    b.wait(
        "fa-dev-01 turning red and warning live",
        "(() => { const c = document.querySelector('#fleet-body [data-system-id=\"fa-dev-01\"]'); \
          return c.querySelector('.bar').dataset.level === 'crit' && c.querySelector('.hw').innerText === 'warning'; })()",
    )
    .await?;
    let mut new_sys = Sys { ..*dev };
    new_sys.id = "fa-new-01";
    new_sys.name = "FlashArray New 01";
    p.send(Kind::System, "fa-new-01", now_ms(), system_record(&new_sys))
        .await?;
    p.send(
        Kind::Snapshot,
        "fa-new-01",
        now_ms(),
        snapshot(&new_sys, 0, true),
    )
    .await?;
    b.wait(
        "the new system appearing live",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 10",
    )
    .await?;
    anyhow::ensure!(
        b.js("return window.__sameDocument", vec![]).await? == json!("yes"),
        "the page reloaded"
    );
    urls.extend(requested_urls(b).await?);

    // ---- Alerts
    b.goto(&page("/alerts")).await?;
    b.wait(
        "three open alerts",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 3",
    )
    .await?;
    let first = b
        .js(
            "return document.querySelector('.alerts-table tbody tr').dataset.severity",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        first == json!("critical"),
        "alerts not sorted by severity: first is {first}"
    );
    let psu = b
        .text(".alerts-table tr[data-system=\"fa-prod-02\"][data-severity=\"critical\"]")
        .await?;
    anyhow::ensure!(
        psu.contains("Power supply PSU1 failed")
            && psu.contains("FlashArray Prod 02")
            && psu.contains("ct0.psu1"),
        "PSU alert row: {psu}"
    );
    screenshots(b, "alerts").await?;
    b.click("th[data-col=\"system\"] button").await?;
    b.wait(
        "alerts sorted by system",
        "document.querySelector('.alerts-table tbody tr').dataset.system === 'fa-prod-02' && location.hash.includes('sort=system')",
    )
    .await?;
    b.choose("#f-severity", "critical").await?;
    b.wait(
        "only the critical alert",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 1",
    )
    .await?;
    b.choose("#f-severity", "").await?;
    b.type_text("#f-q", "aggr1").await?;
    b.wait("the text filter", "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 1 && document.querySelector('.alerts-table tr[data-alert-id]').dataset.system === 'ontap-cl1'").await?;
    b.type_text("#f-q", "").await?;
    b.click("button[data-state=\"cleared\"]").await?;
    b.wait(
        "the cleared alert",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 1 && document.querySelector('.alerts-table tr[data-alert-id]').dataset.system === 'ontap-cl2'",
    )
    .await?;
    // A new alert arrives live.
    b.click("button[data-state=\"open\"]").await?;
    b.wait(
        "the open alerts again",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 3",
    )
    .await?;
    let cl2 = FLEET
        .iter()
        .find(|s| s.id == "ontap-cl2")
        .ok_or_else(|| anyhow!("ontap-cl2"))?;
    let mut snap = snapshot(cl2, 0, true);
    snap.alerts.push(Alert {
        id: "shelf-2-fan".into(),
        severity: Severity::Critical,
        vendor_severity: "alert".into(),
        title: "Disk shelf 2: fan 1 failed".into(),
        component: Some("shelf-2".into()),
        opened_at: None,
    });
    p.send(Kind::Snapshot, "ontap-cl2", now_ms(), snap).await?;
    b.wait(
        "the new alert appearing live",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 4 \
         && document.querySelector('.alerts-table tr[data-system=\"ontap-cl2\"][data-severity=\"critical\"]') !== null",
    )
    .await?;
    urls.extend(requested_urls(b).await?);

    // ---- One system
    b.goto(&page("/systems/fa-prod-01")).await?;
    b.wait(
        "the capacity chart with daily points",
        "Number(document.getElementById('capacity-chart').dataset.points) >= 80",
    )
    .await?;
    b.wait(
        "the forecast line",
        "document.querySelector('#capacity-chart path.forecast-line') !== null",
    )
    .await?;
    let full = b.text("#date-full").await?;
    anyhow::ensure!(
        full.len() == 10 && full.starts_with("20"),
        "projected full date: {full:?}"
    );
    anyhow::ensure!(
        b.text("#sys-status").await? == "online",
        "fa-prod-01 status"
    );
    b.wait("fa-prod-01's events", "document.querySelectorAll('#sys-events tr[data-event-id]').length === 50 && document.getElementById('events-more') !== null").await?;
    screenshots(b, "system").await?;
    // Two years of history.
    b.choose("#f-range", "2y").await?;
    b.wait(
        "two years of weekly and daily points",
        "Number(document.getElementById('capacity-chart').dataset.points) >= 170",
    )
    .await?;
    b.goto(&page("/systems/fa-prod-02")).await?;
    b.wait(
        "fa-prod-02's components",
        "document.querySelector('#sys-components tr[data-status=\"error\"]') !== null",
    )
    .await?;
    let comp = b.text("#sys-components tr[data-status=\"error\"]").await?;
    anyhow::ensure!(
        comp.contains("ct0.psu1") && comp.contains("error"),
        "failed PSU row: {comp}"
    );
    b.wait(
        "fa-prod-02's open alerts",
        "document.querySelectorAll('#sys-alerts tr[data-severity]').length === 2",
    )
    .await?;
    b.wait(
        "fa-prod-02's critical event",
        "document.querySelectorAll('#sys-events tr[data-level=\"critical\"]').length === 1",
    )
    .await?;
    screenshots(b, "system-degraded").await?;
    b.goto(&page("/systems/sg-grid-02")).await?;
    b.wait(
        "sg-grid-02's connection errors",
        "document.querySelectorAll('#sys-events tr[data-category=\"connection\"]').length === 6",
    )
    .await?;
    b.choose("#f-category", "authentication").await?;
    b.wait("no authentication events on sg-grid-02", "document.querySelectorAll('#sys-events tr[data-event-id]').length === 0 && location.hash.includes('category=authentication')").await?;
    urls.extend(requested_urls(b).await?);

    // ---- Capacity report
    b.goto(&page("/capacity?group_by=storage_type&range=2y"))
        .await?;
    b.wait(
        "four storage types",
        "document.querySelectorAll('.summary-table tbody tr[data-group]').length === 4",
    )
    .await?;
    b.wait(
        "the history chart with four series",
        "document.getElementById('history-chart').dataset.series === '4'",
    )
    .await?;
    let points = b
        .js(
            "return Number(document.getElementById('history-chart').dataset.points)",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        points.as_f64().unwrap_or(0.0) >= 300.0,
        "history chart points: {points}"
    );
    screenshots(b, "capacity").await?;
    b.choose("#f-group_by", "environment").await?;
    b.wait("environments", "document.querySelectorAll('.summary-table tbody tr[data-group]').length >= 4 && document.querySelector('.summary-table tr[data-group=\"production\"]') !== null").await?;
    b.type_text("#f-custom", "department").await?;
    b.click("#f-custom + button, form.field button[type=submit]")
        .await?;
    b.wait("departments via a custom key", "document.querySelector('.summary-table tr[data-group=\"finance\"]') !== null && location.hash.includes('group_by=department')").await?;
    for link in ["#csv-current", "#csv-history"] {
        let href = b
            .js(
                &format!("return document.querySelector('{link}').href"),
                vec![],
            )
            .await?;
        let href = href
            .as_str()
            .ok_or_else(|| anyhow!("{link} has no href"))?
            .to_owned();
        anyhow::ensure!(
            href.starts_with(base.trim_end_matches('/')),
            "{link} points elsewhere: {href}"
        );
        let resp = http.get(&href).send().await?;
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        anyhow::ensure!(
            resp.status().is_success() && ctype.starts_with("text/csv"),
            "{href}: {} {ctype}",
            resp.status()
        );
    }
    urls.extend(requested_urls(b).await?);

    // ---- Events
    b.goto(&page("/events")).await?;
    b.wait(
        "a page of events",
        "document.querySelectorAll('.events-table tr[data-event-id]').length === 50",
    )
    .await?;
    screenshots(b, "events").await?;
    b.click("#events-older").await?;
    b.wait("the second page", "document.getElementById('events-page').innerText === 'Page 2' && document.querySelectorAll('.events-table tr[data-event-id]').length > 0").await?;
    b.click("#events-newer").await?;
    b.wait(
        "back on the first page",
        "document.getElementById('events-page').innerText === 'Page 1'",
    )
    .await?;
    b.choose("#f-level", "error").await?;
    b.wait("errors and worse only", "document.querySelectorAll('.events-table tr[data-event-id]').length === 11 && [...document.querySelectorAll('.events-table tr[data-event-id]')].every(r => ['error','critical'].includes(r.dataset.level))").await?;
    // A new event arrives live.
    let mut e = event(
        Level::Critical,
        Category::Connection,
        "controller ct1 is unreachable",
    );
    e.details = Some("published by the dashboard test".into());
    p.send(Kind::Event, "fa-prod-01", now_ms(), e).await?;
    b.wait("the live event", "document.querySelectorAll('.events-table tr[data-event-id]').length === 12 && document.querySelector('.events-table tbody tr').innerText.includes('controller ct1 is unreachable')").await?;
    b.type_text("#f-system", "dd-backup-02").await?;
    b.wait("one system's events", "document.querySelectorAll('.events-table tr[data-event-id]').length === 4 && location.hash.includes('system=dd-backup-02')").await?;
    urls.extend(requested_urls(b).await?);

    // ---- A phone
    b.window(390, 844).await?;
    b.goto(base).await?;
    b.wait(
        "the fleet on a phone",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 10",
    )
    .await?;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth > window.innerWidth + 1",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        overflow == json!(false),
        "the fleet page scrolls sideways on a phone"
    );
    screenshots(b, "fleet-phone").await?;
    b.window(1280, 800).await?;

    // ---- Keyboard: the skip link and the navigation are reachable with Tab.
    b.goto(base).await?;
    b.wait(
        "the fleet",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 10",
    )
    .await?;
    b.post(
        "/actions",
        json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]}),
    )
    .await?;
    let focused = b
        .js(
            "return document.activeElement.className + ' ' + document.activeElement.innerText",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        focused.as_str().unwrap_or("").contains("skip"),
        "Tab does not reach the skip link first: {focused}"
    );

    // No request left the machine; no CSP violation, no script error.
    urls.extend(requested_urls(b).await?);
    anyhow::ensure!(
        urls.len() > 20,
        "the performance log recorded only {} requests",
        urls.len()
    );
    let foreign: Vec<&String> = urls.iter().filter(|u| !is_local(u)).collect();
    anyhow::ensure!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?}");
    let problems: Vec<String> = b
        .logs("browser")
        .await?
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .filter(|m| {
            m.contains("Content Security Policy")
                || m.contains("Refused to")
                || m.contains("Uncaught")
        })
        .collect();
    anyhow::ensure!(problems.is_empty(), "browser console: {problems:?}");

    // ---- An API that wants a bearer token: the page asks for it, then shows the fleet.
    {
        let guarded = Api::start(&api.urls.0, &api.urls.1, Some("s3cret-dashboard-token"))?;
        b.goto(&guarded.url("/")).await?;
        b.wait(
            "the token form",
            "document.getElementById('token-form') !== null",
        )
        .await?;
        b.type_text("#token", "s3cret-dashboard-token").await?;
        b.click("#token-form button[type=submit]").await?;
        // The live stream runs with the token too (EventSource sends it as ?access_token=).
        b.wait(
            "the fleet with the token, live",
            "document.querySelectorAll('#fleet-body [data-system-id]').length === 10 \
             && document.getElementById('live-text').innerText === 'Live'",
        )
        .await?;
        b.goto(&guarded.url("/#/alerts")).await?;
        b.wait(
            "the alerts with the token",
            "document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 4",
        )
        .await?;
        // The CSV links work without a header, and only with the token.
        b.goto(&guarded.url("/#/capacity")).await?;
        b.wait(
            "the CSV links with the token",
            "document.querySelector('#csv-current') !== null && document.querySelector('#csv-history') !== null",
        )
        .await?;
        for link in ["#csv-current", "#csv-history"] {
            let href = b
                .js(
                    &format!("return document.querySelector('{link}').href"),
                    vec![],
                )
                .await?;
            let href = href
                .as_str()
                .ok_or_else(|| anyhow!("{link} has no href"))?
                .to_owned();
            anyhow::ensure!(
                href.contains("access_token=s3cret-dashboard-token"),
                "{link} has no token: {href}"
            );
            let resp = http.get(&href).send().await?;
            anyhow::ensure!(resp.status().is_success(), "{href}: {}", resp.status());
            let wrong = href.replace("s3cret-dashboard-token", "wrong");
            let resp = http.get(&wrong).send().await?;
            anyhow::ensure!(resp.status().as_u16() == 401, "{wrong}: {}", resp.status());
        }
        urls.extend(requested_urls(b).await?);
        b.goto(base).await?;
        b.wait(
            "the fleet",
            "document.querySelectorAll('#fleet-body [data-system-id]').length === 10",
        )
        .await?;
    }

    // ---- The API stops: the page says its data may be stale.
    b.wait(
        "the live stream",
        "document.getElementById('live').dataset.state === 'live'",
    )
    .await?;
    anyhow::ensure!(
        !b.displayed("#stale").await?,
        "stale marker before the stop"
    );
    api.stop();
    b.wait_for(
        "the stale-data marker",
        "document.getElementById('stale').hidden === false",
        Duration::from_secs(30),
    )
    .await?;
    anyhow::ensure!(
        b.displayed("#stale").await?,
        "the stale marker is not visible"
    );
    let text = b.text("#stale").await?;
    anyhow::ensure!(
        text.to_lowercase().contains("disconnected") && text.contains("stale"),
        "stale marker text: {text}"
    );
    screenshots(b, "stale").await?;
    let foreign: Vec<String> = requested_urls(b)
        .await?
        .into_iter()
        .filter(|u| !is_local(u))
        .collect();
    anyhow::ensure!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?}");
    Ok(())
}

/// The same dashboard over the simulated arrays of all four vendors, polled by a real collector:
/// the fleet, a degraded array's alert, a capacity chart, and a scenario change arriving live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_over_the_simulated_fleet() {
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    if let Err(e) = simulated(&tools).await {
        panic!("{e:#}");
    }
}

async fn simulated(tools: &Tools) -> anyhow::Result<()> {
    use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
    use sdash_testkit::sim::{Mix, Scenario, SimConfig};

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let sim = SimConfig {
        systems: 12,
        seed: 7,
        mix: Mix(vec![
            (Vendor::Pure, 3),
            (Vendor::Ontap, 3),
            (Vendor::Storagegrid, 3),
            (Vendor::Datadomain, 3),
        ]),
        ..SimConfig::default()
    };
    let pipeline = Pipeline::start(PipelineOptions {
        backend: Backend::Sqlite,
        sim,
        interval: "1s".into(),
        collectors: 1,
    })
    .await?;
    let ids = pipeline.fleet.system_ids();
    anyhow::ensure!(ids.len() == 12, "the simulator runs {} systems", ids.len());
    let degraded = ids[0].clone();
    let filling = ids
        .iter()
        .rev()
        .find(|id| id.contains("ontap"))
        .unwrap_or(&ids[11])
        .clone();
    pipeline.fleet.set_scenario(&degraded, Scenario::Degraded);
    let base = format!("{}/", pipeline.api_url());
    let systems_url = format!(
        "{}/api/v1/systems?limit=100&status=online",
        pipeline.api_url()
    );
    sdash_harness::wait_for(Duration::from_secs(60), || {
        let (http, url) = (http.clone(), systems_url.clone());
        async move {
            let v = get_json(&http, &url).await?;
            (v["items"].as_array()?.len() == 12).then_some(())
        }
    })
    .await
    .ok_or_else(|| {
        anyhow!("the simulated systems did not all come online through the pipeline within 60 s")
    })?;

    let driver = start_driver(tools, &http).await?;
    let b = Browser::open(&driver, tools, &http).await?;
    let result = async {
        b.goto("about:blank").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = requested_urls(&b).await?;
        let mut urls = Vec::new();

        b.goto(&base).await?;
        b.wait("twelve simulated systems", "document.querySelectorAll('#fleet-body [data-system-id]').length === 12").await?;
        let groups = b.js("return [...document.querySelectorAll('.vendor-group')].map(g => g.dataset.vendor)", vec![]).await?;
        anyhow::ensure!(groups == json!(["pure", "ontap", "storagegrid", "datadomain"]), "vendor groups: {groups}");
        b.wait(
            "every card online with a capacity bar",
            "[...document.querySelectorAll('#fleet-body [data-system-id]')].every(c => \
               c.querySelector('.st').innerText === 'online' && c.querySelector('.bar') !== null)",
        )
        .await?;
        b.wait("the live stream", "document.getElementById('live').dataset.state === 'live'").await?;

        // Live: the array fills up; its card turns red without a reload.
        b.js("window.__sameDocument = 'yes'", vec![]).await?;
        pipeline.fleet.set_scenario(&filling, Scenario::NearFull);
        b.wait_for(
            "the filling array's bar turning red live",
            &format!("document.querySelector('#fleet-body [data-system-id=\"{filling}\"] .bar').dataset.level === 'crit'"),
            Duration::from_secs(30),
        )
        .await?;
        anyhow::ensure!(b.js("return window.__sameDocument", vec![]).await? == json!("yes"), "the page reloaded");
        urls.extend(requested_urls(&b).await?);

        // The degraded array's critical alert.
        b.goto(&format!("{base}#/alerts")).await?;
        b.wait_for(
            "the degraded array's critical alert",
            &format!("document.querySelector('.alerts-table tr[data-system=\"{degraded}\"][data-severity=\"critical\"]') !== null"),
            Duration::from_secs(30),
        )
        .await?;
        // A capacity chart with points (raw samples: the history is minutes old).
        b.goto(&format!("{base}#/systems/{degraded}")).await?;
        b.wait("the capacity chart with points", "Number(document.getElementById('capacity-chart').dataset.points) >= 2").await?;
        b.wait("the degraded array's failed component", "document.querySelector('#sys-components tr[data-status=\"error\"]') !== null").await?;
        b.goto(&format!("{base}#/events")).await?;
        b.wait("events from the collector", "document.querySelectorAll('.events-table tr[data-event-id]').length > 0").await?;

        urls.extend(requested_urls(&b).await?);
        let foreign: Vec<&String> = urls.iter().filter(|u| !is_local(u)).collect();
        anyhow::ensure!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?}");
        anyhow::Ok(())
    }
    .await;
    b.quit().await;
    drop(driver);
    pipeline.stop().await;
    result
}
