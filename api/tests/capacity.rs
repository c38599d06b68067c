//! Capacity history, forecast, fleet summary and the CSV exports.

mod common;

use common::*;
use sdash_harness::Backend;
use sdash_proto::{Vendor, format_ms, now_ms};
use serde_json::Value;

async fn capacity_series_and_forecast(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec(
            "grow",
            "Growing",
            Vendor::Pure,
            &[("environment", "production")],
            now - 40 * DAY_MS,
        ),
        system_rec(
            "flat",
            "Flat",
            Vendor::Ontap,
            &[("environment", "production")],
            now - 40 * DAY_MS,
        ),
        system_rec(
            "one",
            "One sample",
            Vendor::Datadomain,
            &[("environment", "dev")],
            now - 40 * DAY_MS,
        ),
        system_rec(
            "none",
            "No history",
            Vendor::Storagegrid,
            &[],
            now - 40 * DAY_MS,
        ),
    ])
    .await;
    // 30 days: `grow` adds 1 GiB a day (two samples a day), `flat` stays at 20 GiB.
    for d in (0..30i64).rev() {
        let at = now - d * DAY_MS;
        let used = (50 + (29 - d) as u64) * GIB;
        env.write(vec![
            simple_snapshot(
                "grow",
                at - 3_600_000,
                Vendor::Pure,
                used - GIB / 2,
                100 * GIB,
            ),
            simple_snapshot("grow", at, Vendor::Pure, used, 100 * GIB),
            simple_snapshot("flat", at, Vendor::Ontap, 20 * GIB, 100 * GIB),
        ])
        .await;
    }
    env.write_one(simple_snapshot(
        "one",
        now - 1000,
        Vendor::Datadomain,
        5 * GIB,
        10 * GIB,
    ))
    .await;

    // Raw samples, default range (30 days back from now).
    let raw = env.ok("/api/v1/systems/grow/capacity").await;
    assert_eq!(raw["resolution"], "raw");
    let points = raw["points"].as_array().cloned().unwrap_or_default();
    assert!(points.len() >= 58, "{}", points.len());
    let last = points.last().cloned().unwrap_or_default();
    assert_eq!(last["used_bytes"], 79 * GIB);
    assert_eq!(last["total_bytes"], 100 * GIB);
    assert_eq!(last["used_pct"], 79.0);
    assert!(last["at"].is_string() && last["at_ms"].is_i64());
    // A narrow range.
    let from = format_ms(now - 2 * DAY_MS - 1000);
    let path = format!(
        "/api/v1/systems/grow/capacity?from={from}&to={}",
        format_ms(now)
    );
    let narrow = env.ok(&path).await;
    assert_eq!(
        narrow["points"].as_array().map(Vec::len),
        Some(5),
        "{narrow}"
    );

    // Daily rollups.
    let daily = env
        .ok("/api/v1/systems/grow/capacity?resolution=daily")
        .await;
    let days = daily["points"].as_array().cloned().unwrap_or_default();
    assert!((29..=31).contains(&days.len()), "{}", days.len());
    let today = days.last().cloned().unwrap_or_default();
    assert_eq!(today["day"], day(now));
    assert_eq!(today["used_bytes"], 79 * GIB);
    assert!(today["samples"].as_i64().is_some_and(|n| n >= 1));
    assert!(today["used_avg"].is_i64());

    // No history and one sample.
    let empty = env
        .ok("/api/v1/systems/none/capacity?resolution=daily")
        .await;
    assert_eq!(empty["points"], serde_json::json!([]));
    let one = env.ok("/api/v1/systems/one/capacity").await;
    assert_eq!(one["points"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["points"][0]["used_pct"], 50.0);

    // Forecast: 79 GiB of 100 growing 1 GiB/day: 90 % in ~11 days, 100 % in ~21.
    let f = env.ok("/api/v1/systems/grow/forecast").await;
    assert_eq!(f["trend"], "growing", "{f}");
    let slope = f["slope_bytes_per_day"].as_f64().unwrap_or(0.0);
    assert!(
        (slope - GIB as f64).abs() < GIB as f64 * 0.05,
        "slope {slope}"
    );
    let near = |days: i64| -> Vec<Value> {
        (days - 1..=days + 1)
            .map(|d| Value::String(day(now + d * DAY_MS)))
            .collect()
    };
    assert!(near(11).contains(&f["date_90_pct"]), "{}", f["date_90_pct"]);
    assert!(
        near(21).contains(&f["date_100_pct"]),
        "{}",
        f["date_100_pct"]
    );
    assert!(f["projection"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(f["history"].as_array().is_some_and(|p| p.len() >= 29));
    let flat = env.ok("/api/v1/systems/flat/forecast").await;
    assert_eq!(flat["trend"], "flat", "{flat}");
    assert_eq!(flat["date_90_pct"], Value::Null);
    assert_eq!(flat["date_100_pct"], Value::Null);
    for id in ["one", "none"] {
        let f = env.ok(&format!("/api/v1/systems/{id}/forecast")).await;
        assert_eq!(f["trend"], "insufficient_data", "{f}");
        assert_eq!(f["date_90_pct"], Value::Null);
        assert_eq!(f["projection"], serde_json::json!([]));
    }
    for path in [
        "/api/v1/systems/ghost/forecast",
        "/api/v1/systems/ghost/capacity",
    ] {
        let (code, body) = env.get(path).await;
        assert_eq!(code, 404, "{path}: {body}");
    }

    // Fleet summary per tag.
    let s = env
        .ok("/api/v1/capacity/summary?group_by=environment")
        .await;
    assert_eq!(s["overall"]["systems"], 4);
    assert_eq!(s["overall"]["systems_with_capacity"], 3);
    assert_eq!(s["overall"]["total_bytes"], 210 * GIB);
    assert_eq!(s["overall"]["used_bytes"], 104 * GIB);
    let groups = s["groups"].as_array().cloned().unwrap_or_default();
    let keys: Vec<&Value> = groups.iter().map(|g| &g["key"]).collect();
    assert_eq!(
        keys,
        [
            &Value::from("dev"),
            &Value::from("production"),
            &Value::Null
        ]
    );
    assert_eq!(groups[1]["total_bytes"], 200 * GIB);
    assert_eq!(groups[1]["used_bytes"], 99 * GIB);
    assert_eq!(groups[1]["used_pct"], 49.5);
    assert_eq!(groups[2]["label"], "(none)");
    assert_eq!(groups[2]["systems"], 1);
    let plain = env.ok("/api/v1/capacity/summary").await;
    assert_eq!(plain["groups"], serde_json::json!([]));
    assert_eq!(plain["overall"]["total_bytes"], 210 * GIB);

    // Grouped daily history.
    let h = env
        .ok("/api/v1/capacity/history?group_by=environment")
        .await;
    let series = h["series"].as_array().cloned().unwrap_or_default();
    assert_eq!(series.len(), 2, "{h}");
    assert_eq!(series[0]["key"], "dev");
    assert_eq!(series[1]["key"], "production");
    let prod_today = series[1]["points"]
        .as_array()
        .and_then(|p| p.last().cloned())
        .unwrap_or_default();
    assert_eq!(prod_today["day"], day(now));
    assert_eq!(prod_today["systems"], 2);
    assert_eq!(prod_today["used_bytes"], 99 * GIB);
    let ungrouped = env.ok("/api/v1/capacity/history").await;
    assert_eq!(ungrouped["series"].as_array().map(Vec::len), Some(1));
    assert_eq!(ungrouped["series"][0]["key"], Value::Null);

    // CSV exports.
    let (code, csv) = env.get_text("/api/v1/export/capacity.csv").await;
    assert_eq!(code, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,vendor,status,total_bytes,used_bytes,free_bytes,used_pct,observed_at,tag:environment"
    );
    assert_eq!(lines.len(), 5);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "grow,Growing,pure,online,{},{},",
            100 * GIB,
            79 * GIB
        ))),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("none,No history,storagegrid,,,,,,")),
        "{csv}"
    );
    let path = format!(
        "/api/v1/export/capacity-history.csv?group_by=environment&resolution=daily&from={}",
        format_ms(now - DAY_MS)
    );
    let (code, csv) = env.get_text(&path).await;
    assert_eq!(code, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "day,environment,systems,total_bytes,used_bytes,free_bytes,used_pct"
    );
    assert!(
        lines.contains(
            &format!(
                "{},production,2,{},{},{},49.5",
                day(now),
                200 * GIB,
                99 * GIB,
                101 * GIB
            )
            .as_str()
        ),
        "{csv}"
    );
}
both!(capacity_series_and_forecast);

