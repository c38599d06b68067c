//! The read-only query layer. One pool per backend behind [`Db`], SQL written once with `?`
//! placeholders ([`Sql`]) and rendered per backend, every value bound (never spliced into SQL),
//! and rows decoded into a backend-neutral [`Row`], then into typed structs ([`FromRow`]), so
//! mapping code is written once.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sdash_service::Secret;
use sdash_service::postgres::{PgServers, PgUrl, is_connection_error};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Executor, Row as _, TypeInfo, ValueRef};

/// Why a query did not produce rows.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query timed out")]
    Timeout,
    #[error("database unavailable: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?} (use sqlite:// or postgres://)")]
    Url(String),
    /// The query and the code reading its rows disagree (a bug, not an outage).
    #[error("cannot read column {column:?}: {problem}")]
    Column {
        column: String,
        problem: &'static str,
    },
}

/// Which SQL dialect a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// `COLLATE` clause making text order byte-wise (as SQLite's default) on both backends.
    pub fn binary_collation(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Float(v)
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_owned())
    }
}

/// SQL text with `?` placeholders and the values bound to them, in order. Static SQL fragments
/// are pushed with [`Sql::push`]; values only ever go through [`Sql::bind`].
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Param>) -> &mut Sql {
        self.text.push('?');
        self.params.push(value.into());
        self
    }

    /// Appends `(?, ?, ...)` bound to `values`.
    pub fn bind_list<P: Into<Param>>(&mut self, values: impl IntoIterator<Item = P>) -> &mut Sql {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    /// The text for `dialect`: `?` stays for SQLite, becomes `$1`, `$2`, ... for PostgreSQL.
    pub fn render(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Sqlite => self.text.clone(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(self.text.len() + 8);
                let mut n = 0;
                for ch in self.text.chars() {
                    if ch == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        }
    }
}

/// A decoded column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// One result row, backend-neutral. Read it into a typed struct with [`FromRow`] (usually
/// declared with [`row_struct!`](crate::row_struct)): a column that is missing or of the wrong
/// type is an error, never a silent `None`.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// A column value converted to a Rust type; only `Option` accepts NULL.
pub trait FromColumn: Sized {
    /// `None` when the value cannot be read as `Self`. Text is moved out of `value` (each column
    /// is read once), which saves a copy per text column when the fleet list is loaded.
    fn from_column(value: &mut Value) -> Option<Self>;
}

impl FromColumn for i64 {
    fn from_column(value: &mut Value) -> Option<i64> {
        match value {
            Value::Int(v) => Some(*v),
            // SQLite keeps whole numbers computed in REAL as REAL.
            Value::Float(v) => Some(*v as i64),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }
}

impl FromColumn for f64 {
    fn from_column(value: &mut Value) -> Option<f64> {
        match value {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Text(t) => t.parse().ok(),
            Value::Bool(_) | Value::Null => None,
        }
    }
}

impl FromColumn for String {
    fn from_column(value: &mut Value) -> Option<String> {
        // Moved out, leaving NULL: a column read twice is NULL the second time, never "".
        match std::mem::replace(value, Value::Null) {
            Value::Text(t) => Some(t),
            other => {
                *value = other;
                None
            }
        }
    }
}

impl FromColumn for bool {
    fn from_column(value: &mut Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            // SQLite stores BOOLEAN as INTEGER.
            Value::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(value: &mut Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_column(other).map(Some),
        }
    }
}

/// A typed result row.
pub trait FromRow: Sized {
    fn from_row(row: &mut Row) -> Result<Self, DbError>;
}

/// Two structs read from the same row (a join).
impl<A: FromRow, B: FromRow> FromRow for (A, B) {
    fn from_row(row: &mut Row) -> Result<Self, DbError> {
        Ok((A::from_row(row)?, B::from_row(row)?))
    }
}

/// How a column's values travel in a packed result ([`Db::fetch_packed_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Float,
    Text,
    Bool,
}

/// The [`ColumnKind`] of a Rust type a column is read as (NULL is allowed by `Option`).
pub trait ColumnType {
    const KIND: ColumnKind;
}

impl ColumnType for i64 {
    const KIND: ColumnKind = ColumnKind::Int;
}

impl ColumnType for f64 {
    const KIND: ColumnKind = ColumnKind::Float;
}

impl ColumnType for String {
    const KIND: ColumnKind = ColumnKind::Text;
}

impl ColumnType for bool {
    const KIND: ColumnKind = ColumnKind::Bool;
}

impl<T: ColumnType> ColumnType for Option<T> {
    const KIND: ColumnKind = T::KIND;
}

/// A row struct whose columns (names and kinds, in order) are known, so that many of its rows
/// can be read as one packed value ([`Db::fetch_packed_as`]).
pub trait PackedRow: FromRow {
    const COLUMNS: &'static [(&'static str, ColumnKind)];
}

