//! The quick variant of every benchmark (`sdash-bench <scenario> --quick`), so the benchmarks
//! cannot rot. These assert sane, non-zero figures and the no-loss / no-duplicate invariants,
//! never timing targets: the full runs (release build, `BENCHMARKS.md`) are for those.

use sdash_testkit::bench::{
    self, API_SUBCOMMAND, COLLECTOR_SUBCOMMAND, Options, Program, Report, Scenario,
};

fn options() -> Options {
    let mut o = Options::new(true);
    o.sim = Program::new(env!("CARGO_BIN_EXE_sdash-sim"));
    // The collector through the same library entry point as the sdash-collector binary.
    o.collector = Program::new(env!("CARGO_BIN_EXE_sdash-bench")).with_arg(COLLECTOR_SUBCOMMAND);
    // The API as a process of its own, through the same library entry point as sdash-api.
    o.api = Program::new(env!("CARGO_BIN_EXE_sdash-bench")).with_arg(API_SUBCOMMAND);
    o
}

async fn run(scenario: Scenario) -> Report {
    let run = bench::run(scenario, &options(), "bench_quick")
        .await
        .unwrap_or_else(|e| panic!("{scenario:?}: {e:#}"));
    assert!(run.machine.cores > 0);
    assert!(
        run.machine.nats_server.contains("nats-server"),
        "{}",
        run.machine.nats_server
    );
    run.reports.into_iter().next().expect("one report")
}

fn value(report: &Report, case: &str, metric: &str) -> f64 {
    report
        .get(case, metric)
        .unwrap_or_else(|| panic!("no row {case} / {metric} in\n{}", report.table()))
        .value
}

