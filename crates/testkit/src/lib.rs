//! Test harness (02 §3.3): a migrated database on either backend per test, the macro that
//! runs one test body on both, and a real server on `127.0.0.1:0`.

pub mod client;
mod server;
mod testdb;

pub use client::{Answer, Client};
pub use server::{TestServer, spawn_server, spawn_server_with};
pub use testdb::TestDb;

/// Writes each test once as `async fn name(db: TestDb) { … }` and emits `sqlite::name` and
/// `postgres::name`. PostgreSQL tests skip (with a printed line) without
/// `HANGAR_TEST_POSTGRES_URL`, and fail instead when `HANGAR_REQUIRE_POSTGRES=1`.
#[macro_export]
macro_rules! db_tests {
    ($($(#[$meta:meta])* async fn $name:ident($db:ident : TestDb) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $db = $crate::TestDb::sqlite().await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($db) = $crate::TestDb::postgres(stringify!($name)).await else { return };
                    $body
                }
            )*
        }
    };
}
