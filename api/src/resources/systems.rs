//! `GET /api/v1/systems` (the fleet list, served from [`crate::fleet`]'s cache with filters, sort
//! and keyset paging in memory) and `GET /api/v1/systems/{id}` (one system in detail).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warp::http::HeaderMap;
use warp::reply::Response;

use super::alerts::{ALERT_COLUMNS, AlertRow, SystemAlert};
use super::deep::{PerformanceNow, PoolState, Topology};
use super::page::Page;
use super::{limit_param, now, rfc3339};
use crate::db::{FromRow, Sql};
use crate::fleet::{Entry, Item, SYSTEM_COLUMNS, SYSTEM_FROM, SystemRow};
use crate::http::{
    ApiError, ApiResult, Params, cached, decode_cursor, encode_cursor, json_ok, percent,
};
use crate::routes::{CLUSTER_TYPES, HEALTHS, STATUSES, SYSTEM_SORTS, VENDORS};
use crate::state::AppState;

/// Latest capacity of a system.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Capacity {
    pub total_bytes: i64,
    pub used_bytes: Option<i64>,
    pub free_bytes: Option<i64>,
    pub used_pct: Option<f64>,
    pub data_reduction: Option<f64>,
    /// Provisioned (thin, promised to hosts) bytes, where the vendor reports them.
    pub provisioned_bytes: Option<i64>,
}

/// A system with its latest state: an item of `GET /api/v1/systems`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct System {
    pub id: String,
    /// The inventory name, else the name the array reports, else the id.
    pub name: String,
    /// The name the array reports.
    pub reported_name: Option<String>,
    #[schemars(schema_with = "crate::openapi::vendor_or_null")]
    pub vendor: Option<String>,
    pub address: Option<String>,
    #[schemars(with = "BTreeMap<String, String>")]
    pub tags: Map<String, Value>,
    pub in_inventory: bool,
    pub enabled: Option<bool>,
    /// Disabled in the inventory (`enabled` false): shown, but left out of every fleet total.
    pub disabled: bool,
    pub removed: bool,
    pub poll_interval_s: Option<i64>,
    /// Null when never polled.
    pub status: Option<String>,
    pub hardware: Option<String>,
    pub cluster: Option<String>,
    pub version: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// How the system is clustered (its topology's `cluster_type`); null until the topology
    /// was read.
    #[schemars(schema_with = "crate::openapi::cluster_type_or_null")]
    pub cluster_type: Option<String>,
    /// The URL of the array's own web UI (from its topology).
    pub management_url: Option<String>,
    pub capacity: Option<Capacity>,
    /// Alerts the latest snapshot reported (acknowledged or not).
    pub alert_count: Option<i64>,
    /// Open alerts no operator acknowledged: what colours the system's health.
    pub unacknowledged_alerts: i64,
    /// Open alerts an operator acknowledged (known, shown, not counted towards health).
    pub acknowledged_alerts: i64,
    /// When the latest snapshot was observed.
    pub last_poll_at: Option<String>,
    /// When the latest snapshot was observed (ms since the epoch).
    pub last_poll_at_ms: Option<i64>,
    pub last_poll_duration_ms: Option<i64>,
    /// When the system was last seen online.
    pub last_online_at: Option<String>,
    /// When the system was last seen online (ms since the epoch).
    pub last_online_at_ms: Option<i64>,
    pub error: Option<String>,
    pub collector_id: Option<String>,
    /// The last poll is older than 3 poll intervals.
    pub stale: bool,
}

/// One hardware or logical component, as the latest snapshot reported it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Component {
    pub kind: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// A change of status, hardware or cluster health.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Transition {
    pub at: String,
    pub at_ms: i64,
    /// `status`, `hardware` or `cluster`.
    pub field: String,
    pub from: Option<String>,
    pub to: String,
}

