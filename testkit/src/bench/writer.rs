//! writer-throughput and seed-scenario: the messages of a case, a writer run in this process, the
//! baselines (b) and (c), and the throughput scenario itself. Baseline (a) is in `raw_insert`,
//! the seed scenario in `seed`.

mod raw_insert;
mod seed;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sdash_harness::{Backend, NatsServer, TestDatabase, free_port};
use sdash_proto::subjects::{Kind, STREAM};
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_service::bus;
use sdash_writer::{Incoming, Store, WriterConfig};
use sqlx::{Connection, Row as _};

use super::{Options, Report, Row, http_client, metric_sum, scrape};
use raw_insert::{AlertCols, DailyCols, decode_rows, newest_per_system, raw_insert};
pub(crate) use seed::seed;

/// The kinds of rows a writer-throughput case writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    Events,
    Snapshots,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Events => "events",
            Load::Snapshots => "snapshots",
        }
    }
}

pub(crate) fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// One message of a case: its subject, event id and encoded envelope, plus the decoded record
/// for the raw baseline.
pub(crate) struct Msg {
    pub subject: String,
    pub event_id: String,
    pub payload: Vec<u8>,
}

pub(crate) fn event_record(i: usize) -> EventRecord {
    EventRecord {
        level: if i.is_multiple_of(10) {
            Level::Error
        } else {
            Level::Warning
        },
        category: Category::ApiCall,
        message: format!("GET /api/2.17/arrays answered 503 Service Unavailable (attempt {i})"),
        details: Some("upstream connect error or disconnect/reset before headers".into()),
        http_status: Some(503),
        endpoint: Some("/api/2.17/arrays".into()),
    }
}

pub(crate) fn event_envelope(system: &str, id: String, at: i64, i: usize) -> Envelope<EventRecord> {
    bench_envelope(system, id, at, event_record(i))
}

/// `body` as the benchmarks' collector publishes it for `system`, observed at `at`.
pub(crate) fn bench_envelope<T>(system: &str, id: String, at: i64, body: T) -> Envelope<T> {
    Envelope {
        schema: SCHEMA_VERSION,
        event_id: id,
        collector_id: "bench-collector".into(),
        system_id: system.to_owned(),
        observed_at: at,
        body,
    }
}

pub(crate) fn snapshot_record(system: usize, k: usize) -> Snapshot {
    let total: u64 = 100 << 40;
    let used = total / 4 + ((system as u64 * 7919 + k as u64 * 104_729) % (total / 2));
    Snapshot {
        vendor: Vendor::Pure,
        status: Status::Online,
        hardware: if (system + k).is_multiple_of(50) {
            Health::Warning
        } else {
            Health::Ok
        },
        cluster: Health::Ok,
        name: Some(format!("bench-array-{system:05}")),
        version: Some("6.5.3".into()),
        model: Some("FA-X70R3".into()),
        serial: Some(format!("PSN{system:08}")),
        capacity: Some(Capacity {
            total_bytes: total,
            used_bytes: used,
            free_bytes: total - used,
            data_reduction: Some(3.4),
            provisioned_bytes: None,
        }),
        alerts: (0..2)
            .map(|a| Alert {
                id: format!("{}", 1000 + a),
                severity: Severity::Warning,
                vendor_severity: "warning".into(),
                title: format!("Shelf {a} temperature high"),
                component: Some(format!("SH{a}")),
                opened_at: Some(1_700_000_000_000),
            })
            .collect(),
        components: ["ct0", "ct1", "ch0.psu0", "ch0.psu1"]
            .iter()
            .map(|c| Component {
                kind: "controller".into(),
                name: (*c).into(),
                status: Health::Ok,
                detail: None,
            })
            .collect(),
        poll_ms: 240,
        error: None,
        topology: None,
        pools: Vec::new(),
        performance: None,
    }
}