fn met(report: &Report, case: &str, metric: &str) {
    let row = report
        .get(case, metric)
        .unwrap_or_else(|| panic!("no row {case} / {metric} in\n{}", report.table()));
    assert_eq!(row.met, Some(true), "{case} / {metric}\n{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_throughput_quick() {
    let r = run(Scenario::WriterThroughput).await;
    for case in [
        "sqlite events",
        "sqlite snapshots",
        "postgres events",
        "postgres snapshots",
    ] {
        for metric in [
            "pipeline (NATS -> writer -> db)",
            "(a) raw bulk insert",
            "(b) raw JetStream consume+ack",
        ] {
            assert!(
                value(&r, case, metric) > 0.0,
                "{case} / {metric}\n{}",
                r.table()
            );
        }
        let row = r
            .get(case, "pipeline vs (c) one tx per message")
            .expect("row (c)");
        assert!(row.baseline_value.unwrap_or(0.0) > 0.0, "{}", r.table());
        for metric in [
            "pipeline vs (c0) store only, one tx per message",
            "ceiling: (a) raw insert vs (c0)",
        ] {
            let row = r.get(case, metric).expect(metric);
            assert!(row.baseline_value.unwrap_or(0.0) > 0.0, "{}", r.table());
        }
        // The writer spends part of the run in transactions, never more than all of it.
        let in_db = value(&r, case, "writer time in database transactions");
        assert!(in_db > 0.0 && in_db <= 100.0, "{}", r.table());
        met(&r, case, "stored rows");
        met(&r, case, "writer retries + dead letters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_quick() {
    let r = run(Scenario::SeedScenario).await;
    for case in [
        "32 producers x 20 events, sqlite",
        "320 producers x 3 events, sqlite",
    ] {
        assert!(value(&r, case, "acknowledged events") > 0.0);
        assert!(value(&r, case, "throughput (publish -> stored)") > 0.0);
        met(&r, case, "lock errors (writer retries)");
        met(&r, case, "lost");
        met(&r, case, "duplicated");
        met(&r, case, "dropped + dead letters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_scale_quick() {
    let r = run(Scenario::CollectorScale).await;
    let case = r.rows.first().expect("rows").case.clone();
    assert!(value(&r, &case, "polls completed") > 0.0, "{}", r.table());
    assert!(value(&r, &case, "polls on time") > 0.0, "{}", r.table());
    assert!(value(&r, &case, "collector CPU") > 0.0, "{}", r.table());
    assert!(
        value(&r, &case, "messages published") > 0.0,
        "{}",
        r.table()
    );
    let mem = r
        .get(&case, "collector peak memory (VmHWM)")
        .expect("memory row");
    assert!(
        mem.value > 0.0 && mem.baseline_value.unwrap_or(0.0) > 0.0,
        "{}",
        r.table()
    );
    met(&r, &case, "outbox drops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_quick() {
    let r = run(Scenario::Freshness).await;
    for case in ["sqlite at 0 events/s", "sqlite at 200 events/s"] {
        assert!(value(&r, case, "probes (timeouts)") > 0.0, "{}", r.table());
        assert!(value(&r, case, "freshness p99") > 0.0, "{}", r.table());
        let timeouts = r
            .get(case, "probes (timeouts)")
            .and_then(|x| x.baseline_value);
        assert_eq!(timeouts, Some(0.0), "{}", r.table());
    }
    assert!(value(&r, "sqlite at 200 events/s", "background load achieved") > 0.0);
    met(&r, "sqlite all levels", "background events stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_latency_quick() {
    let r = run(Scenario::ApiLatency).await;
    for name in [
        "GET /healthz (static)",
        "GET /api/v1/systems (default page)",
        "GET /api/v1/systems/{id}",
    ] {
        let case = format!("sqlite 500 systems, 64 clients: {name}");
        assert!(value(&r, &case, "p99") > 0.0, "{}", r.table());
        assert!(value(&r, &case, "requests/s") > 0.0, "{}", r.table());
        met(&r, &case, "errors");
    }
    assert!(
        value(
            &r,
            "sqlite 500 systems, 64 clients: list",
            "default page size"
        ) > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_quick() {
    let r = run(Scenario::MetricsScrape).await;
    for label in ["warm", "after a commit"] {
        let case = format!("sqlite 500 systems: GET /metrics/fleet, {label}");
        assert!(value(&r, &case, "p99") > 0.0, "{}", r.table());
        let row = r.get(&case, "p99").expect("p99 row");
        assert!(row.baseline_value.unwrap_or(0.0) > 0.0, "{}", r.table());
        assert!(value(&r, &case, "scrapes") >= 5.0, "{}", r.table());
        met(&r, &case, "errors");
    }
    let case = "sqlite 500 systems: GET /metrics/fleet";
    // At least one sample per system of each always-present family.
    assert!(
        value(&r, case, "body bytes per system") > 1000.0,
        "{}",
        r.table()
    );
    assert!(
        value(&r, case, "body size") > 500.0 * 1000.0,
        "{}",
        r.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_quick() {
    let r = run(Scenario::Live).await;
    let case = r.rows.first().expect("rows").case.clone();
    // Clients that keep up lose nothing (counted exactly), stalled ones are cut and counted.
    met(&r, &case, "updates lost (clients that kept up)");
    met(&r, &case, "updates duplicated");
    met(&r, &case, "reading clients cut");
    met(&r, &case, "stalled clients cut (slow)");
    met(&r, &case, "fleet list errors");
    assert!(value(&r, &case, "updates delivered") > 0.0, "{}", r.table());
    assert!(
        value(&r, &case, "fleet list p99 (64 readers)") > 0.0,
        "{}",
        r.table()
    );
    let rss = r
        .get(&case, "API RSS with live clients")
        .expect("memory row");
    assert!(
        rss.value > 0.0 && rss.baseline_value.unwrap_or(0.0) > 0.0,
        "{}",
        r.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_scale_quick() {
    // 20 systems x 30 days, raw window 7 days, hourly 20 days, on both backends.
    let r = run(Scenario::HistoryScale).await;
    for backend in ["sqlite", "postgres"] {
        let base = format!("{backend} baseline: per-poll raw + daily");
        // Today's storage holds one raw sample per poll of the raw window.
        assert_eq!(
            value(&r, &base, "raw samples per system"),
            7.0 * 1440.0,
            "{}",
            r.table()
        );
        assert!(value(&r, &base, "database size per system (measured)") > 0.0);
        assert!(value(&r, &base, "retention pass, 20 systems") > 0.0);
        let case = format!("{backend} 20 systems x 30 days");
        // The deadband keeps far fewer raw samples than polls, at least one per max gap (6 h).
        let raw = value(&r, &case, "raw samples per system per day");
        assert!((4.0..144.0).contains(&raw), "{}", r.table());
        // Hourly rollups for 20 + 1 days, daily ones for every day of the history.
        assert_eq!(
            value(&r, &case, "hourly rollups"),
            20.0 * 21.0 * 24.0,
            "{}",
            r.table()
        );
        let daily = value(&r, &case, "daily rollups");
        assert!(
            (20.0 * 30.0..=20.0 * 31.0).contains(&daily),
            "{}",
            r.table()
        );
        let size = r.get(&case, "database size per system").expect("size row");
        assert!(
            size.value > 0.0 && size.baseline_value.unwrap_or(0.0) > size.value,
            "{}",
            r.table()
        );
        assert!(value(&r, &case, "2-year chart of one system p99") > 0.0);
        assert!(value(&r, &case, "2-year fleet chart by environment p99") > 0.0);
        met(&r, &case, "chart requests");
        // The expired day of raw samples and hourly rollups is deleted by the pass.
        assert!(
            value(&r, &case, "rows deleted by the pass") >= 20.0 * (24.0 + 4.0),
            "{}",
            r.table()
        );
        assert!(value(&r, &case, "fleet list requests during retention") > 0.0);
        assert!(
            value(&r, &case, "freshness probes during the pass") > 0.0,
            "{}",
            r.table()
        );
        let timeouts = r
            .get(&case, "freshness probes during the pass")
            .and_then(|x| x.baseline_value);
        assert_eq!(timeouts, Some(0.0), "{}", r.table());
    }
}
