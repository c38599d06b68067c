//! The read-only query layer. One pool per backend behind [`Db`], SQL written once with `?`
//! placeholders ([`Sql`]) and rendered per backend, every value bound (never spliced into SQL),
//! and rows decoded into a backend-neutral [`Row`] so mapping code is written once.

use std::str::FromStr;
use std::time::Duration;

use sdash_service::Secret;
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

/// One result row, backend-neutral.
#[derive(Debug, Clone, Default)]
pub struct Row {
    names: Vec<String>,
    values: Vec<Value>,
}

impl Row {
    fn get(&self, name: &str) -> &Value {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&Value::Null)
    }

    pub fn i64(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Value::Int(v) => Some(*v),
            Value::Float(v) => Some(*v as i64),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn f64(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Text(t) => t.parse().ok(),
            _ => None,
        }
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.str(name).map(str::to_owned)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Value::Bool(b) => Some(*b),
            Value::Int(v) => Some(*v != 0),
            _ => None,
        }
    }

    fn from_sqlite(row: &SqliteRow) -> Result<Row, sqlx::Error> {
        let mut out = Row::default();
        for (i, col) in row.columns().iter().enumerate() {
            out.names.push(col.name().to_owned());
            let raw = row.try_get_raw(i)?;
            let value = if raw.is_null() {
                Value::Null
            } else {
                let kind = raw.type_info().name().to_owned();
                match kind.as_str() {
                    "INTEGER" | "BOOLEAN" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
                    "REAL" | "NUMERIC" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
                    "TEXT" => Value::Text(row.try_get_unchecked::<String, _>(i)?),
                    _ => Value::Null,
                }
            };
            out.values.push(value);
        }
        Ok(out)
    }

    fn from_pg(row: &PgRow) -> Result<Row, sqlx::Error> {
        let mut out = Row::default();
        for (i, col) in row.columns().iter().enumerate() {
            out.names.push(col.name().to_owned());
            let raw = row.try_get_raw(i)?;
            let value = if raw.is_null() {
                Value::Null
            } else {
                let kind = raw.type_info().name().to_owned();
                match kind.as_str() {
                    "INT2" => Value::Int(i64::from(row.try_get_unchecked::<i16, _>(i)?)),
                    "INT4" => Value::Int(i64::from(row.try_get_unchecked::<i32, _>(i)?)),
                    "INT8" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
                    "FLOAT4" => Value::Float(f64::from(row.try_get_unchecked::<f32, _>(i)?)),
                    "FLOAT8" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
                    "BOOL" => Value::Bool(row.try_get_unchecked::<bool, _>(i)?),
                    "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                        Value::Text(row.try_get_unchecked::<String, _>(i)?)
                    }
                    _ => Value::Null,
                }
            };
            out.values.push(value);
        }
        Ok(out)
    }
}

/// Settings of the read-only pool.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub query_timeout: Duration,
    /// PostgreSQL password, overriding one in the URL (or a pgpass file); unused for SQLite.
    pub password: Option<Secret>,
}

/// Whether `url` names a PostgreSQL database (`postgres:` or `postgresql:`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
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
        let max = options.max_connections.clamp(1, 4);
        let timeout = options.query_timeout;
        let pool = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .read_only(true)
                .create_if_missing(false)
                .busy_timeout(timeout.min(Duration::from_secs(5)));
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
        } else if is_postgres_url(url) {
            let statement_timeout_ms = timeout.as_millis().max(1);
            let connect = pg_connect_options(url, options.password.as_ref())?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max)
                    .min_connections(0)
                    .acquire_timeout(timeout)
                    .idle_timeout(Duration::from_secs(300))
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                                .await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "SET statement_timeout = {statement_timeout_ms}"
                            )))
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(connect),
            )
        } else {
            return Err(DbError::Url(url.to_owned()));
        };
        Ok(Db { pool, timeout })
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a query and returns every row, within the query timeout.
    pub async fn fetch(&self, sql: &Sql) -> Result<Vec<Row>, DbError> {
        let text = sql.render(self.dialect());
        let work = async {
            match &self.pool {
                Pool::Sqlite(pool) => {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
                    for p in &sql.params {
                        q = match p {
                            Param::Int(v) => q.bind(*v),
                            Param::Float(v) => q.bind(*v),
                            Param::Text(v) => q.bind(v.clone()),
                        };
                    }
                    let mut conn = pool.acquire().await?;
                    // Interrupt the statement inside SQLite at the deadline, so that a timed-out
                    // query does not keep its connection busy after the request gave up on it.
                    let deadline = std::time::Instant::now() + self.timeout;
                    conn.lock_handle()
                        .await?
                        .set_progress_handler(10_000, move || std::time::Instant::now() < deadline);
                    let rows = q.fetch_all(&mut *conn).await?;
                    rows.iter()
                        .map(Row::from_sqlite)
                        .collect::<Result<Vec<_>, _>>()
                }
                Pool::Postgres(pool) => {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
                    for p in &sql.params {
                        q = match p {
                            Param::Int(v) => q.bind(*v),
                            Param::Float(v) => q.bind(*v),
                            Param::Text(v) => q.bind(v.clone()),
                        };
                    }
                    let rows = q.fetch_all(pool).await?;
                    rows.iter().map(Row::from_pg).collect::<Result<Vec<_>, _>>()
                }
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(DbError::Timeout),
        }
    }

    /// The first row, if any.
    pub async fn fetch_one(&self, sql: &Sql) -> Result<Option<Row>, DbError> {
        Ok(self.fetch(sql).await?.into_iter().next())
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
}
