//! Schema migrations, for either backend: the files of `migrations/postgres` or
//! `migrations/sqlite`, embedded with `sqlx::migrate!` and applied by sqlx's migrator, which
//! records them in `schema_migrations` (sqlx's layout: version, description, checksum, …).
//!
//! Writers before the sqlx migrator kept `schema_migrations (version, name, applied_at)`, with
//! the same migrations. Such a table is converted once, in one transaction, to sqlx's layout
//! with the checksums of the embedded files, so that an existing database does not run its
//! migrations again.

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Pool, SqlSafeStr};

use super::StoreError;
use super::dialect::{Conn, Dialect};
use super::sql::{Bind, Sql};

/// The bookkeeping table (the name the first writers gave it).
pub(crate) const TABLE: &str = "schema_migrations";

/// A migrator for `migrations/<backend>` that records in [`TABLE`].
pub(crate) fn migrator(mut migrator: Migrator) -> Migrator {
    migrator.dangerous_set_table_name(TABLE);
    migrator
}

/// Brings the schema up to date.
pub(crate) async fn run<D: Dialect>(pool: &Pool<D::Db>) -> Result<(), StoreError> {
    let migrator = D::migrator();
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    convert_old_bookkeeping::<D>(pool, &migrator, known).await?;
    migrator.run(pool).await.map_err(|e| match e {
        MigrateError::VersionMissing(found) if found > known => {
            StoreError::SchemaTooNew { found, known }
        }
        e => StoreError::Migrate(e),
    })?;
    D::after_migrations(pool).await?;
    Ok(())
}

async fn convert_old_bookkeeping<D: Dialect>(
    pool: &Pool<D::Db>,
    migrator: &Migrator,
    known: i64,
) -> Result<(), StoreError> {
    let mut tx = D::begin_exclusive(pool).await?;
    let c: &mut Conn<D> = &mut tx;
    if D::Db::fetch_all(c, D::OLD_BOOKKEEPING.into_sql_str(), &[])
        .await?
        .is_empty()
    {
        return Ok(());
    }
    let applied = D::Db::fetch_all(
        c,
        "SELECT version FROM schema_migrations".into_sql_str(),
        &[],
    )
    .await?
    .iter()
    .map(|r| D::Db::int(r, 0))
    .collect::<Result<Vec<_>, _>>()?;
    if let Some(&found) = applied.iter().max()
        && found > known
    {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    D::Db::execute(c, "DROP TABLE schema_migrations".into_sql_str(), &[]).await?;
    c.ensure_migrations_table(TABLE).await?;
    for m in migrator.iter().filter(|m| applied.contains(&m.version)) {
        D::Db::execute(
            c,
            "INSERT INTO schema_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)"
                .into_sql_str(),
            &[
                Bind::Int(m.version),
                Bind::Text(&m.description),
                Bind::Bytes(&m.checksum),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        migrations = applied.len(),
        "converted schema_migrations to the sqlx migrator's layout"
    );
    Ok(())
}
