//! live: live-stream (SSE) clients and fleet-list readers against a seeded fleet while snapshots
//! flow on the bus. The API runs as a process of its own, so that its memory and CPU are its
//! own; the writer stores the snapshots meanwhile, so the fleet list reloads as it would.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase, free_port};
use sdash_proto::subjects::Kind;
use sdash_proto::{encode, now_ms};
use sdash_writer::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::api::{hammer, seed_fleet};
use super::collector::{clock_ticks, metric_sum_where, proc_stats, stop};
use super::writer::{RunningWriter, bench_envelope, jetstream, snapshot_record};
use super::{
    AckWindow, Options, Program, Report, Row, http_client, metric_sum, percentile, proc_kib, scrape,
};

/// The SSE line of the event ids this scenario publishes: `id:live-<n>-<published at, ms>`.
const ID_LINE: &str = "\nid:live-";

/// `sdash-api` as a child process on a free port, until dropped.
struct ApiProcess {
    child: Child,
    pid: u32,
    addr: String,
    log: std::path::PathBuf,
}

impl ApiProcess {
    async fn start(
        program: &Program,
        database_url: &str,
        nats_url: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<ApiProcess> {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("api.log");
        let mut command = Command::new(&program.exe);
        command
            .args(&program.args)
            .arg("--listen")
            .arg(&addr)
            .arg("--database-url")
            .arg(database_url)
            .arg("--nats-url")
            .arg(nats_url)
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.exe.display()))?;
        let pid = child.id().context("sdash-api exited at once")?;
        let mut api = ApiProcess {
            child,
            pid,
            addr,
            log,
        };
        // Up when the live stream answers (NATS connected and subscribed).
        let client = reqwest::Client::new();
        let url = api.url("/api/v1/stream");
        let up = sdash_harness::wait_for(Duration::from_secs(60), || async {
            let resp = client.get(&url).send().await.ok()?;
            (resp.status().as_u16() == 200).then_some(())
        })
        .await;
        if up.is_none() {
            let status = api.child.try_wait()?;
            let log = std::fs::read_to_string(&api.log).unwrap_or_default();
            anyhow::bail!("sdash-api did not serve the stream within 60 s ({status:?}): {log}");
        }
        Ok(api)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| proc_kib(&s, "VmRSS:"))
            .unwrap_or(0) as f64
            / 1024.0
    }
}

