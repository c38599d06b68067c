//! The exports: `GET /api/v1/export/capacity.csv` (every system's current capacity, with a column
//! per tag key), `GET /api/v1/export/capacity-history.csv` (the fleet history per group), and the
//! same as XLSX workbooks (`capacity.xlsx` adds the grouped summary with its forecasts,
//! `capacity-history.xlsx`). The CSV and the XLSX of one export are made from the same rows, so
//! they hold the same numbers.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use warp::http::{HeaderMap, HeaderValue, header};
use warp::reply::Response;

use super::capacity::{History, Totals, history_series, report};
use super::{day_name, rfc3339};
use crate::http::{ApiError, ApiResult, Params, cached, csv_row, percent};
use crate::routes::XLSX;
use crate::state::AppState;

/// One cell of an export: text, or a number (a number cell in XLSX).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Empty,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Int(v) => v.to_string(),
            Cell::Float(v) => v.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

fn opt_text(v: Option<&str>) -> Cell {
    v.map_or(Cell::Empty, |t| Cell::Text(t.to_owned()))
}

fn opt_int(v: Option<i64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Int)
}

fn opt_float(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Float)
}

/// A table: its header and rows.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn csv(&self) -> String {
        let mut out = String::new();
        csv_row(&mut out, &self.head);
        for r in &self.rows {
            csv_row(&mut out, &r.iter().map(Cell::text).collect::<Vec<_>>());
        }
        out
    }
}

/// Prefix of the tag columns of capacity.csv.
const TAG_PREFIX: &str = "tag:";

