//! Benchmarks of the whole pipeline, each printed next to a baseline measured in the same run
//! (BENCHMARKS.md lists them with their targets): `sdash-bench <scenario> [--quick] [--json FILE]`.
//!
//! * [`Scenario::WriterThroughput`]: NATS -> writer -> database against a raw bulk insert, a raw
//!   JetStream consume-and-ack and a one-transaction-per-event writer.
//! * [`Scenario::SeedScenario`]: 32 and 320 concurrent producers against the writer on SQLite:
//!   lock errors, lost and duplicated events.
//! * [`Scenario::CollectorScale`]: one collector process pinned to one core polling a simulated
//!   fleet (a separate `sdash-sim` process), next to the simulator's own cost.
//! * [`Scenario::Freshness`]: poll completed -> visible through the API, under background load.
//! * [`Scenario::ApiLatency`]: 64 concurrent clients on the fleet list and a system detail, next
//!   to a static response of the same server.
//! * [`Scenario::MetricsScrape`]: one scraper on `/metrics/fleet` of a 10,000-system fleet, next to
//!   the fleet-list JSON of the same server (warm, and each right after a writer commit).
//! * [`Scenario::Live`]: 1,000 live-stream (SSE) clients and 64 fleet-list readers against
//!   10,000 systems while snapshots flow: updates lost, slow clients cut, memory per client.
//! * [`Scenario::HistoryScale`]: two years of capacity history for 10,000 systems generated into
//!   the storage tiers: size per system, retention, 2-year chart latency, freshness during a
//!   large retention pass, next to today's per-poll storage.
//!
//! The machine is shared and noisy, so every figure that has a target is a ratio to a baseline
//! measured in the same run; absolute numbers are printed for context only.

mod api;
mod collector;
mod history;
mod live;
mod writer;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sdash_harness::Backend;
use serde::Serialize;

/// The benchmarks `sdash-bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Events/s from the stream into the database (SQLite and PostgreSQL, events and snapshots).
    WriterThroughput,
    /// 32 and 320 concurrent producers against the writer on SQLite.
    SeedScenario,
    /// One collector on one core polling a simulated fleet.
    CollectorScale,
    /// Poll completed -> visible through the API, under background load.
    Freshness,
    /// API latency at 64 concurrent clients.
    ApiLatency,
    /// Scraping the fleet metrics (`/metrics/fleet`) of 10,000 systems.
    MetricsScrape,
    /// 1,000 live-stream clients and 64 fleet-list readers while snapshots flow.
    Live,
    /// Years of capacity history for a large fleet in the storage tiers (#15): size, retention,
    /// chart latency, freshness during a large retention pass. Not part of `all` (it takes long).
    HistoryScale,
    /// Every scenario in turn.
    All,
}

impl Scenario {
    pub const EACH: [Scenario; 7] = [
        Scenario::WriterThroughput,
        Scenario::SeedScenario,
        Scenario::CollectorScale,
        Scenario::Freshness,
        Scenario::ApiLatency,
        Scenario::MetricsScrape,
        Scenario::Live,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::WriterThroughput => "writer-throughput",
            Scenario::SeedScenario => "seed-scenario",
            Scenario::CollectorScale => "collector-scale",
            Scenario::Freshness => "freshness",
            Scenario::ApiLatency => "api-latency",
            Scenario::MetricsScrape => "metrics-scrape",
            Scenario::Live => "live",
            Scenario::HistoryScale => "history-scale",
            Scenario::All => "all",
        }
    }
}

/// A program to start as a child process: the executable and the arguments that come first.
#[derive(Debug, Clone)]
pub struct Program {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

impl Program {
    pub fn new(exe: impl Into<PathBuf>) -> Program {
        Program {
            exe: exe.into(),
            args: Vec::new(),
        }
    }

    pub fn with_arg(mut self, arg: impl Into<OsString>) -> Program {
        self.args.push(arg.into());
        self
    }

    /// `sdash-sim` or `sdash-collector` beside the running executable (also one level up, for
    /// test executables in `target/<profile>/deps`), else `fallback`.
    pub fn beside_current_exe(name: &str, fallback: Program) -> Program {
        let exe = std::env::current_exe().ok();
        let dirs = exe
            .as_deref()
            .and_then(Path::parent)
            .map(|d| vec![d.to_path_buf(), d.join("..")])
            .unwrap_or_default();
        for dir in dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Program::new(candidate);
            }
        }
        fallback
    }
}

