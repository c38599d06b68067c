//! The collector process: command line, start-up, the run loop and `probe`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use sdash_proto::subjects::Kind;
use sdash_proto::{Envelope, Level};
use sdash_service::LogArgs;
use sdash_service::Shutdown;
use sdash_service::bus::{NatsArgs, StreamArgs};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::double_polls::{self, DoublePolls};
use crate::inventory::{self, Inventory, SystemConfig};
use crate::membership::{self, Membership};
use crate::metrics::{CollectorMetrics, OutcomeLabels};
use crate::outbox::{Outbox, OutboxLimits};
use crate::poll_now;
use crate::scheduler::{self, Shared};
use crate::vendors::Adapter;

/// The defaults of the command line, written once for clap and for [`RunArgs`] users.
pub mod defaults {
    /// `--max-in-flight`.
    pub const MAX_IN_FLIGHT: usize = 256;
    /// `--event-level`.
    pub const EVENT_LEVEL: &str = "info";
    /// `--lease-seconds`.
    pub const LEASE_SECONDS: u64 = 15;
    /// `--kv-replicas`.
    pub const KV_REPLICAS: usize = 1;
    /// `--heartbeat-seconds`.
    pub const HEARTBEAT_SECONDS: u64 = 10;
    /// `--outbox-max-messages`.
    pub const OUTBOX_MAX_MESSAGES: usize = 100_000;
    /// `--outbox-max-mib`.
    pub const OUTBOX_MAX_MIB: usize = 256;
}

/// sdash-collector polls storage arrays (Pure FlashArray, NetApp ONTAP 9, NetApp StorageGRID 11,
/// Dell DataDomain) and publishes normalized snapshots and events to NATS JetStream. Start as many
/// as you like with the same inventory: they share the fleet among themselves.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sdash-collector",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Poll one system once and print the normalized snapshot and events as JSON (no NATS needed).
    Probe(ProbeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Inventory file (TOML) that lists the system.
    #[arg(long, env = "SDASH_INVENTORY")]
    pub inventory: PathBuf,
    /// Id of the system to poll.
    #[arg(long, env = "SDASH_PROBE_SYSTEM")]
    pub system: String,
    /// Do not look up DNS names of the system's management addresses.
    #[arg(long, env = "SDASH_NO_REVERSE_DNS")]
    pub no_reverse_dns: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Inventory file (TOML) listing the systems to poll; reloaded on SIGHUP and when it changes.
    #[arg(long, env = "SDASH_INVENTORY", required = true)]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// This collector's id ([a-z0-9_-]); defaults to <hostname>-<pid>.
    #[arg(long, env = "SDASH_COLLECTOR_ID")]
    pub collector_id: Option<String>,
    /// Most polls in flight at once, across all systems.
    #[arg(long, env = "SDASH_MAX_IN_FLIGHT", default_value_t = defaults::MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Lowest event level published (debug, info, warning, error, critical).
    #[arg(long, env = "SDASH_EVENT_LEVEL", default_value = defaults::EVENT_LEVEL, value_parser = parse_level)]
    pub event_level: Level,
    /// Address for /metrics and /healthz (e.g. 127.0.0.1:9102); off when not set.
    // The environment twin keeps the collector's own name, SDASH_METRICS_LISTEN: one env file
    // often serves the writer (SDASH_ADMIN_LISTEN) and the collectors on the same host.
    #[arg(
        long = sdash_service::ADMIN_LISTEN_FLAG,
        alias = sdash_service::ADMIN_LISTEN_ALIAS,
        env = "SDASH_METRICS_LISTEN"
    )]
    pub admin_listen: Option<SocketAddr>,
    /// Membership lease in seconds: a collector silent this long loses its systems.
    #[arg(long, env = "SDASH_LEASE_SECONDS", default_value_t = defaults::LEASE_SECONDS)]
    pub lease_seconds: u64,
    /// Replicas of the membership KV bucket when a collector creates it (1 for a single server,
    /// 3 for a JetStream cluster); an existing bucket with fewer is raised, never lowered.
    #[arg(long, env = "SDASH_KV_REPLICAS", default_value_t = defaults::KV_REPLICAS)]
    pub kv_replicas: usize,
    /// Seconds between collector heartbeat records on sdash.v1.collector.<id>.
    #[arg(long, env = "SDASH_HEARTBEAT_SECONDS", default_value_t = defaults::HEARTBEAT_SECONDS)]
    pub heartbeat_seconds: u64,
    /// Most messages the outbox holds while NATS is unreachable.
    #[arg(long, env = "SDASH_OUTBOX_MAX_MESSAGES", default_value_t = defaults::OUTBOX_MAX_MESSAGES)]
    pub outbox_max_messages: usize,
    /// Most MiB the outbox holds while NATS is unreachable.
    #[arg(long, env = "SDASH_OUTBOX_MAX_MIB", default_value_t = defaults::OUTBOX_MAX_MIB)]
    pub outbox_max_mib: usize,
    /// Poll every system in the inventory, ignoring other collectors (no sharding).
    #[arg(long, env = "SDASH_NO_SHARDING")]
    pub no_sharding: bool,
    /// Do not look up DNS names of the arrays' management addresses (reverse lookup, confirmed
    /// forward, on topology polls); for networks whose nameservers do not answer for them.
    #[arg(long, env = "SDASH_NO_REVERSE_DNS")]
    pub no_reverse_dns: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text)
        .ok_or_else(|| format!("{text:?} is not one of debug, info, warning, error, critical"))
}

