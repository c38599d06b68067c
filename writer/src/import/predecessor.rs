//! Reading the predecessor's database (SQLite or PostgreSQL, the same table and column names):
//! its tables as rows, columns selected by name (a column an older install lacks reads as NULL),
//! credentials never selected at all.

use std::collections::BTreeMap;

use super::db::{Cell, ReadDb, Ty};

/// A `storage_systems` row (without any credential column).
#[derive(Debug, Clone)]
pub struct System {
    pub id: i64,
    pub name: Option<String>,
    pub vendor: Option<String>,
    pub ip_address: Option<String>,
    pub port: Option<i64>,
    pub enabled: Option<bool>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A `capacity_history` row.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub date: Option<String>,
    pub total_tb: Option<f64>,
    pub used_tb: Option<f64>,
    pub free_tb: Option<f64>,
}

/// A `system_logs` row.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub id: i64,
    pub timestamp: Option<String>,
    pub level: Option<String>,
    pub category: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
    pub status_code: Option<i64>,
    pub api_endpoint: Option<String>,
}

/// An `alert_states` row.
#[derive(Debug, Clone)]
pub struct AlertStateRow {
    pub id: i64,
    pub alert_key: Option<String>,
    pub acknowledged: Option<bool>,
    pub assignee: Option<String>,
    pub comment: Option<String>,
    pub updated_at: Option<String>,
}

/// An `assignee_history` row.
#[derive(Debug, Clone)]
pub struct AssigneeRow {
    pub id: i64,
    pub name: Option<String>,
    pub used_at: Option<String>,
}

/// Tag groups, tags and their assignments.
#[derive(Debug, Default, Clone)]
pub struct Tags {
    /// `tag_groups.id` → name.
    pub groups: BTreeMap<i64, Option<String>>,
    /// `tags.id` → (name, group id).
    pub tags: BTreeMap<i64, (Option<String>, Option<i64>)>,
    /// `storage_system_tags` rows: (row number, system id, tag id), in the table's order.
    pub links: Vec<(i64, Option<i64>, Option<i64>)>,
}

/// The predecessor's database.
pub struct Predecessor {
    pub db: ReadDb,
    /// What it is, for messages (`SQLite file …`, `PostgreSQL`).
    pub label: String,
}

fn id(c: &Cell) -> i64 {
    c.int().unwrap_or(0)
}

impl Predecessor {
    /// Whether the database has the predecessor's main table.
    pub async fn check(&self) -> anyhow::Result<()> {
        let cols = self.db.columns("storage_systems").await?;
        if !cols.contains("id") || !cols.contains("name") {
            anyhow::bail!(
                "{} has no storage_systems table with id and name: not the predecessor's database",
                self.label
            );
        }
        Ok(())
    }

    pub async fn systems(&self) -> anyhow::Result<Vec<System>> {
        Ok(self
            .db
            .select(
                "storage_systems",
                &[
                    ("id", Ty::Int),
                    ("name", Ty::Text),
                    ("vendor", Ty::Text),
                    ("ip_address", Ty::Text),
                    ("port", Ty::Int),
                    ("enabled", Ty::Int),
                    ("created_at", Ty::Text),
                    ("updated_at", Ty::Text),
                ],
                "ORDER BY id",
            )
            .await?
            .into_iter()
            .map(|r| System {
                id: id(&r[0]),
                name: r[1].text().map(str::to_owned),
                vendor: r[2].nonblank(),
                ip_address: r[3].nonblank(),
                port: r[4].int(),
                enabled: r[5].flag(),
                created_at: r[6].nonblank(),
                updated_at: r[7].nonblank(),
            })
            .collect())
    }

    pub async fn tags(&self) -> anyhow::Result<Tags> {
        let mut t = Tags::default();
        if !self.db.columns("tag_groups").await?.is_empty() {
            for r in self
                .db
                .select(
                    "tag_groups",
                    &[("id", Ty::Int), ("name", Ty::Text)],
                    "ORDER BY id",
                )
                .await?
            {
                t.groups.insert(id(&r[0]), r[1].nonblank());
            }
        }
        if !self.db.columns("tags").await?.is_empty() {
            for r in self
                .db
                .select(
                    "tags",
                    &[("id", Ty::Int), ("name", Ty::Text), ("group_id", Ty::Int)],
                    "ORDER BY id",
                )
                .await?
            {
                t.tags.insert(id(&r[0]), (r[1].nonblank(), r[2].int()));
            }
        }
        if !self.db.columns("storage_system_tags").await?.is_empty() {
            // The link table has no id of its own: rows are numbered in (system, tag) order.
            for (n, r) in self
                .db
                .select(
                    "storage_system_tags",
                    &[("system_id", Ty::Int), ("tag_id", Ty::Int)],
                    "ORDER BY system_id, tag_id",
                )
                .await?
                .into_iter()
                .enumerate()
            {
                t.links.push((n as i64 + 1, r[0].int(), r[1].int()));
            }
        }
        Ok(t)
    }

