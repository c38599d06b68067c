//! Shared helpers for the writer tests: record builders and backend-neutral queries.
#![allow(dead_code)]

use sdash_harness::{Backend, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::Incoming;
use sqlx::{AssertSqlSafe, Connection, Row};

/// Runs every listed scenario (an `async fn(Backend)`) once per backend, as separate tests.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(sdash_harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(sdash_harness::Backend::Postgres).await
                }
            )*
        }
    };
}

pub fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    encode(v).unwrap_or_else(|e| panic!("encode: {e}"))
}

pub fn incoming(seq: u64, subject: String, payload: Vec<u8>) -> Incoming {
    Incoming {
        stream_seq: seq,
        subject,
        payload,
        deliveries: 1,
    }
}

pub fn envelope<T>(system: &str, event_id: &str, observed_at: i64, body: T) -> Envelope<T> {
    Envelope {
        schema: SCHEMA_VERSION,
        event_id: event_id.to_owned(),
        collector_id: "c1".into(),
        system_id: system.to_owned(),
        observed_at,
        body,
    }
}

pub fn alert(id: &str) -> Alert {
    Alert {
        id: id.to_owned(),
        severity: Severity::Warning,
        vendor_severity: "warning".into(),
        title: format!("alert {id}"),
        component: Some("ct0".into()),
        opened_at: None,
    }
}

pub fn snapshot_body(
    status: Status,
    hardware: Health,
    alerts: &[&str],
    used: Option<u64>,
) -> Snapshot {
    let mut body = Snapshot::failed(Vendor::Pure, status, String::new(), 10);
    body.error = None;
    body.hardware = hardware;
    body.cluster = Health::Ok;
    body.alerts = alerts.iter().map(|a| alert(a)).collect();
    body.capacity = used.map(|u| Capacity {
        total_bytes: 1000,
        used_bytes: u,
        free_bytes: 1000 - u,
        data_reduction: None,
        provisioned_bytes: None,
    });
    body
}

pub fn snapshot_msg(seq: u64, system: &str, observed_at: i64, body: Snapshot) -> Incoming {
    let env = envelope(
        system,
        &format!("snap-{system}-{observed_at}"),
        observed_at,
        body,
    );
    incoming(seq, Kind::Snapshot.subject(system), enc(&env))
}

pub fn event_body(message: &str) -> EventRecord {
    EventRecord {
        level: Level::Warning,
        category: Category::ApiCall,
        message: message.to_owned(),
        details: Some("details".into()),
        http_status: Some(503),
        endpoint: Some("/api/2.0/arrays".into()),
    }
}

pub fn event_msg(
    seq: u64,
    system: &str,
    event_id: &str,
    observed_at: i64,
    message: &str,
) -> Incoming {
    let env = envelope(system, event_id, observed_at, event_body(message));
    incoming(seq, Kind::Event.subject(system), enc(&env))
}

/// Runs a query on the test database and returns every row as text columns.
pub async fn rows(db: &TestDatabase, sql: &str) -> Vec<Vec<Option<String>>> {
    fn text<R: Row>(r: &R, n: usize) -> Vec<Option<String>>
    where
        for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        (0..n)
            .map(|i| {
                r.try_get::<Option<String>, _>(i)
                    .unwrap_or_else(|e| panic!("column {i}: {e}"))
            })
            .collect()
    }
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            let out = sqlx::query(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let res = out.iter().map(|r| text(r, r.len())).collect();
            let _ = c.close().await;
            res
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            let out = sqlx::query(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let res = out.iter().map(|r| text(r, r.len())).collect();
            let _ = c.close().await;
            res
        }
    }
}

/// The first column of the first row as an integer (write the SQL with `CAST(... AS TEXT)`).
pub async fn scalar(db: &TestDatabase, sql: &str) -> i64 {
    let r = rows(db, sql).await;
    r.first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|s| s.parse::<f64>().ok())
        .map(|f| f as i64)
        .unwrap_or_else(|| panic!("{sql}: no integer in {r:?}"))
}