/// `GET /api/v1/systems/{id}`: the system, its components, open alerts and recent transitions.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SystemDetail {
    #[serde(flatten)]
    pub system: System,
    pub components: Vec<Component>,
    pub open_alerts: Vec<SystemAlert>,
    /// The 20 most recent, newest first.
    pub transitions: Vec<Transition>,
    /// Nodes, sites, addresses, DNS names and partners; null until the topology was read.
    pub topology: Option<Topology>,
    /// Capacity per pool of the latest snapshot (`[]` when the vendor has none).
    pub pools: Vec<PoolState>,
    /// Array performance of the latest snapshot; null when the array has no endpoint for it.
    pub performance: Option<PerformanceNow>,
}

/// The fleet list; its items' schema is [`System`] (the items are spliced in as rendered text).
pub type SystemList = Page<System>;

/// A system is stale when its last poll is older than three poll intervals.
fn is_stale(observed: Option<i64>, interval: Option<i64>, now: i64) -> bool {
    match (observed, interval) {
        (Some(at), Some(iv)) if iv > 0 => now - at > iv.saturating_mul(3_000),
        _ => false,
    }
}

/// A system's open alerts: (unacknowledged, acknowledged).
type OpenCounts = (i64, i64);

impl System {
    fn of(e: &Entry, stale: bool, (unacknowledged, acknowledged): OpenCounts) -> System {
        let row = &e.row;
        System {
            id: e.id.clone(),
            name: e.name.clone(),
            reported_name: row.st_name.clone(),
            vendor: e.vendor.clone(),
            address: row.address.clone().filter(|a| !a.is_empty()),
            tags: e.tags.clone(),
            in_inventory: e.in_inventory,
            enabled: row.enabled,
            disabled: e.disabled,
            removed: e.removed,
            poll_interval_s: row.interval_s,
            status: row.status.clone(),
            hardware: row.hardware.clone(),
            cluster: row.cluster.clone(),
            version: row.version.clone(),
            model: row.model.clone(),
            serial: row.serial.clone(),
            cluster_type: row.cluster_type.clone(),
            management_url: e.management_url.clone(),
            capacity: row.total_bytes.map(|total| Capacity {
                total_bytes: total,
                used_bytes: row.used_bytes,
                free_bytes: row.free_bytes,
                used_pct: percent(row.used_bytes, Some(total)),
                data_reduction: row.data_reduction,
                provisioned_bytes: row.provisioned_bytes,
            }),
            alert_count: row.alert_count,
            unacknowledged_alerts: unacknowledged,
            acknowledged_alerts: acknowledged,
            last_poll_at: row.observed_at.map(rfc3339),
            last_poll_at_ms: row.observed_at,
            last_poll_duration_ms: row.poll_ms,
            last_online_at: row.last_online_at.map(rfc3339),
            last_online_at_ms: row.last_online_at,
            error: row.error.clone(),
            collector_id: row.collector_id.clone(),
            stale,
        }
    }
}

/// The list item, rendered once per loaded fleet; `stale` is set per request by [`Item::write`].
fn list_item(e: &Entry, alerts: OpenCounts) -> &Item {
    e.item.get_or_init(|| {
        let mut system = System::of(e, false, alerts);
        let json = serde_json::to_string(&system).unwrap_or_default();
        system.stale = true;
        let other = serde_json::to_string(&system).unwrap_or_default();
        // The two texts differ only in the flag: `false` starts where they first differ.
        let stale_at = json
            .bytes()
            .zip(other.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(json.len());
        debug_assert!(json[stale_at..].starts_with("false"));
        debug_assert_eq!(
            other,
            format!("{}true{}", &json[..stale_at], &json[stale_at + 5..])
        );
        Item {
            json,
            stale_at,
            observed_at: e.row.observed_at,
            interval_s: e.row.interval_s,
        }
    })
}

#[derive(Clone, Copy, PartialEq)]
enum SortKind {
    Text,
    Int,
    Float,
}

/// A sort key's value for one system; missing values sort as "" or -1, like zero-size systems.
#[derive(Debug, Clone, PartialEq)]
enum SortVal<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
}

