//! collector-scale: one collector process pinned to one core polling a simulated fleet served by
//! a separate `sdash-sim` process, so the two costs can be told apart.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sdash_harness::{NatsServer, free_port};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{Options, Program, Report, Row, http_client, metric_sum, proc_kib, scrape};

/// CPU time and peak memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcStats {
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

pub(super) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

pub(crate) fn proc_stats(pid: u32, ticks: f64) -> anyhow::Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state (field 3).
    let field = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("field {} of /proc/{pid}/stat", i + 3))
    };
    let cpu_seconds = (field(11)? + field(12)?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("/proc/{pid}/status"))?;
    Ok(ProcStats {
        cpu_seconds,
        peak_rss_mib: proc_kib(&status, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
    })
}

fn taskset() -> Option<&'static str> {
    ["/usr/bin/taskset", "/bin/taskset"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// `program args...`, under `taskset -c <cpu>` when given and available.
fn command(program: &Program, cpu: Option<usize>) -> Command {
    match (cpu, taskset()) {
        (Some(cpu), Some(ts)) => {
            let mut c = Command::new(ts);
            c.arg("-c")
                .arg(cpu.to_string())
                .arg(&program.exe)
                .args(&program.args);
            c
        }
        _ => {
            let mut c = Command::new(&program.exe);
            c.args(&program.args);
            c
        }
    }
}

/// Sum of `name` over the label sets that contain `label` (e.g. `result="online"`).
pub(super) fn metric_sum_where(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

pub(crate) async fn scale(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let systems = options
        .systems
        .unwrap_or(if options.quick { 500 } else { 10_000 });
    let interval = options
        .interval
        .unwrap_or(Duration::from_secs(if options.quick { 5 } else { 60 }));
    let duration = options.duration.unwrap_or(if options.quick {
        interval * 2 + Duration::from_secs(2)
    } else {
        interval * 3
    });
    let interval_s = interval.as_secs().max(1);
    let case = format!(
        "{systems} systems every {interval_s} s, {} s",
        duration.as_secs()
    );
    println!("-- {case}");
    let ticks = clock_ticks();
    let dir = tempfile::tempdir()?;
    let inventory = dir.path().join("inventory.toml");
    let nats = NatsServer::start();
    super::writer::jetstream(&nats.url()).await?;

    // The simulator, on the other core when there is one.
    let sim_port = free_port();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let sim_cpu = options
        .pin_cpu
        .filter(|_| cores > 1)
        .map(|c| (c + 1) % cores);
    let mut sim_cmd = command(&options.sim, sim_cpu);
    sim_cmd
        .arg("--systems")
        .arg(systems.to_string())
        .arg("--listen")
        .arg(format!("127.0.0.1:{sim_port}"))
        .arg("--inventory-out")
        .arg(&inventory)
        .arg("--interval")
        .arg(format!("{interval_s}s"))
        .arg("--mix")
        .arg("pure=40,ontap=30,storagegrid=15,datadomain=15")
        .arg("--degraded-pct")
        .arg("10")
        .arg("--near-full-pct")
        .arg("10")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut sim = sim_cmd
        .spawn()
        .with_context(|| format!("cannot start {}", options.sim.exe.display()))?;
    let sim_pid = sim.id().context("sdash-sim exited at once")?;
    wait_for_inventory(&mut sim).await?;

    // The collector, pinned.
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let log = std::fs::File::create(dir.path().join("collector.log"))?;
    let mut col_cmd = command(&options.collector, options.pin_cpu);
    col_cmd
        .arg("--nats-url")
        .arg(nats.url())
        .arg("--inventory")
        .arg(&inventory)
        .arg("--collector-id")
        .arg("bench-collector")
        .arg("--admin-listen")
        .arg(&metrics_addr)
        .arg("--no-sharding")
        .arg("--log-level")
        .arg("warn")
        .env_remove("SDASH_MAX_IN_FLIGHT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let sim_before = proc_stats(sim_pid, ticks)?;
    let started = Instant::now();
    let mut collector = col_cmd
        .spawn()
        .with_context(|| format!("cannot start {}", options.collector.exe.display()))?;
    let col_pid = collector.id().context("the collector exited at once")?;
    let client = http_client()?;

    // Run for the duration, sampling memory (VmHWM is the peak anyway) and watching for exits.
    let mut col_last = ProcStats::default();
    let mut text = String::new();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(status) = collector.try_wait()? {
            let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap_or_default();
            anyhow::bail!("the collector exited ({status}): {log}");
        }
        if let Ok(s) = proc_stats(col_pid, ticks) {
            col_last = s;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    if let Ok(s) = proc_stats(col_pid, ticks) {
        col_last = s;
    }
    let sim_after = proc_stats(sim_pid, ticks)?;
    if let Ok(t) = scrape(&client, &metrics_addr).await {
        text = t;
    }
    stop(&mut collector).await;
    stop(&mut sim).await;

    let on_time = metric_sum(&text, "sdash_collector_polls_on_time_total").unwrap_or(0.0);
    let late = metric_sum(&text, "sdash_collector_polls_late_total").unwrap_or(0.0);
    let startup = metric_sum(&text, "sdash_collector_polls_startup_total").unwrap_or(0.0);
    let polls = metric_sum(&text, "sdash_collector_polls_total").unwrap_or(0.0);
    let online = metric_sum_where(&text, "sdash_collector_polls_total", "result=\"online\"");
    let published = metric_sum(&text, "sdash_collector_published_total").unwrap_or(0.0);
    let dropped = metric_sum(&text, "sdash_collector_outbox_dropped_total").unwrap_or(0.0);
    let share = if on_time + late > 0.0 {
        100.0 * on_time / (on_time + late)
    } else {
        0.0
    };
    let expected = systems as f64 * wall / interval.as_secs_f64();
    let col_cores = col_last.cpu_seconds / wall;
    let sim_cores = (sim_after.cpu_seconds - sim_before.cpu_seconds) / wall;

    report.push(
        Row::new(&case, "polls on time", share, "%")
            .target(">= 99 %", share >= 99.0 && polls > 0.0),
    );
    report.push(
        Row::new(
            &case,
            "first polls at start (off schedule)",
            startup,
            "polls",
        )
        .vs("systems", systems as f64),
    );
    report.push(
        Row::new(&case, "polls completed", polls, "polls")
            .vs("systems x duration / interval", expected),
    );
    report.push(Row::new(
        &case,
        "polls answered online",
        if polls > 0.0 {
            100.0 * online / polls
        } else {
            0.0
        },
        "%",
    ));
    report.push(
        Row::new(&case, "collector CPU", col_cores, "cores")
            .vs("sdash-sim CPU (same run)", sim_cores)
            .target("fits one core (< 1.0)", col_cores < 1.0),
    );
    report.push(
        Row::new(
            &case,
            "collector CPU per poll",
            if polls > 0.0 {
                1000.0 * col_last.cpu_seconds / polls
            } else {
                0.0
            },
            "ms",
        )
        .vs(
            "sdash-sim CPU per poll",
            if polls > 0.0 {
                1000.0 * (sim_after.cpu_seconds - sim_before.cpu_seconds) / polls
            } else {
                0.0
            },
        ),
    );
    report.push(
        Row::new(
            &case,
            "collector peak memory (VmHWM)",
            col_last.peak_rss_mib,
            "MiB",
        )
        .vs("sdash-sim VmHWM", sim_after.peak_rss_mib)
        .target(
            "< 256 MiB",
            col_last.peak_rss_mib < 256.0 && col_last.peak_rss_mib > 0.0,
        ),
    );
    report.push(Row::new(&case, "messages published", published, "msg"));
    report.push(Row::new(&case, "outbox drops", dropped, "").target("= 0", dropped == 0.0));
    report.note(format!(
        "The collector is `{}` {}; the simulator `{}` {} (separate processes, CPU from /proc/<pid>/stat, peak memory VmHWM).",
        options.collector.exe.display(),
        match (options.pin_cpu, taskset()) {
            (Some(c), Some(_)) => format!("pinned with taskset -c {c}"),
            _ => "not pinned (no taskset)".into(),
        },
        options.sim.exe.display(),
        match (sim_cpu, taskset()) {
            (Some(c), Some(_)) => format!("on CPU {c}"),
            _ => "unpinned".into(),
        },
    ));
    report.note(
        "On time = started within 1 s of its schedule (sdash_collector_polls_on_time_total / (on time + late)); \
         each system's first poll after start runs at once, off the schedule, and is counted apart \
         (sdash_collector_polls_startup_total). \
         The fleet mixes pure=40,ontap=30,storagegrid=15,datadomain=15 over HTTPS with sessions; \
         the collector runs with --no-sharding (one collector owns every system).",
    );
    Ok(())
}

async fn wait_for_inventory(sim: &mut Child) -> anyhow::Result<()> {
    let stdout = sim.stdout.take().context("sdash-sim stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("systems on https://") {
                return Ok::<bool, std::io::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    // Keep draining the simulator's stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    match found {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => anyhow::bail!("sdash-sim exited before serving"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!("sdash-sim did not start within 120 s"),
    }
}

/// SIGTERM (via `kill`), then SIGKILL after 10 s.
pub(super) async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