pub async fn count(db: &TestDatabase, table_and_where: &str) -> i64 {
    scalar(
        db,
        &format!("SELECT CAST(count(*) AS TEXT) FROM {table_and_where}"),
    )
    .await
}

/// Runs each of `statements` (one or several SQL statements each) on a database of either
/// backend, as another program (an import, an older writer) would; a SQLite file is created if
/// it does not exist yet.
pub async fn exec_all<S: AsRef<str>>(backend: Backend, url: &str, statements: &[S]) {
    match backend {
        Backend::Sqlite => {
            let options = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap_or_else(|e| panic!("{e}"))
                .create_if_missing(true);
            let mut c = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            for s in statements {
                let s = s.as_ref();
                sqlx::raw_sql(AssertSqlSafe(s.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            let _ = c.close().await;
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            for s in statements {
                let s = s.as_ref();
                sqlx::raw_sql(AssertSqlSafe(s.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            let _ = c.close().await;
        }
    }
}

/// Runs `sql` (one or several statements) on the test database.
pub async fn exec(db: &TestDatabase, sql: &str) {
    exec_all(db.backend, &db.url, &[sql]).await
}

/// Opens the store on the test database (running its migrations).
pub async fn open(db: &TestDatabase) -> sdash_writer::Store {
    sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", db.url))
}

/// Publishes to JetStream with `Nats-Msg-Id` = `id`, retrying the same id until a PubAck comes.
pub async fn publish_acked(
    js: &async_nats::jetstream::Context,
    subject: String,
    payload: Vec<u8>,
    id: &str,
) {
    let payload = bytes_of(payload);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        if let Ok(ack) = js
            .publish_with_headers(subject.clone(), headers, payload.clone())
            .await
            && let Ok(Ok(_)) = tokio::time::timeout(std::time::Duration::from_secs(5), ack).await
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn bytes_of(v: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(v)
}

/// A JetStream context on a client that reconnects forever (the stream is created if missing).
pub async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = sdash_service::bus::connect(
        &sdash_service::bus::NatsArgs::plain(url),
        "test-producer",
        true,
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"));
    let js = async_nats::jetstream::new(client);
    sdash_service::bus::ensure_stream(&js, &sdash_service::bus::StreamArgs::default())
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    js
}

/// `GET path` on the admin server: (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

/// The value of a metric line (`name value`) in a Prometheus text body.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        if n == name { v.parse().ok() } else { None }
    })
}

/// The writer binary, started with explicit flags; its log goes to `log`. Killed (SIGKILL) on drop.
pub struct WriterProcess {
    pub child: std::process::Child,
    pub admin: std::net::SocketAddr,
    pub log: std::path::PathBuf,
}

impl WriterProcess {
    pub fn spawn(
        nats_url: &str,
        database_url: &str,
        id: &str,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> WriterProcess {
        WriterProcess::spawn_with_env(nats_url, database_url, id, dir, extra, &[])
    }

    /// [`WriterProcess::spawn`] with these environment variables set too.
    pub fn spawn_with_env(
        nats_url: &str,
        database_url: &str,
        id: &str,
        dir: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> WriterProcess {
        let port = sdash_harness::free_port();
        let admin: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.join(format!("writer-{id}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("log file: {e}"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sdash-writer"))
            .args([
                "--nats-url",
                nats_url,
                "--database-url",
                database_url,
                "--writer-id",
                id,
            ])
            .args([
                "--admin-listen",
                &admin.to_string(),
                "--ack-wait",
                "3s",
                "--batch-timeout",
                "50ms",
            ])
            .args(["--log-level", "info,sqlx=warn"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the writer: {e}"));
        WriterProcess { child, admin, log }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn ready(&self) -> bool {
        matches!(http_get(self.admin, "/readyz").await, Some((200, _)))
    }

    pub async fn metrics(&self) -> String {
        http_get(self.admin, "/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for WriterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
