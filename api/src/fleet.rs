//! The fleet list cache. Listing, filtering, sorting and paging 10,000 systems per request in SQL
//! costs a full join and sort every time; instead the joined list is loaded once and shared until
//! the writer commits again (`pipeline_status` changes; a one-row lookup per request), reloaded by
//! one request at a time while the others wait for it. `min_age` bounds the reload rate under a
//! constant stream of commits; `max_age` bounds staleness if the database changes behind the writer.
//! What a list request needs beyond filtering is kept with the loaded list and built on first use:
//! each entry's item JSON ([`Entry::item`]) and the index order of each sort key ([`Fleet::order`]),
//! so a page costs a binary search, a walk of the matching entries and copying their text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::db::{Db, DbError, Sql};
use crate::routes::SEVERITIES;

/// Columns of the joined system list (inventory row and latest state).
pub const SYSTEM_COLUMNS: &str = "ids.id AS id, sy.name AS inv_name, sy.vendor AS inv_vendor, \
    sy.address AS address, sy.tags AS tags, sy.interval_s AS interval_s, sy.enabled AS enabled, \
    sy.removed AS removed, sy.updated_at AS inv_updated_at, st.vendor AS st_vendor, st.status AS status, \
    st.hardware AS hardware, st.cluster AS cluster, st.name AS st_name, st.version AS version, \
    st.model AS model, st.serial AS serial, st.total_bytes AS total_bytes, st.used_bytes AS used_bytes, \
    st.free_bytes AS free_bytes, st.data_reduction AS data_reduction, st.alert_count AS alert_count, \
    st.observed_at AS observed_at, st.poll_ms AS poll_ms, st.error AS error, \
    st.last_online_at AS last_online_at, st.collector_id AS collector_id, \
    st.provisioned_bytes AS provisioned_bytes, st.cluster_type AS cluster_type, \
    st.topology AS topology, st.pools AS pools, st.performance AS performance";

/// Every system id known from the inventory or from a snapshot, joined to both.
pub const SYSTEM_FROM: &str = " FROM (SELECT id FROM systems UNION SELECT system_id AS id FROM system_state) ids \
    LEFT JOIN systems sy ON sy.id = ids.id LEFT JOIN system_state st ON st.system_id = ids.id";

crate::row_struct! {
    /// One row of the joined system list ([`SYSTEM_COLUMNS`]).
    #[derive(Debug, Clone, Default)]
    pub struct SystemRow {
        pub id: String,
        pub inv_name: Option<String>,
        pub inv_vendor: Option<String>,
        pub address: Option<String>,
        pub tags: Option<String>,
        pub interval_s: Option<i64>,
        pub enabled: Option<bool>,
        pub removed: Option<bool>,
        pub inv_updated_at: Option<i64>,
        pub st_vendor: Option<String>,
        pub status: Option<String>,
        pub hardware: Option<String>,
        pub cluster: Option<String>,
        pub st_name: Option<String>,
        pub version: Option<String>,
        pub model: Option<String>,
        pub serial: Option<String>,
        pub total_bytes: Option<i64>,
        pub used_bytes: Option<i64>,
        pub free_bytes: Option<i64>,
        pub data_reduction: Option<f64>,
        pub alert_count: Option<i64>,
        pub observed_at: Option<i64>,
        pub poll_ms: Option<i64>,
        pub error: Option<String>,
        pub last_online_at: Option<i64>,
        pub collector_id: Option<String>,
        pub provisioned_bytes: Option<i64>,
        pub cluster_type: Option<String>,
        /// JSON of `sdash_proto::Topology`; [`Entry::new`] keeps only its management URL.
        pub topology: Option<String>,
        /// JSON array of `sdash_proto::Pool`, parsed into [`Entry::pools`].
        pub pools: Option<String>,
        /// JSON of `sdash_proto::Performance`, parsed into [`Entry::performance`].
        pub performance: Option<String>,
    }
}

/// One system of the cached list, with what filters and sorts need precomputed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub row: SystemRow,
    pub id: String,
    pub name: String,
    pub in_inventory: bool,
    pub vendor: Option<String>,
    pub removed: bool,
    /// Disabled in the inventory (`enabled = false`): shown, but left out of every fleet total
    /// (status counts, capacity sums, open alert totals).
    pub disabled: bool,
    pub tags: Map<String, Value>,
    /// Lower-case id, name and address, for free-text search.
    pub search: String,
    /// The URL of the array's web UI, from its stored topology (the list shows it; the rest of
    /// the topology only the detail reads, [`crate::resources::deep::topology`]).
    pub management_url: Option<String>,
    /// Capacity per pool of the latest snapshot (the detail and the fleet metrics show them).
    pub pools: Vec<sdash_proto::Pool>,
    /// Performance of the latest snapshot, when the array reported it.
    pub performance: Option<sdash_proto::Performance>,
    /// The list item's JSON, rendered on first use and kept while this fleet is current.
    pub item: OnceLock<Item>,
}

