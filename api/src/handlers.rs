//! The routes' queries and JSON shapes. Every value from a request is bound, never spliced.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use warp::http::HeaderMap;
use warp::reply::Response;

use crate::AppState;
use crate::db::{Row, Sql};
use crate::fleet::{Entry, Item, SYSTEM_COLUMNS, SYSTEM_FROM};
use crate::http::{
    ApiError, ApiResult, Params, cached, csv_row, decode_cursor, encode_cursor, json_ok, percent,
    put_time,
};
use crate::routes::{
    ALERT_STATES, CATEGORIES, HEALTHS, LEVELS, RESOLUTIONS, SEVERITIES, STATUSES, SYSTEM_SORTS,
    VENDORS,
};

const DAY_MS: i64 = 86_400_000;
const DEFAULT_PAGE: i64 = 100;
/// Most raw capacity samples one request returns.
const MAX_RAW_POINTS: i64 = 20_000;
/// Fewest daily points a forecast is fitted on.
pub const MIN_FORECAST_POINTS: usize = 3;

const NOT_REMOVED: &str = " AND (sy.removed IS NULL OR sy.removed = FALSE)";

#[derive(Clone, Copy, PartialEq)]
enum SortKind {
    Text,
    Int,
    Float,
}

/// A sort key's value for one system; missing values sort as "" or -1, like zero-size systems.
#[derive(Debug, Clone, PartialEq)]
enum SortVal<'a> {
    Text(std::borrow::Cow<'a, str>),
    Int(i64),
    Float(f64),
}

impl SortVal<'_> {
    fn cmp(&self, other: &SortVal<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (SortVal::Text(a), SortVal::Text(b)) => a.cmp(b),
            (SortVal::Int(a), SortVal::Int(b)) => a.cmp(b),
            (SortVal::Float(a), SortVal::Float(b)) => a.total_cmp(b),
            _ => std::cmp::Ordering::Equal,
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
    match key {
        "id" => SortVal::Text(e.id.as_str().into()),
        "name" => SortVal::Text(e.name.as_str().into()),
        "vendor" => text(&e.vendor),
        "status" => text(&e.status),
        "hardware" => text(&e.hardware),
        "used_pct" => SortVal::Float(match (e.used, e.total) {
            (Some(u), Some(t)) if t > 0 => u as f64 / t as f64,
            _ => -1.0,
        }),
        "used_bytes" => int(e.used),
        "total_bytes" => int(e.total),
        "free_bytes" => int(e.free),
        "last_poll" => int(e.observed_at),
        _ => int(e.alert_count),
    }
}

fn order(desc: bool, a: (&SortVal<'_>, &str), b: (&SortVal<'_>, &str)) -> std::cmp::Ordering {
    let o = a.0.cmp(b.0).then_with(|| a.1.cmp(b.1));
    if desc { o.reverse() } else { o }
}

fn now() -> i64 {
    sdash_proto::now_ms()
}

fn day_of(ms: i64) -> String {
    let text = sdash_proto::format_ms(ms);
    text.get(..10).unwrap_or(&text).to_owned()
}

fn day_index(day: &str) -> Option<i64> {
    sdash_proto::parse_rfc3339_ms(&format!("{day}T00:00:00Z")).map(|ms| ms.div_euclid(DAY_MS))
}

fn parse_json(text: Option<&str>, default: Value) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(default)
}

