//! The tiered phase: the whole fleet's history generated into the writer's tiers, its size
//! next to today's storage, then the charts, a retention pass and freshness on it.

use std::time::Instant;

use sdash_harness::{Backend, TestDatabase};
use sdash_proto::now_ms;
use sdash_writer::Store;

use super::baseline::Baseline;
use super::charts::charts;
use super::database::{capacity_bytes, clear_capacity, db_size, settle, table_exists};
use super::freshness::freshness;
use super::generate::{Job, RawRule};
use super::load::run_job;
use super::retention::retention_pass;
use super::{DAY_MS, HOUR_MS, MIB, Shape};
use crate::bench::api::{RunningApi, seed_fleet_range};
use crate::bench::writer::backend_name;
use crate::bench::{Report, Row};

/// The tiered storage: generated, measured, charted, retention, freshness.
pub(super) async fn tiered(
    shape: &Shape,
    backend: Backend,
    base: &Baseline,
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = backend_name(backend);
    let case = format!("{name} {} systems x {} days", shape.systems, shape.days);
    println!("-- {case}");
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url).await?;
    let mut seq = 0;
    seed_fleet_range(&store, backend, 0..shape.systems, &mut seq).await?;
    store.close().await;
    let has_hourly = table_exists(&db, "capacity_hourly").await;
    anyhow::ensure!(
        has_hourly,
        "the writer's schema has no capacity_hourly table (tiers not migrated)"
    );
    clear_capacity(&db).await?;
    let end = now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - shape.days * DAY_MS;
    let job = Job {
        systems: 0..shape.systems,
        start,
        end,
        raw_from: end - (shape.raw_days + shape.expired_days) * DAY_MS,
        raw_to: end,
        hourly_from: end - (shape.hourly_days + shape.expired_days) * DAY_MS,
        daily_from: start,
        rule: RawRule::Deadband,
    };
    let (written, gen_secs) = run_job(shape, &db, job).await?;
    let settle_started = Instant::now();
    settle(&db).await?;
    let settle_secs = settle_started.elapsed().as_secs_f64();
    let n = shape.systems as f64;
    report.push(Row::new(
        &case,
        "rows generated (raw / hourly / daily)",
        written.total() as f64,
        "rows",
    ));
    report.push(
        Row::new(
            &case,
            "raw samples per system per day",
            written.raw as f64 / n / (shape.raw_days + shape.expired_days) as f64,
            "rows",
        )
        .vs("polls per day", (DAY_MS / shape.interval_ms) as f64),
    );
    report.push(Row::new(
        &case,
        "hourly rollups",
        written.hourly as f64,
        "rows",
    ));
    report.push(Row::new(
        &case,
        "daily rollups",
        written.daily as f64,
        "rows",
    ));
    report.push(
        Row::new(&case, "generation time", gen_secs, "s")
            .vs("rows/s", written.total() as f64 / gen_secs.max(1e-9)),
    );
    report.push(Row::new(
        &case,
        "VACUUM/ANALYZE after loading",
        settle_secs,
        "s",
    ));
    // Size, with the expired day still in (it is what the retention pass deletes next).
    let (bytes, tables) = db_size(&db).await?;
    let per_system = bytes / n;
    // Today's storage for the same fleet: its capacity tables per system (measured on the
    // sample) and the same other tables (inventory, state) as here.
    let base_per_system = if tables.is_empty() || base.capacity_bytes_per_system == 0.0 {
        base.bytes_per_system
    } else {
        base.capacity_bytes_per_system + (bytes - capacity_bytes(&tables)) / n
    };
    report.push(
        Row::new(&case, "database size per system", per_system / MIB, "MiB")
            .vs("today's storage per system", base_per_system / MIB)
            .target("<= 2 MiB", per_system <= 2.0 * MIB),
    );
    if !tables.is_empty() {
        report.push(
            Row::new(
                &case,
                "capacity tables per system",
                capacity_bytes(&tables) / n / MIB,
                "MiB",
            )
            .vs("today's storage", base.capacity_bytes_per_system / MIB),
        );
        for (t, b) in tables.iter().filter(|(k, _)| k.starts_with("capacity_")) {
            report.push(Row::new(
                &case,
                &format!("{t} per system"),
                b / n / 1024.0,
                "KiB",
            ));
        }
    }
    report.push(
        Row::new(&case, "database size", bytes / (1024.0 * MIB), "GiB").vs(
            "today's storage (extrapolated)",
            base_per_system * n / (1024.0 * MIB),
        ),
    );

    let api = RunningApi::start(&db.url).await?;
    charts(shape, &api, start, end, &case, base, report).await?;

    // The retention pass: the expired day of raw samples and hourly rollups falls out.
    let (secs, deleted) = retention_pass(shape, &db, 0, &case, report, Some(&api)).await?;
    report.push(
        Row::new(&case, "retention pass (1 day expired)", secs, "s")
            .vs("today's storage, same fleet", base.retention_secs),
    );
    report.push(
        Row::new(&case, "rows deleted by the pass", deleted as f64, "rows")
            .vs("today's storage, same fleet", base.retention_rows as f64),
    );
    freshness(shape, &db, &api, &case, report).await?;
    drop(api);
    if let Ok((after, _)) = db_size(&db).await {
        report.push(Row::new(
            &case,
            "database size per system after the passes",
            after / n / MIB,
            "MiB",
        ));
    }
    Ok(())
}