async fn csv_quotes_awkward_names(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec(
            "odd",
            "Array, \"the big one\"",
            Vendor::Pure,
            &[("site", "Paris, FR")],
            now - 1000,
        ),
        simple_snapshot("odd", now, Vendor::Pure, GIB, 2 * GIB),
        system_rec(
            "formula",
            "=HYPERLINK(\"x\")",
            Vendor::Pure,
            &[],
            now - 1000,
        ),
    ])
    .await;
    let (_, csv) = env.get_text("/api/v1/export/capacity.csv").await;
    assert!(
        csv.contains("\r\nodd,\"Array, \"\"the big one\"\"\",pure,online,"),
        "{csv}"
    );
    assert!(
        csv.contains("\r\nformula,\"'=HYPERLINK(\"\"x\"\")\",pure,"),
        "{csv}"
    );
    let (_, csv) = env
        .get_text("/api/v1/export/capacity-history.csv?group_by=site")
        .await;
    assert!(csv.contains(",\"Paris, FR\",1,"), "{csv}");
}
both!(csv_quotes_awkward_names);

/// A day without a rollup (the system was unreachable, or today's first poll has not come yet)
/// counts the system with its last rollup, for at most 7 days, instead of a dip in the totals.
async fn history_carries_the_last_rollup_over_missing_days(backend: Backend) {
    let env = Env::new(backend).await;
    // Noon today, so that every snapshot below falls on its own UTC day.
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS + DAY_MS / 2;
    let now = now_ms();
    let at = |days_ago: i64| (today - days_ago * DAY_MS).min(now - 1000);
    env.write(vec![
        system_rec("steady", "Steady", Vendor::Pure, &[], at(20)),
        system_rec("gappy", "Gappy", Vendor::Ontap, &[], at(20)),
        system_rec("gone", "Gone quiet", Vendor::Datadomain, &[], at(20)),
    ])
    .await;
    // Oldest first: the writer counts a sample only when it is newer than the last it counted.
    for d in (0..6).rev() {
        env.write_one(simple_snapshot(
            "steady",
            at(d),
            Vendor::Pure,
            10 * GIB,
            100 * GIB,
        ))
        .await;
    }
    // gappy: 5 and 4 days ago, then nothing for 3 and 2 days ago, then 1 day ago (not today).
    for (d, used) in [(5, 1), (4, 2), (1, 3)] {
        env.write_one(simple_snapshot(
            "gappy",
            at(d),
            Vendor::Ontap,
            used * GIB,
            50 * GIB,
        ))
        .await;
    }
    // gone: one rollup 10 days ago, more than 7 days before today.
    env.write_one(simple_snapshot(
        "gone",
        at(10),
        Vendor::Datadomain,
        7 * GIB,
        9 * GIB,
    ))
    .await;

    let from = format_ms(today - 5 * DAY_MS);
    let h = env
        .ok(&format!("/api/v1/capacity/history?from={from}"))
        .await;
    let points = h["series"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_day = |days_ago: i64| {
        let d = day(today - days_ago * DAY_MS);
        points
            .iter()
            .find(|p| p["day"] == d.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no point for {d} in {h}"))
    };
    let check = |days_ago: i64, systems: i64, carried: i64, used_gib: u64| {
        let p = by_day(days_ago);
        assert_eq!(p["systems"], systems, "{days_ago} days ago: {p}");
        assert_eq!(p["carried_forward"], carried, "{days_ago} days ago: {p}");
        assert_eq!(p["used_bytes"], used_gib * GIB, "{days_ago} days ago: {p}");
    };
    // 5 days ago: gone (carried from day 10, 5 days back) + steady + gappy.
    check(5, 3, 1, 10 + 1 + 7);
    // 3 and 2 days ago: gappy carries its day-4 value; gone is 7 and 8 days old.
    check(3, 3, 2, 10 + 2 + 7);
    check(2, 2, 1, 10 + 2);
    check(1, 2, 0, 10 + 3);
    // Today: gappy has not reported yet and counts with yesterday's value.
    check(0, 2, 1, 10 + 3);
    assert_eq!(points.len(), 6, "{h}");
}
both!(history_carries_the_last_rollup_over_missing_days);
