//! The capacity report (#15): two-level grouping with subtotals, a forecast per group, weekly
//! history (last or average, never a sum), the storage tier of a series, the tag columns of
//! capacity.csv, the XLSX exports (read back with calamine), and the history cache following
//! changes to past days.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use sdash_harness::Backend;
use sdash_proto::subjects::Kind;
use sdash_proto::{
    Envelope, SCHEMA_VERSION, SystemRecord, Vendor, format_ms, new_event_id, now_ms,
};
use serde_json::Value;

/// Noon of the UTC day `days_ago` days back (never later than a second ago).
fn noon(days_ago: i64) -> i64 {
    let now = now_ms();
    (now.div_euclid(DAY_MS) * DAY_MS + DAY_MS / 2 - days_ago * DAY_MS).min(now - 1000)
}

/// An inventory record with `enabled` chosen.
fn system_with(id: &str, tags: &[(&str, &str)], enabled: bool, at: i64) -> (String, Vec<u8>) {
    let e = Envelope {
        schema: SCHEMA_VERSION,
        event_id: new_event_id(),
        collector_id: "c1".into(),
        system_id: id.into(),
        observed_at: at,
        body: SystemRecord {
            name: id.to_uppercase(),
            vendor: Vendor::Pure,
            address: format!("https://{id}.example.net"),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            interval_s: 60,
            enabled,
            removed: false,
        },
    };
    (
        Kind::System.subject(id),
        sdash_proto::encode(&e).unwrap_or_else(|e| panic!("encode: {e}")),
    )
}

/// One system of the grouping fixture: tags, total, used per day (4 days ago .. today), GiB.
struct Fixture {
    id: &'static str,
    storage: Option<&'static str>,
    env: Option<&'static str>,
    enabled: bool,
    total: u64,
    used: [u64; 5],
}

const FIXTURE: &[Fixture] = &[
    Fixture {
        id: "a1",
        storage: Some("block"),
        env: Some("prod"),
        enabled: true,
        total: 100,
        used: [10, 12, 11, 15, 16],
    },
    Fixture {
        id: "a2",
        storage: Some("block"),
        env: Some("prod"),
        enabled: true,
        total: 100,
        used: [20, 20, 20, 20, 20],
    },
    Fixture {
        id: "a3",
        storage: Some("block"),
        env: Some("dev"),
        enabled: true,
        total: 50,
        used: [5, 6, 7, 8, 9],
    },
    Fixture {
        id: "n1",
        storage: Some("block"),
        env: None,
        enabled: true,
        total: 30,
        used: [3, 3, 4, 4, 5],
    },
    Fixture {
        id: "b1",
        storage: Some("file"),
        env: Some("prod"),
        enabled: true,
        total: 200,
        used: [100, 101, 102, 103, 104],
    },
    Fixture {
        id: "c1",
        storage: None,
        env: Some("prod"),
        enabled: true,
        total: 40,
        used: [1, 2, 3, 4, 5],
    },
    // Disabled: in no total.
    Fixture {
        id: "d1",
        storage: Some("block"),
        env: Some("prod"),
        enabled: false,
        total: 1000,
        used: [500, 500, 500, 500, 500],
    },
];

async fn seed_fixture(env: &Env) {
    let mut systems = Vec::new();
    for f in FIXTURE {
        let mut tags = Vec::new();
        if let Some(s) = f.storage {
            tags.push(("storage_type", s));
        }
        if let Some(e) = f.env {
            tags.push(("environment", e));
        }
        systems.push(system_with(f.id, &tags, f.enabled, noon(10)));
    }
    // Removed: in no total either.
    systems.push(system_with(
        "r1",
        &[("storage_type", "block"), ("environment", "prod")],
        true,
        noon(10),
    ));
    env.write(systems).await;
    for (i, days_ago) in (0..5i64).rev().enumerate() {
        let mut batch: Vec<(String, Vec<u8>)> = FIXTURE
            .iter()
            .map(|f| {
                simple_snapshot(
                    f.id,
                    noon(days_ago),
                    Vendor::Pure,
                    f.used[i] * GIB,
                    f.total * GIB,
                )
            })
            .collect();
        batch.push(simple_snapshot(
            "r1",
            noon(days_ago),
            Vendor::Pure,
            7 * GIB,
            9 * GIB,
        ));
        env.write(batch).await;
    }
    env.write_one(removed_rec("r1", Vendor::Pure, noon(0)))
        .await;
}

