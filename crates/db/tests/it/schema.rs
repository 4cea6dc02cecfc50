//! The schema-parity snapshot and SQLite compatibility checks.

use hangar_testkit::{TestDb, db_tests};

db_tests! {
    /// The live schema matches `migration/snapshots/<backend>.schema`; regenerate with
    /// `cargo xtask codegen`.
    async fn schema_matches_snapshot(db: TestDb) {
        let live = hangar_db::schema::describe(&db).await.unwrap();
        let file = match db.backend() {
            hangar_db::Backend::Sqlite => "sqlite.schema",
            hangar_db::Backend::Postgres => "postgres.schema",
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migration/snapshots").join(file);
        if std::env::var("HANGAR_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
            std::fs::write(&path, &live).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(committed, live, "schema snapshot {file} is stale: run `cargo xtask codegen`");
    }

    /// Both backends have the same tables, columns, indexes and triggers by name.
    async fn schema_parity(db: TestDb) {
        let live = hangar_db::schema::describe(&db).await.unwrap();
        let other = match db.backend() {
            hangar_db::Backend::Sqlite => "postgres.schema",
            hangar_db::Backend::Postgres => "sqlite.schema",
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migration/snapshots").join(other);
        let other = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(hangar_db::schema::names(&live), hangar_db::schema::names(&other));
    }
}

/// The SQLite file opens in Python's `sqlite3` (the SQLite people already have).
#[tokio::test]
async fn sqlite_file_is_readable_by_python() {
    let db = TestDb::sqlite().await;
    let path = db.sqlite_path().unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(sqlite3.sqlite_version); print(','.join(r[0] for r in c.execute(\"select name from sqlite_master where type='table' order by name\")))")
        .arg(&path)
        .output()
        .expect("python3 is required for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("users") && text.contains("organizations") && text.contains("api_keys"),
        "{text}"
    );
}

/// Two servers migrating one empty PostgreSQL database at once: advisory lock 1 makes one
/// apply every step and the other find nothing to do.
#[tokio::test]
async fn concurrent_migrations_on_postgres() {
    let Ok(admin) = std::env::var("HANGAR_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("HANGAR_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "HANGAR_TEST_POSTGRES_URL is required"
        );
        println!(
            "skipping postgres test concurrent_migrations_on_postgres: HANGAR_TEST_POSTGRES_URL not set"
        );
        return;
    };
    let name = format!("hangar_t_{}", uuid::Uuid::new_v4().simple());
    let admin_db = hangar_db::Db::connect(&hangar_db::ConnectOptions::new(admin.clone()))
        .await
        .unwrap();
    admin_db
        .execute(&format!("CREATE DATABASE {name}"), vec![])
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    let a = hangar_db::Db::connect(&hangar_db::ConnectOptions::new(url.to_string()))
        .await
        .unwrap();
    let b = hangar_db::Db::connect(&hangar_db::ConnectOptions::new(url.to_string()))
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (na, nb) = (ra.unwrap(), rb.unwrap());
    let total = hangar_migration::step_names().len();
    assert_eq!(na + nb, total, "{na} + {nb}");
    assert!(a.migration_status().await.unwrap().pending.is_empty());
    a.close().await;
    b.close().await;
    admin_db
        .execute(&format!("DROP DATABASE {name} WITH (FORCE)"), vec![])
        .await
        .unwrap();
}
