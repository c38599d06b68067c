//! writer-throughput and seed-scenario.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sdash_harness::{Backend, NatsServer, TestDatabase, free_port};
use sdash_proto::subjects::{Kind, STREAM};
use sdash_proto::*;
use sdash_service::bus;
use sdash_writer::{Incoming, Store, WriterConfig};
use sqlx::{Connection, Row as _};
use tokio::sync::watch;

use super::{Options, Report, Row, http_client, metric_sum, scrape};

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
    Envelope {
        schema: SCHEMA_VERSION,
        event_id: id,
        collector_id: "bench-collector".into(),
        system_id: system.to_owned(),
        observed_at: at,
        body: event_record(i),
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
    stop: watch::Sender<bool>,
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
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(sdash_writer::run(config, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
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
        let _ = self.stop.send(true);
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
        let _ = self.stop.send(true);
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

/// The decoded rows of a case, for the raw bulk insert.
struct Rows {
    events: Vec<Envelope<EventRecord>>,
    snapshots: Vec<Envelope<Snapshot>>,
}

fn decode_rows(msgs: &[Msg]) -> anyhow::Result<Rows> {
    let mut rows = Rows {
        events: Vec::new(),
        snapshots: Vec::new(),
    };
    for m in msgs {
        match codec::decode_record(&m.subject, &m.payload)? {
            Record::Event(e) => rows.events.push(e),
            Record::Snapshot(s) => rows.snapshots.push(s),
            _ => anyhow::bail!("unexpected record on {}", m.subject),
        }
    }
    Ok(rows)
}

/// Baseline (a): the same rows bulk inserted straight into the (migrated) database, 1000 per
/// transaction: PostgreSQL `INSERT ... SELECT FROM UNNEST`, SQLite multi-row `INSERT` in WAL.
/// Snapshots: the rows the writer writes for them, without reading anything back: the capacity
/// sample, the latest-state upsert (newest per system and chunk), the alert upsert (newest per
/// system and alert id) and the daily rollup upsert (per system and day). Only the status
/// transitions the writer derives by comparing with the stored state are left out.
async fn raw_insert(db: &TestDatabase, rows: &Rows) -> anyhow::Result<f64> {
    let n = rows.events.len() + rows.snapshots.len();
    match db.backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            let started = Instant::now();
            for chunk in rows.events.chunks(1000) {
                let mut tx = c.begin().await?;
                sqlx::query(
                    "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, \
                     category, message, details, http_status, endpoint) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
                     $6::smallint[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[])",
                )
                .bind(chunk.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.system_id.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.collector_id.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.observed_at).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.body.level.as_str()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.body.level.rank()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.body.category.as_str()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.body.message.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|e| e.body.details.clone()).collect::<Vec<_>>())
                .bind(
                    chunk
                        .iter()
                        .map(|e| e.body.http_status.map(i32::from))
                        .collect::<Vec<_>>(),
                )
                .bind(chunk.iter().map(|e| e.body.endpoint.clone()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            for chunk in rows.snapshots.chunks(1000) {
                let mut tx = c.begin().await?;
                let caps: Vec<(&Envelope<Snapshot>, &Capacity)> = chunk
                    .iter()
                    .filter_map(|s| s.body.capacity.as_ref().map(|c| (s, c)))
                    .collect();
                sqlx::query(
                    "INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) \
                     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])",
                )
                .bind(caps.iter().map(|(s, _)| s.system_id.clone()).collect::<Vec<_>>())
                .bind(caps.iter().map(|(s, _)| s.observed_at).collect::<Vec<_>>())
                .bind(caps.iter().map(|(_, c)| c.total_bytes as i64).collect::<Vec<_>>())
                .bind(caps.iter().map(|(_, c)| c.used_bytes as i64).collect::<Vec<_>>())
                .bind(caps.iter().map(|(_, c)| c.free_bytes as i64).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
                let latest = newest_per_system(chunk);
                let st = StateCols::of(&latest)?;
                sqlx::query(
                    "INSERT INTO system_state (system_id, event_id, collector_id, observed_at, vendor, status, \
                     hardware, cluster, name, version, model, serial, total_bytes, used_bytes, free_bytes, \
                     alert_count, components, alerts, poll_ms) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], \
                     $14::bigint[], $15::bigint[], $16::int[], $17::text[], $18::text[], $19::bigint[]) \
                     ON CONFLICT (system_id) DO UPDATE SET event_id = excluded.event_id, \
                     observed_at = excluded.observed_at, status = excluded.status, hardware = excluded.hardware, \
                     total_bytes = excluded.total_bytes, used_bytes = excluded.used_bytes, \
                     free_bytes = excluded.free_bytes, alert_count = excluded.alert_count, \
                     components = excluded.components, alerts = excluded.alerts, poll_ms = excluded.poll_ms \
                     WHERE excluded.observed_at > system_state.observed_at",
                )
                .bind(st.id)
                .bind(st.event_id)
                .bind(st.collector)
                .bind(st.at)
                .bind(st.vendor)
                .bind(st.status)
                .bind(st.hardware)
                .bind(st.cluster)
                .bind(st.name)
                .bind(st.version)
                .bind(st.model)
                .bind(st.serial)
                .bind(st.total)
                .bind(st.used)
                .bind(st.free)
                .bind(st.alert_count)
                .bind(st.components)
                .bind(st.alerts)
                .bind(st.poll_ms)
                .execute(&mut *tx)
                .await?;
                let al = AlertCols::of(chunk);
                sqlx::query(
                    "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, \
                     opened_at, first_seen, last_seen) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::bigint[], $8::bigint[], $9::bigint[]) \
                     ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO UPDATE SET \
                     severity = excluded.severity, vendor_severity = excluded.vendor_severity, \
                     title = excluded.title, component = excluded.component, \
                     last_seen = GREATEST(alerts.last_seen, excluded.last_seen)",
                )
                .bind(al.system)
                .bind(al.alert)
                .bind(al.severity)
                .bind(al.vendor_severity)
                .bind(al.title)
                .bind(al.component)
                .bind(al.opened_at)
                .bind(al.first_seen)
                .bind(al.last_seen)
                .execute(&mut *tx)
                .await?;
                let d = DailyCols::of(chunk);
                sqlx::query(
                    "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, \
                     last_at, total_bytes, used_bytes, free_bytes) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
                     $6::float8[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) \
                     ON CONFLICT (system_id, day) DO UPDATE SET \
                     samples = capacity_daily.samples + excluded.samples, \
                     used_min = LEAST(capacity_daily.used_min, excluded.used_min), \
                     used_max = GREATEST(capacity_daily.used_max, excluded.used_max), \
                     used_sum = capacity_daily.used_sum + excluded.used_sum, \
                     last_at = excluded.last_at, total_bytes = excluded.total_bytes, \
                     used_bytes = excluded.used_bytes, free_bytes = excluded.free_bytes",
                )
                .bind(d.system)
                .bind(d.day)
                .bind(d.samples)
                .bind(d.used_min)
                .bind(d.used_max)
                .bind(d.used_sum)
                .bind(d.last_at)
                .bind(d.total)
                .bind(d.used)
                .bind(d.free)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            let rate = n as f64 / started.elapsed().as_secs_f64();
            let _ = c.close().await;
            Ok(rate)
        }
        Backend::Sqlite => {
            use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
            let options: SqliteConnectOptions = db.url.parse()?;
            let mut c = sqlx::SqliteConnection::connect_with(
                &options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full),
            )
            .await?;
            let started = Instant::now();
            for chunk in rows.events.chunks(1000) {
                let mut tx = c.begin().await?;
                // 11 columns x 500 rows stays far below SQLite's 32766 bound parameters.
                for part in chunk.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, \
                         category, message, details, http_status, endpoint) ",
                    );
                    q.push_values(part, |mut b, e| {
                        b.push_bind(e.event_id.as_str())
                            .push_bind(e.system_id.as_str())
                            .push_bind(e.collector_id.as_str())
                            .push_bind(e.observed_at)
                            .push_bind(e.body.level.as_str())
                            .push_bind(e.body.level.rank())
                            .push_bind(e.body.category.as_str())
                            .push_bind(e.body.message.as_str())
                            .push_bind(e.body.details.as_deref())
                            .push_bind(e.body.http_status.map(i32::from))
                            .push_bind(e.body.endpoint.as_deref());
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            for chunk in rows.snapshots.chunks(1000) {
                let mut tx = c.begin().await?;
                for part in chunk.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) ",
                    );
                    q.push_values(
                        part.iter()
                            .filter_map(|s| s.body.capacity.as_ref().map(|c| (s, c))),
                        |mut b, (s, c)| {
                            b.push_bind(s.system_id.as_str())
                                .push_bind(s.observed_at)
                                .push_bind(c.total_bytes as i64)
                                .push_bind(c.used_bytes as i64)
                                .push_bind(c.free_bytes as i64);
                        },
                    );
                    q.build().execute(&mut *tx).await?;
                }
                let latest = newest_per_system(chunk);
                for part in latest.chunks(500) {
                    let st = StateCols::of(part)?;
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO system_state (system_id, event_id, collector_id, observed_at, vendor, status, \
                         hardware, cluster, name, version, model, serial, total_bytes, used_bytes, free_bytes, \
                         alert_count, components, alerts, poll_ms) ",
                    );
                    q.push_values(0..part.len(), |mut b, i| {
                        b.push_bind(st.id[i].clone())
                            .push_bind(st.event_id[i].clone())
                            .push_bind(st.collector[i].clone())
                            .push_bind(st.at[i])
                            .push_bind(st.vendor[i])
                            .push_bind(st.status[i])
                            .push_bind(st.hardware[i])
                            .push_bind(st.cluster[i])
                            .push_bind(st.name[i].clone())
                            .push_bind(st.version[i].clone())
                            .push_bind(st.model[i].clone())
                            .push_bind(st.serial[i].clone())
                            .push_bind(st.total[i])
                            .push_bind(st.used[i])
                            .push_bind(st.free[i])
                            .push_bind(st.alert_count[i])
                            .push_bind(st.components[i].clone())
                            .push_bind(st.alerts[i].clone())
                            .push_bind(st.poll_ms[i]);
                    });
                    q.push(
                        " ON CONFLICT (system_id) DO UPDATE SET event_id = excluded.event_id, \
                         observed_at = excluded.observed_at, status = excluded.status, hardware = excluded.hardware, \
                         total_bytes = excluded.total_bytes, used_bytes = excluded.used_bytes, \
                         free_bytes = excluded.free_bytes, alert_count = excluded.alert_count, \
                         components = excluded.components, alerts = excluded.alerts, poll_ms = excluded.poll_ms \
                         WHERE excluded.observed_at > system_state.observed_at",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                let al = AlertCols::of(chunk);
                for part in (0..al.system.len()).collect::<Vec<_>>().chunks(500) {
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, \
                         opened_at, first_seen, last_seen) ",
                    );
                    q.push_values(part, |mut b, &i| {
                        b.push_bind(al.system[i].as_str())
                            .push_bind(al.alert[i].as_str())
                            .push_bind(al.severity[i])
                            .push_bind(al.vendor_severity[i].as_str())
                            .push_bind(al.title[i].as_str())
                            .push_bind(al.component[i].as_deref())
                            .push_bind(al.opened_at[i])
                            .push_bind(al.first_seen[i])
                            .push_bind(al.last_seen[i]);
                    });
                    q.push(
                        " ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO UPDATE SET \
                         severity = excluded.severity, vendor_severity = excluded.vendor_severity, \
                         title = excluded.title, component = excluded.component, \
                         last_seen = max(alerts.last_seen, excluded.last_seen)",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                let d = DailyCols::of(chunk);
                for part in (0..d.system.len()).collect::<Vec<_>>().chunks(500) {
                    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, \
                         last_at, total_bytes, used_bytes, free_bytes) ",
                    );
                    q.push_values(part, |mut b, &i| {
                        b.push_bind(d.system[i].as_str())
                            .push_bind(d.day[i].as_str())
                            .push_bind(d.samples[i])
                            .push_bind(d.used_min[i])
                            .push_bind(d.used_max[i])
                            .push_bind(d.used_sum[i])
                            .push_bind(d.last_at[i])
                            .push_bind(d.total[i])
                            .push_bind(d.used[i])
                            .push_bind(d.free[i]);
                    });
                    q.push(
                        " ON CONFLICT (system_id, day) DO UPDATE SET \
                         samples = capacity_daily.samples + excluded.samples, \
                         used_min = min(capacity_daily.used_min, excluded.used_min), \
                         used_max = max(capacity_daily.used_max, excluded.used_max), \
                         used_sum = capacity_daily.used_sum + excluded.used_sum, \
                         last_at = excluded.last_at, total_bytes = excluded.total_bytes, \
                         used_bytes = excluded.used_bytes, free_bytes = excluded.free_bytes",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            let rate = n as f64 / started.elapsed().as_secs_f64();
            let _ = c.close().await;
            Ok(rate)
        }
    }
}

fn newest_per_system(chunk: &[Envelope<Snapshot>]) -> Vec<&Envelope<Snapshot>> {
    let mut by: BTreeMap<&str, &Envelope<Snapshot>> = BTreeMap::new();
    for s in chunk {
        let e = by.entry(s.system_id.as_str()).or_insert(s);
        if s.observed_at > e.observed_at {
            *e = s;
        }
    }
    by.into_values().collect()
}

/// `system_state` columns of a set of snapshots (one per system).
struct StateCols {
    id: Vec<String>,
    event_id: Vec<String>,
    collector: Vec<String>,
    at: Vec<i64>,
    vendor: Vec<&'static str>,
    status: Vec<&'static str>,
    hardware: Vec<&'static str>,
    cluster: Vec<&'static str>,
    name: Vec<Option<String>>,
    version: Vec<Option<String>>,
    model: Vec<Option<String>>,
    serial: Vec<Option<String>>,
    total: Vec<Option<i64>>,
    used: Vec<Option<i64>>,
    free: Vec<Option<i64>>,
    alert_count: Vec<i32>,
    components: Vec<String>,
    alerts: Vec<String>,
    poll_ms: Vec<i64>,
}

impl StateCols {
    fn of(snaps: &[&Envelope<Snapshot>]) -> anyhow::Result<StateCols> {
        let cap = |f: fn(&Capacity) -> u64| -> Vec<Option<i64>> {
            snaps
                .iter()
                .map(|s| s.body.capacity.as_ref().map(|c| f(c) as i64))
                .collect()
        };
        Ok(StateCols {
            id: snaps.iter().map(|s| s.system_id.clone()).collect(),
            event_id: snaps.iter().map(|s| s.event_id.clone()).collect(),
            collector: snaps.iter().map(|s| s.collector_id.clone()).collect(),
            at: snaps.iter().map(|s| s.observed_at).collect(),
            vendor: snaps.iter().map(|s| s.body.vendor.as_str()).collect(),
            status: snaps.iter().map(|s| s.body.status.as_str()).collect(),
            hardware: snaps.iter().map(|s| s.body.hardware.as_str()).collect(),
            cluster: snaps.iter().map(|s| s.body.cluster.as_str()).collect(),
            name: snaps.iter().map(|s| s.body.name.clone()).collect(),
            version: snaps.iter().map(|s| s.body.version.clone()).collect(),
            model: snaps.iter().map(|s| s.body.model.clone()).collect(),
            serial: snaps.iter().map(|s| s.body.serial.clone()).collect(),
            total: cap(|c| c.total_bytes),
            used: cap(|c| c.used_bytes),
            free: cap(|c| c.free_bytes),
            alert_count: snaps.iter().map(|s| s.body.alerts.len() as i32).collect(),
            components: snaps
                .iter()
                .map(|s| serde_json::to_string(&s.body.components))
                .collect::<Result<_, _>>()?,
            alerts: snaps
                .iter()
                .map(|s| serde_json::to_string(&s.body.alerts))
                .collect::<Result<_, _>>()?,
            poll_ms: snaps.iter().map(|s| s.body.poll_ms as i64).collect(),
        })
    }
}

/// Alert rows of a chunk of snapshots: the newest sighting of each (system, alert id).
struct AlertCols {
    system: Vec<String>,
    alert: Vec<String>,
    severity: Vec<&'static str>,
    vendor_severity: Vec<String>,
    title: Vec<String>,
    component: Vec<Option<String>>,
    opened_at: Vec<Option<i64>>,
    first_seen: Vec<i64>,
    last_seen: Vec<i64>,
}

impl AlertCols {
    fn of(chunk: &[Envelope<Snapshot>]) -> AlertCols {
        let mut by: BTreeMap<(&str, &str), (i64, &Alert)> = BTreeMap::new();
        for s in chunk {
            for a in &s.body.alerts {
                let e = by
                    .entry((s.system_id.as_str(), a.id.as_str()))
                    .or_insert((s.observed_at, a));
                if s.observed_at > e.0 {
                    *e = (s.observed_at, a);
                }
            }
        }
        let mut c = AlertCols {
            system: Vec::new(),
            alert: Vec::new(),
            severity: Vec::new(),
            vendor_severity: Vec::new(),
            title: Vec::new(),
            component: Vec::new(),
            opened_at: Vec::new(),
            first_seen: Vec::new(),
            last_seen: Vec::new(),
        };
        for ((system, id), (at, a)) in by {
            c.system.push(system.to_owned());
            c.alert.push(id.to_owned());
            c.severity.push(a.severity.as_str());
            c.vendor_severity.push(a.vendor_severity.clone());
            c.title.push(a.title.clone());
            c.component.push(a.component.clone());
            c.opened_at.push(a.opened_at);
            c.first_seen.push(at);
            c.last_seen.push(at);
        }
        c
    }
}

/// Daily capacity rollup rows of a chunk of snapshots: one per (system, UTC day).
struct DailyCols {
    system: Vec<String>,
    day: Vec<String>,
    samples: Vec<i64>,
    used_min: Vec<i64>,
    used_max: Vec<i64>,
    used_sum: Vec<f64>,
    last_at: Vec<i64>,
    total: Vec<i64>,
    used: Vec<i64>,
    free: Vec<i64>,
}

impl DailyCols {
    fn of(chunk: &[Envelope<Snapshot>]) -> DailyCols {
        // (samples, min, max, sum, last_at, total, used, free)
        type Day = (i64, i64, i64, f64, i64, i64, i64, i64);
        let mut by: BTreeMap<(&str, String), Day> = BTreeMap::new();
        for s in chunk {
            let Some(c) = &s.body.capacity else { continue };
            let (t, u, f) = (
                c.total_bytes as i64,
                c.used_bytes as i64,
                c.free_bytes as i64,
            );
            let key = (
                s.system_id.as_str(),
                sdash_writer::store::utc_day(s.observed_at),
            );
            let e = by
                .entry(key)
                .or_insert((0, u, u, 0.0, s.observed_at, t, u, f));
            e.0 += 1;
            e.1 = e.1.min(u);
            e.2 = e.2.max(u);
            e.3 += u as f64;
            if s.observed_at >= e.4 {
                (e.4, e.5, e.6, e.7) = (s.observed_at, t, u, f);
            }
        }
        let mut c = DailyCols {
            system: Vec::new(),
            day: Vec::new(),
            samples: Vec::new(),
            used_min: Vec::new(),
            used_max: Vec::new(),
            used_sum: Vec::new(),
            last_at: Vec::new(),
            total: Vec::new(),
            used: Vec::new(),
            free: Vec::new(),
        };
        for ((system, day), d) in by {
            c.system.push(system.to_owned());
            c.day.push(day);
            c.samples.push(d.0);
            c.used_min.push(d.1);
            c.used_max.push(d.2);
            c.used_sum.push(d.3);
            c.last_at.push(d.4);
            c.total.push(d.5);
            c.used.push(d.6);
            c.free.push(d.7);
        }
        c
    }
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
                .metric(&client, "sdash_writer_commit_seconds_sum")
                .await
                .unwrap_or(0.0);
            let batches = writer
                .metric(&client, "sdash_writer_batches_total")
                .await
                .unwrap_or(0.0);
            let pipeline_rows = writer
                .metric(&client, "sdash_writer_rows_total")
                .await
                .unwrap_or(0.0);
            let retries = writer
                .metric(&client, "sdash_writer_retries_total")
                .await
                .unwrap_or(0.0);
            let dead = writer
                .metric(&client, "sdash_writer_dead_letters_total")
                .await
                .unwrap_or(0.0);
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
                Load::Snapshots => count(&db, "SELECT COUNT(*) FROM capacity_samples").await?,
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
                .target(">= 20x (DESIGN §8: 50x)", pipeline >= 20.0 * one_per_tx),
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

/// One producer of the seed scenario: its own connection and system id; publishes `m` events
/// one at a time, each with `Nats-Msg-Id`, awaiting the PubAck and retrying with the same id.
async fn producer(url: String, p: usize, m: usize) -> anyhow::Result<(Vec<String>, u64, u64)> {
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client.clone());
    let system = format!("seed-{p:04}");
    let subject = Kind::Event.subject(&system);
    let mut acked = Vec::with_capacity(m);
    let (mut retries, mut duplicates) = (0u64, 0u64);
    for i in 0..m {
        let id = format!("seed-{p:04}-{i:06}");
        let env = event_envelope(&system, id.clone(), now_ms(), i);
        let payload: bytes::Bytes = encode(&env)?.into();
        let mut attempt = 0;
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let result = async {
                js.publish_with_headers(subject.clone(), headers, payload.clone())
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            }
            .await;
            match result {
                Ok(ack) => {
                    duplicates += u64::from(ack.duplicate);
                    acked.push(id);
                    break;
                }
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    retries += 1;
                    tracing::debug!(error = %e, "publish retry");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.context(format!("producer {p}: event {id}"))),
            }
        }
    }
    client.flush().await?;
    Ok((acked, retries, duplicates))
}

pub(crate) async fn seed(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let client = http_client()?;
    for producers in [32usize, 320] {
        let per = match (options.quick, producers) {
            (true, 32) => 20,
            (true, _) => 3,
            (false, 32) => 1000,
            (false, _) => 100,
        };
        let case = format!("{producers} producers x {per} events, sqlite");
        println!("-- {case}");
        let nats = NatsServer::start();
        jetstream(&nats.url()).await?;
        let db = TestDatabase::new(Backend::Sqlite).await;
        let writer = RunningWriter::start(&nats.url(), &db.url);
        // Wait until the writer is up (admin server answers) before timing.
        let up = sdash_harness::wait_for(Duration::from_secs(30), || async {
            writer.metric(&client, "sdash_writer_messages_total").await
        })
        .await;
        anyhow::ensure!(up.is_some(), "the writer did not start");

        let started = Instant::now();
        let tasks: Vec<_> = (0..producers)
            .map(|p| tokio::spawn(producer(nats.url(), p, per)))
            .collect();
        let mut acked: Vec<String> = Vec::with_capacity(producers * per);
        let (mut retries, mut duplicates) = (0u64, 0u64);
        for t in tasks {
            let (ids, r, d) = t.await??;
            acked.extend(ids);
            retries += r;
            duplicates += d;
        }
        let publish_secs = started.elapsed().as_secs_f64();
        writer
            .wait_messages(&client, acked.len() as u64, Duration::from_secs(600))
            .await?;
        let secs = started.elapsed().as_secs_f64();
        let lock_errors = writer
            .metric(&client, "sdash_writer_retries_total")
            .await
            .unwrap_or(0.0);
        let dropped = writer
            .metric(&client, "sdash_writer_dropped_total")
            .await
            .unwrap_or(0.0);
        let dead = writer
            .metric(&client, "sdash_writer_dead_letters_total")
            .await
            .unwrap_or(0.0);
        let messages = writer
            .metric(&client, "sdash_writer_messages_total")
            .await
            .unwrap_or(0.0);
        writer.stop().await?;

        let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
        let ids: Vec<String> = sqlx::query("SELECT event_id FROM events")
            .fetch_all(&mut c)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        let _ = c.close().await;
        let stored: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let lost = acked
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .count();
        let wanted: HashSet<&str> = acked.iter().map(String::as_str).collect();
        // Rows beyond one per acknowledged id: duplicates (impossible by key) or strays.
        let duplicated =
            ids.len() - stored.len() + stored.iter().filter(|id| !wanted.contains(*id)).count();

        let rate = acked.len() as f64 / secs;
        report.push(Row::new(
            &case,
            "acknowledged events",
            acked.len() as f64,
            "events",
        ));
        report.push(
            Row::new(&case, "lock errors (writer retries)", lock_errors, "")
                .target("= 0", lock_errors == 0.0),
        );
        report.push(Row::new(&case, "lost", lost as f64, "").target("= 0", lost == 0));
        report.push(
            Row::new(&case, "duplicated", duplicated as f64, "").target("= 0", duplicated == 0),
        );
        report.push(
            Row::new(&case, "dropped + dead letters", dropped + dead, "")
                .target("= 0", dropped + dead == 0.0),
        );
        report.push(
            Row::new(&case, "throughput (publish -> stored)", rate, "events/s")
                .vs("producers' publish rate", acked.len() as f64 / publish_secs),
        );
        report.push(Row::new(
            &case,
            "publish retries / server-side duplicates",
            (retries + duplicates) as f64,
            "",
        ));
        report.push(Row::new(&case, "writer messages committed", messages, ""));
    }
    report.note(
        "Each producer is a task with its own NATS connection and system id, publishing one event at a time \
         with Nats-Msg-Id and awaiting the PubAck (retrying with the same id), like one predecessor polling thread. \
         Lock errors are the writer's sdash_writer_retries_total (every failed database attempt, 'database is locked' included).",
    );
    report.note(
        "The throughput ratio compares end-to-end (acknowledged -> committed) with the producers' own publish rate: \
         1.0 means the writer keeps up with the producers.",
    );
    Ok(())
}
