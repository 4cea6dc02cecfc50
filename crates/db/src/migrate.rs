//! Applying migrations: on PostgreSQL under advisory lock 1 so servers starting together
//! are safe; unknown applied steps (a newer schema) refuse to start.

use crate::{Backend, Db, map_db_err};
use hangar_core::{StoreError, locks};
use hangar_migration::{Migrator, MigratorTrait, step_names};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database schema is newer than this binary (unknown migration {0})")]
    Unknown(String),
    #[error("migration failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which steps are applied and which are pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

impl Db {
    async fn applied_steps<C: crate::sql::Target>(&self, c: &C) -> Result<Vec<String>, StoreError> {
        let exists_sql = self.ctx.pick(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'seaql_migrations'",
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
        );
        let exists = self
            .ctx
            .one(c, exists_sql, vec![])
            .await?
            .map(|r| r.i64("n"))
            .transpose()?
            .unwrap_or(0)
            > 0;
        if !exists {
            return Ok(vec![]);
        }
        let rows = self
            .ctx
            .all(
                c,
                "SELECT version FROM seaql_migrations ORDER BY version",
                vec![],
            )
            .await?;
        rows.iter().map(|r| r.string("version")).collect()
    }

    fn check_known(applied: &[String]) -> Result<Vec<String>, MigrateError> {
        let known = step_names();
        if let Some(unknown) = applied.iter().find(|a| !known.contains(a)) {
            return Err(MigrateError::Unknown(unknown.clone()));
        }
        Ok(known.into_iter().filter(|k| !applied.contains(k)).collect())
    }

    pub async fn migration_status(&self) -> Result<MigrationStatus, MigrateError> {
        let applied = self.applied_steps(&self.conn).await?;
        let pending = Self::check_known(&applied)?;
        Ok(MigrationStatus { applied, pending })
    }

    /// Applies every pending step; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, MigrateError> {
        match self.backend() {
            Backend::Postgres => {
                let tx = self.conn.begin().await.map_err(map_db_err)?;
                tx.execute_raw(Statement::from_string(
                    self.ctx.backend,
                    format!("SELECT pg_advisory_xact_lock({})", locks::MIGRATIONS),
                ))
                .await
                .map_err(map_db_err)?;
                let applied = self.applied_steps(&tx).await?;
                let pending = Self::check_known(&applied)?;
                if !pending.is_empty() {
                    Migrator::up(&tx, None)
                        .await
                        .map_err(|e| MigrateError::Failed(e.to_string()))?;
                }
                tx.commit().await.map_err(map_db_err)?;
                Ok(pending.len())
            }
            Backend::Sqlite => {
                let applied = self.applied_steps(&self.conn).await?;
                let pending = Self::check_known(&applied)?;
                if !pending.is_empty() {
                    Migrator::up(&self.conn, None)
                        .await
                        .map_err(|e| MigrateError::Failed(e.to_string()))?;
                }
                Ok(pending.len())
            }
        }
    }
}
