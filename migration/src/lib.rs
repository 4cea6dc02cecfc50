//! Forward-only migrations. Each step runs its backend's SQL file from `sql/<step>/` (or, for
//! seed rows, a little Rust) inside one transaction on either backend.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use sea_orm_migration::prelude::*;

pub use sea_orm_migration::MigratorTrait;

mod seed;

/// The ordered list of steps (02 §2.5). Names never change once released.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(SqlStep {
                name: "m0001_identity_schema",
                postgres: include_str!("../sql/m0001_identity_schema/postgres.up.sql"),
                sqlite: include_str!("../sql/m0001_identity_schema/sqlite.up.sql"),
            }),
            Box::new(seed::IdentitySeed),
            Box::new(SqlStep {
                name: "m0003_workspaces_core",
                postgres: include_str!("../sql/m0003_workspaces_core/postgres.up.sql"),
                sqlite: include_str!("../sql/m0003_workspaces_core/sqlite.up.sql"),
            }),
            Box::new(SqlStep {
                name: "m0004_organization_delete_guard",
                postgres: include_str!("../sql/m0004_organization_delete_guard/postgres.up.sql"),
                sqlite: include_str!("../sql/m0004_organization_delete_guard/sqlite.up.sql"),
            }),
            Box::new(SqlStep {
                name: "m0005_workspaces",
                postgres: include_str!("../sql/m0005_workspaces/postgres.up.sql"),
                sqlite: include_str!("../sql/m0005_workspaces/sqlite.up.sql"),
            }),
            Box::new(SqlStep {
                name: "m0006_provisioner_acquire_index",
                postgres: include_str!("../sql/m0006_provisioner_acquire_index/postgres.up.sql"),
                sqlite: include_str!("../sql/m0006_provisioner_acquire_index/sqlite.up.sql"),
            }),
            Box::new(SqlStep {
                name: "m0007_oauth2_provider",
                postgres: include_str!("../sql/m0007_oauth2_provider/postgres.up.sql"),
                sqlite: include_str!("../sql/m0007_oauth2_provider/sqlite.up.sql"),
            }),
        ]
    }
}

/// The names of every known step, in order.
pub fn step_names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// A fingerprint of every step's name and SQL, so test harnesses can tell when a cached
/// migrated template database is stale (FNV-1a).
pub fn fingerprint() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for name in step_names() {
        eat(name.as_bytes());
    }
    for sql in SQL_FILES {
        eat(sql.as_bytes());
    }
    eat(include_bytes!("seed.rs"));
    h
}

const SQL_FILES: &[&str] = &[
    include_str!("../sql/m0001_identity_schema/postgres.up.sql"),
    include_str!("../sql/m0001_identity_schema/sqlite.up.sql"),
    include_str!("../sql/m0003_workspaces_core/postgres.up.sql"),
    include_str!("../sql/m0003_workspaces_core/sqlite.up.sql"),
    include_str!("../sql/m0004_organization_delete_guard/postgres.up.sql"),
    include_str!("../sql/m0004_organization_delete_guard/sqlite.up.sql"),
    include_str!("../sql/m0005_workspaces/postgres.up.sql"),
    include_str!("../sql/m0005_workspaces/sqlite.up.sql"),
    include_str!("../sql/m0006_provisioner_acquire_index/postgres.up.sql"),
    include_str!("../sql/m0006_provisioner_acquire_index/sqlite.up.sql"),
    include_str!("../sql/m0007_oauth2_provider/postgres.up.sql"),
    include_str!("../sql/m0007_oauth2_provider/sqlite.up.sql"),
];

/// A step that is one SQL script per backend.
struct SqlStep {
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

impl MigrationName for SqlStep {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlStep {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => self.postgres,
            DbBackend::Sqlite => self.sqlite,
            other => return Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Builds a statement whose `$n` parameters work on both backends.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}
