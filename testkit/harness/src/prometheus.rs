//! A real Prometheus for tests (Debian's `prometheus` package), and where the tests find it and
//! Alertmanager: a generated configuration, a
//! random port and a temporary storage directory, killed on drop. Tests query it through its
//! HTTP API. A missing binary fails the test with what to install; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The binary named by `env` when set, else the first of `candidates` that exists; panics with
/// what to install otherwise.
fn tool(env: &str, package: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not found: install Debian's {package} package (`apt-get install -y {package}`) \
                 or point {env} at the binary",
                candidates.join(" or ")
            )
        })
}

/// `prometheus` (`SDASH_PROMETHEUS`, else `/usr/bin/prometheus`).
pub fn prometheus_binary() -> PathBuf {
    tool("SDASH_PROMETHEUS", "prometheus", &["/usr/bin/prometheus"])
}

/// `promtool` (`SDASH_PROMTOOL`, else `/usr/bin/promtool`), from the same package.
pub fn promtool_binary() -> PathBuf {
    tool("SDASH_PROMTOOL", "prometheus", &["/usr/bin/promtool"])
}

/// `prometheus-alertmanager` (`SDASH_ALERTMANAGER`, else `/usr/bin/prometheus-alertmanager`).
pub fn alertmanager_binary() -> PathBuf {
    tool(
        "SDASH_ALERTMANAGER",
        "prometheus-alertmanager",
        &["/usr/bin/prometheus-alertmanager"],
    )
}

/// A Prometheus server on 127.0.0.1, killed on drop.
pub struct PrometheusServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Writes `config` (prometheus.yml text) to a temporary directory, starts Prometheus on a free
    /// port with its storage there, and waits until it accepts connections.
    pub fn start(config: &str) -> PrometheusServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for prometheus: {e}"));
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config)
            .unwrap_or_else(|e| panic!("write {}: {e}", config_file.display()));
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .unwrap_or_else(|e| panic!("prometheus log file: {e}"));
        let port = free_port();
        let binary = prometheus_binary();
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = PrometheusServer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not listen on {port}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its temporary directory (configuration, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
