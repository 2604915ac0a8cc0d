//! The vault's own store: entities and migrations. Queries live with the flows that use them,
//! always filtered by workspace.

pub mod entity;
pub mod migration;

pub use migration::Migrator;

/// Opens the database at `url` and brings its schema up to date.
pub async fn open(url: &str) -> Result<sea_orm::DatabaseConnection, scifer_db::DbError> {
    scifer_db::open::<Migrator>(url).await
}