impl SortVal<'_> {
    fn cmp(&self, other: &SortVal<'_>) -> Ordering {
        match (self, other) {
            (SortVal::Text(a), SortVal::Text(b)) => a.cmp(b),
            (SortVal::Int(a), SortVal::Int(b)) => a.cmp(b),
            (SortVal::Float(a), SortVal::Float(b)) => a.total_cmp(b),
            _ => Ordering::Equal,
        }
    }

    fn json(&self) -> Value {
        match self {
            SortVal::Text(t) => Value::String(t.to_string()),
            SortVal::Int(i) => Value::from(*i),
            SortVal::Float(f) => Value::from(*f),
        }
    }

    fn from_json(kind: SortKind, v: &Value) -> Option<SortVal<'static>> {
        match kind {
            SortKind::Text => v.as_str().map(|t| SortVal::Text(t.to_owned().into())),
            SortKind::Int => v.as_i64().map(SortVal::Int),
            SortKind::Float => v.as_f64().map(SortVal::Float),
        }
    }
}

fn sort_kind(key: &str) -> SortKind {
    match key {
        "id" | "name" | "vendor" | "status" | "hardware" => SortKind::Text,
        "used_pct" => SortKind::Float,
        _ => SortKind::Int,
    }
}

fn sort_value<'a>(key: &str, e: &'a Entry) -> SortVal<'a> {
    let text = |v: &'a Option<String>| SortVal::Text(v.as_deref().unwrap_or("").into());
    let int = |v: Option<i64>| SortVal::Int(v.unwrap_or(-1));
    let row = &e.row;
    match key {
        "id" => SortVal::Text(e.id.as_str().into()),
        "name" => SortVal::Text(e.name.as_str().into()),
        "vendor" => text(&e.vendor),
        "status" => text(&row.status),
        "hardware" => text(&row.hardware),
        "used_pct" => SortVal::Float(match (row.used_bytes, row.total_bytes) {
            (Some(u), Some(t)) if t > 0 => u as f64 / t as f64,
            _ => -1.0,
        }),
        "used_bytes" => int(row.used_bytes),
        "total_bytes" => int(row.total_bytes),
        "free_bytes" => int(row.free_bytes),
        "last_poll" => int(row.observed_at),
        _ => int(row.alert_count),
    }
}

fn order(desc: bool, a: (&SortVal<'_>, &str), b: (&SortVal<'_>, &str)) -> Ordering {
    let o = a.0.cmp(b.0).then_with(|| a.1.cmp(b.1));
    if desc { o.reverse() } else { o }
}

/// Position in the fleet list: the sort, and the sort value and id of the last item shown.
#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    s: String,
    v: Value,
    id: String,
}

pub(crate) fn tag_filters(p: &Params) -> ApiResult<Vec<(String, String)>> {
    p.all("tag")
        .into_iter()
        .map(|t| match t.split_once(':') {
            Some((k, v)) if crate::http::valid_tag_key(k) => Ok((k.to_owned(), v.to_owned())),
            _ => Err(ApiError::bad(format!(
                "tag must be key:value with a key of [A-Za-z0-9_.-], got {t:?}"
            ))),
        })
        .collect()
}

