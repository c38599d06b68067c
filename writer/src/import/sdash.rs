//! What sdash has already, read (read-only) from the writer's database: its systems, the days
//! and events of each, its open alert instances, the assignee list and the commands earlier
//! imports published. The import publishes only what is new; the writer's natural keys would
//! drop repeats anyway.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::db::{Cell, ReadDb, Ty};

/// A system in sdash's `systems` table.
#[derive(Debug, Clone)]
pub struct SdashSystem {
    pub id: String,
    pub name: String,
    pub vendor: String,
    /// 0 while only a snapshot or history named it (no inventory record yet).
    pub updated_at: i64,
}

/// An open alert instance.
#[derive(Debug, Clone)]
pub struct OpenAlert {
    pub system_id: String,
    pub alert_id: String,
    pub title: String,
    pub first_seen: i64,
}

/// What sdash has.
#[derive(Debug, Default)]
pub struct SdashState {
    pub systems: Vec<SdashSystem>,
    pub open_alerts: Vec<OpenAlert>,
    pub assignees: HashSet<String>,
    /// Command ids already recorded (`command_audit`).
    pub audited: HashSet<String>,
}

/// A system id is `[a-z0-9_-]` (checked before it is put in SQL).
fn quoted_id(id: &str) -> Option<String> {
    sdash_proto::valid_system_id(id).then(|| format!("'{id}'"))
}

fn text(c: &Cell) -> String {
    c.text().unwrap_or_default().to_owned()
}

impl SdashState {
    pub async fn read(db: &ReadDb, publisher: &str) -> anyhow::Result<SdashState> {
        let mut s = SdashState::default();
        if db.columns("systems").await?.is_empty() || db.columns("capacity_daily").await?.is_empty()
        {
            anyhow::bail!(
                "the database has no sdash schema yet: start sdash-writer once first (it creates \
                 and migrates it), then import"
            );
        }
        for r in db
            .select(
                "systems",
                &[
                    ("id", Ty::Text),
                    ("name", Ty::Text),
                    ("vendor", Ty::Text),
                    ("updated_at", Ty::Int),
                ],
                "WHERE removed = FALSE OR removed IS NULL ORDER BY id",
            )
            .await?
        {
            s.systems.push(SdashSystem {
                id: text(&r[0]),
                name: text(&r[1]),
                vendor: text(&r[2]),
                updated_at: r[3].int().unwrap_or(0),
            });
        }
        for r in db
            .select(
                "alerts",
                &[
                    ("system_id", Ty::Text),
                    ("alert_id", Ty::Text),
                    ("title", Ty::Text),
                    ("first_seen", Ty::Int),
                ],
                "WHERE cleared_at IS NULL ORDER BY system_id, alert_id",
            )
            .await?
        {
            s.open_alerts.push(OpenAlert {
                system_id: text(&r[0]),
                alert_id: text(&r[1]),
                title: text(&r[2]),
                first_seen: r[3].int().unwrap_or(0),
            });
        }
        if !db.columns("assignees").await?.is_empty() {
            s.assignees = db
                .select("assignees", &[("name", Ty::Text)], "")
                .await?
                .iter()
                .map(|r| text(&r[0]))
                .collect();
        }
        if db.columns("command_audit").await?.contains("publisher") {
            let publisher = publisher.replace('\'', "''");
            s.audited = db
                .select(
                    "command_audit",
                    &[("command_id", Ty::Text)],
                    &format!("WHERE publisher = '{publisher}'"),
                )
                .await?
                .iter()
                .map(|r| text(&r[0]))
                .collect();
        }
        Ok(s)
    }

    /// The stored days of `system` and their source (`measured` or `imported`).
    pub async fn days(db: &ReadDb, system: &str) -> anyhow::Result<HashMap<String, String>> {
        let Some(id) = quoted_id(system) else {
            return Ok(HashMap::new());
        };
        let has_source = db.columns("capacity_daily").await?.contains("source");
        let cols: &[(&str, Ty)] = if has_source {
            &[("day", Ty::Text), ("source", Ty::Text)]
        } else {
            &[("day", Ty::Text)]
        };
        Ok(db
            .select("capacity_daily", cols, &format!("WHERE system_id = {id}"))
            .await?
            .into_iter()
            .map(|r| {
                let source = r
                    .get(1)
                    .and_then(Cell::text)
                    .unwrap_or("measured")
                    .to_owned();
                (text(&r[0]), source)
            })
            .collect())
    }

    /// The ids of `system`'s events published by `publisher` (earlier imports).
    pub async fn imported_event_ids(
        db: &ReadDb,
        system: &str,
        publisher: &str,
    ) -> anyhow::Result<HashSet<String>> {
        let Some(id) = quoted_id(system) else {
            return Ok(HashSet::new());
        };
        let publisher = publisher.replace('\'', "''");
        Ok(db
            .select(
                "events",
                &[("event_id", Ty::Text)],
                &format!("WHERE system_id = {id} AND collector_id = '{publisher}'"),
            )
            .await?
            .iter()
            .map(|r| text(&r[0]))
            .collect())
    }

    /// How many events of `system` retention counts (not kept) at or after `since` (ms).
    pub async fn live_events_since(db: &ReadDb, system: &str, since: i64) -> anyhow::Result<u64> {
        let Some(id) = quoted_id(system) else {
            return Ok(0);
        };
        let keep = if db.columns("events").await?.contains("keep") {
            " AND NOT keep"
        } else {
            ""
        };
        let rows = db
            .query(
                &format!(
                    "SELECT {} FROM events WHERE system_id = {id} AND observed_at >= {since}{keep}",
                    db.cast("count(*)", Ty::Int)
                ),
                &[Ty::Int],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].int())
            .map_or(0, |n| n.max(0) as u64))
    }

    /// The writer's last committed stream sequence (0 before its first commit).
    pub async fn last_stream_seq(db: &ReadDb) -> anyhow::Result<u64> {
        let rows = db
            .select(
                "pipeline_status",
                &[("last_stream_seq", Ty::Int)],
                "WHERE id = 1",
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].int())
            .map_or(0, |n| n.max(0) as u64))
    }

    /// The outcomes the writer recorded for the commands `publisher` published.
    pub async fn command_outcomes(
        db: &ReadDb,
        publisher: &str,
    ) -> anyhow::Result<BTreeMap<(String, String), u64>> {
        if !db.columns("command_audit").await?.contains("publisher") {
            return Ok(BTreeMap::new());
        }
        let publisher = publisher.replace('\'', "''");
        let mut out = BTreeMap::new();
        for r in db
            .select(
                "command_audit",
                &[("outcome", Ty::Text), ("reason", Ty::Text)],
                &format!("WHERE publisher = '{publisher}'"),
            )
            .await?
        {
            *out.entry((text(&r[0]), text(&r[1]))).or_default() += 1;
        }
        Ok(out)
    }
}
