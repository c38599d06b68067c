//! The baseline phase, today's storage: one raw sample per poll for the raw window plus daily
//! rollups on a sample of systems (sizes extrapolated to the fleet, the chart of one system),
//! then one expired day of per-poll samples for the whole fleet and the retention pass that
//! deletes it.

use std::sync::Arc;

use sdash_harness::{Backend, TestDatabase};
use sdash_proto::now_ms;
use sdash_writer::Store;

use super::database::{capacity_bytes, clear_capacity, db_size, settle};
use super::generate::{Job, RawRule};
use super::load::run_job;
use super::requests::{get_json, latency, rfc};
use super::retention::retention_pass;
use super::{DAY_MS, HOUR_MS, MIB, Shape, system_id};
use crate::bench::api::{RunningApi, hammer, seed_fleet_range};
use crate::bench::writer::backend_name;
use crate::bench::{Report, Row, http_client};

/// What the baseline measured, for the tiered rows' ratios.
pub(super) struct Baseline {
    pub(super) bytes_per_system: f64,
    pub(super) capacity_bytes_per_system: f64,
    pub(super) retention_secs: f64,
    pub(super) retention_rows: u64,
    pub(super) chart_p99: f64,
}

/// Today's storage: one raw sample per poll for the raw window plus daily rollups, on
/// `baseline_systems` systems; then one expired day of per-poll samples for the whole fleet and
/// the retention pass that deletes it.
pub(super) async fn baseline_storage(
    shape: &Shape,
    backend: Backend,
    report: &mut Report,
) -> anyhow::Result<Baseline> {
    let name = backend_name(backend);
    let case = format!("{name} baseline: per-poll raw + daily");
    let b = shape.baseline_systems;
    println!("-- {case}: {b} systems");
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url).await?;
    let mut seq = 0;
    // The whole fleet's inventory first (the retention pass below needs it), history for `b`.
    seed_fleet_range(&store, backend, 0..shape.systems, &mut seq).await?;
    store.close().await;
    clear_capacity(&db).await?;
    let end = now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - shape.days * DAY_MS;
    let job = Job {
        systems: 0..b,
        start,
        end,
        raw_from: end - shape.raw_days * DAY_MS,
        raw_to: end,
        hourly_from: i64::MAX,
        daily_from: start,
        rule: RawRule::EveryPoll,
    };
    let (written, secs) = run_job(shape, &db, job).await?;
    settle(&db).await?;
    let (bytes, tables) = db_size(&db).await?;
    let cap_per_system = capacity_bytes(&tables) / b as f64;
    // The capacity history of the sample per system, the other tables per fleet system.
    let per_system = if tables.is_empty() {
        bytes / b as f64
    } else {
        cap_per_system + (bytes - capacity_bytes(&tables)) / shape.systems as f64
    };
    report.push(Row::new(
        &case,
        "rows generated",
        written.total() as f64,
        "rows",
    ));
    report.push(Row::new(&case, "generation time", secs, "s"));
    report.push(Row::new(
        &case,
        "raw samples per system",
        written.raw as f64 / b as f64,
        "rows",
    ));
    report.push(Row::new(
        &case,
        "database size per system (measured)",
        per_system / MIB,
        "MiB",
    ));
    if !tables.is_empty() {
        report.push(Row::new(
            &case,
            "capacity tables per system",
            cap_per_system / MIB,
            "MiB",
        ));
    }
    let history_per_system = if tables.is_empty() {
        per_system
    } else {
        cap_per_system
    };
    report.push(Row::new(
        &case,
        &format!("capacity history, {} systems (extrapolated)", shape.systems),
        history_per_system * shape.systems as f64 / (1024.0 * MIB),
        "GiB",
    ));
    // The chart of one system on today's storage, the same route.
    let chart_p99 = {
        let api = RunningApi::start(&db.url).await?;
        let paths: Vec<String> = (0..b)
            .map(|s| {
                format!(
                    "/api/v1/systems/{}/capacity?from={}&to={}",
                    system_id(s as u32),
                    rfc(start),
                    rfc(end)
                )
            })
            .collect();
        let paths_first = paths[0].clone();
        let client = http_client()?;
        let (lat, errors) = hammer(
            &client,
            &format!("http://{}", api.addr),
            Arc::new(paths),
            shape.chart_clients,
            shape.duration,
        )
        .await?;
        let l = latency(lat, errors);
        let tier = match get_json(&client, &api.url(&paths_first)).await {
            Ok((_, _, v)) => v
                .get("tier")
                .or_else(|| v.get("resolution"))
                .and_then(|r| r.as_str())
                .unwrap_or("?")
                .to_owned(),
            Err(e) => format!("error: {e}"),
        };
        report.push(Row::new(
            &case,
            &format!("2-year chart of one system p99 ({tier})"),
            l.p99,
            "ms",
        ));
        report.push(
            Row::new(&case, "chart errors", l.errors as f64, "").target("= 0", l.errors == 0),
        );
        l.p99
    };
    // Retention at fleet size: one expired day of per-poll samples for every system.
    let expired_from = end - (shape.raw_days + shape.expired_days) * DAY_MS;
    let job = Job {
        systems: 0..shape.systems,
        start,
        end,
        raw_from: expired_from,
        raw_to: end - shape.raw_days * DAY_MS,
        hourly_from: i64::MAX,
        daily_from: i64::MAX,
        rule: RawRule::EveryPoll,
    };
    let (expired, secs) = run_job(shape, &db, job).await?;
    println!(
        "   {} expired per-poll samples for {} systems generated in {secs:.1} s",
        expired.raw, shape.systems
    );
    settle(&db).await?;
    let (retention_secs, deleted) = retention_pass(shape, &db, 0, &case, report, None).await?;
    report.push(
        Row::new(
            &case,
            &format!("retention pass, {} systems", shape.systems),
            retention_secs,
            "s",
        )
        .vs("rows deleted", deleted as f64),
    );
    Ok(Baseline {
        bytes_per_system: per_system,
        capacity_bytes_per_system: cap_per_system,
        retention_secs,
        retention_rows: deleted,
        chart_p99,
    })
}