type Key = (Option<&'static str>, Option<&'static str>);

/// Expected (systems, used, total) in GiB per group on day index `i` (0 = 4 days ago).
fn expected(i: usize) -> BTreeMap<Key, (i64, u64, u64)> {
    let mut out: BTreeMap<Key, (i64, u64, u64)> = BTreeMap::new();
    for f in FIXTURE.iter().filter(|f| f.enabled) {
        let e = out.entry((f.storage, f.env)).or_default();
        e.0 += 1;
        e.1 += f.used[i];
        e.2 += f.total;
    }
    out
}

fn key_of(v: &Value, field: &str) -> Option<String> {
    v[field].as_str().map(str::to_owned)
}

async fn two_level_grouping_adds_up(backend: Backend) {
    let env = Env::new(backend).await;
    seed_fixture(&env).await;
    let today = expected(4);

    // Summary: groups equal the sums of their systems, subtotals the sums of their groups.
    let s = env
        .ok("/api/v1/capacity/summary?group_by=storage_type&subgroup_by=environment")
        .await;
    assert_eq!(s["group_by"], "storage_type");
    assert_eq!(s["subgroup_by"], "environment");
    let groups = arr(&s["groups"]);
    let keys: Vec<(Option<String>, Option<String>)> = groups
        .iter()
        .map(|g| (key_of(g, "key"), key_of(g, "subkey")))
        .collect();
    let some = |a: &str| Some(a.to_owned());
    assert_eq!(
        keys,
        [
            (some("block"), some("dev")),
            (some("block"), some("prod")),
            (some("block"), None),
            (some("file"), some("prod")),
            (None, some("prod")),
        ],
        "{s}"
    );
    for g in &groups {
        let k = (key_of(g, "key"), key_of(g, "subkey"));
        let (n, used, total) = today
            .iter()
            .find(|(ek, _)| (ek.0.map(str::to_owned), ek.1.map(str::to_owned)) == k)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("unexpected group {k:?}"));
        assert_eq!(int(&g["systems"]), n, "{g}");
        assert_eq!(g["used_bytes"], used * GIB, "{g}");
        assert_eq!(g["total_bytes"], total * GIB, "{g}");
        assert!(g["subkey"].is_null() || g["subkey"].is_string(), "{g}");
    }
    assert_eq!(groups[2]["label"], "block / (none)");
    let subtotals = arr(&s["subtotals"]);
    let sub_keys: Vec<Option<String>> = subtotals.iter().map(|t| key_of(t, "key")).collect();
    assert_eq!(sub_keys, [some("block"), some("file"), None], "{s}");
    for t in &subtotals {
        let members: Vec<&Value> = groups.iter().filter(|g| g["key"] == t["key"]).collect();
        for field in ["systems", "used_bytes", "total_bytes", "free_bytes"] {
            let sum: i64 = members.iter().map(|g| int(&g[field])).sum();
            assert_eq!(int(&t[field]), sum, "subtotal {field}: {t}");
        }
    }
    for field in ["systems", "used_bytes", "total_bytes", "free_bytes"] {
        let sum: i64 = subtotals.iter().map(|t| int(&t[field])).sum();
        assert_eq!(int(&s["overall"][field]), sum, "overall {field}");
    }
    // a1..c1, not the disabled d1 nor the removed r1.
    assert_eq!(s["overall"]["systems"], 6);
    assert_eq!(s["overall"]["total_bytes"], 520 * GIB);

    // History: every day of every group is the sum of its systems that day; subtotals and the
    // total are the sums of the groups.
    let h = env
        .ok(&format!(
            "/api/v1/capacity/history?group_by=storage_type&subgroup_by=environment&from={}",
            format_ms(noon(4) - DAY_MS / 2)
        ))
        .await;
    assert_eq!(h["tier"], "daily");
    let series = arr(&h["series"]);
    assert_eq!(series.len(), 5, "{h}");
    let mut group_sum: HashMap<(Option<String>, String), (i64, i64)> = HashMap::new();
    let mut all_sum: HashMap<String, (i64, i64)> = HashMap::new();
    for s in &series {
        let k = (key_of(s, "key"), key_of(s, "subkey"));
        assert_eq!(s["level"], "group");
        let points = arr(&s["points"]);
        assert_eq!(points.len(), 5, "{s}");
        for (i, p) in points.iter().enumerate() {
            assert_eq!(p["day"], day(noon(4 - i as i64)));
            let (n, used, total) = expected(i)
                .into_iter()
                .find(|(ek, _)| (ek.0.map(str::to_owned), ek.1.map(str::to_owned)) == k)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("unexpected series {k:?}"));
            assert_eq!(int(&p["systems"]), n, "{k:?} {p}");
            assert_eq!(p["used_bytes"], used * GIB, "{k:?} {p}");
            assert_eq!(p["total_bytes"], total * GIB, "{k:?} {p}");
            let day = p["day"].as_str().unwrap_or_default().to_owned();
            let e = group_sum.entry((k.0.clone(), day.clone())).or_default();
            e.0 += int(&p["used_bytes"]);
            e.1 += int(&p["total_bytes"]);
            let e = all_sum.entry(day).or_default();
            e.0 += int(&p["used_bytes"]);
            e.1 += int(&p["total_bytes"]);
        }
    }
    let subtotals = arr(&h["subtotals"]);
    assert_eq!(subtotals.len(), 3, "{h}");
    for t in &subtotals {
        assert_eq!(t["level"], "subtotal");
        for p in arr(&t["points"]) {
            let d = p["day"].as_str().unwrap_or_default().to_owned();
            let (used, total) = group_sum[&(key_of(t, "key"), d)];
            assert_eq!(int(&p["used_bytes"]), used, "{t}");
            assert_eq!(int(&p["total_bytes"]), total, "{t}");
        }
    }
    assert_eq!(h["total"]["level"], "total");
    let total_points = arr(&h["total"]["points"]);
    assert_eq!(total_points.len(), 5);
    for p in total_points {
        let (used, total) = all_sum[p["day"].as_str().unwrap_or_default()];
        assert_eq!(int(&p["used_bytes"]), used);
        assert_eq!(int(&p["total_bytes"]), total);
        assert_eq!(p["systems"], 6);
    }

    // One level: the same groups merged by storage type equal the subtotals.
    let one = env
        .ok("/api/v1/capacity/summary?group_by=storage_type")
        .await;
    let one_groups = arr(&one["groups"]);
    assert_eq!(one_groups.len(), 3);
    for (g, t) in one_groups.iter().zip(arr(&s["subtotals"]).iter()) {
        assert_eq!(g["key"], t["key"]);
        assert_eq!(g["used_bytes"], t["used_bytes"]);
        assert!(g.get("subkey").is_none(), "{g}");
    }
    let (code, body) = env
        .get("/api/v1/capacity/summary?subgroup_by=environment")
        .await;
    assert_eq!(code, 400, "{body}");
}
both!(two_level_grouping_adds_up);