/// Snapshots over `systems` systems at `rate`/s through JetStream (as collectors publish them),
/// until `stop`; `sent` counts those handed to the client, in order. Returns the count.
async fn publish(
    js: jetstream::Context,
    systems: usize,
    rate: f64,
    sent: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut n = 0u64;
    let mut acks = AckWindow::new(2000);
    while !*stop.borrow() {
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        while n < due {
            let system = n as usize % systems.max(1);
            let system_id = format!("arr-{system:05}");
            let published_at = now_ms();
            let envelope = bench_envelope(
                &system_id,
                format!("live-{n}-{published_at}"),
                published_at,
                snapshot_record(system, n as usize),
            );
            acks.publish(
                &js,
                Kind::Snapshot.subject(&system_id),
                &envelope.event_id,
                encode(&envelope)?.into(),
            )
            .await?;
            n += 1;
            sent.store(n, Ordering::SeqCst);
            acks.settle().await?;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    acks.finish().await?;
    Ok(n)
}

/// What one reading client saw.
#[derive(Debug, Default)]
struct Received {
    /// The `n` of every record, in arrival order.
    records: Vec<u64>,
    /// Publish -> received, ms, for every 8th record.
    latencies: Vec<f64>,
    /// Why the stream ended before the bench stopped reading, if it did.
    ended: Option<String>,
}

impl Received {
    /// Records the bench's records among the complete lines of `buf` (the raw response: SSE
    /// inside HTTP chunks, one event per chunk) and removes those lines.
    fn take(&mut self, buf: &mut String, last: &AtomicU64) {
        let Some(end) = buf.rfind('\n') else {
            return;
        };
        let mut from = 0;
        while let Some(p) = buf[from..end].find(ID_LINE).map(|p| from + p) {
            let line = p + 1;
            let Some(line_end) = buf[line..=end].find('\n').map(|e| line + e) else {
                break;
            };
            if let Some((n, at)) = buf[line + ID_LINE.len() - 1..line_end]
                .trim_end()
                .split_once('-')
                .and_then(|(n, at)| Some((n.parse::<u64>().ok()?, at.parse::<i64>().ok()?)))
            {
                if n % 8 == 0 {
                    self.latencies.push((now_ms() - at) as f64);
                }
                self.records.push(n);
                last.store(n, Ordering::Relaxed);
            }
            from = line_end;
        }
        // Keep the last newline: the next id line starts with it.
        buf.drain(..end);
    }
}

/// A client that reads the stream as fast as it comes, until `stop`: a raw connection read 64 KiB
/// at a time, so that the bench's side costs little next to the API's.
async fn listen(
    addr: String,
    connected: Arc<AtomicUsize>,
    last: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let mut received = Received::default();
    let mut stream = match open_stream(&addr).await {
        Ok(s) => s,
        Err(e) => {
            received.ended = Some(format!("connect: {e}"));
            return received;
        }
    };
    let mut buf = String::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut hello = false;
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) => {
                    received.ended = Some("closed".into());
                    break;
                }
                Ok(n) => {
                    buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if !hello && buf.contains("event:hello") {
                        hello = true;
                        connected.fetch_add(1, Ordering::SeqCst);
                    }
                    received.take(&mut buf, &last);
                }
                Err(e) => {
                    received.ended = Some(format!("cut: {e}"));
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    received
}

/// A raw HTTP/1.1 connection that has asked for the live stream.
async fn open_stream(addr: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: sdash\r\n\r\n")
        .await?;
    Ok(stream)
}

/// A client that reads the hello and then never reads again, through a small receive buffer.
async fn stalled_client(addr: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stream = socket.connect(addr.parse()?).await?;
    stream
        .write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: sdash\r\n\r\n")
        .await?;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event:hello") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("no hello for a stalled client")??;
        anyhow::ensure!(n > 0, "closed before the hello");
        seen.extend_from_slice(&chunk[..n]);
    }
    Ok(stream)
}

/// The fleet list read by `readers` clients for `duration`: p50, p99 (ms), requests/s, errors.
async fn read_fleet(
    client: &reqwest::Client,
    base: &str,
    readers: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64, f64, u64)> {
    let started = Instant::now();
    let paths = Arc::new(vec!["/api/v1/systems".to_owned()]);
    let (mut latencies, errors) = hammer(client, base, paths, readers, duration).await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let n = latencies.len() as f64;
    Ok((
        percentile(&mut latencies, 50.0),
        percentile(&mut latencies, 99.0),
        n / secs,
        errors,
    ))
}

pub(crate) async fn live(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let quick = options.quick;
    let systems = options.systems.unwrap_or(if quick { 500 } else { 10_000 });
    let clients = options.clients.unwrap_or(if quick { 20 } else { 1000 });
    let stalled_clients = if quick { 2 } else { 10 };
    let interval = options
        .interval
        .unwrap_or(Duration::from_secs(if quick { 1 } else { 60 }));
    let rate = systems as f64 / interval.as_secs_f64().max(0.001);
    let per_phase = options
        .duration
        .unwrap_or(Duration::from_secs(if quick { 2 } else { 30 }));
    let readers = 64;
    let case = format!("sqlite {systems} systems, {clients} live clients, {rate:.0} snapshots/s");
    println!("-- {case}");

    let dir = tempfile::tempdir()?;
    let db = TestDatabase::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await?;
    seed_fleet(&store, Backend::Sqlite, systems, &mut 0).await?;
    store.close().await;
    let nats = NatsServer::start();
    let js = jetstream(&nats.url()).await?;
    let writer = RunningWriter::start(&nats.url(), &db.url);
    let api = ApiProcess::start(&options.api, &db.url, &nats.url(), dir.path()).await?;
    let base = format!("http://{}", api.addr);
    let http = http_client()?;
    let ticks = clock_ticks();

    // Snapshots flow from here to the end; let the writer and the fleet cache settle.
    let sent = Arc::new(AtomicU64::new(0));
    let (stop_publishing, publishing) = watch::channel(false);
    let publisher = tokio::spawn(publish(js.clone(), systems, rate, sent.clone(), publishing));
    tokio::time::sleep(Duration::from_secs(if quick { 1 } else { 5 })).await;

    // Baseline: the fleet list without live clients.
    let cpu_before = proc_stats(api.pid, ticks)?.cpu_seconds;
    let t = Instant::now();
    let without = read_fleet(&http, &base, readers, per_phase).await?;
    let cpu_without =
        (proc_stats(api.pid, ticks)?.cpu_seconds - cpu_before) / t.elapsed().as_secs_f64();
    let rss_without = api.rss_mib();

    // The live clients: `clients` that read everything, `stalled_clients` that stop reading.
    let connected = Arc::new(AtomicUsize::new(0));
    let (stop_reading, reading) = watch::channel(false);
    let lasts: Vec<Arc<AtomicU64>> = (0..clients).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let listeners: Vec<_> = lasts
        .iter()
        .map(|last| {
            tokio::spawn(listen(
                api.addr.clone(),
                connected.clone(),
                last.clone(),
                reading.clone(),
            ))
        })
        .collect();
    let all_connected = sdash_harness::wait_for(Duration::from_secs(60), || async {
        (connected.load(Ordering::SeqCst) >= clients).then_some(())
    })
    .await;
    anyhow::ensure!(
        all_connected.is_some(),
        "only {} of {clients} live clients connected",
        connected.load(Ordering::SeqCst)
    );
    let mut stalled = Vec::new();
    for _ in 0..stalled_clients {
        stalled.push(stalled_client(&api.addr).await?);
    }
    // Every client is registered before it gets its hello, so every record from the one after
    // the one being published now must reach every client.
    let first = sent.load(Ordering::SeqCst) + 1;
    let connected_at = Instant::now();

    // With the clients: the same readers, memory sampled meanwhile.
    let cpu_before = proc_stats(api.pid, ticks)?.cpu_seconds;
    let t = Instant::now();
    let sampler = {
        let pid = api.pid;
        tokio::spawn(async move {
            let mut most = 0.0f64;
            let until = Instant::now() + per_phase;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| proc_kib(&s, "VmRSS:"))
                    .unwrap_or(0) as f64
                    / 1024.0;
                most = most.max(rss);
            }
            most
        })
    };
    let with = read_fleet(&http, &base, readers, per_phase).await?;
    let cpu_with =
        (proc_stats(api.pid, ticks)?.cpu_seconds - cpu_before) / t.elapsed().as_secs_f64();
    let rss_with = sampler.await?.max(api.rss_mib());

    // The stalled clients are cut once the pipes to them and their queues are full.
    let cut_wait = Duration::from_secs(if quick { 60 } else { 120 });
    let slow_cut = |text: &str| {
        metric_sum_where(
            text,
            "sdash_api_stream_clients_disconnected_total",
            "reason=\"slow\"",
        )
    };
    let cut = sdash_harness::wait_for(cut_wait, || async {
        let text = scrape(&http, &api.addr).await.ok()?;
        (slow_cut(&text) >= stalled_clients as f64).then_some(())
    })
    .await;
    let time_to_cut = connected_at.elapsed().as_secs_f64();
    if cut.is_none() {
        report.note(format!(
            "Not every stalled client was cut within {} s of connecting.",
            cut_wait.as_secs()
        ));
    }

    // Stop publishing, then wait until every client still reading has the last record.
    let _ = stop_publishing.send(true);
    let published = publisher.await??;
    let publish_secs = connected_at.elapsed().as_secs_f64();
    let last = published.saturating_sub(1);
    let caught_up = sdash_harness::wait_for(Duration::from_secs(30), || async {
        let behind = lasts
            .iter()
            .zip(&listeners)
            .filter(|(l, task)| !task.is_finished() && l.load(Ordering::Relaxed) < last)
            .count();
        (behind == 0).then_some(())
    })
    .await;
    if caught_up.is_none() {
        report.note("Some reading clients did not receive the last record within 30 s.");
    }
    let text = scrape(&http, &api.addr).await?;
    let _ = stop_reading.send(true);
    let mut results = Vec::new();
    for l in listeners {
        results.push(l.await?);
    }
    drop(stalled);

    // Updates lost: every record from `first` to the last must be at every client that was not
    // cut, once each.
    let expected = published.saturating_sub(first);
    let mut lost = 0u64;
    let mut duplicated = 0u64;
    let mut delivered = 0u64;
    let mut reading_cut = 0u64;
    let mut latencies = Vec::new();
    for r in &mut results {
        if r.ended.is_some() {
            reading_cut += 1;
            continue;
        }
        let mut seen: Vec<u64> = r.records.iter().copied().filter(|n| *n >= first).collect();
        let got = seen.len() as u64;
        seen.sort_unstable();
        seen.dedup();
        duplicated += got - seen.len() as u64;
        lost += expected - (seen.len() as u64).min(expected);
        delivered += got;
        latencies.append(&mut r.latencies);
    }
    let kept_up = clients as u64 - reading_cut;
    let slow = slow_cut(&text);
    let live_total = (clients + stalled_clients) as f64;

    let (p50_without, p99_without, rps_without, errors_without) = without;
    let (p50_with, p99_with, rps_with, errors_with) = with;
    report.push(
        Row::new(&case, "fleet list p50 (64 readers)", p50_with, "ms")
            .vs("without live clients", p50_without),
    );
    report.push(
        Row::new(&case, "fleet list p99 (64 readers)", p99_with, "ms")
            .vs("without live clients", p99_without)
            .target("< 50 ms", p99_with < 50.0 && errors_with == 0),
    );
    report.push(
        Row::new(&case, "fleet list requests/s", rps_with, "req/s")
            .vs("without live clients", rps_without),
    );
    report.push(
        Row::new(&case, "fleet list errors", errors_with as f64, "")
            .vs("without live clients", errors_without as f64)
            .target("= 0", errors_with == 0 && errors_without == 0),
    );
    report.push(
        Row::new(
            &case,
            "updates lost (clients that kept up)",
            lost as f64,
            "",
        )
        .vs(
            "updates due (records x clients)",
            (expected * kept_up) as f64,
        )
        .target("= 0", lost == 0 && expected > 0 && kept_up > 0),
    );
    report.push(
        Row::new(&case, "updates duplicated", duplicated as f64, "").target("= 0", duplicated == 0),
    );
    report.push(Row::new(&case, "updates delivered", delivered as f64, ""));
    report.push(
        Row::new(&case, "reading clients cut", reading_cut as f64, "")
            .vs("reading clients", clients as f64)
            .target("= 0", reading_cut == 0),
    );
    report.push(
        Row::new(&case, "stalled clients cut (slow)", slow, "")
            .vs("stalled clients", stalled_clients as f64)
            .target("all", slow == stalled_clients as f64),
    );
    report.push(Row::new(
        &case,
        "stalled clients cut within",
        time_to_cut,
        "s",
    ));
    report.push(
        Row::new(
            &case,
            "API memory per live client",
            1024.0 * (rss_with - rss_without) / live_total,
            "KiB",
        )
        .vs("API RSS without live clients, MiB", rss_without),
    );
    report.push(
        Row::new(&case, "API RSS with live clients", rss_with, "MiB").vs("without", rss_without),
    );
    report.push(
        Row::new(&case, "API CPU", cpu_with, "cores").vs("without live clients", cpu_without),
    );
    report.push(Row::new(
        &case,
        "publish -> client p50",
        percentile(&mut latencies, 50.0),
        "ms",
    ));
    report.push(Row::new(
        &case,
        "publish -> client p99",
        percentile(&mut latencies, 99.0),
        "ms",
    ));
    report.push(
        Row::new(
            &case,
            "snapshots published",
            expected as f64 / publish_secs.max(1e-9),
            "msg/s",
        )
        .vs("asked", rate),
    );
    report.push(Row::new(
        &case,
        "API bus messages received",
        metric_sum(&text, "sdash_api_stream_messages_total").unwrap_or(0.0),
        "",
    ));
    report.note(format!(
        "The API is `{}` in its own process (binary defaults: --stream-buffer 256, 250 ms fleet-list cache), \
         with the writer storing the snapshots (JetStream, one per system per {} s) so the fleet list reloads. \
         Baseline: {readers} readers on GET /api/v1/systems for {} s with snapshots flowing and no live client; \
         then {clients} SSE clients reading everything plus {stalled_clients} that read the hello and then stop \
         (4 KiB receive buffer), and the same readers again. Memory per client = (peak VmRSS with the clients - \
         VmRSS without) / {} clients. Lost = for each client not cut, records published after every client had \
         its hello and not received by it (ids compared exactly).",
        options.api.exe.display(),
        interval.as_secs_f64(),
        per_phase.as_secs(),
        clients + stalled_clients,
    ));
    let mut api = api;
    stop(&mut api.child).await;
    writer.stop().await?;
    Ok(())
}
