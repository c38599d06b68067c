//! Connecting to the right server of a [`PgUrl`] (the `postgres` feature): each server in the
//! URL's order, asking each session about its server ([`ServerState::QUERY`]) when the
//! attributes need it, the way libpq does.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection, Row};

use super::{PgUrl, ServerState, TargetSessionAttrs};

/// How long one of several servers may take to accept a connection before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// None of the servers offered a session with the wanted attributes.
#[derive(Debug, thiserror::Error)]
#[error("no PostgreSQL server of the database URL offers a {attrs} session ({})", tried.join("; "))]
pub struct NoServerError {
    pub attrs: TargetSessionAttrs,
    /// `host:port: what happened`, per server tried.
    pub tried: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The one server of a single-host URL refused the connection (sqlx's own error, as if
    /// this module were not there).
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    NoServer(#[from] NoServerError),
}

/// The servers of a URL, with the connect options of each, and the attributes a session must
/// have.
pub struct PgServers {
    servers: Vec<(String, PgConnectOptions)>,
    attrs: TargetSessionAttrs,
}

// Hand-written: the connect options may hold the password.
impl fmt::Debug for PgServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServers")
            .field(
                "servers",
                &self.servers.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("attrs", &self.attrs)
            .finish()
    }
}

impl PgServers {
    /// The servers of `url`, each connected with the options `options` makes of its
    /// single-host URL (where a service adds its application name and password).
    pub fn new<E>(
        url: &PgUrl,
        attrs: TargetSessionAttrs,
        options: impl Fn(&str) -> Result<PgConnectOptions, E>,
    ) -> Result<PgServers, E> {
        let servers = url
            .servers()
            .iter()
            .map(|s| Ok((s.addr.clone(), options(&s.url)?)))
            .collect::<Result<_, E>>()?;
        Ok(PgServers { servers, attrs })
    }

    pub fn attrs(&self) -> TargetSessionAttrs {
        self.attrs
    }

    pub fn is_multi_host(&self) -> bool {
        self.servers.len() > 1
    }

    /// `host:port` of server `index` (as written in the URL).
    pub fn addr(&self, index: usize) -> &str {
        self.servers.get(index).map_or("", |(a, _)| a.as_str())
    }

    /// The connect options of server `index` (the first one if out of range).
    pub fn options(&self, index: usize) -> &PgConnectOptions {
        let (_, first) = &self.servers[0];
        self.servers.get(index).map_or(first, |(_, o)| o)
    }

    /// Connects to the first server, in the URL's order, that offers a session with the
    /// attributes (`prefer-standby`: the first standby, else the first server that answers),
    /// and returns the session with the server's index.
    pub async fn connect(&self) -> Result<(PgConnection, usize), ConnectError> {
        let wanted = match self.attrs {
            TargetSessionAttrs::PreferStandby => TargetSessionAttrs::Standby,
            a => a,
        };
        let mut tried = Vec::new();
        let mut fallback = None;
        for (index, (addr, options)) in self.servers.iter().enumerate() {
            let mut conn = match self.connect_to(options).await {
                Ok(conn) => conn,
                Err(ConnectError::Db(e)) if !self.is_multi_host() => return Err(e.into()),
                Err(e) => {
                    tried.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            if !wanted.needs_check() {
                return Ok((conn, index));
            }
            match server_state(&mut conn).await {
                Ok(state) if wanted.accepts(state) => return Ok((conn, index)),
                Ok(state) => {
                    if self.attrs == TargetSessionAttrs::PreferStandby && fallback.is_none() {
                        fallback = Some(index);
                    }
                    tried.push(format!("{addr}: {state}"));
                }
                Err(e) => tried.push(format!("{addr}: {e}")),
            }
            let _ = conn.close().await;
        }
        if let Some(index) = fallback {
            match self.connect_to(self.options(index)).await {
                Ok(conn) => return Ok((conn, index)),
                Err(e) => tried.push(format!("{}: {e}", self.addr(index))),
            }
        }
        Err(NoServerError {
            attrs: self.attrs,
            tried,
        }
        .into())
    }

    /// The index of the server a pool should connect to: the one [`PgServers::connect`] finds
    /// (its session is closed), or, for a single-host URL, that host without connecting.
    pub async fn choose(&self) -> Result<usize, ConnectError> {
        if !self.is_multi_host() {
            return Ok(0);
        }
        let (conn, index) = self.connect().await?;
        let _ = conn.close().await;
        Ok(index)
    }

    /// Points the future connections of `pool` at the server [`PgServers::connect`] finds
    /// now; its open connections stay as they are (a dead one fails its test before use).
    pub async fn repoint(&self, pool: &PgPool) -> Result<usize, ConnectError> {
        let index = self.choose().await?;
        pool.set_connect_options(self.options(index).clone());
        Ok(index)
    }

    /// For a pool's `after_connect`: an error when a fresh session is not on a server with the
    /// attributes (the pool then drops it and connects again), so that a pool never uses a
    /// server that changed role since it was chosen.
    pub async fn check(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.attrs.needs_check() {
            return Ok(());
        }
        let state = server_state(conn).await?;
        if self.attrs.accepts(state) {
            Ok(())
        } else {
            Err(sqlx::Error::Protocol(format!(
                "the server is {state}; target_session_attrs={}",
                self.attrs
            )))
        }
    }

    async fn connect_to(&self, options: &PgConnectOptions) -> Result<PgConnection, ConnectError> {
        if !self.is_multi_host() {
            // As before this module: no limit but the operating system's.
            return Ok(PgConnection::connect_with(options).await?);
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(NoServerError {
                attrs: self.attrs,
                tried: vec![format!("no answer within {CONNECT_TIMEOUT:?}")],
            }
            .into()),
        }
    }
}

/// Asks the session's server whether it is a standby and whether it is read-only.
pub async fn server_state(conn: &mut PgConnection) -> Result<ServerState, sqlx::Error> {
    let row = sqlx::query(ServerState::QUERY).fetch_one(conn).await?;
    Ok(ServerState {
        in_recovery: row.try_get(0)?,
        read_only: row.try_get(1)?,
    })
}

/// Whether `e` says the server went away or changed role (rather than that the query is
/// wrong): worth finding the right server again and retrying.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: the server is shutting down, crashed or
            // starting; 25006: a read-only transaction (the server is now a standby).
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006")
        }),
        _ => false,
    }
}
