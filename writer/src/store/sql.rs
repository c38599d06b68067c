//! Running a statement whose text is the same on both backends (retention, dead letters,
//! `pipeline_status`, migration bookkeeping). Such statements are written once with `$1 … $N`
//! placeholders, which sqlx accepts for SQLite too, and run through [`Sql`], which is
//! implemented once for every sqlx database that has what these statements need. Statements are
//! passed as [`SqlStr`] (`"…".into_sql_str()`): a borrowed `&str` would not do in the futures of
//! generic code, which must be `Send` for any lifetime.

use std::future::Future;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, SqlStr, Type};

/// A value bound to a backend-neutral statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bind<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// How many rows a statement changed (sqlx has no trait for it).
pub(crate) trait RowsAffected {
    fn rows(&self) -> u64;
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// The operations backend-neutral code runs on a connection.
pub(crate) trait Sql: Database {
    /// Runs `sql` with `binds`; the number of rows it changed.
    fn execute(
        c: &mut Self::Connection,
        sql: SqlStr,
        binds: &[Bind<'_>],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// Runs `sql` with `binds`; its result rows.
    fn fetch_all(
        c: &mut Self::Connection,
        sql: SqlStr,
        binds: &[Bind<'_>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    fn int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error>;
    fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error>;
    fn bytes(row: &Self::Row, column: usize) -> Result<Vec<u8>, sqlx::Error>;
}

fn bound<'q, DB>(sql: SqlStr, binds: &[Bind<'q>]) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'e> i64: Encode<'e, DB> + Type<DB>,
    for<'e, 'v> &'v str: Encode<'e, DB> + Type<DB>,
    for<'e, 'v> &'v [u8]: Encode<'e, DB> + Type<DB>,
{
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = match *bind {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
            Bind::Bytes(v) => query.bind(v),
        };
    }
    query
}

impl<DB> Sql for DB
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'e> i64: Encode<'e, DB> + Decode<'e, DB> + Type<DB>,
    for<'e, 'v> &'v str: Encode<'e, DB> + Type<DB>,
    for<'e, 'v> &'v [u8]: Encode<'e, DB> + Type<DB>,
    for<'e> String: Decode<'e, DB> + Type<DB>,
    for<'e> Vec<u8>: Decode<'e, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn execute(
        c: &mut Self::Connection,
        sql: SqlStr,
        binds: &[Bind<'_>],
    ) -> Result<u64, sqlx::Error> {
        Ok(bound::<DB>(sql, binds).execute(c).await?.rows())
    }

    async fn fetch_all(
        c: &mut Self::Connection,
        sql: SqlStr,
        binds: &[Bind<'_>],
    ) -> Result<Vec<Self::Row>, sqlx::Error> {
        bound::<DB>(sql, binds).fetch_all(c).await
    }

    fn int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error> {
        row.try_get(column)
    }

    fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error> {
        row.try_get(column)
    }

    fn bytes(row: &Self::Row, column: usize) -> Result<Vec<u8>, sqlx::Error> {
        row.try_get(column)
    }
}
