//! Retention, for either backend: deletes in statements of a few thousand rows (the writer is
//! never blocked for long), until nothing old is left.

use sqlx::{Pool, SqlSafeStr};

use super::dialect::{Conn, Dialect};
use super::sql::{Bind, Sql};
use super::{RetentionOutcome, StoreError};

/// What [`apply`] deletes: rows older than these times (ms since the epoch), and events beyond
/// `keep_per_system` per system (0 = no limit); `batch` rows per statement.
pub(crate) struct Cutoffs {
    pub events_before: i64,
    pub samples_before: i64,
    pub dead_letters_before: i64,
    pub keep_per_system: i64,
    pub batch: i64,
}

pub(crate) async fn apply<D: Dialect>(
    pool: &Pool<D::Db>,
    cut: &Cutoffs,
) -> Result<RetentionOutcome, StoreError> {
    let mut conn = pool.acquire().await?;
    let c: &mut Conn<D> = &mut conn;
    let mut out = RetentionOutcome {
        events_expired: delete_all::<D>(
            c,
            "events",
            "observed_at < $2",
            &[Bind::Int(cut.events_before)],
            cut.batch,
        )
        .await?,
        ..Default::default()
    };
    if cut.keep_per_system > 0 {
        let systems = D::Db::fetch_all(
            c,
            "SELECT system_id FROM events GROUP BY system_id HAVING count(*) > $1 ORDER BY system_id"
                .into_sql_str(),
            &[Bind::Int(cut.keep_per_system)],
        )
        .await?
        .iter()
        .map(|r| D::Db::text(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
        for system in &systems {
            // The newest event beyond the limit: it and everything older go.
            let newest_beyond = D::Db::fetch_all(
                c,
                "SELECT observed_at, event_id FROM events WHERE system_id = $1 \
                 ORDER BY observed_at DESC, event_id DESC LIMIT 1 OFFSET $2"
                    .into_sql_str(),
                &[Bind::Text(system), Bind::Int(cut.keep_per_system)],
            )
            .await?;
            let Some(row) = newest_beyond.first() else {
                continue;
            };
            let (at, id) = (D::Db::int(row, 0)?, D::Db::text(row, 1)?);
            out.systems_trimmed += 1;
            out.events_over_limit += delete_all::<D>(
                c,
                "events",
                "system_id = $2 AND (observed_at, event_id) <= ($3, $4)",
                &[Bind::Text(system), Bind::Int(at), Bind::Text(&id)],
                cut.batch,
            )
            .await?;
        }
    }
    out.capacity_samples_expired = delete_all::<D>(
        c,
        "capacity_samples",
        "observed_at < $2",
        &[Bind::Int(cut.samples_before)],
        cut.batch,
    )
    .await?;
    out.dead_letters_expired = delete_all::<D>(
        c,
        "dead_letters",
        "received_at < $2",
        &[Bind::Int(cut.dead_letters_before)],
        cut.batch,
    )
    .await?;
    Ok(out)
}

/// Deletes the rows of `table` matching `condition`, `batch` at a time; how many went.
async fn delete_all<D: Dialect>(
    c: &mut Conn<D>,
    table: &str,
    condition: &str,
    binds: &[Bind<'_>],
    batch: i64,
) -> Result<u64, StoreError> {
    let sql = sqlx::AssertSqlSafe(std::sync::Arc::<str>::from(D::delete_some(
        table, condition,
    )))
    .into_sql_str();
    let binds: Vec<Bind<'_>> = std::iter::once(Bind::Int(batch))
        .chain(binds.iter().copied())
        .collect();
    let mut total = 0;
    loop {
        let n = D::Db::execute(c, sql.clone(), &binds).await?;
        total += n;
        if n < batch as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
