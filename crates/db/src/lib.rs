//! Opens a service's own store. `sqlite://path` (the default, one file per service) or
//! `postgres://...` (production). SQLite runs in WAL mode with `synchronous=FULL`: consumers acknowledge
//! bus messages only after their commit, so a commit must survive a power cut, and batching (not a
//! weaker sync mode) is what keeps it fast.

use std::{str::FromStr, time::Duration};

use sea_orm::{
    DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        postgres::PgPoolOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    },
};
use sea_orm_migration::MigratorTrait;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedScheme,
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("cannot migrate the database: {0}")]
    Migrate(String),
}

/// Opens the database at `url` (creating a SQLite file if missing) and applies `M`'s migrations.
pub async fn open<M: MigratorTrait>(url: &str) -> Result<DatabaseConnection, DbError> {
    let db = connect(url).await?;
    M::up(&db, None)
        .await
        .map_err(|e| DbError::Migrate(e.to_string()))?;
    Ok(db)
}

/// Opens the database at `url` without migrating.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbError> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::Open(redact(url, &e.to_string())))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| DbError::Open(redact(url, &e.to_string())))?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| DbError::Open(redact(url, &e.to_string())))?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    } else {
        Err(DbError::UnsupportedScheme)
    }
}

/// Driver errors can quote the URL, which may hold a password: never let it through.
fn redact(url: &str, message: &str) -> String {
    message.replace(url, "<database url>")
}

/// Drops `tables` if they exist, in the order given (children before parents): the body of a
/// migration's `down`.
pub async fn drop_tables(
    manager: &sea_orm_migration::SchemaManager<'_>,
    tables: impl IntoIterator<Item = sea_orm::sea_query::DynIden>,
) -> Result<(), sea_orm::DbErr> {
    for table in tables {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table(table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Begins a transaction that is going to write. On SQLite a deferred transaction that reads first
/// and writes later fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT) when another
/// connection committed in between, and the busy timeout cannot help; a no-op write as the first
/// statement takes the write lock up front, so concurrent writers wait for each other instead.
/// PostgreSQL needs nothing.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let txn = db.begin().await?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        // Every store has the migrations table; `WHERE 0` deletes nothing but still locks.
        txn.execute_unprepared("DELETE FROM seaql_migrations WHERE 0")
            .await?;
    }
    Ok(txn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    #[tokio::test]
    async fn a_write_transaction_holds_the_sqlite_write_lock_from_its_start() {
        use sea_orm::TransactionTrait;
        let dir = tempfile_dir("lock");
        let url = format!("sqlite://{}/t.sqlite", dir.display());
        let db = connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE seaql_migrations (version TEXT)")
            .await
            .unwrap();
        db.execute_unprepared("CREATE TABLE t (v INTEGER)").await.unwrap();
        db.execute_unprepared("INSERT INTO t VALUES (1)").await.unwrap();
        // A deferred transaction that read before another connection's commit cannot write.
        let deferred = db.begin().await.unwrap();
        deferred.execute_unprepared("SELECT v FROM t").await.unwrap();
        db.execute_unprepared("INSERT INTO t VALUES (2)").await.unwrap();
        let failed = deferred.execute_unprepared("INSERT INTO t VALUES (3)").await;
        assert!(
            failed.is_err(),
            "the deferred read-then-write should fail on SQLite"
        );
        deferred.rollback().await.ok();
        // begin_write takes the lock first: its read-then-write succeeds, the other writer waits.
        let txn = begin_write(&db).await.unwrap();
        txn.execute_unprepared("SELECT v FROM t").await.unwrap();
        let other = {
            let db = db.clone();
            tokio::spawn(async move { db.execute_unprepared("INSERT INTO t VALUES (4)").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        txn.execute_unprepared("INSERT INTO t VALUES (5)").await.unwrap();
        txn.commit().await.unwrap();
        other.await.unwrap().unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("scifer-db-{name}-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn uuid_like() -> String {
        format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
            .replace([' ', ':', '{', '}', ',', '.'], "")
    }

    #[tokio::test]
    async fn sqlite_files_open_in_wal_mode_with_full_sync() {
        let dir = std::env::temp_dir().join(format!("scifer-db-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/t.sqlite", dir.display());
        let db = connect(&url).await.unwrap();
        let mode = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "PRAGMA journal_mode",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
        let sync = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "PRAGMA synchronous",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sync.try_get_by_index::<i32>(0).unwrap(), 2, "2 = FULL");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        assert!(matches!(
            connect("mysql://x").await,
            Err(DbError::UnsupportedScheme)
        ));
    }
}