fn tags_of(row: &Row) -> Map<String, Value> {
    match parse_json(row.str("tags"), json!({})) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn tag_value(tags: &Map<String, Value>, key: &str) -> Option<String> {
    tags.get(key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Sets `name` to a text JSON value of `row[name]`.
fn text_of(row: &Row, name: &str) -> Value {
    row.string(name).map(Value::String).unwrap_or(Value::Null)
}

fn int_of(row: &Row, name: &str) -> Value {
    row.i64(name).map(Value::from).unwrap_or(Value::Null)
}

fn capacity_json(row: &Row) -> Value {
    let (total, used, free) = (
        row.i64("total_bytes"),
        row.i64("used_bytes"),
        row.i64("free_bytes"),
    );
    match total {
        None => Value::Null,
        Some(t) => json!({
            "total_bytes": t,
            "used_bytes": used,
            "free_bytes": free,
            "used_pct": percent(used, Some(t)),
            "data_reduction": row.f64("data_reduction"),
        }),
    }
}

/// A system is stale when its last poll is older than three poll intervals.
fn is_stale(observed: Option<i64>, interval: Option<i64>, now: i64) -> bool {
    match (observed, interval) {
        (Some(at), Some(iv)) if iv > 0 => now - at > iv.saturating_mul(3_000),
        _ => false,
    }
}

fn system_json(e: &Entry) -> Value {
    let row = &e.row;
    let stale = is_stale(row.i64("observed_at"), row.i64("interval_s"), now());
    system_json_with(e, stale)
}

/// The list item rendered once per loaded fleet; `stale` is set per request by [`Item::write`].
fn list_item(e: &Entry) -> &Item {
    e.item.get_or_init(|| {
        let mut value = system_json_with(e, false);
        let json = serde_json::to_string(&value).unwrap_or_default();
        value["stale"] = Value::Bool(true);
        let other = serde_json::to_string(&value).unwrap_or_default();
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
            observed_at: e.row.i64("observed_at"),
            interval_s: e.row.i64("interval_s"),
        }
    })
}

fn system_json_with(e: &Entry, stale: bool) -> Value {
    let row = &e.row;
    let observed = row.i64("observed_at");
    let mut o = Map::new();
    o.insert("id".into(), e.id.clone().into());
    o.insert("name".into(), e.name.clone().into());
    o.insert("reported_name".into(), text_of(row, "st_name"));
    o.insert(
        "vendor".into(),
        row.string("st_vendor")
            .or_else(|| row.string("inv_vendor"))
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    o.insert(
        "address".into(),
        row.string("address")
            .filter(|a| !a.is_empty())
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    o.insert("tags".into(), Value::Object(e.tags.clone()));
    o.insert("in_inventory".into(), e.in_inventory.into());
    o.insert(
        "enabled".into(),
        row.bool("enabled").map(Value::Bool).unwrap_or(Value::Null),
    );
    o.insert(
        "removed".into(),
        row.bool("removed").unwrap_or(false).into(),
    );
    o.insert("poll_interval_s".into(), int_of(row, "interval_s"));
    o.insert("status".into(), text_of(row, "status"));
    o.insert("hardware".into(), text_of(row, "hardware"));
    o.insert("cluster".into(), text_of(row, "cluster"));
    o.insert("version".into(), text_of(row, "version"));
    o.insert("model".into(), text_of(row, "model"));
    o.insert("serial".into(), text_of(row, "serial"));
    o.insert("capacity".into(), capacity_json(row));
    o.insert("alert_count".into(), int_of(row, "alert_count"));
    put_time(&mut o, "last_poll_at", observed);
    o.insert("last_poll_duration_ms".into(), int_of(row, "poll_ms"));
    put_time(&mut o, "last_online_at", row.i64("last_online_at"));
    o.insert("error".into(), text_of(row, "error"));
    o.insert("collector_id".into(), text_of(row, "collector_id"));
    o.insert("stale".into(), stale.into());
    Value::Object(o)
}

fn page_json(items: Vec<Value>, next: Option<Value>, limit: i64) -> Value {
    json!({
        "items": items,
        "next_cursor": next.map(|c| encode_cursor(&c)),
        "limit": limit,
    })
}

fn system_path_id(id: Option<&str>) -> ApiResult<String> {
    match id {
        Some(id) if sdash_proto::valid_system_id(id) => Ok(id.to_owned()),
        Some(id) => Err(ApiError::bad(format!(
            "invalid system id {id:?}: expected [a-z0-9_-]{{1,64}}"
        ))),
        None => Err(ApiError::bad("missing system id")),
    }
}

async fn require_system(st: &AppState, id: &str) -> ApiResult<()> {
    let mut sql = Sql::new("SELECT id FROM systems WHERE id = ");
    sql.bind(id)
        .push(" UNION SELECT system_id AS id FROM system_state WHERE system_id = ")
        .bind(id);
    match st.db.fetch_one(&sql).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("system {id:?} not found"))),
    }
}

fn limit_param(st: &AppState, p: &Params) -> ApiResult<i64> {
    p.int("limit", DEFAULT_PAGE.min(st.max_page), 1, st.max_page)
}

fn tag_filters(p: &Params) -> ApiResult<Vec<(String, String)>> {
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

/// `GET /api/v1/systems` (from the fleet cache: filters, sort and keyset paging in memory).
pub async fn systems(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
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
            let c = decode_cursor(cursor)?;
            let bad = || ApiError::bad("cursor does not belong to this sort order");
            if c.get("s").and_then(Value::as_str) != Some(sort) {
                return Err(bad());
            }
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(bad)?
                .to_owned();
            let value = c
                .get("v")
                .and_then(|v| SortVal::from_json(kind, v))
                .ok_or_else(bad)?;
            Some((value, id))
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
            Box::new(partition_point(n, |i| vs_cursor(i, c) != std::cmp::Ordering::Greater)..n)
        }
        (Some(c), true) => {
            Box::new((0..partition_point(n, |i| vs_cursor(i, c) == std::cmp::Ordering::Less)).rev())
        }
    };
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut page: Vec<&Entry> = positions
        .map(nth)
        .filter(|e| include_removed || !e.removed)
        .filter(|e| vendors.is_empty() || e.vendor.as_deref().is_some_and(|v| vendors.contains(&v)))
        .filter(|e| {
            statuses.is_empty() || statuses.contains(&e.status.as_deref().unwrap_or("pending"))
        })
        .filter(|e| {
            hardware.is_empty() || e.hardware.as_deref().is_some_and(|v| hardware.contains(&v))
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
    let next = if more {
        page.last()
            .map(|e| json!({"s": sort, "v": sort_value(key, e).json(), "id": e.id}))
    } else {
        None
    };
    // The envelope is serialized with an empty item list; the items' text is spliced into it.
    let envelope = serde_json::to_string(&page_json(Vec::new(), next, limit)).unwrap_or_default();
    let (head, tail) = match envelope.find("\"items\":[]") {
        Some(at) => envelope.split_at(at + "\"items\":[".len()),
        None => (envelope.as_str(), ""),
    };
    let now = now();
    let items: Vec<&Item> = page.iter().map(|e| list_item(e)).collect();
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

fn alert_json(row: &Row) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), int_of(row, "id"));
    o.insert("system_id".into(), text_of(row, "system_id"));
    if row.str("system_name").is_some() {
        o.insert("system_name".into(), text_of(row, "system_name"));
        o.insert("vendor".into(), text_of(row, "vendor"));
    }
    o.insert("alert_id".into(), text_of(row, "alert_id"));
    o.insert("severity".into(), text_of(row, "severity"));
    o.insert("vendor_severity".into(), text_of(row, "vendor_severity"));
    o.insert("title".into(), text_of(row, "title"));
    o.insert("component".into(), text_of(row, "component"));
    o.insert("open".into(), row.i64("cleared_at").is_none().into());
    put_time(&mut o, "opened_at", row.i64("opened_at"));
    put_time(&mut o, "first_seen", row.i64("first_seen"));
    put_time(&mut o, "last_seen", row.i64("last_seen"));
    put_time(&mut o, "cleared_at", row.i64("cleared_at"));
    Value::Object(o)
}