/// The first index in `0..n` for which `pred` is false (`pred` holds for a prefix).
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `GET /api/v1/systems`
pub async fn list(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let limit = limit_param(st, p)?;
    let vendors = p.enums(
        "vendor",
        |v| sdash_proto::Vendor::parse(v).map(|v| v.as_str()),
        VENDORS,
    )?;
    let statuses = p.enums(
        "status",
        |s| STATUSES.iter().find(|x| **x == s).copied(),
        STATUSES,
    )?;
    let hardware = p.enums(
        "hardware",
        |s| sdash_proto::Health::parse(s).map(|h| h.as_str()),
        HEALTHS,
    )?;
    let cluster_types = p.enums(
        "cluster_type",
        |c| sdash_proto::ClusterType::parse(c).map(|c| c.as_str()),
        CLUSTER_TYPES,
    )?;
    let tags = tag_filters(p)?;
    let q = p
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let sort = p.one_of("sort", SYSTEM_SORTS, "id")?;
    let include_removed = p.boolean("include_removed", false)?;
    let (desc, key) = match sort.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort),
    };
    let kind = sort_kind(key);
    let after = match p.get("cursor") {
        None => None,
        Some(cursor) => {
            let bad = || ApiError::bad("cursor does not belong to this sort order");
            let c: ListCursor =
                serde_json::from_value(decode_cursor(cursor)?).map_err(|_| bad())?;
            if c.s != sort {
                return Err(bad());
            }
            let value = SortVal::from_json(kind, &c.v).ok_or_else(bad)?;
            Some((value, c.id))
        }
    };
    let fleet = st.fleet.get(&st.db).await?;
    let entries = &fleet.entries;
    // The fleet is kept in id order; other keys get an index order built once per loaded fleet.
    let perm = (key != "id").then(|| {
        fleet.order(key, |es| {
            let mut idx: Vec<u32> = (0..es.len() as u32).collect();
            idx.sort_unstable_by(|&a, &b| {
                let (a, b) = (&es[a as usize], &es[b as usize]);
                order(
                    false,
                    (&sort_value(key, a), &a.id),
                    (&sort_value(key, b), &b.id),
                )
            });
            idx
        })
    });
    let nth = |i: usize| -> &Entry {
        match &perm {
            Some(p) => &entries[p[i] as usize],
            None => &entries[i],
        }
    };
    let n = entries.len();
    // Ascending order of the entry at `i` against the cursor.
    let vs_cursor = |i: usize, (v, id): &(SortVal<'_>, String)| {
        let e = nth(i);
        order(false, (&sort_value(key, e), &e.id), (v, id))
    };
    let positions: Box<dyn Iterator<Item = usize>> = match (&after, desc) {
        (None, false) => Box::new(0..n),
        (None, true) => Box::new((0..n).rev()),
        (Some(c), false) => {
            Box::new(partition_point(n, |i| vs_cursor(i, c) != Ordering::Greater)..n)
        }
        (Some(c), true) => {
            Box::new((0..partition_point(n, |i| vs_cursor(i, c) == Ordering::Less)).rev())
        }
    };
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut page: Vec<&Entry> = positions
        .map(nth)
        .filter(|e| include_removed || !e.removed)
        .filter(|e| vendors.is_empty() || e.vendor.as_deref().is_some_and(|v| vendors.contains(&v)))
        .filter(|e| {
            statuses.is_empty() || statuses.contains(&e.row.status.as_deref().unwrap_or("pending"))
        })
        .filter(|e| {
            hardware.is_empty()
                || e.row
                    .hardware
                    .as_deref()
                    .is_some_and(|v| hardware.contains(&v))
        })
        .filter(|e| {
            cluster_types.is_empty()
                || e.row
                    .cluster_type
                    .as_deref()
                    .is_some_and(|c| cluster_types.contains(&c))
        })
        .filter(|e| {
            tags.iter()
                .all(|(k, v)| e.tag(k).as_deref() == Some(v.as_str()))
        })
        .filter(|e| q.as_deref().is_none_or(|q| e.search.contains(q)))
        .take(limit_usize.saturating_add(1))
        .collect();
    let more = page.len() > limit_usize;
    page.truncate(limit_usize);
    let next_cursor = if more {
        page.last().map(|e| {
            let cursor = ListCursor {
                s: sort.to_owned(),
                v: sort_value(key, e).json(),
                id: e.id.clone(),
            };
            encode_cursor(&serde_json::to_value(cursor).unwrap_or_default())
        })
    } else {
        None
    };
    // The envelope is serialized with an empty item list; the items' text is spliced into it.
    let envelope = SystemList {
        items: Vec::new(),
        next_cursor,
        limit,
    };
    let envelope = serde_json::to_string(&envelope).unwrap_or_default();
    let (head, tail) = match envelope.find("\"items\":[]") {
        Some(at) => envelope.split_at(at + "\"items\":[".len()),
        None => (envelope.as_str(), ""),
    };
    let now = now();
    let unacknowledged = fleet.open_alerts(&st.db).await?;
    let acknowledged = fleet.acknowledged_alerts(&st.db).await?;
    let total = |counts: &[crate::fleet::AlertCounts], i: Option<usize>| -> i64 {
        i.and_then(|i| counts.get(i))
            .map_or(0, |c| c.iter().map(|n| i64::from(*n)).sum())
    };
    let items: Vec<&Item> = page
        .iter()
        .map(|e| {
            let i = fleet.index_of(&e.id);
            list_item(e, (total(unacknowledged, i), total(acknowledged, i)))
        })
        .collect();
    let mut body =
        Vec::with_capacity(envelope.len() + items.iter().map(|i| i.json.len() + 1).sum::<usize>());
    body.extend_from_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        item.write(&mut body, is_stale(item.observed_at, item.interval_s, now));
    }
    body.extend_from_slice(tail.as_bytes());
    Ok(cached(h, "application/json", body, "no-cache"))
}

