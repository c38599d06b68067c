//! The CSV exports: `GET /api/v1/export/capacity.csv` (every system's current capacity) and
//! `GET /api/v1/export/capacity-history.csv` (the daily fleet history per tag value).

use warp::http::{HeaderMap, HeaderValue, header};
use warp::reply::Response;

use super::capacity::{Tally, history_series};
use super::rfc3339;
use crate::http::{ApiResult, Params, cached, csv_row, percent};
use crate::state::AppState;

fn opt_text(v: Option<&str>) -> String {
    v.unwrap_or_default().to_owned()
}

fn opt_num<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// `GET /api/v1/export/capacity.csv`
pub async fn capacity(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
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
        csv_row(
            &mut out,
            &[
                e.id.clone(),
                e.name.clone(),
                opt_text(e.vendor.as_deref()),
                opt_text(r.status.as_deref()),
                opt_num(r.total_bytes),
                opt_num(r.used_bytes),
                opt_num(r.free_bytes),
                opt_num(percent(r.used_bytes, r.total_bytes)),
                r.observed_at.map(rfc3339).unwrap_or_default(),
            ],
        );
    }
    Ok(csv_response(h, out, "capacity.csv"))
}

/// `GET /api/v1/export/capacity-history.csv`
pub async fn capacity_history(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let history = history_series(st, p).await?;
    let mut out = String::new();
    let group_col = history.group_by.clone().unwrap_or_else(|| "group".into());
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
    let mut lines: Vec<(String, String, &Tally)> = Vec::new();
    for s in &history.series {
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
                opt_num(t.used_pct()),
            ],
        );
    }
    Ok(csv_response(h, out, "capacity-history.csv"))
}

fn csv_response(h: &HeaderMap, body: String, filename: &'static str) -> Response {
    let mut resp = cached(h, "text/csv; charset=utf-8", body.into_bytes(), "no-cache");
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
