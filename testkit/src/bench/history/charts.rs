//! The 2-year charts through the API's routes: one system (random systems), its last raw
//! window, and the fleet grouped by a tag, interleaved in rounds with `/healthz` of the same
//! server as the static baseline.

use std::sync::Arc;

use anyhow::Context as _;

use super::baseline::Baseline;
use super::model::splitmix;
use super::requests::{get_json, latency, rfc};
use super::{DAY_MS, HOUR_MS, Shape, system_id};
use crate::bench::api::{RunningApi, hammer};
use crate::bench::{Report, Row, http_client};

/// The 2-year charts: one system (random systems) and the fleet grouped by a tag, interleaved
/// with `/healthz` of the same server.
pub(super) async fn charts(
    shape: &Shape,
    api: &RunningApi,
    start: i64,
    end: i64,
    case: &str,
    base: &Baseline,
    report: &mut Report,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let range = format!("from={}&to={}", rfc(start), rfc(end));
    // Content: a 2-year series with points, and which tier served it.
    let sample = api.url(&format!(
        "/api/v1/systems/{}/capacity?{range}",
        system_id((shape.systems / 2) as u32)
    ));
    let (ms, bytes, v) = get_json(&client, &sample)
        .await
        .context("one system's chart")?;
    let points = v
        .get("points")
        .and_then(|p| p.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    anyhow::ensure!(
        points > 0,
        "the 2-year chart of one system has no points: {v}"
    );
    let tier = v
        .get("tier")
        .or_else(|| v.get("resolution"))
        .and_then(|r| r.as_str())
        .unwrap_or("?")
        .to_owned();
    println!("   one system: {points} points ({tier}), {bytes} bytes, first request {ms:.1} ms");
    let fleet = api.url(&format!(
        "/api/v1/capacity/history?group_by=environment&{range}"
    ));
    let (cold_ms, fleet_bytes, fv) = get_json(&client, &fleet).await.context("fleet chart")?;
    let series = fv
        .get("series")
        .and_then(|s| s.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    let fleet_points: usize = fv
        .get("series")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("points").and_then(|p| p.as_array()).map(Vec::len))
                .sum()
        })
        .unwrap_or(0);
    anyhow::ensure!(fleet_points > 0, "the fleet chart has no points");
    println!(
        "   fleet by environment: {series} series, {fleet_points} points, {fleet_bytes} bytes, first request {cold_ms:.0} ms"
    );
    let one: Vec<String> = (0..2000.min(shape.systems))
        .map(|i| {
            let s = splitmix(i as u64 ^ 0xC4A2) % shape.systems as u64;
            format!("/api/v1/systems/{}/capacity?{range}", system_id(s as u32))
        })
        .collect();
    // For context: the last raw window of one system (the finest tier that covers it).
    let recent_range = format!(
        "from={}&to={}",
        rfc(end - shape.raw_days * DAY_MS + HOUR_MS),
        rfc(end)
    );
    let recent: Vec<String> = (0..2000.min(shape.systems))
        .map(|i| {
            let s = splitmix(i as u64 ^ 0x90D) % shape.systems as u64;
            format!(
                "/api/v1/systems/{}/capacity?{recent_range}",
                system_id(s as u32)
            )
        })
        .collect();
    let (_, recent_bytes, rv) = get_json(&client, &api.url(&recent[0]))
        .await
        .context("recent chart")?;
    let recent_points = rv
        .get("points")
        .and_then(|p| p.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    let recent_tier = rv
        .get("tier")
        .or_else(|| rv.get("resolution"))
        .and_then(|r| r.as_str())
        .unwrap_or("?")
        .to_owned();
    let endpoints: [(&str, Vec<String>); 4] = [
        ("GET /healthz", vec!["/healthz".to_owned()]),
        ("one system", one),
        ("recent", recent),
        (
            "fleet",
            vec![format!(
                "/api/v1/capacity/history?group_by=environment&{range}"
            )],
        ),
    ];
    let rounds = if shape.quick { 1 } else { 3 };
    let base_url = format!("http://{}", api.addr);
    let mut results: Vec<(Vec<f64>, u64)> = vec![(Vec::new(), 0); endpoints.len()];
    for _ in 0..rounds {
        for (i, (_, paths)) in endpoints.iter().enumerate() {
            let (lat, errors) = hammer(
                &client,
                &base_url,
                Arc::new(paths.clone()),
                shape.chart_clients,
                shape.duration / rounds,
            )
            .await?;
            results[i].0.extend(lat);
            results[i].1 += errors;
        }
    }
    let mut it = results.into_iter();
    let healthz = it.next().map(|(l, e)| latency(l, e)).context("healthz")?;
    let one = it.next().map(|(l, e)| latency(l, e)).context("one")?;
    let recent_l = it.next().map(|(l, e)| latency(l, e)).context("recent")?;
    let fleet_l = it.next().map(|(l, e)| latency(l, e)).context("fleet")?;
    report.push(Row::new(
        case,
        "GET /healthz p99 (static, same server)",
        healthz.p99,
        "ms",
    ));
    report.push(
        Row::new(
            case,
            &format!("2-year chart of one system p50 ({tier}, {points} points)"),
            one.p50,
            "ms",
        )
        .vs("/healthz p50", healthz.p50),
    );
    report.push(
        Row::new(case, "2-year chart of one system p99", one.p99, "ms")
            .vs("today's storage, same route", base.chart_p99)
            .target("< 50 ms", one.p99 < 50.0 && one.errors == 0 && one.n > 0),
    );
    report.push(
        Row::new(
            case,
            "2-year chart of one system p99 vs /healthz",
            one.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99),
    );
    report.push(
        Row::new(
            case,
            &format!(
                "{}-day chart of one system p99 ({recent_tier}, {recent_points} points, {recent_bytes} bytes)",
                shape.raw_days
            ),
            recent_l.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment, first request",
            cold_ms,
            "ms",
        )
        .vs("series x points", fleet_points as f64),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment p50",
            fleet_l.p50,
            "ms",
        )
        .vs("/healthz p50", healthz.p50),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment p99",
            fleet_l.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99)
        .target(
            "< 250 ms",
            fleet_l.p99 < 250.0 && fleet_l.errors == 0 && fleet_l.n > 0,
        ),
    );
    report.push(
        Row::new(case, "chart requests", (one.n + fleet_l.n) as f64, "")
            .vs(
                "errors",
                (one.errors + fleet_l.errors + healthz.errors + recent_l.errors) as f64,
            )
            .target(
                "no errors",
                one.errors + fleet_l.errors + healthz.errors + recent_l.errors == 0,
            ),
    );
    Ok(())
}
