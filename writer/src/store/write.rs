//! Writing one planned batch in one transaction, for either backend: check the writer lock,
//! insert what the messages say, read the stored state of the batch's systems, derive history
//! from it ([`super::derive`]), write that (the capacity, pool and performance tiers among it,
//! recording what they counted in [`super::ledger`]) and the changes it made (into the outbox,
//! [`super::outbox`]), and record the commit in `pipeline_status`.

use std::collections::BTreeMap;

use sdash_proto::{Envelope, Snapshot};
use sqlx::{Pool, SqlSafeStr};

use super::dialect::{Conn, Dialect, TiersWritten};
use super::ledger::{self, Ledger};
use super::plan::{AlertEpisode, Plan, SampleRow};
use super::sql::{Bind, Sql};
use super::tables::Tiered;
use super::{CommitMeta, RowCounts, StoreError};
use super::{commands, derive, outbox};

/// Writes `plan` in one transaction.
pub(crate) async fn write<D: Dialect>(
    pool: &Pool<D::Db>,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    let mut tx = D::begin(pool).await?;
    let rows = write_in::<D>(&mut tx, plan, meta).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn write_in<D: Dialect>(
    c: &mut Conn<D>,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    match meta.fence_pid {
        0 => {}
        pid if pid < 0 => return Err(StoreError::LockLost),
        pid => {
            if !D::writer_lock_held(c, pid).await? {
                return Err(StoreError::LockLost);
            }
        }
    }
    let mut rows = RowCounts::default();
    if !plan.dead.is_empty() {
        rows.dead_letters = D::insert_dead_letters(c, &plan.dead).await?;
    }
    if !plan.events.is_empty() {
        rows.events = D::insert_events(c, &plan.events).await?;
    }
    if !plan.systems.is_empty() {
        rows.systems = D::upsert_systems(c, &plan.systems).await?;
    }
    if !plan.collectors.is_empty() {
        rows.collectors = D::upsert_collectors(c, &plan.collectors).await?;
    }
    if !plan.snapshots.is_empty() {
        write_snapshots::<D>(c, &plan.snapshots, meta, &mut rows).await?;
    }
    // After the snapshots: an alert opened in this batch can be acknowledged in it.
    if !plan.commands.is_empty() {
        commands::write::<D>(c, &plan.commands, meta, &mut rows).await?;
    }
    if !plan.history.is_empty() {
        super::history::write::<D>(c, &plan.history, meta.now, &mut rows).await?;
    }
    if let Some(seq) = plan.last_stream_seq {
        D::Db::execute(
            c,
            "INSERT INTO pipeline_status (id, writer_id, last_commit_at, last_stream_seq, consumer_pending) \
             VALUES (1, $1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET writer_id = excluded.writer_id, last_commit_at = excluded.last_commit_at, \
             last_stream_seq = excluded.last_stream_seq, consumer_pending = excluded.consumer_pending"
                .into_sql_str(),
            &[
                Bind::Text(meta.writer_id),
                Bind::Int(meta.now),
                Bind::Int(seq),
                Bind::Int(meta.consumer_pending),
            ],
        )
        .await?;
    }
    Ok(rows)
}

/// Snapshots, set-based: one read of the stored state of all the batch's systems, history
/// derived in memory, then one statement per kind of row (the backends chunk where they must),
/// so the number of statements does not grow with the batch.
async fn write_snapshots<D: Dialect>(
    c: &mut Conn<D>,
    snapshots: &BTreeMap<String, Vec<Envelope<Snapshot>>>,
    meta: &CommitMeta<'_>,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = snapshots.keys().map(String::as_str).collect();
    let stored = D::read_stored(c, &ids).await?;
    let ledger = ledger::read::<D>(c, snapshots, &stored.states).await?;
    let mut d = derive::derive(
        snapshots,
        &stored.states,
        &stored.open_alerts,
        meta.capacity_thresholds,
    );

    if !d.minimal_systems.is_empty() {
        rows.systems += D::insert_minimal_systems(c, &d.minimal_systems).await?;
    }
    if !d.states.is_empty() {
        rows.system_state += D::upsert_states(c, &d.states).await?;
    }
    if !d.last_online.is_empty() {
        rows.system_state += D::raise_last_online(c, &d.last_online).await?;
    }
    if !d.transitions.is_empty() {
        rows.status_transitions += D::insert_transitions(c, &d.transitions).await?;
    }
    // Stored episodes first (a clear frees the open slot a re-opened alert then takes). Most
    // are seen again unchanged: those only move `last_seen`.
    let (touched, updated): (Vec<&AlertEpisode>, Vec<&AlertEpisode>) =
        d.alert_updates.iter().partition(|e| e.touch_only);
    if !touched.is_empty() {
        rows.alerts += D::touch_alerts(c, &touched).await?;
    }
    if !updated.is_empty() {
        rows.alerts += D::update_alerts(c, &updated).await?;
    }
    if !d.alert_inserts.is_empty() {
        rows.alerts += D::insert_alerts(c, &d.alert_inserts).await?;
    }
    if !d.samples.is_empty() {
        write_capacity::<D>(c, &d.samples, &ledger, meta, rows).await?;
    }
    if !d.pools.is_empty() {
        let w = write_tiers::<D, _>(c, &d.pools, &ledger).await?;
        rows.pool_hourly += w.hourly;
        rows.pool_daily += w.daily;
    }
    if !d.performance.is_empty() {
        let w = write_tiers::<D, _>(c, &d.performance, &ledger).await?;
        rows.performance_samples += w.raw;
        rows.performance_hourly += w.hourly;
        rows.performance_daily += w.daily;
    }
    // What the tiers counted, for telling a later redelivery from a late snapshot.
    ledger::record::<D>(c, &ledger, snapshots, meta.now, meta.late_window_ms).await?;
    write_changes::<D>(c, &mut d.changes, meta, rows).await
}

/// The change records of a batch into `change_outbox`, with the routing context of the systems
/// that changed (only those need it; most batches have no changes).
pub(crate) async fn write_changes<D: Dialect>(
    c: &mut Conn<D>,
    changes: &mut Vec<derive::Change>,
    meta: &CommitMeta<'_>,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut changed: Vec<&str> = changes.iter().map(|c| c.system_id.as_str()).collect();
    changed.sort_unstable();
    changed.dedup();
    let contexts = D::read_system_context(c, &changed).await?;
    derive::add_context(changes, &contexts);
    let outbox = outbox::rows(std::mem::take(changes), meta.writer_id, meta.now)?;
    rows.change_outbox += D::insert_changes(c, &outbox).await?;
    Ok(())
}

/// The capacity tiers ([`derive::capacity`]): against what the tiers hold for the batch's
/// systems and the ledger, the samples not counted yet go into the hourly and daily rows, and
/// those outside the deadband (or after the maximum gap) are stored raw.
async fn write_capacity<D: Dialect>(
    c: &mut Conn<D>,
    samples: &[SampleRow],
    ledger: &Ledger,
    meta: &CommitMeta<'_>,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    let mut ids: Vec<&str> = samples.iter().map(|s| s.system_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let marks = D::read_capacity_marks(c, &ids).await?;
    let tiers = derive::capacity(samples, &marks, meta.raw_samples, ledger);
    rows.capacity_samples_not_newer += tiers.not_newer;
    rows.capacity_samples_repeated += tiers.repeated;
    rows.capacity_samples_late += tiers.late;
    rows.capacity_samples_thinned += tiers.thinned;
    if tiers.raw.is_empty() && tiers.hourly.is_empty() {
        return Ok(());
    }
    let written = D::write_capacity(c, &tiers).await?;
    rows.capacity_samples += written.raw;
    rows.capacity_hourly += written.hourly;
    rows.capacity_daily += written.daily;
    // A day before yesterday changed (a late snapshot): readers that cache past days reload.
    // The marker is the commit time, or one more than before when that is not later (two
    // commits in one millisecond still move it).
    let yesterday = derive::utc_day(meta.now - 86_400_000);
    if tiers.daily.iter().any(|d| d.period < yesterday) {
        // An upsert: the first batch ever comes before the commit's pipeline_status row (whose
        // upsert then leaves this column alone).
        D::Db::execute(
            c,
            "INSERT INTO pipeline_status (id, writer_id, last_commit_at, last_stream_seq, capacity_past_version) \
             VALUES (1, $1, $2, 0, $2) ON CONFLICT (id) DO UPDATE SET capacity_past_version = \
             CASE WHEN excluded.capacity_past_version > pipeline_status.capacity_past_version \
             THEN excluded.capacity_past_version ELSE pipeline_status.capacity_past_version + 1 END"
                .into_sql_str(),
            &[Bind::Text(meta.writer_id), Bind::Int(meta.now)],
        )
        .await?;
    }
    Ok(())
}

/// The pool or performance tiers ([`derive::tiers`]): against how far each system's hourly
/// rollups counted and the ledger, the samples not counted yet go into the hourly and daily
/// rows (and into the raw table, for performance).
async fn write_tiers<D: Dialect, S: Tiered>(
    c: &mut Conn<D>,
    samples: &[S],
    ledger: &Ledger,
) -> Result<TiersWritten, StoreError> {
    let mut ids: Vec<&str> = samples.iter().map(|s| s.system_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    let through = D::read_counted_through(c, S::hourly().name, &ids).await?;
    let tiers = derive::tiers(samples, &through, S::raw().is_some(), ledger);
    let mut written = TiersWritten::default();
    if let Some(table) = S::raw()
        && !tiers.raw.is_empty()
    {
        written.raw = D::upsert_rows(c, table, &tiers.raw).await?;
    }
    if !tiers.hourly.is_empty() {
        written.hourly = D::upsert_rows(c, S::hourly(), &tiers.hourly).await?;
        written.daily = D::upsert_rows(c, S::daily(), &tiers.daily).await?;
    }
    Ok(written)
}
