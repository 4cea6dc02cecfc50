//! A freshly migrated database per test.

use hangar_core::locks;
use hangar_db::{Backend, ConnectOptions, Db};
use sea_orm::{
    ConnectOptions as SeaOptions, ConnectionTrait, Database, DatabaseConnection, Statement,
};
use std::path::PathBuf;
use uuid::Uuid;

/// One test's database. Dropping it removes the SQLite file or drops the PostgreSQL
/// database.
pub struct TestDb {
    pub db: Db,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Database { admin_url: String, name: String },
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl TestDb {
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// A migrated SQLite file in a fresh temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("hangar-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let db = Db::connect(&ConnectOptions::sqlite_file(&dir.join("hangar.db")))
            .await
            .expect("open sqlite");
        db.migrate().await.expect("migrate sqlite");
        TestDb {
            db,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// The SQLite file's path (for tests that open it with other tools).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.cleanup {
            Cleanup::Dir(d) => Some(d.join("hangar.db")),
            Cleanup::Database { .. } => None,
        }
    }

    /// The URL of this test's PostgreSQL database.
    pub fn postgres_url(&self) -> Option<String> {
        match &self.cleanup {
            Cleanup::Database { admin_url, name } => Some(replace_db_name(admin_url, name)),
            Cleanup::Dir(_) => None,
        }
    }

    /// A database cloned from a migrated template, or `None` (skip) without a URL.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("HANGAR_TEST_POSTGRES_URL") else {
            if std::env::var("HANGAR_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "HANGAR_REQUIRE_POSTGRES=1 but HANGAR_TEST_POSTGRES_URL is not set (test {test})"
                );
            }
            println!("skipping postgres test {test}: HANGAR_TEST_POSTGRES_URL not set");
            return None;
        };
        let name = format!("hangar_t_{}", Uuid::new_v4().simple());
        let admin = admin_connection(&admin_url).await;
        let template = ensure_template(&admin, &admin_url).await;
        exec(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .await;
        exec(
            &admin,
            &format!(
                "SELECT pg_advisory_unlock({})",
                locks::TEST_TEMPLATE_DATABASE
            ),
        )
        .await;
        let _ = admin.close().await;
        let mut opts = ConnectOptions::new(replace_db_name(&admin_url, &name));
        opts.max_connections = 5;
        let db = Db::connect(&opts).await.expect("connect test database");
        Some(TestDb {
            db,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("HANGAR_TEST_POSTGRES_URL must be a URL");
    u.set_path(&format!("/{name}"));
    u.to_string()
}

async fn admin_connection(url: &str) -> DatabaseConnection {
    let mut o = SeaOptions::new(url.to_string());
    // One connection, so the session advisory lock and the statements share it.
    o.max_connections(1).min_connections(1).sqlx_logging(false);
    Database::connect(o)
        .await
        .expect("connect to HANGAR_TEST_POSTGRES_URL")
}

async fn exec(c: &DatabaseConnection, sql: &str) {
    c.execute_raw(Statement::from_string(
        c.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Creates the migrated template for this schema once, under advisory lock 3; returns with
/// the lock held so the clone cannot race a concurrent template build.
async fn ensure_template(admin: &DatabaseConnection, admin_url: &str) -> String {
    let template = format!("hangar_tmpl_{:016x}", hangar_migration::fingerprint());
    exec(
        admin,
        &format!("SELECT pg_advisory_lock({})", locks::TEST_TEMPLATE_DATABASE),
    )
    .await;
    let exists = admin
        .query_one_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT 1 AS x FROM pg_database WHERE datname = '{template}'"),
        ))
        .await
        .expect("query pg_database")
        .is_some();
    if !exists {
        let building = format!("{template}_build");
        exec(admin, &format!("DROP DATABASE IF EXISTS {building}")).await;
        exec(admin, &format!("CREATE DATABASE {building}")).await;
        let db = Db::connect(&ConnectOptions::new(replace_db_name(admin_url, &building)))
            .await
            .expect("connect template");
        db.migrate().await.expect("migrate template");
        db.close().await;
        // Renaming last makes a half-built template impossible to pick up.
        exec(
            admin,
            &format!("ALTER DATABASE {building} RENAME TO {template}"),
        )
        .await;
    }
    template
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let (url, name) = (admin_url.clone(), name.clone());
                // Drop runs outside async; use a private runtime on its own thread.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        let admin = admin_connection(&url).await;
                        let _ = admin
                            .execute_raw(Statement::from_string(
                                admin.get_database_backend(),
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                            ))
                            .await;
                        let _ = admin.close().await;
                    });
                })
                .join();
            }
        }
    }
}