const ALERT_COLUMNS: &str = "a.id AS id, a.system_id AS system_id, a.alert_id AS alert_id, a.severity AS severity, \
    a.vendor_severity AS vendor_severity, a.title AS title, a.component AS component, a.opened_at AS opened_at, \
    a.first_seen AS first_seen, a.last_seen AS last_seen, a.cleared_at AS cleared_at";

/// `GET /api/v1/systems/{id}`
pub async fn system(st: &AppState, id: Option<&str>, h: &HeaderMap) -> ApiResult<Response> {
    let id = system_path_id(id)?;
    let mut sql = Sql::new("SELECT ");
    sql.push(SYSTEM_COLUMNS)
        .push(", st.components AS components")
        .push(SYSTEM_FROM)
        .push(" WHERE ids.id = ")
        .bind(id.as_str());
    let Some(row) = st.db.fetch_one(&sql).await? else {
        return Err(ApiError::NotFound(format!("system {id:?} not found")));
    };
    let entry = Entry::new(row);
    let mut body = system_json(&entry);
    let row = &entry.row;
    let mut alerts = Sql::new("SELECT ");
    alerts
        .push(ALERT_COLUMNS)
        .push(" FROM alerts a WHERE a.system_id = ")
        .bind(id.as_str())
        .push(" AND a.cleared_at IS NULL ORDER BY a.first_seen DESC, a.id DESC LIMIT 1000");
    let open: Vec<Value> = st.db.fetch(&alerts).await?.iter().map(alert_json).collect();
    let mut tr = Sql::new(
        "SELECT at, field, from_value, to_value, event_id FROM status_transitions WHERE system_id = ",
    );
    tr.bind(id.as_str())
        .push(" ORDER BY at DESC, id DESC LIMIT 20");
    let transitions: Vec<Value> = st
        .db
        .fetch(&tr)
        .await?
        .iter()
        .map(|r| {
            let mut o = Map::new();
            put_time(&mut o, "at", r.i64("at"));
            o.insert("field".into(), text_of(r, "field"));
            o.insert("from".into(), text_of(r, "from_value"));
            o.insert("to".into(), text_of(r, "to_value"));
            Value::Object(o)
        })
        .collect();
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "components".into(),
            parse_json(row.str("components"), json!([])),
        );
        o.insert("open_alerts".into(), Value::Array(open));
        o.insert("transitions".into(), Value::Array(transitions));
    }
    Ok(json_ok(h, &body))
}

fn range(p: &Params, default_days: i64) -> ApiResult<(i64, i64)> {
    let to = p.time("to")?.unwrap_or_else(now);
    let from = p.time("from")?.unwrap_or(to - default_days * DAY_MS);
    if from > to {
        return Err(ApiError::bad("from must not be after to"));
    }
    Ok((from, to))
}

