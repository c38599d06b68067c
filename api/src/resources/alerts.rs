//! `GET /api/v1/alerts` (alert history of the fleet) and the log events,
//! `GET /api/v1/events` and `GET /api/v1/systems/{id}/events`; both keyset-paged newest first.

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::page::{Keyset, Page};
use super::{limit_param, require_system, rfc3339, system_path_id};
use crate::db::Sql;
use crate::http::{ApiError, ApiResult, Params, json_ok};
use crate::routes::{ALERT_STATES, CATEGORIES, LEVELS, SEVERITIES, VENDORS};
use crate::state::AppState;

/// The alert columns every alert query selects, read as [`AlertRow`].
pub const ALERT_COLUMNS: &str = "a.id AS id, a.system_id AS system_id, a.alert_id AS alert_id, a.severity AS severity, \
    a.vendor_severity AS vendor_severity, a.title AS title, a.component AS component, a.opened_at AS opened_at, \
    a.first_seen AS first_seen, a.last_seen AS last_seen, a.cleared_at AS cleared_at, \
    a.acknowledged_by AS acknowledged_by, a.acknowledged_at AS acknowledged_at, a.assignee AS assignee, \
    a.assigned_by AS assigned_by, a.assigned_at AS assigned_at, \
    (SELECT COUNT(*) FROM alert_comments c WHERE c.system_id = a.system_id AND c.alert_id = a.alert_id \
     AND c.opened_at = a.first_seen) AS comment_count";

crate::row_struct! {
    /// One row of `alerts` ([`ALERT_COLUMNS`]).
    pub struct AlertRow {
        id: i64,
        system_id: String,
        alert_id: String,
        severity: String,
        vendor_severity: String,
        title: String,
        component: Option<String>,
        opened_at: Option<i64>,
        first_seen: i64,
        last_seen: i64,
        cleared_at: Option<i64>,
        acknowledged_by: Option<String>,
        acknowledged_at: Option<i64>,
        assignee: Option<String>,
        assigned_by: Option<String>,
        assigned_at: Option<i64>,
        comment_count: i64,
    }
}

crate::row_struct! {
    /// An alert of the fleet list: the alert and its system's name and vendor.
    struct FleetAlertRow {
        system_name: String,
        vendor: Option<String>,
    }
}

/// One alert of one system (the open alerts of `GET /api/v1/systems/{id}`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SystemAlert {
    pub id: i64,
    pub system_id: String,
    /// The vendor's alert id.
    pub alert_id: String,
    #[schemars(schema_with = "crate::openapi::severity")]
    pub severity: String,
    pub vendor_severity: String,
    pub title: String,
    pub component: Option<String>,
    /// Not cleared yet.
    pub open: bool,
    /// When the vendor says the alert opened.
    pub opened_at: Option<String>,
    /// When the vendor says the alert opened (ms since the epoch).
    pub opened_at_ms: Option<i64>,
    /// First snapshot showing the alert.
    pub first_seen: String,
    /// First snapshot showing the alert (ms since the epoch).
    pub first_seen_ms: i64,
    /// Last snapshot showing the alert.
    pub last_seen: String,
    /// Last snapshot showing the alert (ms since the epoch).
    pub last_seen_ms: i64,
    /// First snapshot without the alert (null while open).
    pub cleared_at: Option<String>,
    /// First snapshot without the alert (ms since the epoch; null while open).
    pub cleared_at_ms: Option<i64>,
    /// An operator acknowledged this instance: it no longer counts towards the system's health.
    pub acknowledged: bool,
    /// Who acknowledged it (the operator token's name).
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<String>,
    /// When it was acknowledged (ms since the epoch).
    pub acknowledged_at_ms: Option<i64>,
    /// Who it is assigned to (free text).
    pub assignee: Option<String>,
    /// Who assigned it.
    pub assigned_by: Option<String>,
    /// When it was assigned.
    pub assigned_at: Option<String>,
    /// When it was assigned (ms since the epoch).
    pub assigned_at_ms: Option<i64>,
    /// Comments in its thread (`GET /api/v1/alerts/{id}` lists them).
    pub comment_count: i64,
}

impl From<AlertRow> for SystemAlert {
    fn from(r: AlertRow) -> SystemAlert {
        SystemAlert {
            id: r.id,
            system_id: r.system_id,
            alert_id: r.alert_id,
            severity: r.severity,
            vendor_severity: r.vendor_severity,
            title: r.title,
            component: r.component,
            open: r.cleared_at.is_none(),
            opened_at: r.opened_at.map(rfc3339),
            opened_at_ms: r.opened_at,
            first_seen: rfc3339(r.first_seen),
            first_seen_ms: r.first_seen,
            last_seen: rfc3339(r.last_seen),
            last_seen_ms: r.last_seen,
            cleared_at: r.cleared_at.map(rfc3339),
            cleared_at_ms: r.cleared_at,
            acknowledged: r.acknowledged_by.is_some(),
            acknowledged_by: r.acknowledged_by,
            acknowledged_at: r.acknowledged_at.map(rfc3339),
            acknowledged_at_ms: r.acknowledged_at,
            assignee: r.assignee,
            assigned_by: r.assigned_by,
            assigned_at: r.assigned_at.map(rfc3339),
            assigned_at_ms: r.assigned_at,
            comment_count: r.comment_count,
        }
    }
}

/// An item of `GET /api/v1/alerts`: the alert with its system's name and vendor.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Alert {
    #[serde(flatten)]
    pub alert: SystemAlert,
    pub system_name: String,
    #[schemars(schema_with = "crate::openapi::vendor_or_null")]
    pub vendor: Option<String>,
}

