use sea_orm::{ConnectionTrait, Database};

/// A database that belongs to one test: a SQLite file in a temp dir, or a fresh PostgreSQL database
/// on the server named by `SCIFER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
/// dropped again when the test ends.
pub struct TestDb {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// Which backend a test (or the end-to-end suite) runs on: `SCIFER_TEST_DB=postgres` selects
/// PostgreSQL, anything else SQLite.
pub fn postgres_selected() -> bool {
    std::env::var("SCIFER_TEST_DB").is_ok_and(|v| v == "postgres")
}

impl TestDb {
    /// The backend chosen by `SCIFER_TEST_DB`.
    pub async fn new() -> Self {
        if postgres_selected() {
            Self::postgres().await
        } else {
            Self::sqlite()
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/store.sqlite", dir.path().display());
        Self {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = std::env::var("SCIFER_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("scifer_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .expect("connect to the test PostgreSQL server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
        Self {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime guarantee; a private thread with its own runtime does the
            // cleanup. WITH (FORCE) ends connections a killed service left behind.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let admin = Database::connect(&admin_url).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}
