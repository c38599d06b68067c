//! Baseline (a) of writer-throughput: the rows of a case bulk inserted straight into the
//! migrated database, without the writer, to show what the database alone can take.

use std::collections::BTreeMap;
use std::time::Instant;

use sdash_harness::{Backend, TestDatabase};
use sdash_proto::*;
use sqlx::Connection;

use super::Msg;

/// The decoded rows of a case, for the raw bulk insert.
pub(super) struct Rows {
    pub(super) events: Vec<Envelope<EventRecord>>,
    pub(super) snapshots: Vec<Envelope<Snapshot>>,
}

pub(super) fn decode_rows(msgs: &[Msg]) -> anyhow::Result<Rows> {
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
pub(super) async fn raw_insert(db: &TestDatabase, rows: &Rows) -> anyhow::Result<f64> {
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

pub(super) fn newest_per_system(chunk: &[Envelope<Snapshot>]) -> Vec<&Envelope<Snapshot>> {
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
pub(super) struct AlertCols {
    pub(super) system: Vec<String>,
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
    pub(super) fn of(chunk: &[Envelope<Snapshot>]) -> AlertCols {
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
pub(super) struct DailyCols {
    pub(super) system: Vec<String>,
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
    pub(super) fn of(chunk: &[Envelope<Snapshot>]) -> DailyCols {
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
