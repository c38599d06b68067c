//! freshness and api-latency.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{Incoming, Store};
use tokio::sync::watch;

use super::writer::{
    RunningWriter, backend_name, bench_envelope, event_envelope, jetstream, snapshot_record,
};
use super::{AckWindow, Options, Report, Row, http_client, percentile};

/// The API in this process, on a free port, until dropped.
pub(super) struct RunningApi {
    pub(super) addr: SocketAddr,
    stop: sdash_service::Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl RunningApi {
    /// Starts the API as the binary would by default (a 250 ms fleet-list cache, 4 connections).
    pub(super) async fn start(database_url: &str) -> anyhow::Result<RunningApi> {
        RunningApi::start_with(database_url, |_| {}).await
    }

    /// Starts the API with the binary's defaults changed by `tweak`.
    async fn start_with(
        database_url: &str,
        tweak: impl FnOnce(&mut sdash_api::Config),
    ) -> anyhow::Result<RunningApi> {
        let mut config = sdash_api::Config::new(database_url);
        config.list_cache = Duration::from_millis(250);
        tweak(&mut config);
        let stop = sdash_service::Shutdown::new();
        let mut attempt = 0;
        loop {
            match sdash_api::spawn_with_shutdown(config.clone(), stop.clone()).await {
                Ok((addr, task)) => return Ok(RunningApi { addr, stop, task }),
                Err(e) if attempt < 100 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "api not up yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// Background load: `rate` events/s over 1000 systems, with `Nats-Msg-Id`, at most 2000 acks
/// outstanding, until `stop`. Returns the events acknowledged.
async fn background(
    js: jetstream::Context,
    rate: f64,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut acks = AckWindow::new(2000);
    let run = format!("{:x}", now_ms());
    while !*stop.borrow() {
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due {
            let system = format!("load-{:04}", sent % 1000);
            let id = format!("load-{run}-{sent:09}");
            let env = event_envelope(&system, id.clone(), now_ms(), sent as usize);
            acks.publish(&js, Kind::Event.subject(&system), &id, encode(&env)?.into())
                .await?;
            sent += 1;
            acks.settle().await?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acks.finish().await?;
    Ok(sent)
}

/// One prober: publishes a snapshot of its own system observed now, then polls the system's
/// detail until it shows that `observed_at`; the latencies in ms and the probes that timed out.
pub(super) async fn prober(
    js: jetstream::Context,
    client: reqwest::Client,
    url: String,
    system: String,
    until: Instant,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let mut latencies = Vec::new();
    let mut timeouts = 0;
    let mut last = 0i64;
    let mut k = 0usize;
    while Instant::now() < until {
        let observed = now_ms().max(last + 1);
        last = observed;
        let env = bench_envelope(
            &system,
            format!("fresh-{system}-{observed}"),
            observed,
            snapshot_record(k, k),
        );
        k += 1;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", env.event_id.as_str());
        js.publish_with_headers(
            Kind::Snapshot.subject(&system),
            headers,
            encode(&env)?.into(),
        )
        .await?
        .await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = false;
        while Instant::now() < deadline {
            let resp = client.get(&url).send().await;
            if let Ok(r) = resp
                && r.status().is_success()
                && let Ok(v) = r.json::<serde_json::Value>().await
                && v.get("last_poll_at_ms").and_then(|x| x.as_i64()) >= Some(observed)
            {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if seen {
            latencies.push((now_ms() - observed) as f64);
        } else {
            timeouts += 1;
        }
        // Probes at a few per second each, spread.
        tokio::time::sleep(Duration::from_millis(50 + (k as u64 * 37) % 100)).await;
    }
    Ok((latencies, timeouts))
}

/// Four probers (systems `fresh-0` to `fresh-3`) until `until`; their latencies in ms and the
/// probes that timed out.
pub(super) async fn probers(
    js: &jetstream::Context,
    client: &reqwest::Client,
    api: &RunningApi,
    until: Instant,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let probes: Vec<_> = (0..4)
        .map(|p| {
            let system = format!("fresh-{p}");
            tokio::spawn(prober(
                js.clone(),
                client.clone(),
                api.url(&format!("/api/v1/systems/{system}")),
                system,
                until,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut timeouts = 0;
    for p in probes {
        let (s, t) = p.await??;
        samples.extend(s);
        timeouts += t;
    }
    Ok((samples, timeouts))
}

pub(crate) async fn freshness(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let levels: &[f64] = if options.quick {
        &[0.0, 200.0]
    } else {
        &[0.0, 1000.0, 10_000.0]
    };
    let per_level = options
        .duration
        .unwrap_or(Duration::from_secs(if options.quick { 3 } else { 20 }));
    let client = http_client()?;
    for backend in options.backends_or(&[Backend::Sqlite]) {
        let nats = NatsServer::start();
        let js = jetstream(&nats.url()).await?;
        let db = TestDatabase::new(backend).await;
        Store::open(&db.url).await?.close().await;
        let writer = RunningWriter::start(&nats.url(), &db.url);
        let api = RunningApi::start(&db.url).await?;
        let mut idle_p99 = None;
        let mut published_total = 0u64;
        for &rate in levels {
            let case = format!("{} at {} events/s", backend_name(backend), rate);
            println!("-- {case}");
            let committed_before = writer
                .metric(&client, "sdash_writer_messages_total")
                .await
                .unwrap_or(0.0);
            let (stop_tx, stop_rx) = watch::channel(false);
            let load = (rate > 0.0).then(|| tokio::spawn(background(js.clone(), rate, stop_rx)));
            // Let the load settle before probing.
            if rate > 0.0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let started = Instant::now();
            let (mut samples, timeouts) = probers(&js, &client, &api, started + per_level).await?;
            let secs = started.elapsed().as_secs_f64() + if rate > 0.0 { 1.0 } else { 0.0 };
            let _ = stop_tx.send(true);
            let sent = match load {
                Some(t) => t.await??,
                None => 0,
            };
            published_total += sent;
            let committed_after = writer
                .metric(&client, "sdash_writer_messages_total")
                .await
                .unwrap_or(0.0);
            let n = samples.len();
            let p50 = percentile(&mut samples, 50.0);
            let p90 = percentile(&mut samples, 90.0);
            let p99 = percentile(&mut samples, 99.0);
            let max = percentile(&mut samples, 100.0);
            let baseline = *idle_p99.get_or_insert(p99);
            report.push(Row::new(&case, "freshness p50", p50, "ms"));
            report.push(Row::new(&case, "freshness p90", p90, "ms"));
            report.push(Row::new(&case, "freshness max", max, "ms"));
            report.push(
                Row::new(&case, "freshness p99", p99, "ms")
                    .vs("p99 without background load", baseline)
                    .target("< 1000 ms", p99 < 1000.0 && n > 0 && timeouts == 0),
            );
            report.push(
                Row::new(&case, "probes (timeouts)", n as f64, "")
                    .vs("timed out (10 s)", timeouts as f64),
            );
            if rate > 0.0 {
                report.push(
                    Row::new(
                        &case,
                        "background load achieved",
                        sent as f64 / secs,
                        "events/s",
                    )
                    .vs("asked", rate),
                );
                report.push(Row::new(
                    &case,
                    "writer commits during level",
                    (committed_after - committed_before) / secs,
                    "msg/s",
                ));
            }
        }
        // Every background event ends up stored (no loss under load).
        let probes_and_load = published_total;
        let stored = super::writer::count(&db, "SELECT COUNT(*) FROM events").await?;
        let drained = sdash_harness::wait_for(Duration::from_secs(120), || async {
            let c = super::writer::count(&db, "SELECT COUNT(*) FROM events")
                .await
                .ok()?;
            (c as u64 >= probes_and_load).then_some(c)
        })
        .await;
        let stored = drained.unwrap_or(stored);
        report.push(
            Row::new(
                &format!("{} all levels", backend_name(backend)),
                "background events stored",
                stored as f64,
                "",
            )
            .vs("published", probes_and_load as f64)
            .target("all stored", stored as u64 == probes_and_load),
        );
        drop(api);
        writer.stop().await?;
    }
    report.note(
        "A probe publishes a snapshot observed now (the poll's completion) and polls GET /api/v1/systems/{id} \
         every 5 ms until last_poll_at_ms shows it; latency = visible - observed_at. Four probers, a few probes/s each, \
         next to background events over 1000 systems. The writer runs with its defaults (batch 1000 / 100 ms).",
    );
    Ok(())
}

fn seed_messages(first: usize, n: usize, seq: &mut u64) -> anyhow::Result<Vec<Incoming>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(2 * n);
    for s in first..first + n {
        let system = format!("arr-{s:05}");
        let vendor = Vendor::ALL[s % 4];
        let record = SystemRecord {
            name: format!("Array {s:05}"),
            vendor,
            address: format!("https://arr-{s:05}.example.net"),
            tags: BTreeMap::from([
                (
                    "environment".to_owned(),
                    if s % 3 == 0 { "production" } else { "test" }.to_owned(),
                ),
                ("department".to_owned(), format!("dept-{}", s % 7)),
            ]),
            interval_s: 60,
            enabled: true,
            removed: false,
        };
        let mut snap = snapshot_record(s, 0);
        snap.vendor = vendor;
        let sys_env = Envelope {
            schema: SCHEMA_VERSION,
            event_id: format!("seed-sys-{s}"),
            collector_id: "bench-collector".into(),
            system_id: system.clone(),
            observed_at: now - 1000,
            body: record,
        };
        let snap_env = Envelope {
            schema: SCHEMA_VERSION,
            event_id: format!("seed-snap-{s}"),
            collector_id: "bench-collector".into(),
            system_id: system.clone(),
            observed_at: now,
            body: snap,
        };
        for (subject, payload) in [
            (Kind::System.subject(&system), encode(&sys_env)?),
            (Kind::Snapshot.subject(&system), encode(&snap_env)?),
        ] {
            *seq += 1;
            out.push(Incoming {
                stream_seq: *seq,
                subject,
                payload,
                deliveries: 1,
            });
        }
    }
    Ok(out)
}

/// Writes `systems` systems (`arr-00000`, ...) with one snapshot each through the writer's store.
pub(super) async fn seed_fleet(
    store: &Store,
    backend: Backend,
    systems: usize,
    seq: &mut u64,
) -> anyhow::Result<()> {
    seed_fleet_range(store, backend, 0..systems, seq).await
}

/// Writes the systems `range` (`arr-00000`, ...) with one snapshot each through the writer's store.
pub(super) async fn seed_fleet_range(
    store: &Store,
    backend: Backend,
    range: std::ops::Range<usize>,
    seq: &mut u64,
) -> anyhow::Result<()> {
    let seeding = Instant::now();
    for first in range.clone().step_by(500) {
        let batch = seed_messages(first, 500.min(range.end - first), seq)?;
        store.write_batch(&batch).await.context("seeding")?;
    }
    println!(
        "-- {}: seeded {} systems in {:.1} s",
        backend_name(backend),
        range.len(),
        seeding.elapsed().as_secs_f64()
    );
    Ok(())
}

/// 64 clients on `paths` (chosen per request) for `duration`; latencies in ms and errors.
pub(super) async fn hammer(
    client: &reqwest::Client,
    base: &str,
    paths: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let until = Instant::now() + duration;
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, paths, next) =
                (client.clone(), base.to_owned(), paths.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919) as usize
                        % paths.len().max(1);
                    let url = format!(
                        "{base}{}",
                        paths.get(i).map(String::as_str).unwrap_or("/healthz")
                    );
                    let t = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok((all, errors))
}

pub(crate) async fn latency(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let systems = options
        .systems
        .unwrap_or(if options.quick { 500 } else { 10_000 });
    let per_endpoint = options
        .duration
        .unwrap_or(Duration::from_secs(if options.quick { 1 } else { 15 }));
    let rounds = if options.quick { 1 } else { 3 };
    let clients = 64;
    let client = http_client()?;
    for backend in options.backends_or(&[Backend::Sqlite]) {
        let db = TestDatabase::new(backend).await;
        let store = Store::open(&db.url).await?;
        seed_fleet(&store, backend, systems, &mut 0).await?;
        store.close().await;
        let api = RunningApi::start(&db.url).await?;
        let base = format!("http://{}", api.addr);
        // Sanity: the list answers with a page of systems.
        let body = client
            .get(api.url("/api/v1/systems"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let page_len = page
            .get("items")
            .and_then(|i| i.as_array())
            .map(Vec::len)
            .unwrap_or(0);
        anyhow::ensure!(page_len > 0, "the system list is empty after seeding");

        let endpoints: [(&str, Vec<String>); 3] = [
            ("GET /healthz (static)", vec!["/healthz".to_owned()]),
            (
                "GET /api/v1/systems (default page)",
                vec!["/api/v1/systems".to_owned()],
            ),
            (
                "GET /api/v1/systems/{id}",
                (0..systems)
                    .map(|s| format!("/api/v1/systems/arr-{s:05}"))
                    .collect(),
            ),
        ];
        let mut results: Vec<(Vec<f64>, u64, f64)> = vec![(Vec::new(), 0, 0.0); endpoints.len()];
        for _ in 0..rounds {
            for (i, (_, paths)) in endpoints.iter().enumerate() {
                let t = Instant::now();
                let (lat, errors) = hammer(
                    &client,
                    &base,
                    Arc::new(paths.clone()),
                    clients,
                    per_endpoint / rounds,
                )
                .await?;
                results[i].0.extend(lat);
                results[i].1 += errors;
                results[i].2 += t.elapsed().as_secs_f64();
            }
        }
        let case = |name: &str| {
            format!(
                "{} {systems} systems, {clients} clients: {name}",
                backend_name(backend)
            )
        };
        let mut healthz = results[0].0.clone();
        let base_p50 = percentile(&mut healthz, 50.0);
        let base_p99 = percentile(&mut healthz, 99.0);
        for (i, (name, _)) in endpoints.iter().enumerate() {
            let (lat, errors, secs) = &mut results[i];
            let n = lat.len();
            let p50 = percentile(lat, 50.0);
            let p99 = percentile(lat, 99.0);
            let c = case(name);
            let mut p99_row = Row::new(&c, "p99", p99, "ms").vs("/healthz p99", base_p99);
            let mut p50_row = Row::new(&c, "p50", p50, "ms").vs("/healthz p50", base_p50);
            if i > 0 {
                p99_row = p99_row.target("< 50 ms", p99 < 50.0 && *errors == 0 && n > 0);
            } else {
                p50_row.baseline = None;
                p50_row.baseline_value = None;
                p50_row.ratio = None;
                p99_row.baseline = None;
                p99_row.baseline_value = None;
                p99_row.ratio = None;
            }
            report.push(p50_row);
            report.push(p99_row);
            report.push(Row::new(
                &c,
                "requests/s",
                n as f64 / secs.max(1e-9),
                "req/s",
            ));
            report.push(Row::new(&c, "errors", *errors as f64, "").target("= 0", *errors == 0));
        }
        report.push(Row::new(
            &case("list"),
            "default page size",
            page_len as f64,
            "items",
        ));
        report.push(Row::new(
            &case("list"),
            "default page bytes",
            body.len() as f64,
            "bytes",
        ));
        drop(api);
    }
    report.note(
        "Clients, server and database share the machine's cores; /healthz (no database) measured by the same \
         server in the same run, interleaved in rounds with the other endpoints, is the baseline that cancels that out. \
         The API runs with the binary's defaults (4 database connections, 250 ms fleet-list cache).",
    );
    Ok(())
}

/// One GET read to the end: its latency in ms and its body size, or `None` on any failure.
async fn timed_get(client: &reqwest::Client, url: &str) -> Option<(f64, usize)> {
    let t = Instant::now();
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.bytes().await.ok()?;
    Some((t.elapsed().as_secs_f64() * 1000.0, body.len()))
}

pub(crate) async fn metrics_scrape(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let systems = options
        .systems
        .unwrap_or(if options.quick { 500 } else { 10_000 });
    let per_case = options
        .duration
        .unwrap_or(Duration::from_secs(if options.quick { 1 } else { 20 }));
    let client = http_client()?;
    for backend in options.backends_or(&[Backend::Sqlite]) {
        let db = TestDatabase::new(backend).await;
        let store = Store::open(&db.url).await?;
        let mut seq = 0;
        seed_fleet(&store, backend, systems, &mut seq).await?;
        // Reloaded after every commit (no 250 ms floor), so each "after a commit" request pays
        // for the reload and, for the metrics, the alert count and the render.
        let api = RunningApi::start_with(&db.url, |c| {
            c.list_cache = Duration::ZERO;
            c.metrics_tag_labels = vec!["environment".into(), "department".into()];
        })
        .await?;
        let metrics_url = api.url("/metrics/fleet");
        let list_url = api.url("/api/v1/systems");
        let (_, body_bytes) = timed_get(&client, &metrics_url)
            .await
            .context("GET /metrics/fleet")?;
        let series = client
            .get(&metrics_url)
            .send()
            .await?
            .text()
            .await?
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        // Warm: one scraper (as Prometheus scrapes a target), the fleet unchanged.
        let mut warm: [(Vec<f64>, u64); 2] = Default::default();
        let until = Instant::now() + per_case;
        while Instant::now() < until || warm[0].0.len() < 5 {
            for (i, url) in [&metrics_url, &list_url].into_iter().enumerate() {
                match timed_get(&client, url).await {
                    Some((ms, _)) => warm[i].0.push(ms),
                    None => warm[i].1 += 1,
                }
            }
        }
        // After a commit: one snapshot of one system written, then the request.
        let mut fresh: [(Vec<f64>, u64); 2] = Default::default();
        let until = Instant::now() + per_case;
        let mut k = 1;
        while Instant::now() < until || fresh[0].0.len() < 5 {
            for (i, url) in [&metrics_url, &list_url].into_iter().enumerate() {
                let env = Envelope {
                    schema: SCHEMA_VERSION,
                    event_id: format!("scrape-{k}"),
                    collector_id: "bench-collector".into(),
                    system_id: "arr-00000".into(),
                    observed_at: now_ms() + k as i64,
                    body: snapshot_record(0, k),
                };
                k += 1;
                seq += 1;
                store
                    .write_batch(&[Incoming {
                        stream_seq: seq,
                        subject: Kind::Snapshot.subject("arr-00000"),
                        payload: encode(&env)?,
                        deliveries: 1,
                    }])
                    .await
                    .context("commit between requests")?;
                match timed_get(&client, url).await {
                    Some((ms, _)) => fresh[i].0.push(ms),
                    None => fresh[i].1 += 1,
                }
            }
        }
        store.close().await;
        let case = |name: &str| format!("{} {systems} systems: {name}", backend_name(backend));
        for (label, results) in [("warm", &mut warm), ("after a commit", &mut fresh)] {
            let [(scrapes, scrape_errors), (lists, list_errors)] = results;
            let n = scrapes.len();
            let errors = *scrape_errors + *list_errors;
            let list_p50 = percentile(lists, 50.0);
            let list_p99 = percentile(lists, 99.0);
            let c = case(&format!("GET /metrics/fleet, {label}"));
            report.push(
                Row::new(&c, "p50", percentile(scrapes, 50.0), "ms")
                    .vs("fleet list JSON p50", list_p50),
            );
            report.push(
                Row::new(&c, "p99", percentile(scrapes, 99.0), "ms")
                    .vs("fleet list JSON p99", list_p99)
                    .target(
                        "< 250 ms",
                        percentile(scrapes, 99.0) < 250.0 && errors == 0 && n > 0,
                    ),
            );
            report.push(Row::new(&c, "scrapes", n as f64, ""));
            report.push(Row::new(&c, "errors", errors as f64, "").target("= 0", errors == 0));
        }
        let c = case("GET /metrics/fleet");
        report.push(Row::new(&c, "body size", body_bytes as f64, "bytes"));
        report.push(
            Row::new(
                &c,
                "body bytes per system",
                body_bytes as f64 / systems as f64,
                "bytes",
            )
            .vs("series per system", series as f64 / systems as f64),
        );
        drop(api);
    }
    report.note(
        "One scraper, like Prometheus on one target, alternating /metrics/fleet with the fleet-list JSON \
         (GET /api/v1/systems, default page) of the same server as the baseline. Warm: the fleet unchanged, so the \
         metrics text is the one rendered for the loaded fleet plus the per-scrape age family. After a commit: one \
         snapshot is written before each request and the API reloads after every commit (--list-cache-ms 0); the \
         list waits for the reload, a scrape starts the reload (fleet, open-alert count, render) and waits for it at \
         most 100 ms, then serves the fleet loaded before (the next scrape gets the new one). Tag labels: \
         environment, department.",
    );
    Ok(())
}