/// The forecast of group block/prod (a1 + a2, used 30, 32, 31, 35, 36 GiB of 200 over five
/// days) is the least-squares line worked out here by hand.
async fn group_forecast_is_least_squares(backend: Backend) {
    let env = Env::new(backend).await;
    seed_fixture(&env).await;
    let s = env
        .ok("/api/v1/capacity/summary?group_by=storage_type&subgroup_by=environment")
        .await;
    let g = arr(&s["groups"])
        .into_iter()
        .find(|g| g["key"] == "block" && g["subkey"] == "prod")
        .unwrap_or_else(|| panic!("no block/prod in {s}"));
    let f = &g["forecast"];
    // x = 0..4 (4 days ago .. today), y in GiB.
    let y = [30.0, 32.0, 31.0, 35.0, 36.0];
    let mx = 2.0;
    let my = y.iter().sum::<f64>() / 5.0;
    let sxy: f64 = (0..5).map(|i| (i as f64 - mx) * (y[i] - my)).sum();
    let sxx: f64 = (0..5).map(|i| (i as f64 - mx).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    assert!((slope - 1.5).abs() < 1e-12, "hand-computed slope {slope}");
    let got = f["slope_bytes_per_day"].as_f64().unwrap_or(0.0);
    assert!(
        (got - slope * GIB as f64).abs() < 1.0,
        "slope {got} vs {}",
        slope * GIB as f64
    );
    assert_eq!(f["trend"], "growing");
    assert_eq!(f["points_used"], 5);
    let days_to = |share: f64| -> i64 { ((200.0 * share - intercept) / slope).ceil() as i64 - 4 };
    assert_eq!(f["days_to_80_pct"], days_to(0.8), "{f}");
    assert_eq!(f["days_to_90_pct"], days_to(0.9), "{f}");
    assert_eq!(f["days_to_100_pct"], days_to(1.0), "{f}");
    assert_eq!(
        f["date_90_pct"],
        day(now_ms() + days_to(0.9) * DAY_MS),
        "{f}"
    );
    // a2 alone would be flat; the file group (b1) grows 1 GiB a day from 104 of 200: 80 % in
    // 56 days (160 GiB).
    let file = arr(&s["groups"])
        .into_iter()
        .find(|g| g["key"] == "file")
        .unwrap_or_default();
    assert_eq!(file["forecast"]["days_to_80_pct"], 56, "{file}");
    // Subtotals and the fleet have forecasts too.
    for t in arr(&s["subtotals"]) {
        assert_eq!(t["forecast"]["points_used"], 5, "{t}");
    }
    assert_eq!(s["overall"]["forecast"]["trend"], "growing");
}
both!(group_forecast_is_least_squares);

/// Weekly points show the week's last day or the average of its days, never their sum.
async fn weekly_history_is_last_or_average(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_one(system_with("w", &[], true, noon(30))).await;
    let mut used_by_day: BTreeMap<i64, u64> = BTreeMap::new();
    for days_ago in (0..21i64).rev() {
        let used = 10 + (days_ago * 7 % 13) as u64;
        used_by_day.insert(noon(days_ago).div_euclid(DAY_MS), used);
        env.write_one(simple_snapshot(
            "w",
            noon(days_ago),
            Vendor::Pure,
            used * GIB,
            100 * GIB,
        ))
        .await;
    }
    let from = format_ms(noon(20) - DAY_MS / 2);
    for (how, pick) in [("last", 0), ("avg", 1)] {
        let h = env
            .ok(&format!(
                "/api/v1/capacity/history?from={from}&interval=week&week_value={how}"
            ))
            .await;
        assert_eq!(h["interval"], "week");
        assert_eq!(h["week_value"], how);
        let points = arr(&h["series"][0]["points"]);
        assert!(points.len() >= 3, "{h}");
        let mut covered = 0;
        for p in &points {
            let monday = sdash_proto::parse_rfc3339_ms(&format!(
                "{}T00:00:00Z",
                p["day"].as_str().unwrap_or_default()
            ))
            .unwrap_or(0)
            .div_euclid(DAY_MS);
            // 1970-01-05 (day 4) was a Monday.
            assert_eq!((monday - 4).rem_euclid(7), 0, "{p}");
            let days: Vec<u64> = used_by_day
                .range(monday..monday + 7)
                .map(|(_, u)| *u)
                .collect();
            assert_eq!(int(&p["days"]), days.len() as i64, "{p}");
            covered += days.len();
            let want = if pick == 0 {
                days[days.len() - 1] * GIB
            } else {
                (days.iter().sum::<u64>() as f64 * GIB as f64 / days.len() as f64).round() as u64
            };
            assert_eq!(p["used_bytes"], want, "{how}: {p}");
            assert_eq!(
                p["total_bytes"],
                100 * GIB,
                "{how}: never a sum of totals: {p}"
            );
            assert_eq!(p["systems"], 1, "{p}");
        }
        assert_eq!(covered, 21);
    }
}
both!(weekly_history_is_last_or_average);

/// `resolution=auto` picks raw while raw samples hold the whole range, hourly rollups when raw
/// was pruned inside it, daily rollups when hourly was too, and says which (`tier`).
async fn series_tier_follows_the_data(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write_one(system_with("t", &[], true, now - 40 * DAY_MS))
        .await;
    for (i, ago) in [30 * DAY_MS, 10 * DAY_MS, 2 * DAY_MS, 3_600_000, 0]
        .iter()
        .enumerate()
    {
        env.write_one(simple_snapshot(
            "t",
            now - ago - 1000,
            Vendor::Pure,
            (10 + 5 * i as u64) * GIB,
            100 * GIB,
        ))
        .await;
    }
    let get = |from_days: i64, extra: &'static str| {
        let path = format!(
            "/api/v1/systems/t/capacity?from={}{extra}",
            format_ms(now - from_days * DAY_MS)
        );
        let env = &env;
        async move { env.ok(&path).await }
    };
    // Nothing pruned: raw holds everything.
    let s = get(40, "").await;
    assert_eq!(
        (
            s["tier"].as_str(),
            s["resolution"].as_str(),
            s["requested"].as_str()
        ),
        (Some("raw"), Some("raw"), Some("auto")),
        "{s}"
    );
    assert_eq!(arr(&s["points"]).len(), 5);

    env.store
        .apply_retention(&sdash_writer::RetentionPolicy {
            capacity_raw_days: 5,
            capacity_hourly_days: 20,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    // Raw keeps the last 5 days: a range inside them, or reaching before them where no tier has
    // anything, is raw.
    for from_days in [3, 6] {
        let s = get(from_days, "").await;
        assert_eq!(s["tier"], "raw", "from {from_days} days: {s}");
        assert_eq!(arr(&s["points"]).len(), 3, "{s}");
    }
    // From 11 days: the sample of 10 days ago is only in the hourly rollups.
    let s = get(11, "").await;
    assert_eq!(s["tier"], "hourly", "{s}");
    let points = arr(&s["points"]);
    assert_eq!(points.len(), 4, "{s}");
    assert_eq!(points[0]["used_bytes"], 15 * GIB);
    assert!(
        points[0]["hour"].is_string() && points[0]["samples"] == 1,
        "{}",
        points[0]
    );
    // From 31 days: the first sample is only in the daily rollups.
    let s = get(31, "").await;
    assert_eq!(s["tier"], "daily", "{s}");
    let days: std::collections::BTreeSet<String> =
        [30 * DAY_MS, 10 * DAY_MS, 2 * DAY_MS, 3_600_000, 0]
            .iter()
            .map(|ago| day(now - ago - 1000))
            .collect();
    assert_eq!(arr(&s["points"]).len(), days.len(), "{s}");
    assert_eq!(s["points"][0]["used_bytes"], 10 * GIB);
    // An explicit resolution is kept.
    let s = get(31, "&resolution=raw").await;
    assert_eq!(
        (s["tier"].as_str(), s["requested"].as_str()),
        (Some("raw"), Some("raw"))
    );
    assert_eq!(arr(&s["points"]).len(), 3);
    let s = get(31, "&resolution=hourly").await;
    assert_eq!(s["tier"], "hourly");
    // All: from the first day with data, which only the daily rollups still hold.
    let s = env.ok("/api/v1/systems/t/capacity?range=all").await;
    assert_eq!(s["tier"], "daily", "{s}");
    assert_eq!(
        s["from"].as_str().map(|f| &f[..10]),
        Some(day(now - 30 * DAY_MS - 1000).as_str())
    );
    let s = env.ok("/api/v1/systems/t/capacity?range=7d").await;
    assert_eq!(s["tier"], "raw", "{s}");
    let (code, body) = env.get("/api/v1/systems/t/capacity?range=3w").await;
    assert_eq!(code, 400, "{body}");
}
both!(series_tier_follows_the_data);

/// A CSV parser for the exports' simple quoting (RFC 4180).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

async fn capacity_csv_has_tag_columns(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_with(
            "x1",
            &[("site", "Paris, FR"), ("environment", "prod")],
            true,
            now - 1000,
        ),
        system_with("x2", &[("storage_type", "block")], true, now - 1000),
        system_with("x3", &[("zone", "hidden")], false, now - 1000),
        simple_snapshot("x1", now, Vendor::Pure, GIB, 2 * GIB),
    ])
    .await;
    let (code, csv) = env.get_text("/api/v1/export/capacity.csv").await;
    assert_eq!(code, 200);
    let rows = parse_csv(&csv);
    assert_eq!(
        rows[0].join(","),
        "id,name,vendor,status,total_bytes,used_bytes,free_bytes,used_pct,observed_at,tag:environment,tag:site,tag:storage_type",
        "a column per tag key of the enabled systems, sorted: {csv}"
    );
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(rows[1][0], "x1");
    assert_eq!(
        rows[1][4..8],
        [
            (2 * GIB).to_string(),
            GIB.to_string(),
            GIB.to_string(),
            "50".into()
        ]
    );
    assert_eq!(
        rows[1][9..],
        ["prod".to_owned(), "Paris, FR".into(), String::new()]
    );
    assert_eq!(rows[2][9..], [String::new(), String::new(), "block".into()]);
}
both!(capacity_csv_has_tag_columns);

