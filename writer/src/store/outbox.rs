//! The change outbox (`change_outbox`): the changes a batch derived ([`super::derive::Change`])
//! get their envelope here and are stored in the batch's transaction; the writer's publisher
//! (`pipeline/publish.rs`) reads them back in order, publishes them with `Nats-Msg-Id` = their
//! event id and deletes them once JetStream acknowledged them. So a crash between the commit and
//! the publication loses nothing (they are published after the restart) and invents nothing
//! (only committed changes are stored; a republished one keeps its id).

use std::collections::{BTreeMap, HashMap};

use sdash_proto::subjects::Kind;
use sdash_proto::{Envelope, SCHEMA_VERSION};
use sqlx::{ColumnIndex, Decode, Pool, Row, SqlSafeStr, Type};

use super::StoreError;
use super::derive::Change;
use super::plan::{OutboxRow, SystemContext};
use super::sql::{Bind, Sql};

/// The tags of a `systems` row (a JSON object of strings); a malformed value routes as none.
fn parse_tags(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The routing context of `systems` rows `(id, inventory name or null, tags)`, by system id.
pub(crate) fn system_contexts<R: Row>(
    rows: &[R],
) -> Result<HashMap<String, SystemContext>, StoreError>
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let tags: String = r.try_get(2)?;
        out.insert(
            r.try_get(0)?,
            SystemContext {
                name: r.try_get(1)?,
                tags: parse_tags(&tags),
            },
        );
    }
    Ok(out)
}

/// The outbox rows of `changes`: each in its envelope (a new event id, `collector_id` = the
/// writer's id, `observed_at` = the snapshot's), encoded.
pub(crate) fn rows(
    changes: Vec<Change>,
    writer_id: &str,
    now: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    changes
        .into_iter()
        .map(|c| {
            let kind = c.record.kind.as_str();
            let envelope = Envelope {
                schema: SCHEMA_VERSION,
                event_id: sdash_proto::new_event_id(),
                collector_id: writer_id.to_owned(),
                system_id: c.system_id,
                observed_at: c.observed_at,
                body: c.record,
            };
            let payload = sdash_proto::encode(&envelope)
                .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
            Ok(OutboxRow {
                event_id: envelope.event_id,
                system_id: envelope.system_id,
                kind,
                payload,
                created_at: now,
            })
        })
        .collect()
}

/// A change waiting in the outbox to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// Its place in the outbox: changes are published in this order.
    pub seq: i64,
    /// Its id (`Nats-Msg-Id`).
    pub event_id: String,
    pub system_id: String,
    /// The change's kind (`alert_opened`, ...).
    pub kind: String,
    /// The encoded `Envelope<ChangeRecord>`.
    pub payload: Vec<u8>,
}

impl PendingChange {
    /// `sdash.v1.change.<system_id>`.
    pub fn subject(&self) -> String {
        Kind::Change.subject(&self.system_id)
    }
}

/// The oldest `limit` changes of the outbox, in order.
pub(crate) async fn oldest<DB: Sql>(
    pool: &Pool<DB>,
    limit: i64,
) -> Result<Vec<PendingChange>, StoreError> {
    let mut c = pool.acquire().await?;
    let rows = DB::fetch_all(
        &mut c,
        "SELECT seq, event_id, system_id, kind, payload FROM change_outbox ORDER BY seq LIMIT $1"
            .into_sql_str(),
        &[Bind::Int(limit)],
    )
    .await?;
    let change = |r: &DB::Row| {
        Ok::<_, sqlx::Error>(PendingChange {
            seq: DB::int(r, 0)?,
            event_id: DB::text(r, 1)?,
            system_id: DB::text(r, 2)?,
            kind: DB::text(r, 3)?,
            payload: DB::bytes(r, 4)?,
        })
    };
    Ok(rows.iter().map(change).collect::<Result<_, _>>()?)
}

/// Deletes the changes up to and including `seq` (published and acknowledged, in order).
pub(crate) async fn forget_through<DB: Sql>(pool: &Pool<DB>, seq: i64) -> Result<u64, StoreError> {
    let mut c = pool.acquire().await?;
    Ok(DB::execute(
        &mut c,
        "DELETE FROM change_outbox WHERE seq <= $1".into_sql_str(),
        &[Bind::Int(seq)],
    )
    .await?)
}

/// How many changes wait in the outbox.
pub(crate) async fn depth<DB: Sql>(pool: &Pool<DB>) -> Result<i64, StoreError> {
    let mut c = pool.acquire().await?;
    let rows = DB::fetch_all(
        &mut c,
        "SELECT count(*) FROM change_outbox".into_sql_str(),
        &[],
    )
    .await?;
    Ok(match rows.first() {
        Some(r) => DB::int(r, 0)?,
        None => 0,
    })
}
