//! A PostgreSQL primary and a streaming replica of it, made with this machine's PostgreSQL tools
//! (`initdb`, `pg_ctl`, `pg_basebackup -R`) in a temporary directory, on random loopback ports,
//! trusting local logins, for switchover tests. Both servers are stopped on drop.
//!
//! Replication is synchronous (`synchronous_standby_names = '*'` on the primary only): a commit
//! the primary acknowledged is on the replica, so a switchover loses nothing the writer saw
//! committed, the guarantee a failover manager gives with synchronous replication. The
//! replica does not ask for a standby of its own, so once promoted it commits alone.
//!
//! PostgreSQL refuses to run as root: as root, the tools run as the `postgres` user (`runuser`)
//! and the directory is handed to it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{Connection, Row};

use crate::{free_port, wait_for};

/// The database the cluster holds for the services (besides `postgres`).
pub const CLUSTER_DATABASE: &str = "sdash";

/// A primary and its synchronous streaming replica.
pub struct PgCluster {
    tools: Tools,
    primary: Node,
    replica: Node,
    // Last: the servers are stopped (in `Drop`) before their directory goes.
    dir: tempfile::TempDir,
}

struct Node {
    name: &'static str,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    running: bool,
}

impl Node {
    fn new(dir: &Path, name: &'static str) -> Node {
        Node {
            name,
            data: dir.join(name),
            log: dir.join(format!("{name}.log")),
            port: free_port(),
            running: false,
        }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// Runs the PostgreSQL tools (as `postgres` when this process is root).
struct Tools {
    bin: PathBuf,
    as_postgres: bool,
}

impl Tools {
    fn find() -> Tools {
        let bin = std::env::var_os("SDASH_PG_BIN")
            .map(PathBuf::from)
            .or_else(newest_installed_bin)
            .unwrap_or_default();
        // The owner of /proc/self is this process's effective user.
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        Tools { bin, as_postgres }
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Runs `tool args`, panicking with its output (and `log`, if given) when it fails.
    fn run(&self, tool: &str, args: &[&str], log: Option<&Path>) -> Output {
        let output = self.command(tool).args(args).output().unwrap_or_else(|e| {
            panic!(
                "cannot run {tool} from {} (install PostgreSQL or set SDASH_PG_BIN): {e}",
                self.bin.display()
            )
        });
        if !output.status.success() {
            let log = log
                .and_then(|l| std::fs::read_to_string(l).ok())
                .unwrap_or_default();
            panic!(
                "{tool} {args:?} failed ({}):\n{}{}\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output
    }

    fn pg_ctl(&self, node: &Node, args: &[&str]) {
        let data = node.data.display().to_string();
        let mut all = vec!["-D", data.as_str(), "-w", "-t", "30"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all, Some(&node.log));
    }

    /// `sql` on `node` through psql; its unaligned output.
    fn psql(&self, node: &Node, sql: &str) -> String {
        let port = node.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            Some(&node.log),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// `/usr/lib/postgresql/<newest version>/bin`, if any.
fn newest_installed_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl PgCluster {
    /// Makes and starts the primary (with the database [`CLUSTER_DATABASE`]) and its replica,
    /// streaming synchronously. Takes a few seconds.
    pub async fn start() -> PgCluster {
        tokio::task::spawn_blocking(PgCluster::start_blocking)
            .await
            .unwrap_or_else(|e| panic!("starting the PostgreSQL cluster: {e}"))
    }

    fn start_blocking() -> PgCluster {
        let tools = Tools::find();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for PostgreSQL: {e}"));
        if tools.as_postgres {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "cannot give {} to the postgres user",
                dir.path().display()
            );
        }
        let mut cluster = PgCluster {
            primary: Node::new(dir.path(), "primary"),
            replica: Node::new(dir.path(), "replica"),
            tools,
            dir,
        };
        let sockets = cluster.dir.path().display().to_string();
        let primary_data = cluster.primary.data.display().to_string();
        cluster.tools.run(
            "initdb",
            &[
                "-D",
                &primary_data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            None,
        );
        // Both servers get these (the replica copies this file). fsync is off: the tests
        // stop servers, they never crash the machine, so the page cache is enough.
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\nfsync = off\n\
             max_connections = 50\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
        );
        append(&cluster.primary.data.join("postgresql.conf"), &settings);
        // Only the primary waits for a synchronous standby: on the command line, not in the
        // copied file (pg_ctl runs the options through a shell, hence the quotes).
        cluster.start_node(true, "-c synchronous_standby_names='*'");

        let replica_data = cluster.replica.data.display().to_string();
        let primary_port = cluster.primary.port.to_string();
        cluster.tools.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                &replica_data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            Some(&cluster.primary.log),
        );
        cluster.start_node(false, "");
        // Created now that the replica streams: it is replicated like every later write.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while cluster.tools.psql(
            &cluster.primary,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
        ) != "1"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the replica did not start streaming synchronously:\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster.tools.psql(
            &cluster.primary,
            &format!("CREATE DATABASE {CLUSTER_DATABASE}"),
        );
        cluster
    }

    fn start_node(&mut self, primary: bool, options: &str) {
        let node = if primary {
            &mut self.primary
        } else {
            &mut self.replica
        };
        let log = node.log.display().to_string();
        let options = format!("-p {} {options}", node.port);
        self.tools
            .pg_ctl(node, &["-l", log.as_str(), "-o", options.as_str(), "start"]);
        node.running = true;
    }

    /// The URL naming both servers, the primary first:
    /// `postgres://postgres@127.0.0.1:<primary>,127.0.0.1:<replica>/sdash`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{CLUSTER_DATABASE}",
            self.primary.port, self.replica.port
        )
    }

    /// The single-host URL of the server started as the primary.
    pub fn primary_url(&self) -> String {
        self.primary.url(CLUSTER_DATABASE)
    }

    /// The single-host URL of the server started as the replica (the primary once promoted).
    pub fn replica_url(&self) -> String {
        self.replica.url(CLUSTER_DATABASE)
    }

    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    pub fn replica_port(&self) -> u16 {
        self.replica.port
    }

    /// `pg_ctl promote` on the replica: it stops replaying and accepts writes (returns when
    /// it does).
    pub fn promote_replica(&mut self) {
        self.tools.pg_ctl(&self.replica, &["promote"]);
    }

    /// `pg_ctl stop -m immediate` on the primary: like a crash, every session cut at once.
    pub fn stop_primary(&mut self) {
        if self.primary.running {
            self.tools
                .pg_ctl(&self.primary, &["-m", "immediate", "stop"]);
            self.primary.running = false;
        }
    }

    /// Fences the primary the way some failover managers do before promoting: every session,
    /// open ones included, gets read-only transactions (`default_transaction_read_only`, reloaded).
    /// The server keeps running and answering reads.
    pub fn fence_primary(&self) {
        self.tools.psql(
            &self.primary,
            "ALTER SYSTEM SET default_transaction_read_only = on",
        );
        self.tools.psql(&self.primary, "SELECT pg_reload_conf()");
    }

    /// Waits until the replica has replayed everything the primary had written when called;
    /// false after `timeout`.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let Ok(mut primary) = sqlx::PgConnection::connect(&self.primary_url()).await else {
            return false;
        };
        let lsn: Option<String> = sqlx::query("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .and_then(|r| r.try_get(0))
            .ok();
        let _ = primary.close().await;
        let Some(lsn) = lsn else { return false };
        let replica = self.replica_url();
        wait_for(timeout, || {
            let (replica, lsn) = (replica.clone(), lsn.clone());
            async move {
                let mut c = sqlx::PgConnection::connect(&replica).await.ok()?;
                let done: bool = sqlx::query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                    .bind(lsn)
                    .fetch_one(&mut c)
                    .await
                    .and_then(|r| r.try_get(0))
                    .ok()?;
                let _ = c.close().await;
                done.then_some(())
            }
        })
        .await
        .is_some()
    }

    /// Both servers' logs, for a failure message.
    pub fn logs(&self) -> String {
        [&self.primary, &self.replica]
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                format!("--- {} (port {}) ---\n{text}", n.name, n.port)
            })
            .collect()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for node in [&self.primary, &self.replica] {
            if node.running {
                let data = node.data.display().to_string();
                let _ = self
                    .tools
                    .command("pg_ctl")
                    .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                    .output();
            }
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let written = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        panic!("cannot write {}: {e}", path.display());
    }
}