/// The cells of one sheet as text, numbers written as the CSV writes them.
fn sheet_text(bytes: &[u8], name: &str) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap_or_else(|e| panic!("not an XLSX file: {e}"));
    let range = book
        .worksheet_range(name)
        .unwrap_or_else(|e| panic!("sheet {name}: {e}"));
    range
        .rows()
        .map(|row| {
            let mut cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => (*f as i64).to_string(),
                    Data::Float(f) => f.to_string(),
                    Data::Int(i) => i.to_string(),
                    other => panic!("unexpected cell {other:?}"),
                })
                .collect();
            while cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            cells
        })
        .collect()
}

fn trimmed(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|mut r| {
            while r.last().is_some_and(String::is_empty) {
                r.pop();
            }
            r
        })
        .collect()
}

async fn xlsx_has_the_csv_numbers(backend: Backend) {
    let env = Env::new(backend).await;
    seed_fixture(&env).await;
    let fetch = |path: String| {
        let env = &env;
        async move {
            let resp = env
                .request(&path)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            let ctype = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                ctype,
                resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
    };
    let (_, csv) = fetch("/api/v1/export/capacity.csv".into()).await;
    let (ctype, xlsx) =
        fetch("/api/v1/export/capacity.xlsx?group_by=storage_type&subgroup_by=environment".into())
            .await;
    assert_eq!(ctype, sdash_api::routes::XLSX);
    let csv_rows = trimmed(parse_csv(&String::from_utf8_lossy(&csv)));
    assert!(csv_rows.len() > 5);
    assert_eq!(sheet_text(&xlsx, "Systems"), csv_rows);
    // The summary sheet: groups, each subtotal after its groups, the total last, as the JSON.
    let summary = sheet_text(&xlsx, "Summary");
    let s = env
        .ok("/api/v1/capacity/summary?group_by=storage_type&subgroup_by=environment")
        .await;
    assert_eq!(
        summary[0][..8].join(","),
        "level,group,subgroup,systems,total_bytes,used_bytes,free_bytes,used_pct"
    );
    let levels: Vec<&str> = summary[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        levels,
        [
            "group", "group", "group", "subtotal", "group", "subtotal", "group", "subtotal",
            "total"
        ]
    );
    let last = &summary[summary.len() - 1];
    assert_eq!(last[5], int(&s["overall"]["used_bytes"]).to_string());
    assert_eq!(summary[4][1..3], ["block".to_owned(), String::new()]);
    assert_eq!(
        summary[4][5],
        int(&s["subtotals"][0]["used_bytes"]).to_string()
    );

    for query in [
        "group_by=storage_type&subgroup_by=environment",
        "range=all&interval=week&week_value=avg",
        "",
    ] {
        let (_, csv) = fetch(format!("/api/v1/export/capacity-history.csv?{query}")).await;
        let (_, xlsx) = fetch(format!("/api/v1/export/capacity-history.xlsx?{query}")).await;
        let csv_rows = trimmed(parse_csv(&String::from_utf8_lossy(&csv)));
        assert!(csv_rows.len() > 1, "{query}");
        assert_eq!(sheet_text(&xlsx, "History"), csv_rows, "{query}");
    }
}
both!(xlsx_has_the_csv_numbers);

/// An imported day (`sdash.v1.history.<id>`): the only way a day before yesterday changes (the
/// writer counts a live sample only when it is newer than what it counted).
fn imported_day(id: &str, days_ago: i64, used: u64, total: u64) -> (String, Vec<u8>) {
    let e = Envelope {
        schema: SCHEMA_VERSION,
        event_id: new_event_id(),
        collector_id: "import".into(),
        system_id: id.into(),
        observed_at: now_ms(),
        body: sdash_proto::HistoryRecord {
            source: "predecessor".into(),
            vendor: Vendor::Pure,
            days: vec![sdash_proto::HistoryDay {
                day: day(noon(days_ago)),
                total_bytes: total,
                used_bytes: used,
                free_bytes: total - used,
            }],
            events: Vec::new(),
            keep_events: false,
        },
    };
    (
        Kind::History.subject(id),
        sdash_proto::encode(&e).unwrap_or_else(|e| panic!("encode: {e}")),
    )
}

/// The cached history follows a change to a past day (an imported day), a tag change and a
/// disabled system at the next request, and reads today's values fresh.
async fn cached_history_follows_past_changes(backend: Backend) {
    let env = Env::new(backend).await;
    env.write(vec![
        system_with("p1", &[("site", "a")], true, noon(20)),
        system_with("p2", &[("site", "b")], true, noon(20)),
    ])
    .await;
    for d in (0..4).rev() {
        env.write(vec![
            simple_snapshot("p1", noon(d), Vendor::Pure, 10 * GIB, 100 * GIB),
            simple_snapshot("p2", noon(d), Vendor::Pure, 20 * GIB, 100 * GIB),
        ])
        .await;
    }
    let path = format!(
        "/api/v1/capacity/history?group_by=site&from={}",
        format_ms(noon(12) - DAY_MS / 2)
    );
    let point = |h: &Value, key: &str, days_ago: i64| -> Option<Value> {
        arr(&h["series"])
            .into_iter()
            .find(|s| s["key"] == key)
            .and_then(|s| {
                arr(&s["points"])
                    .into_iter()
                    .find(|p| p["day"] == day(noon(days_ago)))
            })
    };
    let used = |p: Option<Value>| p.map(|p| p["used_bytes"].clone());
    let h = env.ok(&path).await;
    assert_eq!(used(point(&h, "a", 3)), Some(Value::from(10 * GIB)));
    assert!(point(&h, "a", 10).is_none(), "{h}");
    // Imported days ten and eleven days ago (before anything cached).
    env.write_one(imported_day("p1", 10, 5 * GIB, 100 * GIB))
        .await;
    let h = env.ok(&path).await;
    assert_eq!(used(point(&h, "a", 10)), Some(Value::from(5 * GIB)), "{h}");
    // Carried for up to 7 days after it.
    assert_eq!(
        point(&h, "a", 4).map(|p| p["carried_forward"].clone()),
        Some(Value::from(1)),
        "{h}"
    );
    env.write_one(imported_day("p2", 11, 7 * GIB, 100 * GIB))
        .await;
    let h = env.ok(&path).await;
    assert_eq!(used(point(&h, "b", 11)), Some(Value::from(7 * GIB)), "{h}");
    assert_eq!(used(point(&h, "a", 10)), Some(Value::from(5 * GIB)), "{h}");
    // A tag change regroups every day; a disabled system leaves every total.
    env.write_one(system_with("p2", &[("site", "a")], true, noon(0)))
        .await;
    let h = env.ok(&path).await;
    assert_eq!(arr(&h["series"]).len(), 1, "{h}");
    assert_eq!(used(point(&h, "a", 3)), Some(Value::from(30 * GIB)), "{h}");
    assert_eq!(used(point(&h, "a", 10)), Some(Value::from(12 * GIB)), "{h}");
    env.write_one(system_with("p1", &[("site", "a")], false, noon(0)))
        .await;
    let h = env.ok(&path).await;
    assert_eq!(used(point(&h, "a", 3)), Some(Value::from(20 * GIB)), "{h}");
    assert_eq!(
        used(point(&h, "a", 10)),
        Some(Value::from(7 * GIB)),
        "carried from day 11: {h}"
    );
    // Today's values are read fresh at every request.
    env.write_one(simple_snapshot(
        "p2",
        now_ms() - 10,
        Vendor::Pure,
        30 * GIB,
        100 * GIB,
    ))
    .await;
    let h = env.ok(&path).await;
    assert_eq!(used(point(&h, "a", 0)), Some(Value::from(30 * GIB)), "{h}");
}
both!(cached_history_follows_past_changes);

/// A short range sums the hourly rollups (one point per hour, the last one carried); longer
/// ones, or `resolution=daily`, the daily ones.
async fn short_fleet_history_is_hourly(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    let hour = |ms: i64| ms.div_euclid(3_600_000) * 3_600_000;
    env.write(vec![
        system_with("q1", &[("site", "x")], true, now - 10 * DAY_MS),
        system_with("q2", &[("site", "x")], true, now - 10 * DAY_MS),
    ])
    .await;
    for (id, ago_h, used) in [("q1", 5, 10), ("q2", 4, 20), ("q1", 2, 12)] {
        env.write_one(simple_snapshot(
            id,
            now - ago_h * 3_600_000,
            Vendor::Pure,
            used * GIB,
            100 * GIB,
        ))
        .await;
    }
    let h = env
        .ok("/api/v1/capacity/history?group_by=site&range=1d")
        .await;
    assert_eq!(
        (h["tier"].as_str(), h["interval"].as_str()),
        (Some("hourly"), Some("hour")),
        "{h}"
    );
    let points = arr(&h["series"][0]["points"]);
    // From q1's first hour to this hour.
    let expected: Vec<(i64, i64, i64, u64)> = [
        (5, 1, 0, 10),
        (4, 2, 1, 30),
        (3, 2, 2, 30),
        (2, 2, 1, 32),
        (1, 2, 2, 32),
        (0, 2, 2, 32),
    ]
    .into_iter()
    .map(|(ago, n, carried, used)| (hour(now - ago * 3_600_000), n, carried, used))
    .collect();
    let got: Vec<(i64, i64, i64, u64)> = points
        .iter()
        .map(|p| {
            (
                int(&p["hour_ms"]),
                int(&p["systems"]),
                int(&p["carried_forward"]),
                p["used_bytes"].as_u64().unwrap_or(0) / GIB,
            )
        })
        .collect();
    assert_eq!(got, expected, "{h}");
    assert_eq!(points[0]["hour"], format_ms(hour(now - 5 * 3_600_000)));
    assert_eq!(arr(&h["total"]["points"]).len(), 6);
    let (_, csv) = env
        .get_text("/api/v1/export/capacity-history.csv?group_by=site&range=1d")
        .await;
    assert!(csv.starts_with("hour,site,systems,"), "{csv}");
    assert!(
        csv.contains(&format!("{},x,2,", format_ms(hour(now - 4 * 3_600_000)))),
        "{csv}"
    );
    let d = env
        .ok("/api/v1/capacity/history?group_by=site&range=1d&resolution=daily")
        .await;
    assert_eq!(d["tier"], "daily");
    let d = env
        .ok("/api/v1/capacity/history?group_by=site&range=7d")
        .await;
    assert_eq!(d["tier"], "daily");
    let (code, body) = env
        .get("/api/v1/capacity/history?range=90d&resolution=hourly")
        .await;
    assert_eq!(code, 400, "{body}");
}
both!(short_fleet_history_is_hourly);