pub use crate::http::install_crypto_provider;

fn default_collector_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "collector".into());
    let clean: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("{clean}-{}", std::process::id())
}

/// `probe`: poll one system once and print the result as JSON.
pub async fn probe(args: &ProbeArgs) -> anyhow::Result<serde_json::Value> {
    install_crypto_provider();
    let inventory = inventory::load(&args.inventory)?;
    let config = inventory
        .systems
        .iter()
        .find(|s| s.id == args.system)
        .with_context(|| {
            format!(
                "system {:?} is not in {}",
                args.system,
                args.inventory.display()
            )
        })?;
    crate::vendors::topology::set_reverse_dns(!args.no_reverse_dns);
    let mut adapter = Adapter::new(config)?;
    let started = sdash_proto::now_ms();
    let output = adapter.poll().await;
    adapter.logout().await;
    Ok(serde_json::json!({
        "system_id": config.id,
        "observed_at": sdash_proto::format_ms(started),
        "snapshot": output.snapshot,
        "events": output.events,
    }))
}

struct Running {
    config: SystemConfig,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Wakes the system's task for a poll-now command (`crate::poll_now`).
    poll_now: Arc<tokio::sync::Notify>,
}

/// Runs the collector until `shutdown` is cancelled.
pub async fn run(args: RunArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    install_crypto_provider();
    let inventory_path = args.inventory.clone().context("--inventory is required")?;
    let admin_listen = args.admin_listen;
    let inventory = inventory::load(&inventory_path)?;
    warn_about_insecure(&inventory);
    crate::vendors::topology::set_reverse_dns(!args.no_reverse_dns);
    let collector_id = args
        .collector_id
        .clone()
        .unwrap_or_else(default_collector_id);
    anyhow::ensure!(
        sdash_proto::valid_system_id(&collector_id),
        "--collector-id {collector_id:?} must be 1 to 64 characters of a-z, 0-9, '-' and '_'"
    );
    let started_at = sdash_proto::now_ms();

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = CollectorMetrics::new(&mut registry);
    let outbox = Arc::new(Outbox::new(
        OutboxLimits {
            max_messages: args.outbox_max_messages.max(1),
            max_bytes: args.outbox_max_mib.max(1) * 1024 * 1024,
        },
        metrics.clone(),
    ));
    let stop = shutdown;

    let client =
        sdash_service::bus::connect(&args.nats, &format!("sdash-collector {collector_id}"), true)
            .await?;
    let js = async_nats::jetstream::new(client.clone());
    if let Some(listen) = admin_listen {
        let client = client.clone();
        let ready: sdash_service::ReadyCheck =
            Arc::new(move || client.connection_state() == async_nats::connection::State::Connected);
        let stop = stop.clone();
        let (addr, _) = sdash_service::serve_admin(listen, Arc::new(registry), ready, async move {
            stop.cancelled().await
        })
        .await
        .with_context(|| format!("cannot listen on --admin-listen {listen}"))?;
        tracing::info!(%addr, "metrics listening");
    }

    let membership = Membership::solo(&collector_id);
    let lease = Duration::from_secs(args.lease_seconds.max(1));
    let membership_task = if args.no_sharding {
        membership.mark_settled();
        None
    } else {
        let (js, membership, stop) = (js.clone(), membership.clone(), stop.clone());
        let replicas = args.kv_replicas.max(1);
        Some(tokio::spawn(async move {
            membership::run(membership, js, lease, replicas, |_| {}, async move {
                stop.cancelled().await
            })
            .await;
        }))
    };

    let double_poll_tracker = Arc::new(std::sync::Mutex::new(DoublePolls::new(&collector_id)));
    let double_poll_task = {
        let (client, tracker, stop) = (client.clone(), double_poll_tracker.clone(), stop.clone());
        let counter = metrics.double_polls.clone();
        tokio::spawn(async move {
            double_polls::follow(
                client,
                tracker,
                counter,
                async move { stop.cancelled().await },
            )
            .await
        })
    };

    let shared = Arc::new(Shared {
        collector_id: collector_id.clone(),
        outbox: outbox.clone(),
        membership: membership.clone(),
        in_flight: Arc::new(Semaphore::new(args.max_in_flight.max(1))),
        metrics: metrics.clone(),
        event_level: args.event_level,
        polls: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        systems: std::sync::atomic::AtomicUsize::new(0),
    });

    let publisher = {
        let (outbox, js, stop) = (outbox.clone(), js.clone(), stop.clone());
        let limits = args.stream.clone();
        tokio::spawn(async move {
            // Publish only once the stream exists (NATS may be down at start: polls fill the
            // outbox meanwhile), so that no publish races the stream's creation.
            let mut delay = Duration::from_millis(200);
            while let Err(e) = sdash_service::bus::ensure_stream(&js, &limits).await {
                tracing::warn!(error = %e, "cannot set up the stream yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return outbox.depth(),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            outbox
                .run_publisher(
                    js,
                    async move { stop.cancelled().await },
                    Duration::from_secs(10),
                )
                .await
        })
    };

    let mut running: HashMap<String, Running> = HashMap::new();
    apply_inventory(&shared, &mut running, &inventory);
    lock_tracker(&double_poll_tracker).set_systems(&inventory.systems);
    tracing::info!(collector = %collector_id, systems = inventory.systems.len(), inventory = %inventory_path.display(), "collector started");

    // Poll-now commands: a core subscription also receives what the API publishes to JetStream.
    let mut poll_now_commands = match client
        .subscribe(sdash_proto::CommandKind::PollNow.wildcard())
        .await
    {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to poll-now commands; they are ignored");
            None
        }
    };
    let mut recent_commands = poll_now::RecentIds::default();

    let mut hangup = hangup_signal();
    let mut last_mtime = modified(&inventory_path);
    let mut check_file = tokio::time::interval(Duration::from_secs(5));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(args.heartbeat_seconds.max(1)));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = heartbeat.tick() => {
                let owned: Vec<String> = running.keys().filter(|id| membership.owns(id)).cloned().collect();
                metrics.owned_systems.set(owned.len() as i64);
                metrics.live_collectors.set(membership.members().len() as i64);
                let record = scheduler::heartbeat(&shared, owned, started_at);
                shared.enqueue(Kind::Collector, &collector_id, &record);
            }
            _ = check_file.tick() => {
                let mtime = modified(&inventory_path);
                if mtime != last_mtime {
                    last_mtime = mtime;
                    reload(&shared, &mut running, &double_poll_tracker, &inventory_path);
                }
            }
            message = next_message(&mut poll_now_commands) => {
                let Some(message) = message else {
                    tracing::warn!("the poll-now subscription ended; poll-now commands are ignored");
                    poll_now_commands = None;
                    continue;
                };
                let (outcome, system) = poll_now::dispatch(
                    &message.subject,
                    &message.payload,
                    &mut recent_commands,
                    &membership,
                    |id| running.get(id).map(|r| (&r.config, r.poll_now.as_ref())),
                );
                let system = system.as_deref().unwrap_or("");
                tracing::debug!(system, outcome = outcome.as_str(), "poll-now command");
                metrics
                    .poll_now
                    .get_or_create(&OutcomeLabels { outcome: outcome.as_str().into() })
                    .inc();
            }
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the inventory");
                last_mtime = modified(&inventory_path);
                reload(&shared, &mut running, &double_poll_tracker, &inventory_path);
            }
        }
    }

    tracing::info!("stopping: logging out of sessions and flushing the outbox");
    // Every system at once, under one bound: a poll in flight (an HTTP call, DNS lookups) is
    // dropped by its task's cancellation; what remains is the logout, and one slow array must
    // not hold up the others' (nor the process: an orchestrator's grace period is short).
    let tasks: Vec<_> = running
        .drain()
        .map(|(_, r)| {
            r.cancel.cancel();
            r.task
        })
        .collect();
    if tokio::time::timeout(SYSTEMS_STOP_TIMEOUT, futures::future::join_all(tasks))
        .await
        .is_err()
    {
        tracing::warn!("some systems did not log out within {SYSTEMS_STOP_TIMEOUT:?}");
    }
    if let Some(task) = membership_task {
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), double_poll_task).await;
    let unsent = publisher.await.unwrap_or(0);
    if unsent > 0 {
        tracing::warn!(unsent, "stopped with messages NATS never acknowledged");
    }
    // A flush waits for the server; a NATS stopping with us must not hold the exit.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    Ok(())
}

