//! sdash-harness: real servers for tests (nats-server on a random port, a three-node
//! JetStream cluster, a fresh database per test, a TCP proxy to cut), cleaned up on drop.
//! Nothing here mocks NATS or a database; the one stand-in, [`PasswordProbe`], only records
//! which PostgreSQL password a client sends (the test PostgreSQL trusts local logins, so it
//! cannot tell).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

pub mod nats_cluster;
pub use nats_cluster::NatsCluster;
pub mod pg_cluster;
pub use pg_cluster::PgCluster;
pub mod prometheus;
pub use prometheus::{PrometheusServer, alertmanager_binary};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The values of every sample of metric `name` (any labels) on a service's Prometheus endpoint
/// `http://127.0.0.1:<port>/metrics`; empty when the metric is absent, `None` when the endpoint
/// does not answer.
pub async fn metric_samples(port: u16, name: &str) -> Option<Vec<f64>> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| {
                l.starts_with(name)
                    && matches!(l.as_bytes().get(name.len()), Some(b' ') | Some(b'{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect(),
    )
}

/// The sum of metric `name`'s samples on `http://127.0.0.1:<port>/metrics`; `None` when the
/// endpoint does not answer or the metric is absent.
pub async fn metric_sum(port: u16, name: &str) -> Option<f64> {
    let values = metric_samples(port, name).await?;
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn nats_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SDASH_NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    for candidate in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("nats-server")
}

/// A nats-server with JetStream on a random port and a temporary store, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (auth, TLS, a config file...).
    pub fn start_with(extra_args: &[&str]) -> NatsServer {
        let store = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir for nats-server: {e}"));
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let binary = nats_server_binary();
        let child = Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (install Debian's nats-server): {e}",
                    binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server (SIGKILL); its store stays for [`NatsServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use: `SDASH_TEST_DATABASE_URL`, else the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("SDASH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test: a fresh PostgreSQL database (dropped on drop) or a
/// SQLite file in a temporary directory.
pub struct TestDatabase {
    pub backend: Backend,
    /// URL for sdash services (`sqlite://...` or `postgres://...`).
    pub url: String,
    pg_name: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
                let url = format!("sqlite://{}", dir.path().join("sdash.db").display());
                TestDatabase {
                    backend,
                    url,
                    pg_name: None,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("sdash_test_{}", uuid_like());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} (set SDASH_TEST_DATABASE_URL): {e}")
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("create database {name}: {e}"));
                let _ = conn.close().await;
                let url = replace_database(&admin, &name);
                TestDatabase {
                    backend,
                    url,
                    pg_name: Some(name),
                    dir: None,
                }
            }
        }
    }

    /// The directory holding the SQLite file (SQLite only).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// This database's URL with its host:port replaced (to route it through a [`TcpProxy`]).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        match self.backend {
            Backend::Sqlite => self.url.clone(),
            Backend::Postgres => {
                let (scheme, rest) = self
                    .url
                    .split_once("://")
                    .unwrap_or(("postgres", &self.url));
                let (auth, rest) = rest
                    .split_once('@')
                    .map(|(a, r)| (Some(a), r))
                    .unwrap_or((None, rest));
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                match auth {
                    Some(a) => format!("{scheme}://{a}@{addr}{path}"),
                    None => format!("{scheme}://{addr}{path}"),
                }
            }
        }
    }

    /// The host:port of the PostgreSQL server (PostgreSQL only).
    pub fn server_addr(&self) -> Option<SocketAddr> {
        let rest = self.url.split_once("://")?.1;
        let rest = rest.split_once('@').map(|(_, r)| r).unwrap_or(rest);
        let hostport = rest.split('/').next()?;
        use std::net::ToSocketAddrs;
        hostport.to_socket_addrs().ok()?.next()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = postgres_admin_url();
            // Drop runs outside any runtime guarantee: use a thread with its own small runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, Some(q)))
        .unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// A TCP proxy a test owns: forwards 127.0.0.1:<port> to `target` until cut. Cutting closes every
/// open connection and refuses new ones, like a database that went away; `restore` lets them in again.
pub struct TcpProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind proxy: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy address: {e}"));
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let task = {
            let cut = cut.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut cut_signal = generation.subscribe();
                    tokio::spawn(async move {
                        let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let (mut a, mut b) = (inbound, outbound);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                            _ = cut_signal.changed() => {}
                        }
                    });
                }
            })
        };
        TcpProxy {
            addr,
            cut,
            generation,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A stand-in PostgreSQL server that answers every login with a request for a cleartext
/// password, records the password the client sends, and refuses the login (SQLSTATE 28P01). The
/// test PostgreSQL trusts local logins, so only this shows which password a client really sends.
pub struct PasswordProbe {
    addr: SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PasswordProbe {
    pub async fn start() -> PasswordProbe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind password probe: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("password probe address: {e}"));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let login = tokio::time::timeout(
                            Duration::from_secs(10),
                            probe_login(stream, &seen),
                        );
                        let _ = login.await;
                    });
                }
            })
        };
        PasswordProbe { addr, seen, task }
    }

    /// A `postgres://` URL of the probe for `user`, without a password.
    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@{}/sdash?sslmode=disable", self.addr)
    }

    /// The passwords clients sent, in order.
    pub fn passwords(&self) -> Vec<String> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for PasswordProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn probe_login(
    mut s: tokio::net::TcpStream,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SSL_REQUEST: i32 = 80_877_103;
    const GSS_REQUEST: i32 = 80_877_104;
    let too_long = || std::io::Error::other("message too long");
    // SSL / GSS encryption requests are refused ('N'); then comes the startup message.
    loop {
        let len = s.read_i32().await?;
        let code = s.read_i32().await?;
        if code == SSL_REQUEST || code == GSS_REQUEST {
            s.write_all(b"N").await?;
            continue;
        }
        let rest = usize::try_from(len - 8).map_err(|_| too_long())?;
        if rest > 64 * 1024 {
            return Err(too_long());
        }
        let mut startup = vec![0; rest];
        s.read_exact(&mut startup).await?;
        break;
    }
    // AuthenticationCleartextPassword.
    s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    if s.read_u8().await? != b'p' {
        return Ok(());
    }
    let len = usize::try_from(s.read_i32().await? - 4).map_err(|_| too_long())?;
    if len > 64 * 1024 {
        return Err(too_long());
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await?;
    let password = body.strip_suffix(&[0]).unwrap_or(&body);
    if let Ok(mut v) = seen.lock() {
        v.push(String::from_utf8_lossy(password).into_owned());
    }
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28P01"),
        (
            b'M',
            "password authentication failed (sdash-harness password probe)",
        ),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
    msg.extend_from_slice(&fields);
    s.write_all(&msg).await?;
    s.flush().await
}

/// Everything this process logs (every level, every target), captured so that a test can prove
/// a secret is in none of it. See [`capture_logs`].
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

/// Installs a process-wide subscriber at TRACE that writes into the returned buffer; `None` when
/// another subscriber was installed first (nextest runs each test in its own process).
pub fn capture_logs() -> Option<CapturedLogs> {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .ok()
        .map(|()| captured)
}