/// How to run the benchmarks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Small sizes and short durations (seconds): the variant the test suite runs.
    pub quick: bool,
    /// Backends for the scenarios that take one (`None`: the scenario's default).
    pub backends: Option<Vec<Backend>>,
    /// Simulated systems (collector-scale) or seeded systems (api-latency, metrics-scrape).
    pub systems: Option<usize>,
    /// Poll interval of collector-scale; live publishes one snapshot per system per interval.
    pub interval: Option<Duration>,
    /// Live-stream clients of live.
    pub clients: Option<usize>,
    /// How long the timed part of collector-scale, freshness (per load level), api-latency
    /// (per endpoint) and metrics-scrape (per case) runs.
    pub duration: Option<Duration>,
    /// Messages per writer-throughput case.
    pub messages: Option<usize>,
    /// Years of history of history-scale (default 2).
    pub years: Option<f64>,
    /// Systems of history-scale's per-poll baseline (default 20).
    pub baseline_systems: Option<usize>,
    /// history-scale: the writer's `--capacity-raw-max-gap` the history is generated with (default 1 h).
    pub raw_max_gap: Option<Duration>,
    /// Whether writer-throughput runs its event case and its snapshot case.
    pub events: bool,
    pub snapshots: bool,
    /// The `sdash-sim` program (collector-scale).
    pub sim: Program,
    /// The `sdash-collector` program (collector-scale).
    pub collector: Program,
    /// The `sdash-api` program (live).
    pub api: Program,
    /// Pin the collector to this CPU with `taskset` when available (collector-scale).
    pub pin_cpu: Option<usize>,
}

impl Options {
    /// Defaults: full sizes, the tools beside the running executable.
    pub fn new(quick: bool) -> Options {
        let self_exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sdash-bench"));
        Options {
            quick,
            backends: None,
            systems: None,
            interval: None,
            clients: None,
            duration: None,
            messages: None,
            years: None,
            baseline_systems: None,
            raw_max_gap: None,
            events: true,
            snapshots: true,
            sim: Program::beside_current_exe("sdash-sim", Program::new("sdash-sim")),
            collector: Program::beside_current_exe(
                "sdash-collector",
                Program::new(self_exe.clone()).with_arg(COLLECTOR_SUBCOMMAND),
            ),
            api: Program::beside_current_exe(
                "sdash-api",
                Program::new(self_exe).with_arg(API_SUBCOMMAND),
            ),
            pin_cpu: Some(0),
        }
    }

    fn backends_or(&self, default: &[Backend]) -> Vec<Backend> {
        self.backends.clone().unwrap_or_else(|| default.to_vec())
    }
}

/// The hidden `sdash-bench` subcommand that runs the collector (the same library entry point as
/// `sdash-collector`), used when no `sdash-collector` binary sits beside `sdash-bench`.
pub const COLLECTOR_SUBCOMMAND: &str = "collector-process";

/// The hidden `sdash-bench` subcommand that runs the API (the library entry point of `sdash-api`),
/// used when no `sdash-api` binary sits beside `sdash-bench`.
pub const API_SUBCOMMAND: &str = "api-process";

/// One line of a result table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, e.g. "sqlite events".
    pub case: String,
    /// The figure's name, e.g. "pipeline".
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// The baseline it is compared with (same run), its value and `value / baseline`.
    pub baseline: Option<String>,
    pub baseline_value: Option<f64>,
    pub ratio: Option<f64>,
    /// The target, in words, and whether this run met it.
    pub target: Option<String>,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(case: &str, metric: &str, value: f64, unit: &str) -> Row {
        Row {
            case: case.to_owned(),
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline: None,
            baseline_value: None,
            ratio: None,
            target: None,
            met: None,
        }
    }

    /// Compares with `baseline` (ratio = value / baseline).
    pub fn vs(mut self, name: &str, baseline: f64) -> Row {
        self.baseline = Some(name.to_owned());
        self.baseline_value = Some(baseline);
        self.ratio = (baseline > 0.0).then(|| self.value / baseline);
        self
    }

    pub fn target(mut self, text: &str, met: bool) -> Row {
        self.target = Some(text.to_owned());
        self.met = Some(met);
        self
    }
}

