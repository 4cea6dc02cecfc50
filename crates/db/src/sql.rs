//! One SQL text for both backends, and typed values in each backend's column types.

use crate::{StatementCounter, map_db_err};
use chrono::{DateTime, NaiveDateTime, Utc};
use hangar_core::StoreError;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

const SQLITE_TS: &str = "%Y-%m-%d %H:%M:%S%.6f+00:00";

/// Removes PostgreSQL `::type` casts (which SQLite does not know) from a statement.
pub fn prepare(backend: DbBackend, sql: &str) -> Cow<'_, str> {
    if backend == DbBackend::Postgres || !sql.contains("::") {
        return Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' && bytes.get(i + 1) == Some(&b':') {
            i += 2;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'['
                    || bytes[i] == b']')
            {
                i += 1;
            }
        } else {
            let ch_len = sql[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&sql[i..i + ch_len]);
            i += ch_len;
        }
    }
    Cow::Owned(out)
}

/// Formats a timestamp the way SQLite columns store it (fixed width, µs, so text order is
/// time order).
pub fn sqlite_ts(t: DateTime<Utc>) -> String {
    t.format(SQLITE_TS).to_string()
}

fn parse_sqlite_ts(s: &str) -> Option<DateTime<Utc>> {
    let head = s.get(..26).unwrap_or(s);
    NaiveDateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S%.6f")
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s.trim_end_matches("+00:00"), "%Y-%m-%d %H:%M:%S%.f")
        })
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s.trim_end_matches("+00:00"), "%Y-%m-%d %H:%M:%S")
        })
        .ok()
        .map(|n| n.and_utc())
}

/// Where a statement runs: the pool or an open transaction. A transaction remembers that it
/// wrote authentication tables so its commit can invalidate the auth cache.
pub trait Target: Send + Sync {
    type Conn: ConnectionTrait;
    fn conn(&self) -> &Self::Conn;
    fn mark_auth_write(&self) {}
}

impl Target for sea_orm::DatabaseConnection {
    type Conn = sea_orm::DatabaseConnection;
    fn conn(&self) -> &Self::Conn {
        self
    }
}

/// A raw sea-orm transaction (migrations); it never holds auth writes.
impl Target for sea_orm::DatabaseTransaction {
    type Conn = sea_orm::DatabaseTransaction;
    fn conn(&self) -> &Self::Conn {
        self
    }
}

impl Target for crate::Tx {
    type Conn = sea_orm::DatabaseTransaction;
    fn conn(&self) -> &Self::Conn {
        &self.inner
    }
    fn mark_auth_write(&self) {
        self.auth_dirty
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

impl<T: Target> Target for &T {
    type Conn = T::Conn;
    fn conn(&self) -> &Self::Conn {
        (**self).conn()
    }
    fn mark_auth_write(&self) {
        (**self).mark_auth_write()
    }
}

/// Tables whose rows the auth cache holds (keys, users, memberships, groups, orgs), and the
/// OAuth2 tables, whose deletes cascade to keys and whose token rows carry the audience.
fn touches_auth(sql: &str) -> bool {
    [
        "api_keys",
        "oauth2_provider_app",
        "users",
        "organization_members",
        "organizations",
        "group_members",
        "groups",
    ]
    .iter()
    .any(|t| sql.contains(t))
}

/// Backend plus statement counter: binds values and runs statements on any connection or
/// transaction.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) backend: DbBackend,
    pub(crate) counter: Arc<StatementCounter>,
    /// SQLite only; see `auth_cache`.
    pub(crate) auth_cache: Option<Arc<crate::auth_cache::AuthCache>>,
}

impl Ctx {
    pub(crate) fn new(backend: DbBackend, counter: Arc<StatementCounter>) -> Self {
        Self {
            backend,
            counter,
            auth_cache: None,
        }
    }

