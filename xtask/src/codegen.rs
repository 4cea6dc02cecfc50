//! `cargo xtask codegen [--check]`: the schema snapshots in `migration/snapshots/`.
//!
//! Each snapshot is `hangar_db::schema::describe` of a database migrated from nothing, so it
//! shows what the migrations build, not what some developer database drifted to. The
//! `schema_matches_snapshot` test in `crates/db` compares the same text.

use crate::{ScratchDir, check_status, sync_file};
use anyhow::Context;
use hangar_db::{ConnectOptions, Db};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const COMMAND: &str = "cargo xtask codegen";

pub async fn run(root: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let snapshots = root.join("migration/snapshots");
    let sqlite = describe_sqlite().await.context("describe SQLite schema")?;
    let mut fresh = sync_file(
        root,
        &snapshots.join("sqlite.schema"),
        &sqlite,
        check,
        COMMAND,
    )?;
    match std::env::var("HANGAR_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let postgres = describe_postgres(&url)
                .await
                .context("describe PostgreSQL schema")?;
            fresh &= sync_file(
                root,
                &snapshots.join("postgres.schema"),
                &postgres,
                check,
                COMMAND,
            )?;
        }
        _ => println!(
            "note: HANGAR_TEST_POSTGRES_URL is not set; skipped migration/snapshots/postgres.schema"
        ),
    }
    Ok(check_status(fresh, check))
}

async fn describe_sqlite() -> anyhow::Result<String> {
    let dir = ScratchDir(
        std::env::temp_dir().join(format!("hangar-codegen-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).with_context(|| format!("create {}", dir.0.display()))?;
    let db = Db::connect(&ConnectOptions::sqlite_file(&dir.0.join("hangar.db"))).await?;
    let described = migrate_and_describe(&db).await;
    db.close().await;
    described
}

/// Migrates a scratch database `hangar_codegen_<random>` next to the one the URL names,
/// and drops it afterwards even when migrating failed.
async fn describe_postgres(admin_url: &str) -> anyhow::Result<String> {
    let mut admin_opts = ConnectOptions::new(admin_url);
    admin_opts.max_connections = 2;
    admin_opts.retry_for = Duration::from_secs(5);
    let admin = Db::connect(&admin_opts)
        .await
        .context("connect to HANGAR_TEST_POSTGRES_URL")?;
    let name = format!("hangar_codegen_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(&format!("CREATE DATABASE {name}"), vec![])
        .await
        .with_context(|| format!("create database {name}"))?;
    let described = async {
        let mut url =
            url::Url::parse(admin_url).context("HANGAR_TEST_POSTGRES_URL is not a URL")?;
        url.set_path(&format!("/{name}"));
        let mut opts = ConnectOptions::new(url.as_str());
        opts.max_connections = 2;
        let db = Db::connect(&opts).await?;
        let described = migrate_and_describe(&db).await;
        db.close().await;
        described
    }
    .await;
    let dropped = admin
        .execute(
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            vec![],
        )
        .await;
    admin.close().await;
    let described = described?;
    dropped.with_context(|| format!("drop scratch database {name}"))?;
    Ok(described)
}

async fn migrate_and_describe(db: &Db) -> anyhow::Result<String> {
    db.migrate().await?;
    Ok(hangar_db::schema::describe(db).await?)
}