/// Declares a struct read from a result row, one field per column of the same name:
/// `row_struct! { pub struct Count { pub n: i64 } }`.
#[macro_export]
macro_rules! row_struct {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
    }) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        impl $crate::db::FromRow for $name {
            fn from_row(row: &mut $crate::db::Row) -> Result<Self, $crate::db::DbError> {
                Ok($name {
                    $($field: row.take(stringify!($field))?),*
                })
            }
        }

        impl $crate::db::PackedRow for $name {
            const COLUMNS: &'static [(&'static str, $crate::db::ColumnKind)] =
                &[$((stringify!($field), <$ty as $crate::db::ColumnType>::KIND)),*];
        }
    };
}

/// The SQLite query that returns every row of `inner` as one JSON text, `packed`: an array of
/// rows (each an array of `columns`, in order) sorted by `order_by` (a column of `inner`). A REAL
/// with a whole value (the byte sums of the rollups) travels as its exact integer, any other as
/// text of 17 significant digits (JSON's own number text keeps 15).
fn packed_sql(inner: &Sql, columns: &[(&str, ColumnKind)], order_by: &'static str) -> Sql {
    let values: Vec<String> = columns
        .iter()
        .map(|(name, kind)| match kind {
            ColumnKind::Float => format!(
                "CASE WHEN {name} IS NULL THEN NULL \
                 WHEN abs({name}) < 9.2e18 AND {name} = CAST({name} AS INTEGER) THEN CAST({name} AS INTEGER) \
                 ELSE printf('%!.17g', {name}) END"
            ),
            _ => (*name).to_owned(),
        })
        .collect();
    Sql {
        text: format!(
            "SELECT json_group_array(json_array({}) ORDER BY {order_by}) AS packed FROM ({})",
            values.join(", "),
            inner.text
        ),
        params: inner.params.clone(),
    }
}