    /// Invalidates cached reads after a write or commit.
    pub(crate) fn wrote(&self) {
        if let Some(c) = &self.auth_cache {
            c.bump();
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// Picks the backend's text where the two dialects really differ (JSON functions).
    pub fn pick<'a>(&self, postgres: &'a str, sqlite: &'a str) -> &'a str {
        if self.is_postgres() { postgres } else { sqlite }
    }

    pub fn uuid(&self, id: Uuid) -> Value {
        if self.is_postgres() {
            Value::Uuid(Some(id))
        } else {
            Value::String(Some(id.to_string()))
        }
    }

    pub fn ts(&self, t: DateTime<Utc>) -> Value {
        if self.is_postgres() {
            Value::ChronoDateTimeUtc(Some(t))
        } else {
            Value::String(Some(sqlite_ts(t)))
        }
    }

    pub fn text(&self, s: impl Into<String>) -> Value {
        Value::String(Some(s.into()))
    }

    pub fn opt_text(&self, s: Option<String>) -> Value {
        Value::String(s)
    }

    /// A nullable timestamp, typed for the backend even when NULL.
    pub fn opt_ts(&self, t: Option<DateTime<Utc>>) -> Value {
        match t {
            Some(t) => self.ts(t),
            None if self.is_postgres() => Value::ChronoDateTimeUtc(None),
            None => Value::String(None),
        }
    }

    pub fn opt_uuid(&self, id: Option<Uuid>) -> Value {
        match id {
            Some(id) => self.uuid(id),
            None if self.is_postgres() => Value::Uuid(None),
            None => Value::String(None),
        }
    }

    pub fn opt_bytes(&self, b: Option<Vec<u8>>) -> Value {
        Value::Bytes(b)
    }

    /// A JSON value; bind with a `::jsonb` cast in the SQL.
    pub fn json(&self, v: &serde_json::Value) -> Value {
        Value::String(Some(v.to_string()))
    }

    pub fn bytes(&self, b: Vec<u8>) -> Value {
        Value::Bytes(Some(b))
    }

    pub fn bool(&self, b: bool) -> Value {
        Value::Bool(Some(b))
    }

    pub fn i64(&self, n: i64) -> Value {
        Value::BigInt(Some(n))
    }

    pub fn i32(&self, n: i32) -> Value {
        Value::Int(Some(n))
    }

    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.backend, prepare(self.backend, sql), values)
    }

    pub async fn one<T: Target>(
        &self,
        t: &T,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<Row>, StoreError> {
        self.counter.count(false);
        let r = t
            .conn()
            .query_one_raw(self.stmt(sql, values))
            .await
            .map_err(map_db_err)?;
        Ok(r.map(|r| Row {
            r,
            backend: self.backend,
        }))
    }

    pub async fn all<T: Target>(
        &self,
        t: &T,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        self.counter.count(false);
        let rows = t
            .conn()
            .query_all_raw(self.stmt(sql, values))
            .await
            .map_err(map_db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Row {
                r,
                backend: self.backend,
            })
            .collect())
    }

    /// A write; returns the number of rows affected.
    pub async fn exec<T: Target>(
        &self,
        t: &T,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<u64, StoreError> {
        self.counter.count(true);
        let r = t
            .conn()
            .execute_raw(self.stmt(sql, values))
            .await
            .map_err(map_db_err);
        self.after_write(t, sql);
        Ok(r?.rows_affected())
    }

    /// A write with `RETURNING`.
    pub async fn exec_returning<T: Target>(
        &self,
        t: &T,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<Row>, StoreError> {
        self.counter.count(true);
        let r = t
            .conn()
            .query_one_raw(self.stmt(sql, values))
            .await
            .map_err(map_db_err);
        self.after_write(t, sql);
        Ok(r?.map(|r| Row {
            r,
            backend: self.backend,
        }))
    }

    /// A statement that wrote auth tables invalidates the cache now, and (inside a
    /// transaction) once more at commit, when the change becomes visible.
    fn after_write<T: Target>(&self, t: &T, sql: &str) {
        if touches_auth(sql) {
            t.mark_auth_write();
            self.wrote();
        }
    }
}

/// A result row with typed getters that know each backend's storage.
pub struct Row {
    r: QueryResult,
    backend: DbBackend,
}

fn decode(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("decoding column {col}: {e}"))
}

impl Row {
    pub fn string(&self, col: &str) -> Result<String, StoreError> {
        self.r
            .try_get::<String>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.r
            .try_get::<Option<String>>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        if self.backend == DbBackend::Postgres {
            self.r.try_get::<Uuid>("", col).map_err(|e| decode(col, e))
        } else {
            Uuid::parse_str(&self.string(col)?).map_err(|e| decode(col, e))
        }
    }