fn build(load: Load, n: usize) -> anyhow::Result<Vec<Msg>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(n);
    match load {
        Load::Events => {
            let t0 = now - 60_000;
            for i in 0..n {
                let system = format!("bench-{:03}", i % 200);
                let id = format!("bench-ev-{i:08}");
                let env = event_envelope(&system, id.clone(), t0 + (i / 200) as i64, i);
                out.push(Msg {
                    subject: Kind::Event.subject(&system),
                    event_id: id,
                    payload: encode(&env)?,
                });
            }
        }
        Load::Snapshots => {
            // Snapshots of `systems` arrays, each polled every 60 s, in publishing order.
            let systems = (n / 40).clamp(1, 500);
            let per = n.div_ceil(systems);
            let t0 = now - per as i64 * 60_000;
            for k in 0..per {
                for s in 0..systems {
                    if out.len() == n {
                        break;
                    }
                    let system = format!("bench-{s:05}");
                    let id = format!("bench-snap-{s:05}-{k:05}");
                    let env = Envelope {
                        schema: SCHEMA_VERSION,
                        event_id: id.clone(),
                        collector_id: "bench-collector".into(),
                        system_id: system.clone(),
                        observed_at: t0 + k as i64 * 60_000 + s as i64,
                        body: snapshot_record(s, k),
                    };
                    out.push(Msg {
                        subject: Kind::Snapshot.subject(&system),
                        event_id: id,
                        payload: encode(&env)?,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn incoming(msgs: &[Msg]) -> Vec<Incoming> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| Incoming {
            stream_seq: i as u64 + 1,
            subject: m.subject.clone(),
            payload: m.payload.clone(),
            deliveries: 1,
        })
        .collect()
}

/// A writer configuration for benchmarks: admin server on a known port, no retention by count
/// or age (the benchmarks count every row).
pub(crate) fn writer_config(nats: &str, db: &str) -> (WriterConfig, String) {
    let mut config = WriterConfig::new(nats, db);
    let port = free_port();
    config.admin_listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.events_per_system = 0;
    config.event_retention_days = 0;
    config.capacity_raw_days = 0;
    config.writer_id = Some("sdash-bench".into());
    (config, format!("127.0.0.1:{port}"))
}

/// A writer running in this process until dropped or stopped.
pub(crate) struct RunningWriter {
    stop: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub admin: String,
}

impl RunningWriter {
    pub fn start(nats: &str, db: &str) -> RunningWriter {
        Self::start_with(nats, db, |_| {})
    }

    /// Starts a writer with its benchmark configuration changed by `adjust`.
    pub fn start_with(
        nats: &str,
        db: &str,
        adjust: impl FnOnce(&mut WriterConfig),
    ) -> RunningWriter {
        let (mut config, admin) = writer_config(nats, db);
        adjust(&mut config);
        let stop = Shutdown::new();
        let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
        RunningWriter {
            stop,
            task: Some(task),
            admin,
        }
    }

    /// A metric of the writer (sum over labels); `None` while the admin server is not up.
    pub async fn metric(&self, client: &reqwest::Client, name: &str) -> Option<f64> {
        let text = scrape(client, &self.admin).await.ok()?;
        metric_sum(&text, name)
    }

    /// A metric of the writer, 0 when it cannot be read.
    pub async fn metric_or_zero(&self, client: &reqwest::Client, name: &str) -> f64 {
        self.metric(client, name).await.unwrap_or(0.0)
    }

    /// Waits until the writer has committed `n` messages; the elapsed time when it had.
    pub async fn wait_messages(
        &self,
        client: &reqwest::Client,
        n: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self
                .metric(client, "sdash_writer_messages_total")
                .await
                .unwrap_or(0.0);
            if done >= n as f64 {
                return Ok(());
            }
            if let Some(task) = &self.task
                && task.is_finished()
            {
                anyhow::bail!("the writer stopped early");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the writer committed {done} of {n} messages within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(Ok(r)) => r?,
                Ok(Err(e)) => anyhow::bail!("writer task: {e}"),
                Err(_) => anyhow::bail!("the writer did not stop within 20 s"),
            }
        }
        Ok(())
    }
}

impl Drop for RunningWriter {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Publishes every message with its `Nats-Msg-Id`, at most `window` acks outstanding.
async fn publish_all(js: &jetstream::Context, msgs: &[Msg], window: usize) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(window);
    for m in msgs {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", m.event_id.as_str());
        let ack = js
            .publish_with_headers(m.subject.clone(), headers, m.payload.clone().into())
            .await?;
        acks.push(ack);
        if acks.len() >= window {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks.drain(..) {
        a.await?;
    }
    Ok(())
}

pub(crate) async fn jetstream(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    bus::ensure_stream(&js, &bus::StreamArgs::default()).await?;
    Ok(js)
}

/// Baseline (b): a durable pull consumer that fetches batches and acks every message, no
/// database. Returns messages/s.
async fn raw_consume(js: &jetstream::Context, n: usize, batch: usize) -> anyhow::Result<f64> {
    let stream = js.get_stream(STREAM).await?;
    let config = consumer::pull::Config {
        durable_name: Some("bench-raw".into()),
        ack_policy: consumer::AckPolicy::Explicit,
        max_ack_pending: (batch as i64 * 2).max(1000),
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let started = Instant::now();
    let consumer = stream.create_consumer(config).await?;
    let mut got = 0usize;
    while got < n {
        let mut messages = consumer
            .fetch()
            .max_messages(batch)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
            m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
            got += 1;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "raw consumer got {got} of {n} messages in 300 s"
        );
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Baseline (c): the same store, one transaction per message. Returns messages/s.
async fn one_tx_per_event(db: &TestDatabase, msgs: &[Incoming]) -> anyhow::Result<f64> {
    let store = Store::open(&db.url).await?;
    let started = Instant::now();
    for m in msgs {
        store.write_batch(std::slice::from_ref(m)).await?;
    }
    let rate = msgs.len() as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    Ok(rate)
}

/// Baseline (c) as a whole writer: the same writer, bus included, with `--batch-max 1` (one
/// transaction and one ack round per message) on its own consumer and database. Timed between
/// its `skip`-th and `skip + n`-th committed message (start-up excluded). Returns messages/s.
async fn writer_one_per_tx(
    client: &reqwest::Client,
    nats: &str,
    backend: Backend,
    skip: u64,
    n: u64,
) -> anyhow::Result<f64> {
    let db = TestDatabase::new(backend).await;
    Store::open(&db.url).await?.close().await;
    let writer = RunningWriter::start_with(nats, &db.url, |c| {
        c.batch_max = 1;
        c.consumer = "sdash-bench-one-per-tx".into();
    });
    writer
        .wait_messages(client, skip, Duration::from_secs(120))
        .await?;
    let from = Instant::now();
    writer
        .wait_messages(client, skip + n, Duration::from_secs(600))
        .await?;
    let rate = n as f64 / from.elapsed().as_secs_f64();
    writer.stop().await?;
    Ok(rate)
}

/// A count from the database.
pub(crate) async fn count(db: &TestDatabase, sql: &str) -> anyhow::Result<i64> {
    let q = sqlx::AssertSqlSafe(sql.to_owned());
    Ok(match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
            let v: i64 = sqlx::query(q).fetch_one(&mut c).await?.try_get(0)?;
            let _ = c.close().await;
            v
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            let v: i64 = sqlx::query(q).fetch_one(&mut c).await?.try_get(0)?;
            let _ = c.close().await;
            v
        }
    })
}

pub(crate) async fn throughput(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let backends = options.backends_or(&[Backend::Sqlite, Backend::Postgres]);
    let client = http_client()?;
    for backend in backends {
        let loads = [
            (Load::Events, options.events),
            (Load::Snapshots, options.snapshots),
        ];
        for load in loads.into_iter().filter(|l| l.1).map(|l| l.0) {
            let n = options.messages.unwrap_or(match (options.quick, load) {
                (true, _) => 2_000,
                (false, Load::Events) => 50_000,
                (false, Load::Snapshots) => 20_000,
            });
            let subset = if options.quick { 50 } else { 400 };
            let case = format!("{} {}", backend_name(backend), load.name());
            println!("-- {case}: {n} messages");
            let msgs = build(load, n)?;
            let rows = decode_rows(&msgs)?;
            let inc = incoming(&msgs);

            // (a) raw bulk insert.
            let db_a = TestDatabase::new(backend).await;
            Store::open(&db_a.url).await?.close().await;
            let raw_db = raw_insert(&db_a, &rows).await.context("raw bulk insert")?;
            let raw_rows = rows.events.len()
                + rows.snapshots.len()
                + rows
                    .snapshots
                    .chunks(1000)
                    .map(|c| {
                        newest_per_system(c).len()
                            + AlertCols::of(c).system.len()
                            + DailyCols::of(c).system.len()
                    })
                    .sum::<usize>();
            drop(db_a);

            // (c) one transaction per message, on a subset.
            let db_c = TestDatabase::new(backend).await;
            let per_tx = one_tx_per_event(&db_c, &inc[..subset.min(inc.len())])
                .await
                .context("one transaction per message")?;
            drop(db_c);

            // (b) raw JetStream consume-and-ack of the same messages, pre-published.
            let nats = NatsServer::start();
            let js = jetstream(&nats.url()).await?;
            let published = Instant::now();
            publish_all(&js, &msgs, 1000).await.context("pre-publish")?;
            let publish_rate = n as f64 / published.elapsed().as_secs_f64();
            let raw_bus = raw_consume(&js, n, 1000).await.context("raw consume")?;

            // The pipeline: the writer drains the pre-published stream into a fresh database.
            let db = TestDatabase::new(backend).await;
            Store::open(&db.url).await?.close().await;
            println!("   pipeline: starting the writer");
            let started = Instant::now();
            let writer = RunningWriter::start(&nats.url(), &db.url);
            writer
                .wait_messages(&client, n as u64, Duration::from_secs(600))
                .await?;
            let elapsed = started.elapsed().as_secs_f64();
            let pipeline = n as f64 / elapsed;
            let in_db = writer
                .metric_or_zero(&client, "sdash_writer_commit_seconds_sum")
                .await;
            let batches = writer
                .metric_or_zero(&client, "sdash_writer_batches_total")
                .await;
            let pipeline_rows = writer
                .metric_or_zero(&client, "sdash_writer_rows_total")
                .await;
            let retries = writer
                .metric_or_zero(&client, "sdash_writer_retries_total")
                .await;
            let dead = writer
                .metric_or_zero(&client, "sdash_writer_dead_letters_total")
                .await;
            writer.stop().await?;
            // (c) as a whole writer, on the same (already drained) stream: a second consumer.
            let (skip, one_n) = if options.quick {
                (20, 100)
            } else {
                (100, 1000)
            };
            let one_per_tx = writer_one_per_tx(
                &client,
                &nats.url(),
                backend,
                skip,
                one_n.min(n as u64 - skip.min(n as u64)).max(1),
            )
            .await
            .context("writer with --batch-max 1")?;
            let stored = match load {
                Load::Events => count(&db, "SELECT COUNT(*) FROM events").await?,
                // Every snapshot is counted in the hourly rollups (raw samples are thinned by
                // the writer's deadband).
                Load::Snapshots => {
                    count(
                        &db,
                        "SELECT CAST(COALESCE(SUM(samples), 0) AS BIGINT) FROM capacity_hourly",
                    )
                    .await?
                }
            };

            let floor = raw_db.min(raw_bus);
            report.push(
                Row::new(&case, "pipeline (NATS -> writer -> db)", pipeline, "msg/s")
                    .vs("min((a) raw insert, (b) raw consume)", floor)
                    .target("ratio >= 0.5", pipeline >= 0.5 * floor),
            );
            report.push(Row::new(&case, "(a) raw bulk insert", raw_db, "msg/s"));
            report.push(
                Row::new(
                    &case,
                    "rows written per message (pipeline)",
                    pipeline_rows / n as f64,
                    "rows",
                )
                .vs("(a) rows per message", raw_rows as f64 / n as f64),
            );
            report.push(Row::new(
                &case,
                "(b) raw JetStream consume+ack",
                raw_bus,
                "msg/s",
            ));
            report.push(
                Row::new(
                    &case,
                    "pipeline vs (c) one tx per message",
                    pipeline,
                    "msg/s",
                )
                .vs("(c) the writer with --batch-max 1", one_per_tx)
                .target(">= 20x (design goal: 50x)", pipeline >= 20.0 * one_per_tx),
            );
            report.push(
                Row::new(
                    &case,
                    "pipeline vs (c0) store only, one tx per message",
                    pipeline,
                    "msg/s",
                )
                .vs("(c0) Store::write_batch per message, no bus", per_tx),
            );
            report.push(
                Row::new(&case, "ceiling: (a) raw insert vs (c0)", raw_db, "msg/s")
                    .vs("(c0) store only, one tx per message", per_tx),
            );
            report.push(
                Row::new(
                    &case,
                    "writer time in database transactions",
                    100.0 * in_db / elapsed,
                    "%",
                )
                .vs("batches", batches),
            );
            report.push(Row::new(
                &case,
                "pre-publish (context)",
                publish_rate,
                "msg/s",
            ));
            report.push(
                Row::new(&case, "stored rows", stored as f64, "rows")
                    .target(&format!("= {n}, no loss"), stored == n as i64),
            );
            report.push(
                Row::new(&case, "writer retries + dead letters", retries + dead, "")
                    .target("= 0", retries + dead == 0.0),
            );
        }
    }
    report.note(
        "(a) writes the rows the writer would write for the same messages, already decoded: events as they are; \
         snapshots as their capacity sample, the latest-state upsert (newest per system per 1000), the alert upsert \
         (newest per system and alert id) and the daily rollup upsert (per system and day), written blind. \
         The pipeline also reads the stored state and open alerts back and derives status transitions from them.",
    );
    report.note(
        "(c) is the same writer with --batch-max 1 (one transaction and one ack round per message), bus included, \
         on its own consumer and database, timed after its first messages. (c0) is stricter: the writer's own \
         Store::write_batch with one message per call and no bus, measured on a subset; it is an upper bound for \
         any one-transaction-per-event writer. The ceiling row shows how far even the raw bulk insert (a) gets \
         above (c0) on this machine: when it is under 20x, no writer can reach 20x (c0).",
    );
    report.note(
        "Writer time in database transactions: the sum of sdash_writer_commit_seconds over the pipeline's time \
         (near 100 %: the database is the bottleneck; lower: decoding, the bus or start-up are).",
    );
    report.note("The pipeline time runs from starting the writer (connect, lock, consumer) until its metrics count every message committed.");
    Ok(())
}