/// `GET /api/v1/systems/{id}/capacity`
pub async fn capacity(
    st: &AppState,
    p: &Params,
    id: Option<&str>,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let id = system_path_id(id)?;
    let (from, to) = range(p, 30)?;
    let resolution = p.one_of("resolution", RESOLUTIONS, "raw")?;
    require_system(st, &id).await?;
    let mut points = Vec::new();
    let mut truncated = false;
    if resolution == "raw" {
        let mut sql = Sql::new(
            "SELECT observed_at, total_bytes, used_bytes, free_bytes FROM capacity_samples WHERE system_id = ",
        );
        sql.bind(id.as_str())
            .push(" AND observed_at >= ")
            .bind(from)
            .push(" AND observed_at <= ")
            .bind(to)
            .push(" ORDER BY observed_at LIMIT ")
            .bind(MAX_RAW_POINTS + 1);
        let rows = st.db.fetch(&sql).await?;
        truncated = rows.len() as i64 > MAX_RAW_POINTS;
        for r in rows.iter().take(MAX_RAW_POINTS as usize) {
            let mut o = Map::new();
            put_time(&mut o, "at", r.i64("observed_at"));
            o.insert("total_bytes".into(), int_of(r, "total_bytes"));
            o.insert("used_bytes".into(), int_of(r, "used_bytes"));
            o.insert("free_bytes".into(), int_of(r, "free_bytes"));
            o.insert(
                "used_pct".into(),
                json!(percent(r.i64("used_bytes"), r.i64("total_bytes"))),
            );
            points.push(Value::Object(o));
        }
    } else {
        let mut sql = Sql::new(
            "SELECT day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes \
             FROM capacity_daily WHERE system_id = ",
        );
        sql.bind(id.as_str())
            .push(" AND day >= ")
            .bind(day_of(from))
            .push(" AND day <= ")
            .bind(day_of(to))
            .push(" ORDER BY day");
        for r in st.db.fetch(&sql).await? {
            let samples = r.i64("samples").unwrap_or(0);
            let avg = r
                .f64("used_sum")
                .filter(|_| samples > 0)
                .map(|s| (s / samples as f64).round() as i64);
            let mut o = Map::new();
            o.insert("day".into(), text_of(&r, "day"));
            o.insert("samples".into(), samples.into());
            o.insert("used_min".into(), int_of(&r, "used_min"));
            o.insert("used_max".into(), int_of(&r, "used_max"));
            o.insert("used_avg".into(), json!(avg));
            put_time(&mut o, "at", r.i64("last_at"));
            o.insert("total_bytes".into(), int_of(&r, "total_bytes"));
            o.insert("used_bytes".into(), int_of(&r, "used_bytes"));
            o.insert("free_bytes".into(), int_of(&r, "free_bytes"));
            o.insert(
                "used_pct".into(),
                json!(percent(r.i64("used_bytes"), r.i64("total_bytes"))),
            );
            points.push(Value::Object(o));
        }
    }
    let mut body = Map::new();
    body.insert("system_id".into(), id.into());
    body.insert("resolution".into(), resolution.into());
    put_time(&mut body, "from", Some(from));
    put_time(&mut body, "to", Some(to));
    body.insert("truncated".into(), truncated.into());
    body.insert("points".into(), Value::Array(points));
    Ok(json_ok(h, &Value::Object(body)))
}

/// Result of fitting a line to daily used capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
}

/// Least-squares line through `(x, y)` points; `None` with fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || !sxx.is_finite() || !sxy.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: my - slope * mx,
    })
}

fn day_name(index: i64) -> String {
    day_of(index.saturating_mul(DAY_MS))
}

/// `GET /api/v1/systems/{id}/forecast`
pub async fn forecast(
    st: &AppState,
    p: &Params,
    id: Option<&str>,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let id = system_path_id(id)?;
    let days = p.int("days", 90, 2, 3650)?;
    let horizon = p.int("horizon", 365, 1, 3650)?;
    require_system(st, &id).await?;
    let today = now().div_euclid(DAY_MS);
    let mut sql = Sql::new(
        "SELECT day, samples, used_sum, used_bytes, total_bytes FROM capacity_daily WHERE system_id = ",
    );
    sql.bind(id.as_str())
        .push(" AND day >= ")
        .bind(day_name(today - days + 1))
        .push(" ORDER BY day");
    let rows = st.db.fetch(&sql).await?;
    let mut history = Vec::new();
    let mut points = Vec::new();
    for r in &rows {
        let (Some(day), Some(x)) = (r.str("day"), r.str("day").and_then(day_index)) else {
            continue;
        };
        let samples = r.i64("samples").unwrap_or(0);
        let used = match r.f64("used_sum") {
            Some(sum) if samples > 0 => sum / samples as f64,
            _ => r.f64("used_bytes").unwrap_or(0.0),
        };
        points.push((x as f64, used));
        history.push(json!({"day": day, "used_bytes": used.round() as i64, "total_bytes": r.i64("total_bytes")}));
    }
    let last = rows.last();
    let total = last.and_then(|r| r.i64("total_bytes"));
    let used_now = last.and_then(|r| r.i64("used_bytes"));
    let last_x = points.last().map(|p| p.0 as i64);
    let fit = if points.len() >= MIN_FORECAST_POINTS {
        least_squares(&points)
    } else {
        None
    };
    let mut trend = "insufficient_data";
    let mut date90 = Value::Null;
    let mut date100 = Value::Null;
    let mut projection = Vec::new();
    if let (Some(fit), Some(total), Some(last_x)) = (&fit, total.filter(|t| *t > 0), last_x) {
        let total_f = total as f64;
        let eps = (total_f * 1e-6).max(1.0);
        trend = if fit.slope > eps {
            "growing"
        } else if fit.slope < -eps {
            "shrinking"
        } else {
            "flat"
        };
        let used_now_f = used_now.map(|u| u as f64).unwrap_or(0.0);
        let reach = |fraction: f64| -> Value {
            let target = total_f * fraction;
            if used_now_f >= target {
                return Value::String(day_name(last_x));
            }
            if trend != "growing" {
                return Value::Null;
            }
            let x = ((target - fit.intercept) / fit.slope).ceil();
            if !x.is_finite() || x > (today + 36_500) as f64 {
                return Value::Null;
            }
            Value::String(day_name((x as i64).max(last_x)))
        };
        date90 = reach(0.9);
        date100 = reach(1.0);
        let step = if horizon <= 120 { 1 } else { 7 };
        let mut x = last_x;
        while x <= today + horizon {
            let y = (fit.intercept + fit.slope * x as f64).max(0.0);
            projection.push(json!({
                "day": day_name(x),
                "used_bytes": y.round() as i64,
                "used_pct": ((y * 10_000.0 / total_f).round() / 100.0),
            }));
            x += step;
        }
    }
    let body = json!({
        "system_id": id,
        "days": days,
        "points_used": points.len(),
        "min_points": MIN_FORECAST_POINTS,
        "trend": trend,
        "slope_bytes_per_day": fit.as_ref().map(|f| f.slope),
        "total_bytes": total,
        "used_bytes": used_now,
        "used_pct": percent(used_now, total),
        "date_90_pct": date90,
        "date_100_pct": date100,
        "history": history,
        "projection": projection,
    });
    Ok(json_ok(h, &body))
}