/// The machine and the versions of the servers a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub kernel: String,
    pub nats_server: String,
    pub postgres: String,
    pub build: &'static str,
}

impl Machine {
    pub async fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| proc_kib(&m, "MemTotal:"))
            .map(|k| k / 1024)
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let nats_server = std::process::Command::new(nats_server_binary())
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unavailable".into());
        let postgres = postgres_version()
            .await
            .unwrap_or_else(|e| format!("unavailable ({e})"));
        Machine {
            cpu_model,
            cores,
            memory_mib,
            kernel,
            nats_server,
            postgres,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SDASH_NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("nats-server"))
}

async fn postgres_version() -> anyhow::Result<String> {
    use sqlx::{Connection, Row as _};
    let url = sdash_harness::postgres_admin_url();
    let mut conn =
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await??;
    let row = sqlx::query("SELECT version()").fetch_one(&mut conn).await?;
    let v: String = row.try_get(0)?;
    let _ = conn.close().await;
    Ok(v)
}

/// A value in kB from a `/proc` file in `Key:   123 kB` form.
pub(crate) fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What one scenario produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub quick: bool,
    pub rows: Vec<Row>,
    /// How the figures were obtained, caveats.
    pub notes: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn new(scenario: Scenario, quick: bool) -> Report {
        Report {
            scenario,
            quick,
            rows: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }

    pub fn push(&mut self, row: Row) {
        println!("  {}", row_line(&row));
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The row `case`/`metric`, if present.
    pub fn get(&self, case: &str, metric: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.case == case && r.metric == metric)
    }

    /// Rows whose target was missed.
    pub fn missed(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.met == Some(false)).collect()
    }

    /// The result table in Markdown.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "### {}{}\n\n",
            self.scenario.name(),
            if self.quick { " (quick)" } else { "" }
        ));
        out.push_str("| case | metric | value | baseline (same run) | baseline value | ratio | target | met |\n");
        out.push_str("|---|---|--:|---|--:|--:|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} {} | {} | {} | {} | {} | {} |\n",
                r.case,
                r.metric,
                fmt_num(r.value),
                r.unit,
                r.baseline.as_deref().unwrap_or(""),
                r.baseline_value.map(fmt_num).unwrap_or_default(),
                r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default(),
                r.target.as_deref().unwrap_or(""),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                }
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

fn row_line(r: &Row) -> String {
    let mut s = format!("{} / {}: {} {}", r.case, r.metric, fmt_num(r.value), r.unit);
    if let (Some(b), Some(v)) = (&r.baseline, r.baseline_value) {
        s.push_str(&format!("  vs {b} {}", fmt_num(v)));
    }
    if let Some(x) = r.ratio {
        s.push_str(&format!("  ratio {x:.2}"));
    }
    if let (Some(t), Some(m)) = (&r.target, r.met) {
        s.push_str(&format!("  [{t}: {}]", if m { "met" } else { "MISSED" }));
    }
    s
}

/// Numbers for tables: integers without decimals, small values with a few.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// A whole run: the machine and one report per scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub command: String,
    pub started_at: String,
    pub machine: Machine,
    pub reports: Vec<Report>,
}

impl Run {
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "Command: `{}`  \nStarted: {}  \nMachine: {} cores ({}), {} MiB memory, Linux {}, {} build  \nnats-server: {}  \nPostgreSQL: {}\n\n",
            self.command,
            self.started_at,
            m.cores,
            m.cpu_model,
            m.memory_mib,
            m.kernel,
            m.build,
            m.nats_server,
            m.postgres
        );
        for r in &self.reports {
            out.push_str(&r.table());
            out.push('\n');
        }
        out
    }
}