/// Every enabled system's current capacity, with one column per tag key (sorted).
async fn systems_table(st: &AppState) -> ApiResult<Table> {
    let fleet = st.fleet.get(&st.db).await?;
    let systems: Vec<_> = fleet.entries.iter().filter(|e| e.counted()).collect();
    let mut keys: Vec<&String> = systems.iter().flat_map(|e| e.tags.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut head: Vec<String> = [
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
    .map(String::from)
    .to_vec();
    head.extend(keys.iter().map(|k| format!("{TAG_PREFIX}{k}")));
    let rows = systems
        .iter()
        .map(|e| {
            let r = &e.row;
            let mut row = vec![
                Cell::Text(e.id.clone()),
                Cell::Text(e.name.clone()),
                opt_text(e.vendor.as_deref()),
                opt_text(r.status.as_deref()),
                opt_int(r.total_bytes),
                opt_int(r.used_bytes),
                opt_int(r.free_bytes),
                opt_float(percent(r.used_bytes, r.total_bytes)),
                r.observed_at
                    .map_or(Cell::Empty, |t| Cell::Text(rfc3339(t))),
            ];
            row.extend(keys.iter().map(|k| opt_text(e.tag(k).as_deref())));
            row
        })
        .collect();
    Ok(Table { head, rows })
}

/// The history as rows: day, the group's value(s), totals; groups only (subtotals and the total
/// are sums of these rows), by day then group.
fn history_table(h: &History) -> Table {
    let g = &h.grouping;
    let hourly = h.tier == "hourly";
    let mut head = vec![
        if hourly { "hour" } else { "day" }.to_owned(),
        g.group_by.clone().unwrap_or_else(|| "group".into()),
    ];
    if let Some(s) = &g.subgroup_by {
        head.push(s.clone());
    }
    head.extend(
        [
            "systems",
            "total_bytes",
            "used_bytes",
            "free_bytes",
            "used_pct",
        ]
        .map(String::from),
    );
    let none = || "(none)".to_owned();
    let mut rows: Vec<(i64, String, String, Vec<Cell>)> = Vec::new();
    for s in &h.series {
        let first = s.key.clone().unwrap_or_else(none);
        let second = s.subkey.clone().map(|k| k.unwrap_or_else(none));
        for b in &s.points {
            let when = match b.hour {
                Some(hour) => rfc3339(hour),
                None => day_name(b.day),
            };
            let mut row = vec![Cell::Text(when), Cell::Text(first.clone())];
            if let Some(k) = &second {
                row.push(Cell::Text(k.clone()));
            }
            let t = &b.tally;
            row.extend([
                Cell::Int(t.systems),
                Cell::Int(t.total),
                Cell::Int(t.used),
                Cell::Int(t.free),
                opt_float(t.used_pct()),
            ]);
            rows.push((
                b.hour.unwrap_or(b.day),
                first.clone(),
                second.clone().unwrap_or_default(),
                row,
            ));
        }
    }
    rows.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    Table {
        head,
        rows: rows.into_iter().map(|r| r.3).collect(),
    }
}

/// The grouped summary: one row per group, subtotal and the total, with its forecast.
fn summary_table(groups: &[Totals], subtotals: &[Totals], overall: &Totals, two: bool) -> Table {
    let head = [
        "level",
        "group",
        "subgroup",
        "systems",
        "total_bytes",
        "used_bytes",
        "free_bytes",
        "used_pct",
        "trend",
        "days_to_80_pct",
        "days_to_90_pct",
        "days_to_100_pct",
        "date_80_pct",
        "date_90_pct",
        "date_100_pct",
    ]
    .map(String::from)
    .to_vec();
    let row = |level: &str, t: &Totals| {
        let f = &t.forecast;
        let none = || Cell::Text("(none)".into());
        vec![
            Cell::Text(level.into()),
            match level {
                "total" => Cell::Text("All systems".into()),
                _ => t.key.clone().map_or_else(none, Cell::Text),
            },
            match &t.subkey {
                Some(k) => k.clone().map_or_else(none, Cell::Text),
                None => Cell::Empty,
            },
            Cell::Int(t.systems),
            Cell::Int(t.total_bytes),
            Cell::Int(t.used_bytes),
            Cell::Int(t.free_bytes),
            opt_float(t.used_pct),
            Cell::Text(
                serde_json::to_value(f.trend)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            opt_int(f.days_to_80_pct),
            opt_int(f.days_to_90_pct),
            opt_int(f.days_to_100_pct),
            opt_text(f.date_80_pct.as_deref()),
            opt_text(f.date_90_pct.as_deref()),
            opt_text(f.date_100_pct.as_deref()),
        ]
    };
    let mut rows = Vec::new();
    if two {
        // Each subtotal after its groups.
        for s in subtotals {
            rows.extend(
                groups
                    .iter()
                    .filter(|g| g.key == s.key)
                    .map(|g| row("group", g)),
            );
            rows.push(row("subtotal", s));
        }
    } else {
        rows.extend(groups.iter().map(|g| row("group", g)));
    }
    rows.push(row("total", overall));
    Table { head, rows }
}

/// `GET /api/v1/export/capacity.csv`
pub async fn capacity(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let table = systems_table(st).await?;
    Ok(csv_response(h, table.csv(), "capacity.csv"))
}

/// `GET /api/v1/export/capacity-history.csv`
pub async fn capacity_history(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let history = history_series(st, p).await?;
    Ok(csv_response(
        h,
        history_table(&history).csv(),
        "capacity-history.csv",
    ))
}

/// `GET /api/v1/export/capacity.xlsx`
pub async fn capacity_xlsx(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let systems = systems_table(st).await?;
    let r = report(st, p).await?;
    let summary = summary_table(
        &r.groups,
        &r.subtotals,
        &r.overall,
        r.grouping.subgroup_by.is_some(),
    );
    let body = workbook(&[("Systems", &systems), ("Summary", &summary)])?;
    Ok(download(h, XLSX, body, "capacity.xlsx"))
}

/// `GET /api/v1/export/capacity-history.xlsx`
pub async fn capacity_history_xlsx(
    st: &AppState,
    p: &Params,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let history = history_series(st, p).await?;
    let table = history_table(&history);
    let body = workbook(&[("History", &table)])?;
    Ok(download(h, XLSX, body, "capacity-history.xlsx"))
}

fn xlsx_error(e: XlsxError) -> ApiError {
    tracing::error!(error = %e, "cannot write the XLSX export");
    ApiError::Internal
}

/// A workbook with one sheet per table: a bold header row, numbers as number cells.
fn workbook(sheets: &[(&str, &Table)]) -> ApiResult<Vec<u8>> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    for (name, table) in sheets {
        let sheet: &mut Worksheet = book.add_worksheet();
        sheet.set_name(*name).map_err(xlsx_error)?;
        for (c, title) in table.head.iter().enumerate() {
            sheet
                .write_string_with_format(0, c as u16, title, &bold)
                .map_err(xlsx_error)?;
        }
        for (r, row) in table.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(t) => sheet.write_string(r, c, t).map(|_| ()),
                    // Bytes fit a double exactly up to 8 PiB.
                    Cell::Int(v) => sheet.write_number(r, c, *v as f64).map(|_| ()),
                    Cell::Float(v) => sheet.write_number(r, c, *v).map(|_| ()),
                    Cell::Empty => Ok(()),
                }
                .map_err(xlsx_error)?;
            }
        }
        if !table.head.is_empty() {
            sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        }
    }
    book.save_to_buffer().map_err(xlsx_error)
}

fn csv_response(h: &HeaderMap, body: String, filename: &'static str) -> Response {
    let mut resp = cached(h, "text/csv; charset=utf-8", body.into_bytes(), "no-cache");
    attachment(&mut resp, filename);
    resp
}

/// A binary download (already compressed: no gzip), with its ETag.
fn download(
    h: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    filename: &'static str,
) -> Response {
    // `cached` gzips only for clients that accept it: ask it as one that does not.
    let mut plain = h.clone();
    plain.remove(header::ACCEPT_ENCODING);
    let mut resp = cached(&plain, content_type, body, "no-cache");
    attachment(&mut resp, filename);
    resp
}

fn attachment(resp: &mut Response, filename: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_as_csv_text() {
        let t = Table {
            head: vec!["a".into(), "b".into()],
            rows: vec![
                vec![Cell::Int(5), Cell::Empty],
                vec![Cell::Float(49.5), Cell::Text("x, y".into())],
            ],
        };
        assert_eq!(t.csv(), "a,b\r\n5,\r\n49.5,\"x, y\"\r\n");
    }
}