#[derive(Debug, Default, Clone)]
struct Totals {
    systems: i64,
    /// History only: systems whose value is their last earlier rollup (see [`CARRY_DAYS`]).
    carried: i64,
    with_capacity: i64,
    total: i64,
    used: i64,
    free: i64,
}

impl Totals {
    fn add(&mut self, total: Option<i64>, used: Option<i64>, free: Option<i64>) {
        self.systems += 1;
        if let Some(t) = total {
            self.with_capacity += 1;
            self.total = self.total.saturating_add(t);
            self.used = self.used.saturating_add(used.unwrap_or(0));
            self.free = self.free.saturating_add(free.unwrap_or(0));
        }
    }

    fn json(&self, key: Option<&str>) -> Value {
        json!({
            "key": key,
            "label": key.unwrap_or("(none)"),
            "systems": self.systems,
            "systems_with_capacity": self.with_capacity,
            "total_bytes": self.total,
            "used_bytes": self.used,
            "free_bytes": self.free,
            "used_pct": percent(Some(self.used), Some(self.total)),
        })
    }
}

/// `GET /api/v1/capacity/summary`
pub async fn capacity_summary(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let group_by = p.tag_key("group_by")?;
    let fleet = st.fleet.get(&st.db).await?;
    let mut overall = Totals::default();
    let mut groups: BTreeMap<Option<String>, Totals> = BTreeMap::new();
    for e in fleet.entries.iter().filter(|e| !e.removed) {
        let (t, u, f) = (e.total, e.used, e.free);
        overall.add(t, u, f);
        if let Some(key) = &group_by {
            groups.entry(e.tag(key)).or_default().add(t, u, f);
        }
    }
    // Named groups first (by key), the untagged group last.
    let mut list: Vec<Value> = groups
        .iter()
        .filter(|(k, _)| k.is_some())
        .map(|(k, t)| t.json(k.as_deref()))
        .collect();
    if let Some(none) = groups.get(&None) {
        list.push(none.json(None));
    }
    Ok(json_ok(
        h,
        &json!({"group_by": group_by, "overall": overall.json(None), "groups": list}),
    ))
}

struct HistorySeries {
    key: Option<String>,
    days: BTreeMap<String, Totals>,
}

/// A system's last daily rollup stands in for the days after it that have none (the system was
/// unreachable, or today's first poll has not come yet) for at most this many days, so that a
/// missing day does not show as a dip in the fleet's totals. Such points count the system in
/// `carried_forward`.
const CARRY_DAYS: i64 = 7;

/// One system's daily rollups in the range: (day number, total, used, free).
type DailyValues = Vec<(i64, Option<i64>, Option<i64>, Option<i64>)>;

async fn history_series(
    st: &AppState,
    p: &Params,
) -> ApiResult<(Option<String>, i64, i64, Vec<HistorySeries>)> {
    let group_by = p.tag_key("group_by")?;
    let (from, to) = range(p, 90)?;
    let (first, last) = (from.div_euclid(DAY_MS), to.div_euclid(DAY_MS));
    let mut sql = Sql::new(
        "SELECT cd.system_id AS system_id, cd.day AS day, cd.total_bytes AS total_bytes, cd.used_bytes AS used_bytes, \
         cd.free_bytes AS free_bytes, sy.tags AS tags FROM capacity_daily cd LEFT JOIN systems sy ON sy.id = cd.system_id \
         WHERE cd.day >= ",
    );
    // Look back far enough to carry a rollup into the first days of the range.
    sql.bind(day_of((first - CARRY_DAYS) * DAY_MS))
        .push(" AND cd.day <= ")
        .bind(day_of(to))
        .push(NOT_REMOVED)
        .push(" ORDER BY cd.system_id, cd.day");
    let rows = st.db.fetch(&sql).await?;
    let mut systems: BTreeMap<String, (Option<String>, DailyValues)> = BTreeMap::new();
    for r in &rows {
        let Some(day) = r.string("day").as_deref().and_then(day_index) else {
            continue;
        };
        let entry = systems
            .entry(r.string("system_id").unwrap_or_default())
            .or_insert_with(|| {
                let key = group_by.as_ref().and_then(|k| tag_value(&tags_of(r), k));
                (key, Vec::new())
            });
        entry.1.push((
            day,
            r.i64("total_bytes"),
            r.i64("used_bytes"),
            r.i64("free_bytes"),
        ));
    }
    let mut groups: BTreeMap<Option<String>, BTreeMap<String, Totals>> = BTreeMap::new();
    for (key, days) in systems.into_values() {
        let mut next = days.iter().peekable();
        let mut known = None;
        for d in first..=last {
            while let Some(v) = next.next_if(|v| v.0 <= d) {
                known = Some(v);
            }
            let Some(&(at, total, used, free)) = known else {
                continue;
            };
            if d - at > CARRY_DAYS {
                continue;
            }
            let t = groups
                .entry(key.clone())
                .or_default()
                .entry(day_of(d * DAY_MS))
                .or_default();
            t.add(total, used, free);
            if at < d {
                t.carried += 1;
            }
        }
    }
    let mut series: Vec<HistorySeries> = Vec::new();
    let none = groups.remove(&None);
    for (key, days) in groups {
        series.push(HistorySeries { key, days });
    }
    if let Some(days) = none {
        series.push(HistorySeries { key: None, days });
    }
    Ok((group_by, from, to, series))
}