/// Runs `scenario` (every scenario for [`Scenario::All`]) and returns the run.
pub async fn run(scenario: Scenario, options: &Options, command: &str) -> anyhow::Result<Run> {
    crate::install_crypto_provider();
    let machine = Machine::probe().await;
    println!(
        "machine: {} cores ({}), {} MiB, Linux {}, {} build; {}; {}",
        machine.cores,
        machine.cpu_model,
        machine.memory_mib,
        machine.kernel,
        machine.build,
        machine.nats_server,
        machine.postgres
    );
    let mut run = Run {
        command: command.to_owned(),
        started_at: sdash_proto::format_ms(sdash_proto::now_ms()),
        machine,
        reports: Vec::new(),
    };
    let list: Vec<Scenario> = if scenario == Scenario::All {
        Scenario::EACH.to_vec()
    } else {
        vec![scenario]
    };
    for s in list {
        println!(
            "== {}{}",
            s.name(),
            if options.quick { " (quick)" } else { "" }
        );
        let started = std::time::Instant::now();
        let mut report = Report::new(s, options.quick);
        match s {
            Scenario::WriterThroughput => writer::throughput(options, &mut report).await?,
            Scenario::SeedScenario => writer::seed(options, &mut report).await?,
            Scenario::CollectorScale => collector::scale(options, &mut report).await?,
            Scenario::Freshness => api::freshness(options, &mut report).await?,
            Scenario::ApiLatency => api::latency(options, &mut report).await?,
            Scenario::MetricsScrape => api::metrics_scrape(options, &mut report).await?,
            Scenario::Live => live::live(options, &mut report).await?,
            Scenario::HistoryScale => history::history_scale(options, &mut report).await?,
            Scenario::All => {}
        }
        report.seconds = started.elapsed().as_secs_f64();
        println!("\n{}", report.table());
        run.reports.push(report);
    }
    Ok(run)
}

/// Percentile (0..=100) of `samples` by nearest rank; 0 for none.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Sum of every sample of the metric `name` (all label sets) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if rest.starts_with('{') {
            rest.rsplit_once('}')
                .map(|(_, v)| v)
                .and_then(|v| v.split_whitespace().next())
        } else if rest.starts_with(' ') {
            rest.split_whitespace().next()
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// JetStream publishes with a `Nats-Msg-Id`, their PubAcks awaited oldest first once more than
/// `limit` are outstanding, so a load generator keeps the server busy without unbounded memory.
pub(crate) struct AckWindow {
    pending: std::collections::VecDeque<async_nats::jetstream::context::PublishAckFuture>,
    limit: usize,
}

impl AckWindow {
    pub(crate) fn new(limit: usize) -> AckWindow {
        AckWindow {
            pending: std::collections::VecDeque::new(),
            limit,
        }
    }

    /// Hands one message to the client; its PubAck joins the window (see [`AckWindow::settle`]).
    pub(crate) async fn publish(
        &mut self,
        js: &async_nats::jetstream::Context,
        subject: String,
        msg_id: &str,
        payload: bytes::Bytes,
    ) -> anyhow::Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        let ack = js.publish_with_headers(subject, headers, payload).await?;
        self.pending.push_back(ack);
        Ok(())
    }

    /// Awaits the oldest PubAcks until at most `limit` are outstanding.
    pub(crate) async fn settle(&mut self) -> anyhow::Result<()> {
        while self.pending.len() > self.limit {
            if let Some(ack) = self.pending.pop_front() {
                ack.await?;
            }
        }
        Ok(())
    }

    /// Awaits every outstanding PubAck.
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
        for ack in self.pending {
            ack.await?;
        }
        Ok(())
    }
}

/// The `/metrics` text of a service at `addr`.
pub(crate) async fn scrape(client: &reqwest::Client, addr: &str) -> anyhow::Result<String> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text)
}

pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut [], 99.0), 0.0);
    }

    #[test]
    fn metric_sums() {
        let text = "# HELP x\nsdash_writer_messages_total 12\nsdash_writer_rows_total{table=\"events\"} 3\nsdash_writer_rows_total{table=\"systems\"} 4\nsdash_writer_messages_total_other 9\n";
        assert_eq!(metric_sum(text, "sdash_writer_messages_total"), Some(12.0));
        assert_eq!(metric_sum(text, "sdash_writer_rows_total"), Some(7.0));
        assert_eq!(metric_sum(text, "missing"), None);
    }
}
