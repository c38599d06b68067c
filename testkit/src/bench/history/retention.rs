//! A retention pass by the writer's own code (`Store::apply_retention`) with the writer's
//! windows, while clients read the fleet list, next to the same readers without it.

use std::time::Instant;

use anyhow::Context as _;
use sdash_harness::TestDatabase;
use sdash_writer::{RetentionPolicy, Store};
use tokio::sync::watch;

use super::Shape;
use super::requests::{latency, read_until};
use crate::bench::api::RunningApi;
use crate::bench::{Report, Row, http_client};

/// The writer's retention policy for `shape`, windows shortened by `shift_days`.
pub(super) fn policy(shape: &Shape, shift_days: i64) -> RetentionPolicy {
    RetentionPolicy {
        event_retention_days: 0,
        events_per_system: 0,
        capacity_raw_days: (shape.raw_days - shift_days).max(1) as u32,
        capacity_hourly_days: (shape.hourly_days - shift_days).max(1) as u32,
        dead_letter_days: 0,
        batch_rows: shape.retention_batch,
        ..RetentionPolicy::default()
    }
}

/// One retention pass by the writer's code while 16 clients read the fleet list; before it, the
/// same readers for `shape.duration` without it (the baseline). Returns the pass's seconds and
/// rows deleted; pushes the fleet-list rows when `api` is given.
pub(super) async fn retention_pass(
    shape: &Shape,
    db: &TestDatabase,
    shift_days: i64,
    case: &str,
    report: &mut Report,
    api: Option<&RunningApi>,
) -> anyhow::Result<(f64, u64)> {
    let client = http_client()?;
    let list_url = api.map(|a| a.url("/api/v1/systems"));
    let idle = match &list_url {
        Some(url) => {
            let (tx, rx) = watch::channel(false);
            let readers = tokio::spawn({
                let (client, url) = (client.clone(), url.clone());
                async move { read_until(&client, url, 16, rx).await }
            });
            tokio::time::sleep(shape.duration).await;
            let _ = tx.send(true);
            let (lat, errors) = readers.await?;
            Some(latency(lat, errors))
        }
        None => None,
    };
    let store = Store::open(&db.url).await?;
    let (tx, rx) = watch::channel(false);
    let readers = list_url.clone().map(|url| {
        let client = client.clone();
        tokio::spawn(async move { read_until(&client, url, 16, rx).await })
    });
    let started = Instant::now();
    let outcome = store.apply_retention(&policy(shape, shift_days)).await;
    let secs = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    store.close().await;
    let outcome = outcome.context("retention")?;
    if let (Some(readers), Some(idle)) = (readers, idle) {
        let (lat, errors) = readers.await?;
        let during = latency(lat, errors);
        report.push(
            Row::new(case, "fleet list p50 during retention", during.p50, "ms")
                .vs("without retention", idle.p50),
        );
        report.push(
            Row::new(case, "fleet list p99 during retention", during.p99, "ms")
                .vs("without retention", idle.p99)
                .target(
                    "< 50 ms",
                    during.p99 < 50.0 && during.errors == 0 && during.n > 0,
                ),
        );
        report.push(
            Row::new(
                case,
                "fleet list requests during retention",
                during.n as f64,
                "",
            )
            .vs("errors", (during.errors + idle.errors) as f64),
        );
    }
    Ok((secs, outcome.total()))
}
