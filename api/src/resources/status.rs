//! `GET /api/v1/status` (pipeline health: writer progress and lag, backlog, dead letters, fleet
//! counts) and `GET /api/v1/collectors` (collectors from their heartbeats).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::{now, rfc3339};
use crate::db::Sql;
use crate::http::{ApiResult, json_ok};
use crate::state::AppState;

/// A collector, from its latest heartbeat.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Collector {
    pub id: String,
    pub version: String,
    /// The system ids it owns.
    pub systems: Vec<String>,
    pub system_count: usize,
    pub polls: i64,
    pub failures: i64,
    pub outbox_depth: i64,
    /// When the collector started.
    pub started_at: Option<String>,
    /// When the collector started (ms since the epoch).
    pub started_at_ms: Option<i64>,
    /// Last heartbeat.
    pub last_seen: String,
    /// Last heartbeat (ms since the epoch).
    pub last_seen_ms: i64,
    /// Seen within the liveness window.
    pub live: bool,
}

/// `GET /api/v1/collectors`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CollectorList {
    pub items: Vec<Collector>,
    pub live_window_s: i64,
}

crate::row_struct! {
    struct CollectorRow {
        id: String,
        version: String,
        systems: String,
        polls: i64,
        failures: i64,
        outbox_depth: i64,
        started_at: i64,
        last_seen: i64,
    }
}

/// `GET /api/v1/collectors`
pub async fn collectors(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let rows = st
        .db
        .fetch_all_as::<CollectorRow>(&Sql::new(
            "SELECT id, version, systems, polls, failures, outbox_depth, started_at, last_seen FROM collectors ORDER BY id",
        ))
        .await?;
    let now = now();
    let items = rows
        .into_iter()
        .map(|r| {
            let systems: Vec<String> = serde_json::from_str(&r.systems).unwrap_or_default();
            let started_at = Some(r.started_at).filter(|t| *t > 0);
            Collector {
                id: r.id,
                version: r.version,
                system_count: systems.len(),
                systems,
                polls: r.polls,
                failures: r.failures,
                outbox_depth: r.outbox_depth,
                started_at: started_at.map(rfc3339),
                started_at_ms: started_at,
                last_seen: rfc3339(r.last_seen),
                last_seen_ms: r.last_seen,
                live: now - r.last_seen <= st.live_window_ms,
            }
        })
        .collect();
    let body = CollectorList {
        items,
        live_window_s: st.live_window_ms / 1000,
    };
    Ok(json_ok(h, &body))
}

/// `GET /api/v1/status`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PipelineStatus {
    /// `sqlite` or `postgres`.
    pub database: String,
    pub database_ok: bool,
    pub nats_connected: bool,
    pub writer_id: Option<String>,
    /// The writer's last commit.
    pub last_commit_at: Option<String>,
    /// The writer's last commit (ms since the epoch).
    pub last_commit_at_ms: Option<i64>,
    pub writer_lag_ms: Option<i64>,
    pub last_stream_seq: Option<i64>,
    pub consumer_pending: Option<i64>,
    pub dead_letters: i64,
    /// Open, unacknowledged alerts of the counted systems (neither removed nor disabled).
    pub open_alerts: i64,
    /// Open alerts an operator acknowledged, of the counted systems.
    pub acknowledged_alerts: i64,
    /// Systems (removed and disabled ones excepted) per status (`pending`: never polled), and
    /// `total`.
    pub systems: BTreeMap<String, i64>,
    /// Systems disabled in the inventory (not in `systems`).
    pub systems_disabled: i64,
    pub collectors_live: i64,
    /// Operator commands are enabled (`--operator-tokens-file` given and NATS configured): the
    /// dashboard shows its action buttons.
    pub commands_enabled: bool,
}

crate::row_struct! {
    struct PipelineRow {
        writer_id: String,
        last_commit_at: i64,
        last_stream_seq: i64,
        consumer_pending: i64,
    }
}

crate::row_struct! {
    struct Count {
        n: i64,
    }
}

async fn count(st: &AppState, sql: &Sql) -> ApiResult<i64> {
    Ok(st
        .db
        .fetch_optional_as::<Count>(sql)
        .await?
        .map_or(0, |c| c.n))
}

/// `GET /api/v1/status`
pub async fn status(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let now = now();
    let pipeline = st
        .db
        .fetch_optional_as::<PipelineRow>(&Sql::new(
            "SELECT writer_id, last_commit_at, last_stream_seq, consumer_pending FROM pipeline_status WHERE id = 1",
        ))
        .await?;
    let dead_letters = count(st, &Sql::new("SELECT COUNT(*) AS n FROM dead_letters")).await?;
    let fleet = st.fleet.get(&st.db).await?;
    // From the fleet's one count of open alerts, for the systems that count.
    let sum = |counts: &[crate::fleet::AlertCounts]| -> i64 {
        fleet
            .entries
            .iter()
            .zip(counts)
            .filter(|(e, _)| e.counted())
            .map(|(_, c)| c.iter().map(|n| i64::from(*n)).sum::<i64>())
            .sum()
    };
    let open_alerts = sum(fleet.open_alerts(&st.db).await?);
    let acknowledged_alerts = sum(fleet.acknowledged_alerts(&st.db).await?);
    let systems_disabled = fleet
        .entries
        .iter()
        .filter(|e| !e.removed && e.disabled)
        .count() as i64;
    let mut systems: BTreeMap<String, i64> = BTreeMap::new();
    let mut total = 0;
    for e in fleet.entries.iter().filter(|e| e.counted()) {
        total += 1;
        let status = e.row.status.as_deref().unwrap_or("pending");
        match systems.get_mut(status) {
            Some(n) => *n += 1,
            None => {
                systems.insert(status.to_owned(), 1);
            }
        }
    }
    systems.insert("total".into(), total);
    let mut live = Sql::new("SELECT COUNT(*) AS n FROM collectors WHERE last_seen >= ");
    live.bind(now - st.live_window_ms);
    let collectors_live = count(st, &live).await?;
    let last_commit = pipeline.as_ref().map(|r| r.last_commit_at);
    let body = PipelineStatus {
        database: st.db.dialect().name().to_owned(),
        database_ok: true,
        nats_connected: st.hub.as_ref().is_some_and(|h| h.available()),
        writer_id: pipeline.as_ref().map(|r| r.writer_id.clone()),
        last_commit_at: last_commit.map(rfc3339),
        last_commit_at_ms: last_commit,
        writer_lag_ms: last_commit.map(|t| (now - t).max(0)),
        last_stream_seq: pipeline.as_ref().map(|r| r.last_stream_seq),
        consumer_pending: pipeline.as_ref().map(|r| r.consumer_pending),
        dead_letters,
        open_alerts,
        acknowledged_alerts,
        systems,
        systems_disabled,
        collectors_live,
        commands_enabled: st.operators.is_some() && st.hub.is_some(),
    };
    Ok(json_ok(h, &body))
}
