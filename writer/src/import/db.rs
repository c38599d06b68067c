//! Read-only access to a database that is SQLite or PostgreSQL (the predecessor's, and sdash's
//! own), with every value read through an explicit cast so that both backends (and SQLite's
//! loose typing) give the same Rust values.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sdash_service::Secret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};

/// The type a selected column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Int,
    Float,
    Text,
}

/// One value read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Cell {
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
    pub fn float(&self) -> Option<f64> {
        match self {
            Cell::Float(v) => Some(*v),
            _ => None,
        }
    }
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(v) => Some(v),
            _ => None,
        }
    }
    /// A text, trimmed, `None` when NULL or blank.
    pub fn nonblank(&self) -> Option<String> {
        self.text()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    }
    /// A boolean stored as an integer (SQLite) or a boolean (PostgreSQL, cast to an integer).
    pub fn flag(&self) -> Option<bool> {
        self.int().map(|v| v != 0)
    }
}

/// A read-only connection pool on SQLite or PostgreSQL.
pub enum ReadDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl ReadDb {
    /// Opens a SQLite file read-only (it must exist; it is never created or changed).
    pub async fn sqlite_file(path: &std::path::Path) -> anyhow::Result<ReadDb> {
        if !path.is_file() {
            anyhow::bail!("{} does not exist or is not a file", path.display());
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open {} read-only", path.display()))?;
        Ok(ReadDb::Sqlite(pool))
    }

    /// Opens a database URL (`sqlite://…` or `postgres://…`) read-only: SQLite files must exist;
    /// PostgreSQL sessions are `default_transaction_read_only`.
    pub async fn open(url: &str, password: Option<&Secret>) -> anyhow::Result<ReadDb> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            return ReadDb::sqlite_file(std::path::Path::new(path)).await;
        }
        if !sdash_service::is_postgres_url(url) {
            anyhow::bail!("unsupported database URL (expected sqlite://PATH or postgres://…)");
        }
        let mut options = PgConnectOptions::from_str(url)
            .context("invalid PostgreSQL URL")?
            .application_name("sdash-import")
            .options([("default_transaction_read_only", "on")]);
        if let Some(p) = password {
            options = options.password(p.expose());
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .context("cannot connect to PostgreSQL")?;
        Ok(ReadDb::Postgres(pool))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, ReadDb::Postgres(_))
    }

    /// The columns of `table` (lower case); empty when the table does not exist.
    pub async fn columns(&self, table: &str) -> anyhow::Result<HashSet<String>> {
        let names: Vec<String> = match self {
            ReadDb::Sqlite(pool) => sqlx::query("SELECT name FROM pragma_table_info(?)")
                .bind(table)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?,
            ReadDb::Postgres(pool) => sqlx::query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?,
        };
        Ok(names.into_iter().map(|n| n.to_lowercase()).collect())
    }

    /// The cast of column `col` to `ty` in this backend's SQL. PostgreSQL values are read as
    /// text (a double's text is its shortest exact form there; booleans are `true`/`false`)
    /// and parsed; SQLite values are cast to the type itself (its text of a REAL has only 15
    /// digits).
    pub fn cast(&self, col: &str, ty: Ty) -> String {
        let t = match (self.is_postgres(), ty) {
            (true, _) | (false, Ty::Text) => "TEXT",
            (false, Ty::Int) => "INTEGER",
            (false, Ty::Float) => "REAL",
        };
        format!("CAST({col} AS {t})")
    }

    /// `SELECT` of the given columns of `table` (a column the table lacks reads as NULL),
    /// `rest` appended (`ORDER BY …`). Rows in order.
    pub async fn select(
        &self,
        table: &str,
        cols: &[(&str, Ty)],
        rest: &str,
    ) -> anyhow::Result<Vec<Vec<Cell>>> {
        let have = self.columns(table).await?;
        let list: Vec<String> = cols
            .iter()
            .map(|(c, ty)| {
                if have.contains(&c.to_lowercase()) {
                    self.cast(&quote(c), *ty)
                } else {
                    "NULL".to_owned()
                }
            })
            .collect();
        let sql = format!("SELECT {} FROM {} {rest}", list.join(", "), quote(table));
        self.query(&sql, &cols.iter().map(|c| c.1).collect::<Vec<_>>())
            .await
            .with_context(|| format!("cannot read table {table}"))
    }

    /// Runs `sql` (no parameters) and reads its columns as `types` (PostgreSQL: every column
    /// selected as text, see [`ReadDb::cast`]).
    pub async fn query(&self, sql: &str, types: &[Ty]) -> anyhow::Result<Vec<Vec<Cell>>> {
        let sql = AssertSqlSafe(sql.to_owned());
        Ok(match self {
            ReadDb::Sqlite(pool) => {
                let rows = sqlx::query(sql).fetch_all(pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut cells = Vec::with_capacity(types.len());
                    for (i, ty) in types.iter().enumerate() {
                        cells.push(match ty {
                            Ty::Int => r
                                .try_get::<Option<i64>, _>(i)?
                                .map_or(Cell::Null, Cell::Int),
                            Ty::Float => r
                                .try_get::<Option<f64>, _>(i)?
                                .map_or(Cell::Null, Cell::Float),
                            Ty::Text => r
                                .try_get::<Option<String>, _>(i)?
                                .map_or(Cell::Null, Cell::Text),
                        });
                    }
                    out.push(cells);
                }
                out
            }
            ReadDb::Postgres(pool) => {
                let rows = sqlx::query(sql).fetch_all(pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut cells = Vec::with_capacity(types.len());
                    for (i, ty) in types.iter().enumerate() {
                        let text: Option<String> = r.try_get(i)?;
                        cells.push(match text {
                            None => Cell::Null,
                            Some(t) => parse_text(t, *ty),
                        });
                    }
                    out.push(cells);
                }
                out
            }
        })
    }

    pub async fn close(&self) {
        match self {
            ReadDb::Sqlite(p) => p.close().await,
            ReadDb::Postgres(p) => p.close().await,
        }
    }
}

/// A value PostgreSQL gave as text, as `ty` (unparseable numbers read as NULL).
fn parse_text(t: String, ty: Ty) -> Cell {
    match ty {
        Ty::Text => Cell::Text(t),
        Ty::Int => match t.as_str() {
            "true" | "t" => Cell::Int(1),
            "false" | "f" => Cell::Int(0),
            s => s
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f as i64)
                })
                .map_or(Cell::Null, Cell::Int),
        },
        Ty::Float => t.parse::<f64>().map_or(Cell::Null, Cell::Float),
    }
}

/// A quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