/// The rows of a `packed` JSON text made by [`packed_sql`].
fn unpack(packed: &str, columns: &[(&'static str, ColumnKind)]) -> Result<Vec<Row>, DbError> {
    let bad = |problem| DbError::Column {
        column: "packed".to_owned(),
        problem,
    };
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(packed).map_err(|_| bad("not a JSON array of rows"))?;
    let names: Arc<[String]> = columns.iter().map(|(n, _)| (*n).to_owned()).collect();
    rows.into_iter()
        .map(|row| {
            if row.len() != columns.len() {
                return Err(bad("a row with another number of columns"));
            }
            let values = row
                .into_iter()
                .zip(columns)
                .map(|(v, (_, kind))| match v {
                    serde_json::Value::Null => Ok(Value::Null),
                    serde_json::Value::Bool(b) => Ok(Value::Bool(b)),
                    serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                        (Some(i), _) if *kind != ColumnKind::Float => Ok(Value::Int(i)),
                        (_, Some(f)) => Ok(Value::Float(f)),
                        _ => Err(bad("a number out of range")),
                    },
                    serde_json::Value::String(t) if *kind == ColumnKind::Float => t
                        .parse()
                        .map(Value::Float)
                        .map_err(|_| bad("a REAL that is not a number")),
                    serde_json::Value::String(t) => Ok(Value::Text(t)),
                    _ => Err(bad("a nested value")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row {
                names: names.clone(),
                values,
            })
        })
        .collect()
}

impl Row {
    /// The column `name` as an integer, `None` if it is NULL, missing or not a number: for ad hoc
    /// queries (tools, tests). Handlers read typed rows, where a missing column is an error.
    pub fn i64(&self, name: &str) -> Option<i64> {
        let i = self.names.iter().position(|n| n == name)?;
        Option::<i64>::from_column(&mut self.values.get(i)?.clone()).flatten()
    }

    /// The column `name` as a `T`, moved out of the row; an error when there is no such column or
    /// its value is not a `T` (NULL is a `T` only for `Option`).
    pub fn take<T: FromColumn>(&mut self, name: &str) -> Result<T, DbError> {
        let value = self
            .names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get_mut(i))
            .ok_or_else(|| DbError::Column {
                column: name.to_owned(),
                problem: "no such column in the result",
            })?;
        let null = *value == Value::Null;
        T::from_column(value).ok_or_else(|| DbError::Column {
            column: name.to_owned(),
            problem: if null {
                "NULL where a value is required"
            } else {
                "value of an unexpected type"
            },
        })
    }

    /// Decodes one row; `names` are the result's column names, shared by its rows, and `value`
    /// reads a non-NULL column of the given type name.
    fn decode<R: sqlx::Row>(
        row: &R,
        names: &Arc<[String]>,
        value: impl Fn(&R, usize, &str) -> Result<Option<Value>, sqlx::Error>,
    ) -> Result<Row, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
    {
        let mut values = Vec::with_capacity(names.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                values.push(Value::Null);
                continue;
            }
            let info = raw.type_info();
            let kind = info.name();
            let decoded = value(row, i, kind)?.ok_or_else(|| {
                sqlx::Error::Decode(format!("column {i} has the unsupported type {kind}").into())
            })?;
            values.push(decoded);
        }
        Ok(Row {
            names: names.clone(),
            values,
        })
    }

    fn from_sqlite(row: &SqliteRow, names: &Arc<[String]>) -> Result<Row, sqlx::Error> {
        Row::decode(row, names, |row, i, kind| {
            Ok(Some(match kind {
                "INTEGER" | "BOOLEAN" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" | "NUMERIC" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
                "TEXT" => Value::Text(row.try_get_unchecked::<String, _>(i)?),
                _ => return Ok(None),
            }))
        })
    }

    fn from_pg(row: &PgRow, names: &Arc<[String]>) -> Result<Row, sqlx::Error> {
        Row::decode(row, names, |row, i, kind| {
            Ok(Some(match kind {
                "INT2" => Value::Int(i64::from(row.try_get_unchecked::<i16, _>(i)?)),
                "INT4" => Value::Int(i64::from(row.try_get_unchecked::<i32, _>(i)?)),
                "INT8" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
                "FLOAT4" => Value::Float(f64::from(row.try_get_unchecked::<f32, _>(i)?)),
                "FLOAT8" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
                "BOOL" => Value::Bool(row.try_get_unchecked::<bool, _>(i)?),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                    Value::Text(row.try_get_unchecked::<String, _>(i)?)
                }
                _ => return Ok(None),
            }))
        })
    }
}

/// `query` with `params` bound in order.
fn bind_all<'q, DB: sqlx::Database>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    params: &[Param],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for p in params {
        query = match p {
            Param::Int(v) => query.bind(*v),
            Param::Float(v) => query.bind(*v),
            Param::Text(v) => query.bind(v.clone()),
        };
    }
    query
}

/// The column names of a result, shared by its rows.
fn column_names<R: sqlx::Row>(rows: &[R]) -> Arc<[String]> {
    rows.first()
        .map(|r| r.columns().iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_else(|| Arc::from(Vec::new()))
}

/// Rows sqlx's SQLite worker may hand over at once: a whole chart of daily points.
const SQLITE_ROW_BUFFER: usize = 1024;

/// Most connections the read-only pool opens (`DbOptions::max_connections` is capped to it).
pub const MAX_CONNECTIONS: u32 = 4;

/// Settings of the read-only pool.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub query_timeout: Duration,
    /// PostgreSQL password, overriding one in the URL (or a pgpass file); unused for SQLite.
    pub password: Option<Secret>,
}