    /// `(id, system_id)` of every row of a child table (to find the orphans).
    pub async fn owners(&self, table: &str) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
        if self.db.columns(table).await?.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .select(
                table,
                &[("id", Ty::Int), ("system_id", Ty::Int)],
                "ORDER BY id",
            )
            .await?
            .into_iter()
            .map(|r| (id(&r[0]), r[1].int()))
            .collect())
    }

    pub async fn history(&self, system: i64) -> anyhow::Result<Vec<HistoryRow>> {
        if self.db.columns("capacity_history").await?.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .select(
                "capacity_history",
                &[
                    ("id", Ty::Int),
                    ("date", Ty::Text),
                    ("total_tb", Ty::Float),
                    ("used_tb", Ty::Float),
                    ("free_tb", Ty::Float),
                ],
                &format!("WHERE system_id = {system} ORDER BY date, id"),
            )
            .await?
            .into_iter()
            .map(|r| HistoryRow {
                id: id(&r[0]),
                date: r[1].nonblank(),
                total_tb: r[2].float(),
                used_tb: r[3].float(),
                free_tb: r[4].float(),
            })
            .collect())
    }

    pub async fn logs(&self, system: i64) -> anyhow::Result<Vec<LogRow>> {
        if self.db.columns("system_logs").await?.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .select(
                "system_logs",
                &[
                    ("id", Ty::Int),
                    ("timestamp", Ty::Text),
                    ("level", Ty::Text),
                    ("category", Ty::Text),
                    ("message", Ty::Text),
                    ("details", Ty::Text),
                    ("status_code", Ty::Int),
                    ("api_endpoint", Ty::Text),
                ],
                &format!("WHERE system_id = {system} ORDER BY id"),
            )
            .await?
            .into_iter()
            .map(|r| LogRow {
                id: id(&r[0]),
                timestamp: r[1].nonblank(),
                level: r[2].nonblank(),
                category: r[3].nonblank(),
                message: r[4].text().map(str::to_owned),
                details: r[5].nonblank(),
                status_code: r[6].int(),
                api_endpoint: r[7].nonblank(),
            })
            .collect())
    }

    pub async fn alert_states(&self) -> anyhow::Result<Vec<AlertStateRow>> {
        if self.db.columns("alert_states").await?.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .select(
                "alert_states",
                &[
                    ("id", Ty::Int),
                    ("alert_key", Ty::Text),
                    ("acknowledged", Ty::Int),
                    ("assignee", Ty::Text),
                    ("comment", Ty::Text),
                    ("updated_at", Ty::Text),
                ],
                "ORDER BY id",
            )
            .await?
            .into_iter()
            .map(|r| AlertStateRow {
                id: id(&r[0]),
                alert_key: r[1].text().map(str::to_owned),
                acknowledged: r[2].flag(),
                assignee: r[3].nonblank(),
                comment: r[4].nonblank(),
                updated_at: r[5].nonblank(),
            })
            .collect())
    }

    pub async fn assignees(&self) -> anyhow::Result<Vec<AssigneeRow>> {
        if self.db.columns("assignee_history").await?.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .select(
                "assignee_history",
                &[("id", Ty::Int), ("name", Ty::Text), ("used_at", Ty::Text)],
                "ORDER BY id",
            )
            .await?
            .into_iter()
            .map(|r| AssigneeRow {
                id: id(&r[0]),
                name: r[1].nonblank(),
                used_at: r[2].nonblank(),
            })
            .collect())
    }

    /// `app_settings` as key → value (the predecessor keeps them as `key`, `value` rows).
    pub async fn settings(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let cols = self.db.columns("app_settings").await?;
        if !cols.contains("key") || !cols.contains("value") {
            return Ok(BTreeMap::new());
        }
        Ok(self
            .db
            .select(
                "app_settings",
                &[("key", Ty::Text), ("value", Ty::Text)],
                "",
            )
            .await?
            .into_iter()
            .filter_map(|r| Some((r[0].nonblank()?, r[1].nonblank()?)))
            .collect())
    }
}
