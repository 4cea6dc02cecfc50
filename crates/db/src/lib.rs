//! Storage for every area, on SQLite (embedded default) and PostgreSQL, through sea-orm.
//!
//! SQL is written once with `$n` parameters and `::type` casts; [`sql::prepare`] drops the
//! casts for SQLite, and [`sql::Ctx`] binds values in each backend's column types (00's
//! registry): uuids and timestamps are text on SQLite, native on PostgreSQL.

mod agents;
mod auth_cache;
mod connect;
mod error;
pub(crate) mod identity;
mod loops;
mod migrate;
mod oauth2;
pub mod schema;
pub mod sql;
mod workspaces;

pub use connect::{ConnectOptions, DataDirLock};
pub use error::map_db_err;
pub use migrate::{MigrateError, MigrationStatus};

use hangar_core::StoreError;
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use sql::{Ctx, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use sea_orm::Value;

/// Which database is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Counts statements, so tests can assert how many a request makes (02 §10.2).
#[derive(Debug, Default)]
pub struct StatementCounter {
    selects: AtomicU64,
    writes: AtomicU64,
}

impl StatementCounter {
    pub fn selects(&self) -> u64 {
        self.selects.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self, write: bool) {
        let c = if write { &self.writes } else { &self.selects };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection pool to one database, either backend.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    ctx: Ctx,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish()
    }
}

/// An open transaction; dropping it uncommitted rolls it back.
pub struct Tx {
    inner: DatabaseTransaction,
    ctx: Ctx,
    /// Set when a statement wrote authentication tables (see `auth_cache`).
    auth_dirty: std::sync::atomic::AtomicBool,
}

impl Db {
    pub(crate) fn from_conn(conn: DatabaseConnection) -> Self {
        let backend = conn.get_database_backend();
        let mut ctx = Ctx::new(backend, Arc::new(StatementCounter::default()));
        if backend != DbBackend::Postgres {
            ctx.auth_cache = Some(Arc::new(auth_cache::AuthCache::default()));
        }
        Self { conn, ctx }
    }

    pub fn backend(&self) -> Backend {
        match self.ctx.backend {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The raw sea-orm connection, for migrations and tests.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn counter(&self) -> Arc<StatementCounter> {
        self.ctx.counter.clone()
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite so writers queue on the busy timeout
    /// instead of failing on lock upgrade.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let opts = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let inner = self
            .conn
            .begin_with_options(opts)
            .await
            .map_err(map_db_err)?;
        Ok(Tx {
            inner,
            ctx: self.ctx.clone(),
            auth_dirty: Default::default(),
        })
    }

    /// `SELECT 1` (health check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.ctx
            .one(&self.conn, "SELECT 1 AS one", vec![])
            .await
            .map(|_| ())
    }

    /// Runs a statement outside the domain stores (tests and benchmarks seed data with it).
    pub async fn execute(&self, sql_text: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        self.ctx.exec(&self.conn, sql_text, values).await
    }

    /// Runs a query outside the domain stores (tests).
    pub async fn query(&self, sql_text: &str, values: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        self.ctx.all(&self.conn, sql_text, values).await
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        let dirty = self.auth_dirty.load(Ordering::Acquire);
        let r = self.inner.commit().await.map_err(map_db_err);
        if dirty {
            self.ctx.wrote();
        }
        r
    }

    pub async fn execute(&self, sql_text: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        self.ctx.exec(self, sql_text, values).await
    }

    pub async fn query(&self, sql_text: &str, values: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        self.ctx.all(self, sql_text, values).await
    }
}

impl hangar_core::tx::Transactional for Db {
    type Tx = Tx;
    fn begin(&self) -> impl std::future::Future<Output = Result<Tx, StoreError>> + Send {
        Db::begin(self)
    }
}

impl hangar_core::tx::Committable for Tx {
    fn commit(self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        Tx::commit(self)
    }
}