/// `GET /api/v1/capacity/history`
pub async fn capacity_history(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let (group_by, from, to, series) = history_series(st, p).await?;
    let series: Vec<Value> = series
        .iter()
        .map(|s| {
            let points: Vec<Value> = s
                .days
                .iter()
                .map(|(day, t)| {
                    json!({
                        "day": day,
                        "systems": t.systems,
                        "carried_forward": t.carried,
                        "total_bytes": t.total,
                        "used_bytes": t.used,
                        "free_bytes": t.free,
                        "used_pct": percent(Some(t.used), Some(t.total)),
                    })
                })
                .collect();
            json!({"key": s.key, "label": s.key.as_deref().unwrap_or("(none)"), "points": points})
        })
        .collect();
    let mut body = Map::new();
    body.insert("group_by".into(), json!(group_by));
    put_time(&mut body, "from", Some(from));
    put_time(&mut body, "to", Some(to));
    body.insert("series".into(), Value::Array(series));
    Ok(json_ok(h, &Value::Object(body)))
}

/// `GET /api/v1/alerts`
pub async fn alerts(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let limit = limit_param(st, p)?;
    let state = p.one_of("state", ALERT_STATES, "open")?;
    let severities = p.enums(
        "severity",
        |s| sdash_proto::Severity::parse(s).map(|v| v.as_str()),
        SEVERITIES,
    )?;
    let vendors = p.enums(
        "vendor",
        |v| sdash_proto::Vendor::parse(v).map(|v| v.as_str()),
        VENDORS,
    )?;
    let system = p.system_id("system")?;
    let mut sql = Sql::new("SELECT ");
    sql.push(ALERT_COLUMNS).push(
        ", COALESCE(st.vendor, sy.vendor) AS vendor, COALESCE(CASE WHEN sy.updated_at > 0 THEN sy.name END, st.name, a.system_id) AS system_name \
         FROM alerts a LEFT JOIN system_state st ON st.system_id = a.system_id \
         LEFT JOIN systems sy ON sy.id = a.system_id WHERE 1=1",
    );
    match state {
        "open" => {
            sql.push(" AND a.cleared_at IS NULL");
        }
        "cleared" => {
            sql.push(" AND a.cleared_at IS NOT NULL");
        }
        _ => {}
    }
    if !severities.is_empty() {
        sql.push(" AND a.severity IN ").bind_list(severities);
    }
    if !vendors.is_empty() {
        sql.push(" AND COALESCE(st.vendor, sy.vendor) IN ")
            .bind_list(vendors);
    }
    if let Some(system) = system {
        sql.push(" AND a.system_id = ").bind(system);
    }
    if let Some(cursor) = p.get("cursor") {
        let c = decode_cursor(cursor)?;
        let bad = || ApiError::bad("cursor does not belong to this list");
        let t = c.get("t").and_then(Value::as_i64).ok_or_else(bad)?;
        let id = c.get("id").and_then(Value::as_i64).ok_or_else(bad)?;
        sql.push(" AND (a.first_seen < ")
            .bind(t)
            .push(" OR (a.first_seen = ")
            .bind(t)
            .push(" AND a.id < ")
            .bind(id)
            .push("))");
    }
    sql.push(" ORDER BY a.first_seen DESC, a.id DESC LIMIT ")
        .bind(limit + 1);
    let rows = st.db.fetch(&sql).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next = if more {
        rows.last()
            .map(|r| json!({"t": r.i64("first_seen"), "id": r.i64("id")}))
    } else {
        None
    };
    Ok(json_ok(
        h,
        &page_json(rows.iter().map(alert_json).collect(), next, limit),
    ))
}