pub type AlertList = Page<Alert>;

const ALERTS_PAGING: Keyset = Keyset {
    time_column: "a.first_seen",
    id_column: "a.id",
};

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
    let acknowledged = match p.get("acknowledged") {
        None => None,
        Some(_) => Some(p.boolean("acknowledged", false)?),
    };
    let cursor = Keyset::cursor::<i64>(p)?;
    let mut sql = fleet_alert_query();
    match acknowledged {
        Some(true) => {
            sql.push(" AND a.acknowledged_by IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND a.acknowledged_by IS NULL");
        }
        None => {}
    }
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
    ALERTS_PAGING.finish_query(&mut sql, cursor, limit);
    let rows = st
        .db
        .fetch_all_as::<(AlertRow, FleetAlertRow)>(&sql)
        .await?;
    let page: AlertList = Keyset::page(
        rows,
        limit,
        |(a, _)| (a.first_seen, a.id),
        |(a, fleet)| Alert {
            alert: a.into(),
            system_name: fleet.system_name,
            vendor: fleet.vendor,
        },
    );
    Ok(json_ok(h, &page))
}

/// `SELECT` of alerts with their system's name and vendor, ending in `WHERE 1=1`.
fn fleet_alert_query() -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(ALERT_COLUMNS).push(
        ", COALESCE(st.vendor, sy.vendor) AS vendor, COALESCE(CASE WHEN sy.updated_at > 0 THEN sy.name END, st.name, a.system_id) AS system_name \
         FROM alerts a LEFT JOIN system_state st ON st.system_id = a.system_id \
         LEFT JOIN systems sy ON sy.id = a.system_id WHERE 1=1",
    );
    sql
}

/// One comment of an alert instance's thread.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AlertComment {
    /// Who wrote it (the operator token's name).
    pub author: String,
    /// When it was written.
    pub at: String,
    /// When it was written (ms since the epoch).
    pub at_ms: i64,
    pub text: String,
}

/// `GET /api/v1/alerts/{id}`: the alert and its comment thread, oldest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    pub comments: Vec<AlertComment>,
}

crate::row_struct! {
    struct CommentRow {
        author: String,
        at: i64,
        body: String,
    }
}

/// `GET /api/v1/alerts/{id}`
pub async fn detail(st: &AppState, id: Option<&str>, h: &HeaderMap) -> ApiResult<Response> {
    let id = match id.map(|t| (t, t.parse::<i64>())) {
        Some((_, Ok(n))) if n > 0 => n,
        Some((t, _)) => {
            return Err(ApiError::bad(format!(
                "invalid alert id {t:?}: expected the id of an alert in GET /api/v1/alerts"
            )));
        }
        None => return Err(ApiError::bad("missing alert id")),
    };
    let mut sql = fleet_alert_query();
    sql.push(" AND a.id = ").bind(id);
    let Some((a, fleet)) = st
        .db
        .fetch_optional_as::<(AlertRow, FleetAlertRow)>(&sql)
        .await?
    else {
        return Err(ApiError::NotFound(format!("alert {id} not found")));
    };
    let mut thread = Sql::new("SELECT author, at, body FROM alert_comments WHERE system_id = ");
    thread
        .bind(a.system_id.as_str())
        .push(" AND alert_id = ")
        .bind(a.alert_id.as_str())
        .push(" AND opened_at = ")
        .bind(a.first_seen)
        .push(" ORDER BY id LIMIT 10000");
    let comments = st
        .db
        .fetch_all_as::<CommentRow>(&thread)
        .await?
        .into_iter()
        .map(|c| AlertComment {
            author: c.author,
            at: rfc3339(c.at),
            at_ms: c.at,
            text: c.body,
        })
        .collect();
    let body = AlertDetail {
        alert: Alert {
            alert: a.into(),
            system_name: fleet.system_name,
            vendor: fleet.vendor,
        },
        comments,
    };
    Ok(json_ok(h, &body))
}

/// A log event of a system.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Event {
    pub event_id: String,
    pub system_id: String,
    pub collector_id: String,
    /// When the event happened.
    pub observed_at: String,
    /// When the event happened (ms since the epoch).
    pub observed_at_ms: i64,
    #[schemars(schema_with = "crate::openapi::level")]
    pub level: String,
    pub category: String,
    pub message: String,
    pub details: Option<String>,
    pub http_status: Option<i64>,
    pub endpoint: Option<String>,
}

pub type EventList = Page<Event>;

crate::row_struct! {
    struct EventRow {
        event_id: String,
        system_id: String,
        collector_id: String,
        observed_at: i64,
        level: String,
        category: String,
        message: String,
        details: Option<String>,
        http_status: Option<i64>,
        endpoint: Option<String>,
    }
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Event {
        Event {
            event_id: r.event_id,
            system_id: r.system_id,
            collector_id: r.collector_id,
            observed_at: rfc3339(r.observed_at),
            observed_at_ms: r.observed_at,
            level: r.level,
            category: r.category,
            message: r.message,
            details: r.details,
            http_status: r.http_status,
            endpoint: r.endpoint,
        }
    }
}

const EVENTS_PAGING: Keyset = Keyset {
    time_column: "observed_at",
    id_column: "event_id",
};

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
    let cursor = Keyset::cursor::<String>(p)?;
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
    EVENTS_PAGING.finish_query(&mut sql, cursor, limit);
    let rows = st.db.fetch_all_as::<EventRow>(&sql).await?;
    let page: EventList = Keyset::page(
        rows,
        limit,
        |r| (r.observed_at, r.event_id.clone()),
        Event::from,
    );
    Ok(json_ok(h, &page))
}