/// One rendered list item: its JSON text with `"stale":false`, and where that `false` starts, so
/// the time-dependent flag is set while the page is joined.
#[derive(Debug, Clone)]
pub struct Item {
    pub json: String,
    pub stale_at: usize,
    pub observed_at: Option<i64>,
    pub interval_s: Option<i64>,
}

impl Item {
    /// Appends the item to `out` with its `stale` flag.
    pub fn write(&self, out: &mut Vec<u8>, stale: bool) {
        let (head, tail) = self.json.split_at(self.stale_at);
        out.extend_from_slice(head.as_bytes());
        if stale {
            out.extend_from_slice(b"true");
            out.extend_from_slice(&tail.as_bytes()["false".len()..]);
        } else {
            out.extend_from_slice(tail.as_bytes());
        }
    }
}

/// The tags of a system from their stored JSON text (an object; anything else is no tags).
pub fn parse_tags(text: Option<&str>) -> Map<String, Value> {
    match text.and_then(|t| serde_json::from_str(t).ok()) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A tag's value as text.
pub fn tag_text(tags: &Map<String, Value>, key: &str) -> Option<String> {
    tags.get(key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The web UI's URL of a stored topology.
#[derive(serde::Deserialize)]
struct ManagementUrl {
    #[serde(default)]
    management_url: Option<String>,
}

/// A stored JSON column (written by the writer from the bus types), or `None` when it is
/// missing or not what it should be.
fn parse_json<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<T> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Entry {
    /// The entry of `row`; its JSON columns are parsed and dropped from the row (the entries of
    /// a 10,000-system fleet keep only what their readers use).
    pub fn new(mut row: SystemRow) -> Entry {
        let management_url =
            parse_json::<ManagementUrl>(row.topology.take()).and_then(|t| t.management_url);
        let pools = parse_json(row.pools.take()).unwrap_or_default();
        let performance = parse_json(row.performance.take());
        let id = row.id.clone();
        // The writer adds a stub inventory row (updated_at 0) for systems it only saw snapshots of.
        let in_inventory = row.inv_updated_at.is_some_and(|t| t > 0);
        let name = row
            .inv_name
            .clone()
            .filter(|_| in_inventory)
            .or_else(|| row.st_name.clone())
            .unwrap_or_else(|| id.clone());
        let tags = parse_tags(row.tags.as_deref());
        let search =
            format!("{id}\n{name}\n{}", row.address.as_deref().unwrap_or("")).to_lowercase();
        Entry {
            vendor: row.st_vendor.clone().or_else(|| row.inv_vendor.clone()),
            removed: row.removed.unwrap_or(false),
            disabled: row.enabled == Some(false),
            id,
            name,
            in_inventory,
            tags,
            search,
            management_url,
            pools,
            performance,
            row,
            item: OnceLock::new(),
        }
    }

    /// A tag's value as text.
    pub fn tag(&self, key: &str) -> Option<String> {
        tag_text(&self.tags, key)
    }

    /// Whether the system counts in fleet totals: neither removed nor disabled.
    pub fn counted(&self) -> bool {
        !self.removed && !self.disabled
    }
}

crate::row_struct! {
    /// The writer's progress marker: it changes with every commit.
    struct CommitMark {
        last_stream_seq: i64,
        last_commit_at: i64,
    }
}

/// A system's open alerts by severity, in [`SEVERITIES`] order. "Open" means not cleared by the
/// array.
pub type AlertCounts = [u32; SEVERITIES.len()];

/// Open alerts per entry (index-aligned with [`Fleet::entries`]), split by acknowledgement.
#[derive(Debug, Default)]
struct OpenAlerts {
    unacknowledged: Vec<AlertCounts>,
    acknowledged: Vec<AlertCounts>,
}

crate::row_struct! {
    struct AlertCountRow {
        system_id: String,
        severity: String,
        acknowledged: i64,
        n: i64,
    }
}

/// The loaded list, ordered by id.
#[derive(Debug)]
pub struct Fleet {
    pub entries: Vec<Entry>,
    key: Option<(i64, i64)>,
    loaded: Instant,
    /// Per sort key, the entries' indexes in ascending order, built on first use.
    orders: Mutex<HashMap<String, Arc<[u32]>>>,
    /// Open alerts per entry (same order as `entries`), loaded on first use.
    open_alerts: tokio::sync::OnceCell<OpenAlerts>,
    /// The fleet metrics text ([`crate::fleet_metrics`]), rendered on first scrape.
    pub metrics: tokio::sync::OnceCell<Arc<crate::fleet_metrics::Rendered>>,
}

impl Fleet {
    /// The entries' indexes in ascending `key` order, built by `build` once per loaded fleet.
    pub fn order(&self, key: &str, build: impl FnOnce(&[Entry]) -> Vec<u32>) -> Arc<[u32]> {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(order) = orders.get(key) {
            return order.clone();
        }
        let order: Arc<[u32]> = build(&self.entries).into();
        orders.insert(key.to_owned(), order.clone());
        order
    }

    /// Each entry's open, unacknowledged alerts by severity (index-aligned with `entries`),
    /// counted once per loaded fleet from the open alert instances (what
    /// `GET /api/v1/alerts?state=open&acknowledged=false` lists). Acknowledged alerts are known
    /// to an operator: they no longer count towards a system's health ([`Fleet::acknowledged_alerts`]
    /// has them). The one place these counts come from.
    pub async fn open_alerts(&self, db: &Db) -> Result<&[AlertCounts], DbError> {
        Ok(&self.alert_counts(db).await?.unacknowledged)
    }

    /// Each entry's open, acknowledged alerts by severity (index-aligned with `entries`).
    pub async fn acknowledged_alerts(&self, db: &Db) -> Result<&[AlertCounts], DbError> {
        Ok(&self.alert_counts(db).await?.acknowledged)
    }

    async fn alert_counts(&self, db: &Db) -> Result<&OpenAlerts, DbError> {
        self.open_alerts
            .get_or_try_init(|| async {
                let rows = db
                    .fetch_all_as::<AlertCountRow>(&Sql::new(
                        "SELECT system_id, severity, \
                         CASE WHEN acknowledged_by IS NULL THEN 0 ELSE 1 END AS acknowledged, \
                         COUNT(*) AS n FROM alerts WHERE cleared_at IS NULL \
                         GROUP BY system_id, severity, CASE WHEN acknowledged_by IS NULL THEN 0 ELSE 1 END",
                    ))
                    .await?;
                let mut counts = OpenAlerts {
                    unacknowledged: vec![AlertCounts::default(); self.entries.len()],
                    acknowledged: vec![AlertCounts::default(); self.entries.len()],
                };
                for row in rows {
                    let entry = self.entries.binary_search_by(|e| e.id.cmp(&row.system_id));
                    let severity = SEVERITIES.iter().position(|s| *s == row.severity);
                    if let (Ok(e), Some(s)) = (entry, severity) {
                        let side = if row.acknowledged == 0 {
                            &mut counts.unacknowledged
                        } else {
                            &mut counts.acknowledged
                        };
                        side[e][s] = u32::try_from(row.n).unwrap_or(u32::MAX);
                    }
                }
                Ok::<_, DbError>(counts)
            })
            .await
    }

    /// The index of the entry of system `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.id.as_str().cmp(id))
            .ok()
    }
}

/// The shared cache.
#[derive(Debug)]
pub struct FleetCache {
    current: tokio::sync::Mutex<Option<Arc<Fleet>>>,
    min_age: Duration,
    max_age: Duration,
}

impl FleetCache {
    pub fn new(min_age: Duration) -> FleetCache {
        FleetCache {
            current: tokio::sync::Mutex::new(None),
            min_age,
            max_age: Duration::from_secs(10).max(min_age),
        }
    }

    /// The current list, reloaded when the writer committed since it was loaded.
    pub async fn get(&self, db: &Db) -> Result<Arc<Fleet>, DbError> {
        // Younger than `min_age`, the list is served whatever the writer did: skip the lookup.
        if let Some(fleet) = self.current.lock().await.as_ref()
            && fleet.loaded.elapsed() < self.min_age
        {
            return Ok(fleet.clone());
        }
        let key = db
            .fetch_optional_as::<CommitMark>(&Sql::new(
                "SELECT last_stream_seq, last_commit_at FROM pipeline_status WHERE id = 1",
            ))
            .await?
            .map(|m| (m.last_stream_seq, m.last_commit_at));
        let mut current = self.current.lock().await;
        if let Some(fleet) = current.as_ref() {
            let age = fleet.loaded.elapsed();
            if age < self.max_age && (key <= fleet.key || age < self.min_age) {
                return Ok(fleet.clone());
            }
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(SYSTEM_COLUMNS).push(SYSTEM_FROM);
        let mut entries: Vec<Entry> = db
            .fetch_all_as::<SystemRow>(&sql)
            .await?
            .into_iter()
            .map(Entry::new)
            .collect();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        let fleet = Arc::new(Fleet {
            entries,
            key,
            loaded: Instant::now(),
            orders: Mutex::new(HashMap::new()),
            open_alerts: tokio::sync::OnceCell::new(),
            metrics: tokio::sync::OnceCell::new(),
        });
        *current = Some(fleet.clone());
        Ok(fleet)
    }
}
