//! Exactly one active writer per database. PostgreSQL: a session advisory lock held on a
//! dedicated connection for as long as this process leads (it frees when the connection drops).
//! SQLite: an exclusive `flock` on `<database>.lock` next to the database file. A second writer
//! waits as a hot standby and polls until it gets the lock. With several PostgreSQL servers in
//! the URL the lock is taken on the writable one, and taken again on the new primary after a
//! switchover.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sdash_service::postgres::{TargetSessionAttrs, server_state};
use sdash_service::{Secret, Shutdown};
use sqlx::{Connection, PgConnection, Row};

use crate::store::{pg, sqlite};

/// The advisory lock key of the writer ("SDASHW").
pub const PG_WRITER_LOCK: i64 = 0x5344_4153_4857;

pub(crate) enum WriterLock {
    Sqlite {
        _file: File,
        path: PathBuf,
    },
    /// An in-memory SQLite database cannot be shared: nothing to lock.
    Memory,
    Postgres {
        pid: i32,
        alive: Arc<AtomicBool>,
        monitor: tokio::task::JoinHandle<()>,
    },
}

impl WriterLock {
    /// Waits until this process holds the writer lock; `None` when `stop` fires first. A
    /// PostgreSQL lock connection logs in with `password` when given.
    pub(crate) async fn acquire(
        url: &str,
        password: Option<&Secret>,
        poll: Duration,
        stop: &Shutdown,
    ) -> anyhow::Result<Option<WriterLock>> {
        let poll = poll.max(Duration::from_millis(50));
        if url.starts_with("sqlite:") {
            let Some(db) = sqlite::database_path(url) else {
                return Ok(Some(WriterLock::Memory));
            };
            let mut path = db.into_os_string();
            path.push(".lock");
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            let file = File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| {
                    anyhow::anyhow!("cannot open the lock file {}: {e}", path.display())
                })?;
            let mut waiting = false;
            loop {
                match file.try_lock() {
                    Ok(()) => {
                        tracing::info!(lock = %path.display(), "writer lock acquired; this writer is active");
                        return Ok(Some(WriterLock::Sqlite { _file: file, path }));
                    }
                    Err(TryLockError::WouldBlock) => {
                        if !waiting {
                            tracing::info!(lock = %path.display(), "standby: waiting for the writer lock (another writer is active)");
                            waiting = true;
                        }
                    }
                    Err(TryLockError::Error(e)) => {
                        return Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()));
                    }
                }
                if sleep_or_stop(poll, stop).await {
                    return Ok(None);
                }
            }
        }
        // With several servers, each attempt looks for the writable one again: after a
        // switchover the lock is taken on the new primary.
        let servers = pg::servers(url, password, "sdash-writer-lock")?;
        let mut waiting = false;
        let mut last_error: Option<std::time::Instant> = None;
        loop {
            match servers.connect().await {
                Ok((mut conn, server)) => loop {
                    let got = sqlx::query("SELECT pg_try_advisory_lock($1), pg_backend_pid()")
                        .bind(PG_WRITER_LOCK)
                        .fetch_one(&mut conn)
                        .await
                        .and_then(|r| Ok((r.try_get::<bool, _>(0)?, r.try_get::<i32, _>(1)?)));
                    match got {
                        Ok((true, pid)) => {
                            tracing::info!(
                                pid,
                                server = servers.addr(server),
                                "writer lock acquired (PostgreSQL advisory lock); this writer is active"
                            );
                            let alive = Arc::new(AtomicBool::new(true));
                            let monitor =
                                tokio::spawn(monitor(conn, servers.attrs(), alive.clone()));
                            return Ok(Some(WriterLock::Postgres {
                                pid,
                                alive,
                                monitor,
                            }));
                        }
                        Ok((false, _)) => {
                            if !waiting {
                                tracing::info!(
                                    "standby: waiting for the writer lock (another writer is active)"
                                );
                                waiting = true;
                            }
                            last_error = None;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "writer lock connection failed; reconnecting");
                            break;
                        }
                    }
                    if sleep_or_stop(poll, stop).await {
                        return Ok(None);
                    }
                },
                Err(e) => {
                    // Log the first failure, then at most every 10 s.
                    if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "cannot connect to PostgreSQL for the writer lock; retrying");
                        last_error = Some(std::time::Instant::now());
                    }
                }
            }
            if sleep_or_stop(poll.max(Duration::from_millis(500)), stop).await {
                return Ok(None);
            }
        }
    }

    pub(crate) fn is_held(&self) -> bool {
        match self {
            WriterLock::Postgres { alive, .. } => alive.load(Ordering::SeqCst),
            _ => true,
        }
    }

    /// The PostgreSQL session that holds the lock (batches check it inside their transaction).
    pub(crate) fn pg_pid(&self) -> Option<i32> {
        match self {
            WriterLock::Postgres { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            WriterLock::Sqlite { path, .. } => format!("flock {}", path.display()),
            WriterLock::Memory => "none (in-memory database)".into(),
            WriterLock::Postgres { pid, .. } => {
                format!("pg_advisory_lock({PG_WRITER_LOCK}) on backend {pid}")
            }
        }
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Dropping the monitor drops the connection: the server releases the lock.
        if let WriterLock::Postgres { monitor, .. } = self {
            monitor.abort();
        }
    }
}

/// Keeps checking the lock connection; when it fails the lock is gone (the server released it
/// when the session ended), so this writer must stop writing. When the session must be on a
/// writable server (several servers in the URL), a server that turned read-only (fenced by a
/// failover manager) counts as lost too: the writer goes looking for the new primary.
async fn monitor(mut conn: PgConnection, attrs: TargetSessionAttrs, alive: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let check = async {
            if attrs.needs_check() {
                server_state(&mut conn)
                    .await
                    .map(|state| attrs.accepts(state))
            } else {
                sqlx::query("SELECT 1")
                    .execute(&mut conn)
                    .await
                    .map(|_| true)
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), check).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::error!(
                    %attrs,
                    "the writer lock's server is no longer writable; releasing the lock and stopping writes"
                );
                alive.store(false, Ordering::SeqCst);
                let _ = conn.close().await;
                return;
            }
            _ => {
                tracing::error!(
                    "the writer lock connection dropped: the lock is lost; stopping writes"
                );
                alive.store(false, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// Sleeps for `d`; true when `stop` was cancelled before or meanwhile.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &Shutdown) -> bool {
    if stop.is_cancelled() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => stop.is_cancelled(),
        _ = stop.cancelled() => true,
    }
}
