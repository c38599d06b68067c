//! history-scale (#15 items 2 and 6): years of capacity history for a large fleet, generated
//! directly into the writer's storage tiers (not in real time, not through the bus), then
//! measured through the real API and the writer's own retention:
//!
//! * database size per system, next to today's storage (one raw sample per poll for the raw
//!   window plus daily rollups), measured on a sample of systems and extrapolated;
//! * the time of a retention pass (the oldest day of raw samples and hourly rollups falling out),
//!   next to today's storage deleting a day of per-poll samples for the whole fleet;
//! * p99 of the 2-year capacity chart of one system and of the fleet grouped by a tag;
//! * fleet-list p99 while the retention pass runs, next to the same without it;
//! * freshness p99 (snapshot published -> visible in the API) while a writer consuming a steady
//!   snapshot flow runs a large retention pass, next to the same writer without one.
//!
//! The history follows a per-system model (growth trend, a daily cycle, noise, a few jumps, for
//! some systems a capacity expansion). Raw samples are simulated poll by poll for the raw window
//! and stored by the writer's deadband / max-gap rule; older hours come from the model in closed
//! form (first and last poll of the hour, the noise bound for min and max). Rows are generated
//! hour by hour for the whole fleet (time-major, as the writer writes them), so that the indexes
//! fill as they would after two years of polling.
//!
//! The parts: the [`model`] of one system's capacity, the [`generate`]d rows of the tiers,
//! [`load`]ing them per backend, measuring the [`database`], [`requests`] to the API, and the
//! phases: the [`baseline`] (today's storage), the [`tiered`] storage with its [`charts`], a
//! [`retention`] pass and [`freshness`] under a large pass.

mod baseline;
mod charts;
mod database;
mod freshness;
mod generate;
mod load;
mod model;
mod requests;
mod retention;
mod tiered;

use std::time::Duration;

use sdash_harness::Backend;
use sdash_writer::RetentionPolicy;

use super::{Options, Report};
use baseline::baseline_storage;
use tiered::tiered;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const TIB: f64 = 1_099_511_627_776.0;
const MIB: f64 = 1_048_576.0;

/// The sizes and windows of one run.
#[derive(Debug, Clone)]
struct Shape {
    systems: usize,
    /// Days of history (years × 365).
    days: i64,
    interval_ms: i64,
    /// The writer's windows: raw samples and hourly rollups are kept this many days.
    raw_days: i64,
    hourly_days: i64,
    /// Raw samples and hourly rollups generated beyond the windows: what a retention pass deletes.
    expired_days: i64,
    /// The freshness phase shortens both windows by this many days: a large retention pass.
    shift_days: i64,
    /// Systems of the per-poll baseline (today's storage), measured and extrapolated.
    baseline_systems: usize,
    /// The writer's raw-sample rule: a sample is stored when used or total moved by more than
    /// the deadband since the last stored one, or when the last stored one is `max_gap_ms` old.
    deadband_pct: f64,
    deadband_min_bytes: f64,
    max_gap_ms: i64,
    /// Concurrent clients on a chart, and how long each latency measure runs.
    chart_clients: usize,
    duration: Duration,
    /// Retention rows per statement (the writer's default).
    retention_batch: u32,
    /// Snapshots per second of the steady flow of the freshness phase.
    flow_rate: f64,
    quick: bool,
}

