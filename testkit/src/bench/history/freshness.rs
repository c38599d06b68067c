//! Freshness (#15 item 2): snapshot published -> visible in the API, while a writer consuming a
//! steady snapshot flow runs a large retention pass, next to the same writer and flow without.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use sdash_harness::{NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::{encode, now_ms};
use tokio::sync::watch;

use super::model::{Model, cycle_table};
use super::requests::latency;
use super::retention::policy;
use super::{DAY_MS, Shape, system_id};
use crate::bench::api::{RunningApi, probers};
use crate::bench::writer::{
    RunningWriter, bench_envelope, jetstream as connect_jetstream, snapshot_record,
};
use crate::bench::{AckWindow, Report, Row, http_client};

/// A steady snapshot flow for systems `0..systems`, capacity from their models, at `rate`/s.
async fn flow(
    js: jetstream::Context,
    shape: Shape,
    start: i64,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let cycle = cycle_table();
    let span = now_ms() - start;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut acks = AckWindow::new(1000);
    let run = format!("{:x}", now_ms());
    let models: Vec<Model> = (0..shape.systems)
        .map(|s| Model::new(s, start, span, shape.interval_ms))
        .collect();
    while !*stop.borrow() {
        let due = (shape.flow_rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due {
            let s = (sent % shape.systems as u64) as usize;
            let system = system_id(s as u32);
            let at = now_ms();
            let (total, used) = models[s].poll(at, &cycle);
            let mut snap = snapshot_record(s, sent as usize);
            if let Some(c) = snap.capacity.as_mut() {
                c.total_bytes = total as u64;
                c.used_bytes = used as u64;
                c.free_bytes = (total - used) as u64;
            }
            let id = format!("flow-{run}-{sent:09}");
            let env = bench_envelope(&system, id.clone(), at, snap);
            acks.publish(
                &js,
                Kind::Snapshot.subject(&system),
                &id,
                encode(&env)?.into(),
            )
            .await?;
            sent += 1;
            acks.settle().await?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acks.finish().await?;
    Ok(sent)
}

/// Issue #15 item 2: freshness p99 while the writer, consuming a steady snapshot flow, runs a
/// large retention pass (both windows shortened by `shift_days`), next to the same writer and
/// flow without one.
pub(super) async fn freshness(
    shape: &Shape,
    db: &TestDatabase,
    api: &RunningApi,
    case: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let nats = NatsServer::start();
    let js = connect_jetstream(&nats.url()).await?;
    let start = now_ms() - shape.days * DAY_MS;
    let (stop_tx, stop_rx) = watch::channel(false);
    let flow_started = Instant::now();
    let load = tokio::spawn(flow(js.clone(), shape.clone(), start, stop_rx));
    // Without retention: the windows as generated (the pass before deleted what was expired).
    let keep = policy(shape, 0);
    let writer = RunningWriter::start_with(&nats.url(), &db.url, |c| {
        c.capacity_raw_days = keep.capacity_raw_days;
        c.capacity_hourly_days = keep.capacity_hourly_days;
        c.capacity_raw_max_gap = Duration::from_millis(shape.max_gap_ms as u64);
    });
    writer
        .wait_messages(&client, 1, Duration::from_secs(120))
        .await?;
    let (idle, idle_timeouts) = probers(&js, &client, api, Instant::now() + shape.duration).await?;
    writer.stop().await?;
    // With a large pass: both windows shortened by shift_days, retention at the writer's start.
    let shifted = policy(shape, shape.shift_days);
    let started = Instant::now();
    let writer = RunningWriter::start_with(&nats.url(), &db.url, |c| {
        c.capacity_raw_days = shifted.capacity_raw_days;
        c.capacity_hourly_days = shifted.capacity_hourly_days;
        c.capacity_raw_max_gap = Duration::from_millis(shape.max_gap_ms as u64);
        c.retention_interval = Duration::from_secs(24 * 3600);
    });
    let slice = if shape.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let mut during = Vec::new();
    let mut during_timeouts = 0;
    let mut deleted = 0.0;
    let mut last_change = started.elapsed();
    let mut quiet = 0;
    while started.elapsed() < Duration::from_secs(3600) {
        let (s, t) = probers(&js, &client, api, Instant::now() + slice).await?;
        let now_deleted = writer
            .metric_or_zero(&client, "sdash_writer_retention_deleted_total")
            .await;
        if now_deleted > deleted || deleted == 0.0 {
            // The pass was running during (part of) this slice.
            during.extend(s);
            during_timeouts += t;
            if now_deleted > deleted {
                last_change = started.elapsed();
                quiet = 0;
            }
            deleted = now_deleted;
            if deleted == 0.0 && started.elapsed() > Duration::from_secs(900) {
                break;
            }
        } else {
            quiet += 1;
            if quiet >= 2 {
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    let sent = load.await??;
    writer.stop().await?;
    let idle_l = latency(idle, idle_timeouts);
    let during_l = latency(during, during_timeouts);
    report.push(
        Row::new(
            case,
            "freshness p99 during a large retention pass",
            during_l.p99,
            "ms",
        )
        .vs("same writer and flow, no retention", idle_l.p99)
        .target("< 1000 ms", during_l.p99 < 1000.0 && during_l.errors == 0),
    );
    report.push(
        Row::new(case, "freshness p50 during the pass", during_l.p50, "ms")
            .vs("no retention", idle_l.p50),
    );
    report.push(
        Row::new(
            case,
            "freshness probes during the pass",
            during_l.n as f64,
            "",
        )
        .vs("timed out (10 s)", during_l.errors as f64),
    );
    report.push(
        Row::new(
            case,
            &format!("large pass by the writer (windows -{} d)", shape.shift_days),
            last_change.as_secs_f64(),
            "s",
        )
        .vs("rows deleted", deleted),
    );
    report.push(
        Row::new(
            case,
            "snapshot flow (published)",
            sent as f64 / flow_started.elapsed().as_secs_f64().max(1e-9),
            "msg/s",
        )
        .vs("asked", shape.flow_rate),
    );
    Ok(())
}