    pub fn ts(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        if self.backend == DbBackend::Postgres {
            self.r
                .try_get::<DateTime<Utc>>("", col)
                .map_err(|e| decode(col, e))
        } else {
            let s = self.string(col)?;
            parse_sqlite_ts(&s).ok_or_else(|| decode(col, format!("bad timestamp {s:?}")))
        }
    }

    pub fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        if self.backend == DbBackend::Postgres {
            self.r
                .try_get::<Option<Uuid>>("", col)
                .map_err(|e| decode(col, e))
        } else {
            self.opt_string(col)?
                .map(|s| Uuid::parse_str(&s).map_err(|e| decode(col, e)))
                .transpose()
        }
    }

    pub fn opt_ts(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.backend == DbBackend::Postgres {
            self.r
                .try_get::<Option<DateTime<Utc>>>("", col)
                .map_err(|e| decode(col, e))
        } else {
            self.opt_string(col)?
                .map(|s| {
                    parse_sqlite_ts(&s).ok_or_else(|| decode(col, format!("bad timestamp {s:?}")))
                })
                .transpose()
        }
    }

    pub fn opt_bool(&self, col: &str) -> Result<Option<bool>, StoreError> {
        self.r
            .try_get::<Option<bool>>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.r
            .try_get::<Option<i64>>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn opt_i32(&self, col: &str) -> Result<Option<i32>, StoreError> {
        self.r
            .try_get::<Option<i32>>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.r
            .try_get::<Option<Vec<u8>>>("", col)
            .map_err(|e| decode(col, e))
    }

    pub fn bool(&self, col: &str) -> Result<bool, StoreError> {
        self.r.try_get::<bool>("", col).map_err(|e| decode(col, e))
    }

    pub fn i64(&self, col: &str) -> Result<i64, StoreError> {
        self.r.try_get::<i64>("", col).map_err(|e| decode(col, e))
    }

    pub fn i32(&self, col: &str) -> Result<i32, StoreError> {
        self.r.try_get::<i32>("", col).map_err(|e| decode(col, e))
    }

    pub fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError> {
        self.r
            .try_get::<Vec<u8>>("", col)
            .map_err(|e| decode(col, e))
    }

    /// A JSON column selected as text (`col::text` on PostgreSQL).
    pub fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.string(col)?).map_err(|e| decode(col, e))
    }

    /// A text-enum column (selected as `col::text`).
    pub fn parse<T: std::str::FromStr>(&self, col: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        self.string(col)?.parse().map_err(|e| decode(col, e))
    }
}

/// Numbered parameters (`$n`) for statements built at run time.
#[derive(Default)]
pub struct Params {
    pub values: Vec<Value>,
}

impl Params {
    /// Adds a value and returns its parameter marker (`$n`).
    pub fn push(&mut self, v: Value) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_are_dropped_for_sqlite_only() {
        let sql = "SELECT status::text AS s FROM t WHERE x = $1::user_status AND y = ':: '";
        assert_eq!(
            prepare(DbBackend::Sqlite, sql),
            "SELECT status AS s FROM t WHERE x = $1 AND y = ' '"
        );
        assert_eq!(prepare(DbBackend::Postgres, sql), sql);
        assert_eq!(prepare(DbBackend::Sqlite, "a::uuid[] b"), "a b");
    }

    #[test]
    fn sqlite_timestamps_round_trip_and_sort() {
        let t: DateTime<Utc> = "2024-05-06T07:08:09.123456Z".parse().unwrap();
        let s = sqlite_ts(t);
        assert_eq!(s, "2024-05-06 07:08:09.123456+00:00");
        assert_eq!(parse_sqlite_ts(&s), Some(t));
        let never = hangar_core::clock::never();
        assert_eq!(sqlite_ts(never), "0001-01-01 00:00:00.000000+00:00");
        assert!(sqlite_ts(never) < s);
    }
}