/// `GET /api/v1/events` and `GET /api/v1/systems/{id}/events`
pub async fn events(
    st: &AppState,
    p: &Params,
    path_id: Option<&str>,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let limit = limit_param(st, p)?;
    let system = match path_id {
        Some(id) => Some(system_path_id(Some(id))?),
        None => p.system_id("system")?,
    };
    let level = match p.get("level") {
        None => None,
        Some(l) => Some(sdash_proto::Level::parse(l).ok_or_else(|| {
            ApiError::bad(format!(
                "level must be one of {}, got {l:?}",
                LEVELS.join(", ")
            ))
        })?),
    };
    let categories = p.enums(
        "category",
        |c| sdash_proto::Category::parse(c).map(|c| c.as_str()),
        CATEGORIES,
    )?;
    let since = p.time("since")?;
    let until = p.time("until")?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ApiError::bad("since must not be after until"));
    }
    let cursor = p.get("cursor").map(decode_cursor).transpose()?;
    if let (Some(id), Some(_)) = (path_id, &system) {
        require_system(st, id).await?;
    }
    let mut sql = Sql::new(
        "SELECT event_id, system_id, collector_id, observed_at, level, category, message, details, http_status, \
         endpoint FROM events WHERE 1=1",
    );
    if let Some(system) = system {
        sql.push(" AND system_id = ").bind(system);
    }
    if let Some(level) = level {
        sql.push(" AND level_rank >= ")
            .bind(i64::from(level.rank()));
    }
    if !categories.is_empty() {
        sql.push(" AND category IN ").bind_list(categories);
    }
    if let Some(s) = since {
        sql.push(" AND observed_at >= ").bind(s);
    }
    if let Some(u) = until {
        sql.push(" AND observed_at < ").bind(u);
    }
    if let Some(c) = cursor {
        let bad = || ApiError::bad("cursor does not belong to this list");
        let t = c.get("t").and_then(Value::as_i64).ok_or_else(bad)?;
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned();
        sql.push(" AND (observed_at < ")
            .bind(t)
            .push(" OR (observed_at = ")
            .bind(t)
            .push(" AND event_id < ")
            .bind(id)
            .push("))");
    }
    sql.push(" ORDER BY observed_at DESC, event_id DESC LIMIT ")
        .bind(limit + 1);
    let rows = st.db.fetch(&sql).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next = if more {
        rows.last()
            .map(|r| json!({"t": r.i64("observed_at"), "id": r.string("event_id")}))
    } else {
        None
    };
    let items = rows
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("event_id".into(), text_of(r, "event_id"));
            o.insert("system_id".into(), text_of(r, "system_id"));
            o.insert("collector_id".into(), text_of(r, "collector_id"));
            put_time(&mut o, "observed_at", r.i64("observed_at"));
            o.insert("level".into(), text_of(r, "level"));
            o.insert("category".into(), text_of(r, "category"));
            o.insert("message".into(), text_of(r, "message"));
            o.insert("details".into(), text_of(r, "details"));
            o.insert("http_status".into(), int_of(r, "http_status"));
            o.insert("endpoint".into(), text_of(r, "endpoint"));
            Value::Object(o)
        })
        .collect();
    Ok(json_ok(h, &page_json(items, next, limit)))
}

/// `GET /api/v1/collectors`
pub async fn collectors(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let rows = st
        .db
        .fetch(&Sql::new(
            "SELECT id, version, systems, polls, failures, outbox_depth, started_at, last_seen FROM collectors ORDER BY id",
        ))
        .await?;
    let now = now();
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let systems = parse_json(r.str("systems"), json!([]));
            let count = systems.as_array().map(Vec::len).unwrap_or(0);
            let last_seen = r.i64("last_seen");
            let mut o = Map::new();
            o.insert("id".into(), text_of(r, "id"));
            o.insert("version".into(), text_of(r, "version"));
            o.insert("systems".into(), systems);
            o.insert("system_count".into(), count.into());
            o.insert("polls".into(), int_of(r, "polls"));
            o.insert("failures".into(), int_of(r, "failures"));
            o.insert("outbox_depth".into(), int_of(r, "outbox_depth"));
            put_time(&mut o, "started_at", r.i64("started_at").filter(|t| *t > 0));
            put_time(&mut o, "last_seen", last_seen);
            o.insert(
                "live".into(),
                last_seen
                    .is_some_and(|t| now - t <= st.live_window_ms)
                    .into(),
            );
            Value::Object(o)
        })
        .collect();
    Ok(json_ok(
        h,
        &json!({"items": items, "live_window_s": st.live_window_ms / 1000}),
    ))
}