crate::row_struct! {
    /// The detail's extra column beside [`SystemRow`].
    struct ComponentsColumn {
        components: Option<String>,
    }
}

crate::row_struct! {
    struct TransitionRow {
        at: i64,
        field: String,
        from_value: Option<String>,
        to_value: String,
    }
}

/// `GET /api/v1/systems/{id}`
pub async fn detail(st: &AppState, id: &str, h: &HeaderMap) -> ApiResult<Response> {
    let mut sql = Sql::new("SELECT ");
    sql.push(SYSTEM_COLUMNS)
        .push(", st.components AS components")
        .push(SYSTEM_FROM)
        .push(" WHERE ids.id = ")
        .bind(id);
    let Some(mut row) = st.db.fetch_one(&sql).await? else {
        return Err(ApiError::NotFound(format!("system {id:?} not found")));
    };
    let components = ComponentsColumn::from_row(&mut row)?.components;
    let system_row = SystemRow::from_row(&mut row)?;
    let topology = super::deep::topology(system_row.topology.as_deref());
    let entry = Entry::new(system_row);
    let mut alerts = Sql::new("SELECT ");
    alerts
        .push(ALERT_COLUMNS)
        .push(" FROM alerts a WHERE a.system_id = ")
        .bind(id)
        .push(" AND a.cleared_at IS NULL ORDER BY a.first_seen DESC, a.id DESC LIMIT 1000");
    let open_alerts: Vec<SystemAlert> = st
        .db
        .fetch_all_as::<AlertRow>(&alerts)
        .await?
        .into_iter()
        .map(SystemAlert::from)
        .collect();
    let acknowledged = open_alerts.iter().filter(|a| a.acknowledged).count() as i64;
    let system = System::of(
        &entry,
        is_stale(entry.row.observed_at, entry.row.interval_s, now()),
        (open_alerts.len() as i64 - acknowledged, acknowledged),
    );
    let mut tr = Sql::new(
        "SELECT at, field, from_value, to_value FROM status_transitions WHERE system_id = ",
    );
    tr.bind(id).push(" ORDER BY at DESC, id DESC LIMIT 20");
    let transitions = st
        .db
        .fetch_all_as::<TransitionRow>(&tr)
        .await?
        .into_iter()
        .map(|r| Transition {
            at: rfc3339(r.at),
            at_ms: r.at,
            field: r.field,
            from: r.from_value,
            to: r.to_value,
        })
        .collect();
    let body = SystemDetail {
        system,
        components: components
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        open_alerts,
        transitions,
        topology,
        pools: entry.pools.iter().map(PoolState::from).collect(),
        performance: entry
            .performance
            .as_ref()
            .zip(entry.row.observed_at)
            .map(|(p, at)| PerformanceNow::of(p, at)),
    };
    Ok(json_ok(h, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_values_order_like_sql_with_missing_last_or_first() {
        assert_eq!(SortVal::Int(-1).cmp(&SortVal::Int(0)), Ordering::Less);
        assert_eq!(
            SortVal::Float(0.5).cmp(&SortVal::Float(0.25)),
            Ordering::Greater
        );
        assert_eq!(
            SortVal::Text("a-b".into()).cmp(&SortVal::Text("a_b".into())),
            Ordering::Less
        );
        let v = SortVal::Float(0.1 + 0.2);
        assert_eq!(SortVal::from_json(SortKind::Float, &v.json()), Some(v));
    }
}