/// The connect options of the PostgreSQL pool: `url`, the API's application name and, when
/// given, the password.
pub fn pg_connect_options(
    url: &str,
    password: Option<&Secret>,
) -> Result<PgConnectOptions, DbError> {
    let options = PgConnectOptions::from_str(url)?.application_name("sdash-api");
    Ok(match password {
        Some(p) => options.password(p.expose()),
        None => options,
    })
}

/// The read-only database handle.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    timeout: Duration,
    /// Several PostgreSQL servers in the URL: which one the pool reads from, found again when
    /// it fails.
    failover: Option<Arc<Failover>>,
}

/// The servers of a multi-host PostgreSQL URL and the pool's choice among them.
#[derive(Debug)]
struct Failover {
    servers: Arc<PgServers>,
    /// Counts the pool's moves to a server; a request that failed before the latest move does
    /// not move it again.
    moves: std::sync::atomic::AtomicU64,
    /// One search for a server at a time.
    searching: tokio::sync::Mutex<()>,
}

impl Failover {
    fn moves(&self) -> u64 {
        self.moves.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Points the pool at the server that offers the wanted session now, unless another
    /// request did so since `seen`.
    async fn repoint(&self, pool: &PgPool, seen: u64) {
        let _searching = self.searching.lock().await;
        if self.moves() != seen {
            return;
        }
        match self.servers.repoint(pool).await {
            Ok(index) => {
                self.moves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tracing::info!(
                    server = self.servers.addr(index),
                    attrs = %self.servers.attrs(),
                    "reading from this PostgreSQL server"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "no PostgreSQL server to read from; the next request looks again")
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Opens a lazy read-only pool: nothing connects until the first query, so the API starts
    /// while the database (or the SQLite file, created by the writer) is not there yet, and each
    /// request tries again.
    pub fn open(url: &str, options: &DbOptions) -> Result<Db, DbError> {
        let max = options.max_connections.clamp(1, MAX_CONNECTIONS);
        let timeout = options.query_timeout;
        let mut failover = None;
        let pool = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .read_only(true)
                .create_if_missing(false)
                .busy_timeout(timeout.min(Duration::from_secs(5)))
                // sqlx's worker thread hands rows over through a channel of this many (default
                // 50): a 2-year daily chart (731 rows) would wait for the worker 15 times.
                .row_buffer_size(SQLITE_ROW_BUFFER);
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(max)
                    .min_connections(0)
                    .acquire_timeout(timeout)
                    .idle_timeout(Duration::from_secs(300))
                    // A file the writer has created but not yet migrated is not a database to
                    // serve from: refuse the connection, so that the next request tries again
                    // instead of keeping a connection that saw an empty file.
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            let ready: i64 = sqlx::query_scalar(
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pipeline_status'",
                            )
                            .fetch_one(&mut *conn)
                            .await?;
                            if ready == 0 {
                                return Err(sqlx::Error::Protocol(
                                    "the database has no sdash schema yet (is the writer running?)".into(),
                                ));
                            }
                            Ok(())
                        })
                    })
                    .connect_lazy_with(connect),
            )
        } else if sdash_service::is_postgres_url(url) {
            let statement_timeout_ms = timeout.as_millis().max(1);
            let parsed = PgUrl::parse(url)
                .map_err(|e| DbError::Sqlx(sqlx::Error::Configuration(Box::new(e))))?;
            let servers = Arc::new(PgServers::new(&parsed, parsed.for_reading(), |server| {
                pg_connect_options(server, options.password.as_ref())
            })?);
            // With several servers, half the time of a request may go to a server that went
            // away; the other half is for the retry on the server found instead.
            let acquire_timeout = match servers.is_multi_host() {
                true => timeout / 2,
                false => timeout,
            };
            let check = servers.clone();
            let pool = PgPoolOptions::new()
                .max_connections(max)
                .min_connections(0)
                .acquire_timeout(acquire_timeout)
                .idle_timeout(Duration::from_secs(300))
                .after_connect(move |conn, _meta| {
                    let check = check.clone();
                    Box::pin(async move {
                        // Before the session is made read-only, which would hide the server's kind.
                        check.check(conn).await?;
                        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                            .await?;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "SET statement_timeout = {statement_timeout_ms}"
                        )))
                        .await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(servers.options(0).clone());
            if servers.is_multi_host() {
                let chosen = Arc::new(Failover {
                    servers,
                    moves: Default::default(),
                    searching: Default::default(),
                });
                // Choose among the servers now (the first one may not be the wanted kind);
                // without a runtime, the first failed request does it.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let (chosen, pool) = (chosen.clone(), pool.clone());
                    runtime.spawn(async move { chosen.repoint(&pool, 0).await });
                }
                failover = Some(chosen);
            }
            Pool::Postgres(pool)
        } else {
            return Err(DbError::Url(url.to_owned()));
        };
        Ok(Db {
            pool,
            timeout,
            failover,
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a query and returns every row, within the query timeout. With several PostgreSQL
    /// servers, a query that failed because its server went away (or changed role) is run
    /// again, in the time left, on the server found instead.
    pub async fn fetch(&self, sql: &Sql) -> Result<Vec<Row>, DbError> {
        let (Some(failover), Pool::Postgres(pool)) = (&self.failover, &self.pool) else {
            return self.fetch_within(sql, self.timeout).await;
        };
        let started = std::time::Instant::now();
        let seen = failover.moves();
        match self.fetch_within(sql, self.timeout).await {
            Err(DbError::Sqlx(e)) if is_connection_error(&e) => {
                let left = self.timeout.saturating_sub(started.elapsed());
                if tokio::time::timeout(left, failover.repoint(pool, seen))
                    .await
                    .is_err()
                {
                    return Err(DbError::Sqlx(e));
                }
                let left = self.timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(DbError::Sqlx(e));
                }
                self.fetch_within(sql, left).await
            }
            Err(DbError::Timeout) => {
                // No time left to retry; the next request finds the server this one looks for.
                let (failover, pool) = (failover.clone(), pool.clone());
                tokio::spawn(async move { failover.repoint(&pool, seen).await });
                Err(DbError::Timeout)
            }
            other => other,
        }
    }

    /// [`Db::fetch`] on the pool's current server, within `timeout`.
    async fn fetch_within(&self, sql: &Sql, timeout: Duration) -> Result<Vec<Row>, DbError> {
        let text = sql.render(self.dialect());
        let work = async {
            match &self.pool {
                Pool::Sqlite(pool) => {
                    let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params);
                    let mut conn = pool.acquire().await?;
                    // Interrupt the statement inside SQLite at the deadline, so that a timed-out
                    // query does not keep its connection busy after the request gave up on it.
                    let deadline = std::time::Instant::now() + timeout;
                    conn.lock_handle()
                        .await?
                        .set_progress_handler(10_000, move || std::time::Instant::now() < deadline);
                    let rows = q.fetch_all(&mut *conn).await?;
                    let names = column_names(&rows);
                    rows.iter()
                        .map(|r| Row::from_sqlite(r, &names))
                        .collect::<Result<Vec<_>, _>>()
                }
                Pool::Postgres(pool) => {
                    let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params);
                    let rows = q.fetch_all(pool).await?;
                    let names = column_names(&rows);
                    rows.iter()
                        .map(|r| Row::from_pg(r, &names))
                        .collect::<Result<Vec<_>, _>>()
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(DbError::Timeout),
        }
    }

    /// The first row, if any.
    pub async fn fetch_one(&self, sql: &Sql) -> Result<Option<Row>, DbError> {
        Ok(self.fetch(sql).await?.into_iter().next())
    }

    /// Every row, read as `T`.
    pub async fn fetch_all_as<T: FromRow>(&self, sql: &Sql) -> Result<Vec<T>, DbError> {
        self.fetch(sql)
            .await?
            .into_iter()
            .map(|mut row| T::from_row(&mut row))
            .collect()
    }

    /// Every row of `sql`, sorted by its column `order_by`, read as `T`: for the long series of
    /// the charts. On SQLite the rows come as one packed value (one row from the database
    /// instead of hundreds, each of which sqlx's worker thread would hand over on its own, a
    /// thread wake-up per row); on PostgreSQL as [`Db::fetch_all_as`].
    pub async fn fetch_packed_as<T: PackedRow>(
        &self,
        sql: &Sql,
        order_by: &'static str,
    ) -> Result<Vec<T>, DbError> {
        self.fetch_packed(sql, T::COLUMNS, order_by)
            .await?
            .into_iter()
            .map(|mut row| T::from_row(&mut row))
            .collect()
    }

    /// [`Db::fetch_packed_as`] for a result of `columns` (its names and kinds, in order) read
    /// as rows.
    pub async fn fetch_packed(
        &self,
        sql: &Sql,
        columns: &[(&'static str, ColumnKind)],
        order_by: &'static str,
    ) -> Result<Vec<Row>, DbError> {
        if self.dialect() == Dialect::Postgres {
            return self.fetch(sql).await;
        }
        let Some(mut row) = self.fetch_one(&packed_sql(sql, columns, order_by)).await? else {
            return Ok(Vec::new());
        };
        let packed: String = row.take("packed")?;
        unpack(&packed, columns)
    }

    /// The first row, if any, read as `T`.
    pub async fn fetch_optional_as<T: FromRow>(&self, sql: &Sql) -> Result<Option<T>, DbError> {
        self.fetch_one(sql)
            .await?
            .map(|mut row| T::from_row(&mut row))
            .transpose()
    }

    /// Whether the database answers (and the schema is there).
    pub async fn ping(&self) -> bool {
        self.fetch(&Sql::new("SELECT COUNT(*) AS n FROM pipeline_status"))
            .await
            .is_ok()
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_per_dialect() {
        let mut sql = Sql::new("SELECT * FROM t WHERE a = ");
        sql.bind(1i64).push(" AND b IN ").bind_list(["x", "y"]);
        assert_eq!(
            sql.render(Dialect::Sqlite),
            "SELECT * FROM t WHERE a = ? AND b IN (?, ?)"
        );
        assert_eq!(
            sql.render(Dialect::Postgres),
            "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(sql.params.len(), 3);
    }

    crate::row_struct! {
        #[derive(Debug)]
        struct Named {
            id: String,
            size: Option<i64>,
        }
    }

    #[test]
    fn typed_rows_reject_missing_columns_and_unexpected_nulls() {
        let row = |names: &[&str], values: Vec<Value>| Row {
            names: names.iter().map(|n| n.to_string()).collect(),
            values,
        };
        let mut ok = row(&["id", "size"], vec![Value::Text("a".into()), Value::Null]);
        let named = Named::from_row(&mut ok).map_err(|e| e.to_string());
        assert_eq!(named.map(|n| (n.id, n.size)), Ok(("a".to_owned(), None)));
        // A mistyped column name in the query (`sise`) is an error, not a silent NULL.
        let mut typo = row(
            &["id", "sise"],
            vec![Value::Text("a".into()), Value::Int(1)],
        );
        let err = Named::from_row(&mut typo)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("cannot read column \"size\": no such column in the result".to_owned())
        );
        let mut null = row(&["id", "size"], vec![Value::Null, Value::Int(1)]);
        assert!(Named::from_row(&mut null).is_err());
        let mut wrong = row(
            &["id", "size"],
            vec![Value::Text("a".into()), Value::Text("x".into())],
        );
        assert!(Named::from_row(&mut wrong).is_err());
    }

    crate::row_struct! {
        #[derive(Debug, PartialEq)]
        struct Point {
            day: String,
            samples: i64,
            used_sum: f64,
            avg: Option<f64>,
            note: Option<String>,
            flag: bool,
        }
    }

    /// A SQLite file the read-only pool accepts (it has `pipeline_status`), with `points`.
    async fn sqlite_with_points(dir: &std::path::Path) -> Db {
        use sqlx::Connection;
        let path = dir.join("packed.db");
        let url = format!("sqlite://{}", path.display());
        let mut c = sqlx::SqliteConnection::connect_with(
            &SqliteConnectOptions::from_str(&url)
                .unwrap_or_else(|e| panic!("{e}"))
                .create_if_missing(true),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        for statement in [
            "CREATE TABLE pipeline_status (id INTEGER)",
            "CREATE TABLE points (system_id TEXT, day TEXT, samples BIGINT, used_sum REAL, avg REAL, note TEXT, flag BOOLEAN)",
            // Out of order, a 17-digit REAL, a whole REAL, a REAL stored from an integer, NULLs,
            // text that needs escaping.
            "INSERT INTO points VALUES ('a', '2026-01-03', 1440, 72000000000000017.0, NULL, 'quote \" and \\ and é', 1)",
            "INSERT INTO points VALUES ('a', '2026-01-01', 3, 0.1, 5.0, NULL, 0)",
            "INSERT INTO points VALUES ('a', '2026-01-02', 2, 123456789012345678, 12345.678901234567, '', 1)",
            "INSERT INTO points VALUES ('a', '2026-01-04', 7, 1.0e20, 3.3e-9, 'beyond i64', 0)",
            "INSERT INTO points VALUES ('b', '2026-01-01', 9, 1.5, 2.5, 'other system', 0)",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        let _ = c.close().await;
        Db::open(
            &url,
            &DbOptions {
                max_connections: 1,
                query_timeout: Duration::from_secs(5),
                password: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn packed_rows_read_the_same_values_in_order_as_row_by_row() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = sqlite_with_points(dir.path()).await;
        let query = |system: &str| {
            let mut sql = Sql::new(
                "SELECT day, samples, used_sum, avg, note, flag FROM points WHERE system_id = ",
            );
            sql.bind(system).push(" ORDER BY day");
            sql
        };
        let row_by_row: Vec<Point> = db
            .fetch_all_as(&query("a"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let packed: Vec<Point> = db
            .fetch_packed_as(&query("a"), "day")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(packed, row_by_row);
        let days: Vec<&str> = packed.iter().map(|p| p.day.as_str()).collect();
        assert_eq!(
            days,
            ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
        );
        // Exact doubles, not JSON's 15 digits.
        assert_eq!(packed[0].used_sum.to_bits(), 0.1f64.to_bits());
        assert_eq!(packed[2].used_sum, 72000000000000017.0);
        assert_eq!(packed[1].used_sum, 123456789012345678.0);
        assert_eq!(packed[1].avg, Some(12345.678901234567));
        assert_eq!(packed[3].used_sum, 1.0e20);
        assert_eq!(packed[3].avg, Some(3.3e-9));
        assert_eq!(packed[2].avg, None);
        assert_eq!(packed[0].note, None);
        assert_eq!(packed[2].note.as_deref(), Some("quote \" and \\ and é"));
        assert!(!packed[0].flag && packed[1].flag);
        // No rows: an empty list, not an error.
        let none: Vec<Point> = db
            .fetch_packed_as(&query("nobody"), "day")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_empty());
        db.close().await;
    }

    #[test]
    fn a_packed_value_of_another_shape_is_an_error() {
        let columns = [("day", ColumnKind::Text), ("n", ColumnKind::Int)];
        assert!(unpack("[[\"2026-01-01\", 1]]", &columns).is_ok());
        assert!(unpack("[[\"2026-01-01\"]]", &columns).is_err());
        assert!(unpack("{\"day\": 1}", &columns).is_err());
        assert!(unpack("[[\"2026-01-01\", [1]]]", &columns).is_err());
    }

    #[test]
    fn text_is_moved_out_once_and_never_read_as_empty() {
        let mut row = Row {
            names: ["name"].iter().map(|n| n.to_string()).collect(),
            values: vec![Value::Text("array-1".into())],
        };
        assert_eq!(row.take::<String>("name").ok(), Some("array-1".to_owned()));
        // The second read of the same column sees NULL: an error for a `String`, `None` for an
        // `Option`, never a silent empty name.
        assert!(row.take::<String>("name").is_err());
        assert_eq!(row.take::<Option<String>>("name").ok(), Some(None));
        // A column of another type is left as it was.
        let mut number = Row {
            names: ["n"].iter().map(|n| n.to_string()).collect(),
            values: vec![Value::Int(7)],
        };
        assert!(number.take::<String>("n").is_err());
        assert_eq!(number.take::<i64>("n").ok(), Some(7));
    }
}