/// How long a stopping collector waits for its systems' tasks (their logouts) in all.
pub const SYSTEMS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The next message of an optional subscription (never, without one).
async fn next_message(
    subscription: &mut Option<async_nats::Subscriber>,
) -> Option<async_nats::Message> {
    use futures::StreamExt;
    match subscription {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

fn warn_about_insecure(inventory: &Inventory) {
    for s in inventory.systems.iter().filter(|s| s.tls.insecure) {
        tracing::warn!(system = %s.id, "TLS certificate verification is OFF for this system (tls.insecure = true)");
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn lock_tracker(tracker: &std::sync::Mutex<DoublePolls>) -> std::sync::MutexGuard<'_, DoublePolls> {
    tracker.lock().unwrap_or_else(|p| p.into_inner())
}

fn reload(
    shared: &Arc<Shared>,
    running: &mut HashMap<String, Running>,
    double_poll_tracker: &std::sync::Mutex<DoublePolls>,
    path: &Path,
) {
    match inventory::load(path) {
        Ok(inventory) => {
            warn_about_insecure(&inventory);
            apply_inventory(shared, running, &inventory);
            lock_tracker(double_poll_tracker).set_systems(&inventory.systems);
            tracing::info!(systems = inventory.systems.len(), "inventory reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "inventory reload failed; keeping the last good inventory")
        }
    }
}

/// Starts tasks for new and changed systems, stops removed ones (publishing their removal), and
/// publishes the inventory record of every started system.
fn apply_inventory(
    shared: &Arc<Shared>,
    running: &mut HashMap<String, Running>,
    inventory: &Inventory,
) {
    shared.systems.store(
        inventory.systems.len(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let wanted: HashMap<&str, &SystemConfig> = inventory
        .systems
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let removed: Vec<String> = running
        .keys()
        .filter(|id| !wanted.contains_key(id.as_str()))
        .cloned()
        .collect();
    for id in removed {
        if let Some(r) = running.remove(&id) {
            r.cancel.cancel();
            let mut record = r.config.record();
            record.removed = true;
            shared.enqueue(
                Kind::System,
                &id,
                &Envelope::new(&shared.collector_id, &id, record),
            );
            tracing::info!(system = %id, "system removed from the inventory");
        }
    }
    for config in &inventory.systems {
        if running.get(&config.id).is_some_and(|r| r.config == *config) {
            continue;
        }
        if let Some(old) = running.remove(&config.id) {
            old.cancel.cancel();
        }
        shared.enqueue(
            Kind::System,
            &config.id,
            &Envelope::new(&shared.collector_id, &config.id, config.record()),
        );
        let cancel = CancellationToken::new();
        let poll_now = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(scheduler::system_task(
            config.clone(),
            shared.clone(),
            cancel.clone(),
            poll_now.clone(),
        ));
        running.insert(
            config.id.clone(),
            Running {
                config: config.clone(),
                cancel,
                task,
                poll_now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        use clap::CommandFactory;
        sdash_service::assert_flag_conventions(&Cli::command());
    }

    #[test]
    fn admin_listen_keeps_the_old_spelling_as_hidden_alias() {
        use clap::{CommandFactory, Parser};
        let parse = |flag: &str| {
            Cli::try_parse_from([
                "sdash-collector",
                "--inventory",
                "i.toml",
                flag,
                "127.0.0.1:9999",
            ])
            .map(|cli| cli.run.admin_listen)
            .ok()
            .flatten()
        };
        assert_eq!(parse("--admin-listen").map(|a| a.port()), Some(9999));
        assert_eq!(parse("--metrics-listen").map(|a| a.port()), Some(9999));
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("--admin-listen") && !help.contains("metrics-listen"),
            "{help}"
        );
    }
}