impl Shape {
    fn of(options: &Options) -> Shape {
        let quick = options.quick;
        let years = options.years.unwrap_or(2.0);
        let days = if quick {
            30
        } else {
            ((years * 365.0).round() as i64).max(2)
        };
        let systems = options
            .systems
            .unwrap_or(if quick { 20 } else { 10_000 })
            .max(1);
        let interval_ms = options
            .interval
            .map(|d| d.as_millis() as i64)
            .unwrap_or(60_000)
            .clamp(1000, HOUR_MS);
        let defaults = RetentionPolicy::default();
        // The writer's raw-sample rule by default (deadband, max gap).
        let raw_rule = sdash_writer::RawSamplePolicy::default();
        let (raw_days, hourly_days) = if quick {
            (7, 20)
        } else {
            (
                i64::from(defaults.capacity_raw_days),
                i64::from(defaults.capacity_hourly_days),
            )
        };
        let raw_days = raw_days.min(days);
        let hourly_days = hourly_days.min(days).max(raw_days);
        Shape {
            systems,
            days,
            interval_ms,
            raw_days,
            hourly_days,
            expired_days: 1,
            shift_days: if quick { 2 } else { 7 },
            baseline_systems: options
                .baseline_systems
                .unwrap_or(if quick { 4 } else { 20 })
                .clamp(1, systems),
            deadband_pct: raw_rule.deadband_percent,
            deadband_min_bytes: raw_rule.deadband_bytes as f64,
            max_gap_ms: options
                .raw_max_gap
                .map(|d| d.as_millis() as i64)
                .unwrap_or(raw_rule.max_gap_ms)
                .max(interval_ms),
            chart_clients: 4,
            duration: options
                .duration
                .unwrap_or(Duration::from_secs(if quick { 1 } else { 10 })),
            retention_batch: defaults.batch_rows,
            flow_rate: (systems as f64 * 1000.0 / interval_ms as f64).clamp(1.0, 500.0),
            quick,
        }
    }

    fn polls_per_hour(&self) -> i64 {
        (HOUR_MS / self.interval_ms).max(1)
    }
}

/// The id of system `i` of the generated fleet (as `seed_fleet_range` names it).
fn system_id(i: u32) -> String {
    format!("arr-{i:05}")
}

pub(crate) async fn history_scale(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let shape = Shape::of(options);
    println!(
        "-- {} systems x {} days every {} s; raw window {} d, hourly {} d (+{} d to expire); deadband {} % (min {} bytes), max gap {} s",
        shape.systems,
        shape.days,
        shape.interval_ms / 1000,
        shape.raw_days,
        shape.hourly_days,
        shape.expired_days,
        shape.deadband_pct,
        shape.deadband_min_bytes,
        shape.max_gap_ms / 1000
    );
    for backend in options.backends_or(&[Backend::Sqlite, Backend::Postgres]) {
        let baseline = baseline_storage(&shape, backend, report).await?;
        tiered(&shape, backend, &baseline, report).await?;
    }
    report.note(format!(
        "History generated directly (no bus): per system a growth trend (0.02-0.15 %/day, one in 50 at 0.4 %/day), a daily cycle, \
         noise, 0-3 jumps of -5..+8 % and for 30 % a capacity expansion; polls every {} s simulated one by one for the raw window \
         (stored by the writer's rule: used or total moved by more than {} % of total, at least {} bytes, or {} s since the last \
         stored sample), older hours in closed form (first and last poll of the hour from the trend, min/max by the noise bound). \
         Rows are inserted hour by hour for the whole fleet, as the writer writes them, so the indexes fill as after two years of \
         polling. Sizes: SQLite (page_count - freelist_count) x page_size after a checkpoint, PostgreSQL pg_database_size and \
         pg_total_relation_size after VACUUM ANALYZE.",
        shape.interval_ms / 1000,
        shape.deadband_pct,
        shape.deadband_min_bytes,
        shape.max_gap_ms / 1000
    ));
    report.note(format!(
        "Baseline (today's storage: one raw sample per poll for {} days plus daily rollups): {} systems x {} polls/day x {} days \
         cannot be materialized here for the whole fleet, so it is measured on {} systems with the same model and extrapolated per \
         system; its retention pass (one day of per-poll samples of every system) is measured at full fleet size: one expired day of \
         per-poll samples generated for every system and deleted by the writer's retention.",
        shape.raw_days,
        shape.systems,
        DAY_MS / shape.interval_ms,
        shape.raw_days,
        shape.baseline_systems
    ));
    report.note(
        "Charts through the API's HTTP routes (what users get): GET /api/v1/systems/{id}/capacity?from=&to= (2 years, random \
         systems) and GET /api/v1/capacity/history?group_by=environment&from=&to=, clients interleaved in rounds with GET /healthz \
         of the same server as the static baseline. Retention: Store::apply_retention (the writer's code) with the writer's \
         windows, while 16 clients read the fleet list (GET /api/v1/systems). Freshness: a writer consuming a steady snapshot flow \
         (the fleet's own rate, at most 500/s), 4 probers publishing a snapshot and polling GET /api/v1/systems/{id} until it \
         shows, first with nothing to delete, then restarted with both windows shortened (a large retention pass).",
    );
    Ok(())
}