/// `GET /api/v1/status`
pub async fn status(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let now = now();
    let pipeline = st
        .db
        .fetch_one(&Sql::new(
            "SELECT writer_id, last_commit_at, last_stream_seq, consumer_pending FROM pipeline_status WHERE id = 1",
        ))
        .await?;
    let dead = st
        .db
        .fetch_one(&Sql::new("SELECT COUNT(*) AS n FROM dead_letters"))
        .await?;
    let open_alerts = st
        .db
        .fetch_one(&Sql::new(
            "SELECT COUNT(*) AS n FROM alerts WHERE cleared_at IS NULL",
        ))
        .await?;
    let fleet = st.fleet.get(&st.db).await?;
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    let mut total = 0;
    for e in fleet.entries.iter().filter(|e| !e.removed) {
        total += 1;
        *counts
            .entry(e.status.as_deref().unwrap_or("pending"))
            .or_default() += 1;
    }
    let mut systems: Map<String, Value> = counts
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n.into()))
        .collect();
    let mut live = Sql::new("SELECT COUNT(*) AS n FROM collectors WHERE last_seen >= ");
    live.bind(now - st.live_window_ms);
    let live = st.db.fetch_one(&live).await?;
    let last_commit = pipeline.as_ref().and_then(|r| r.i64("last_commit_at"));
    let mut o = Map::new();
    o.insert("database".into(), st.db.dialect().name().into());
    o.insert("database_ok".into(), true.into());
    o.insert(
        "nats_connected".into(),
        st.hub.as_ref().is_some_and(|h| h.available()).into(),
    );
    o.insert(
        "writer_id".into(),
        pipeline
            .as_ref()
            .map(|r| text_of(r, "writer_id"))
            .unwrap_or(Value::Null),
    );
    put_time(&mut o, "last_commit_at", last_commit);
    o.insert(
        "writer_lag_ms".into(),
        json!(last_commit.map(|t| (now - t).max(0))),
    );
    o.insert(
        "last_stream_seq".into(),
        pipeline
            .as_ref()
            .map(|r| int_of(r, "last_stream_seq"))
            .unwrap_or(Value::Null),
    );
    o.insert(
        "consumer_pending".into(),
        pipeline
            .as_ref()
            .map(|r| int_of(r, "consumer_pending"))
            .unwrap_or(Value::Null),
    );
    o.insert(
        "dead_letters".into(),
        dead.and_then(|r| r.i64("n")).unwrap_or(0).into(),
    );
    o.insert(
        "open_alerts".into(),
        open_alerts.and_then(|r| r.i64("n")).unwrap_or(0).into(),
    );
    systems.insert("total".into(), total.into());
    o.insert("systems".into(), Value::Object(systems));
    o.insert(
        "collectors_live".into(),
        live.and_then(|r| r.i64("n")).unwrap_or(0).into(),
    );
    Ok(json_ok(h, &Value::Object(o)))
}

fn opt_text(v: Option<String>) -> String {
    v.unwrap_or_default()
}

fn opt_num<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// `GET /api/v1/export/capacity.csv`
pub async fn export_capacity(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let fleet = st.fleet.get(&st.db).await?;
    let mut out = String::new();
    csv_row(
        &mut out,
        &[
            "id",
            "name",
            "vendor",
            "status",
            "total_bytes",
            "used_bytes",
            "free_bytes",
            "used_pct",
            "observed_at",
        ]
        .map(String::from),
    );
    for e in fleet.entries.iter().filter(|e| !e.removed) {
        let r = &e.row;
        let s = system_json(e);
        let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        csv_row(
            &mut out,
            &[
                opt_text(text("id")),
                opt_text(text("name")),
                opt_text(text("vendor")),
                opt_text(text("status")),
                opt_num(r.i64("total_bytes")),
                opt_num(r.i64("used_bytes")),
                opt_num(r.i64("free_bytes")),
                opt_num(percent(r.i64("used_bytes"), r.i64("total_bytes"))),
                opt_text(text("last_poll_at")),
            ],
        );
    }
    Ok(csv_response(h, out, "capacity.csv"))
}

/// `GET /api/v1/export/capacity-history.csv`
pub async fn export_capacity_history(
    st: &AppState,
    p: &Params,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let (group_by, _, _, series) = history_series(st, p).await?;
    let mut out = String::new();
    let group_col = group_by.clone().unwrap_or_else(|| "group".into());
    csv_row(
        &mut out,
        &[
            "day".into(),
            group_col,
            "systems".into(),
            "total_bytes".into(),
            "used_bytes".into(),
            "free_bytes".into(),
            "used_pct".into(),
        ],
    );
    let mut lines: Vec<(String, String, &Totals)> = Vec::new();
    for s in &series {
        let label = s.key.clone().unwrap_or_else(|| "(none)".into());
        for (day, t) in &s.days {
            lines.push((day.clone(), label.clone(), t));
        }
    }
    lines.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (day, label, t) in lines {
        csv_row(
            &mut out,
            &[
                day,
                label,
                t.systems.to_string(),
                t.total.to_string(),
                t.used.to_string(),
                t.free.to_string(),
                opt_num(percent(Some(t.used), Some(t.total))),
            ],
        );
    }
    Ok(csv_response(h, out, "capacity-history.csv"))
}

fn csv_response(h: &HeaderMap, body: String, filename: &'static str) -> Response {
    let mut resp = cached(h, "text/csv; charset=utf-8", body.into_bytes(), "no-cache");
    if let Ok(v) =
        warp::http::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        resp.headers_mut()
            .insert(warp::http::header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_fits_a_line() {
        let fit = least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).expect("fit");
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!((fit.intercept - 1.0).abs() < 1e-9);
        assert!(least_squares(&[(1.0, 1.0)]).is_none());
        assert!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }

    #[test]
    fn sort_values_order_like_sql_with_missing_last_or_first() {
        assert_eq!(
            SortVal::Int(-1).cmp(&SortVal::Int(0)),
            std::cmp::Ordering::Less
        );
        assert_eq!(
            SortVal::Float(0.5).cmp(&SortVal::Float(0.25)),
            std::cmp::Ordering::Greater
        );
        assert_eq!(
            SortVal::Text("a-b".into()).cmp(&SortVal::Text("a_b".into())),
            std::cmp::Ordering::Less
        );
        let v = SortVal::Float(0.1 + 0.2);
        assert_eq!(SortVal::from_json(SortKind::Float, &v.json()), Some(v));
    }

    #[test]
    fn days_round_trip() {
        let i = day_index("2026-03-01").expect("day");
        assert_eq!(day_name(i), "2026-03-01");
    }
}
