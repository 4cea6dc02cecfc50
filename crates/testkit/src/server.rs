//! The real router on `127.0.0.1:0`, with a manual clock and the database's statement
//! counter.

use crate::TestDb;
use hangar_api::{ApiConfig, AppState};
use hangar_core::ManualClock;
use hangar_db::{Db, StatementCounter};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub state: AppState,
    pub counter: Arc<StatementCounter>,
    task: tokio::task::JoinHandle<()>,
    daemons: hangar_provisioner::CancelToken,
}

impl TestServer {
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The router itself, for `tower::ServiceExt::oneshot` tests.
    pub fn router(&self) -> axum::Router {
        hangar_api::router(self.state.clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.daemons.cancel();
        self.task.abort();
    }
}

/// Serves the real router for `db` with default settings.
pub async fn spawn_server(db: &TestDb) -> TestServer {
    spawn_server_with(db, |_| {}).await
}

/// Serves the real router after `configure` adjusted the settings.
pub async fn spawn_server_with(db: &TestDb, configure: impl FnOnce(&mut ApiConfig)) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let url = format!("http://{addr}");
    let mut config = ApiConfig::new(url.parse().expect("url"));
    configure(&mut config);
    let clock = ManualClock::starting_now();
    let state = AppState::new(db.db.clone(), Arc::new(clock.clone()), config);
    let app = hangar_api::router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    // Two built-in echo daemons, like a small deployment.
    let daemons = hangar_provisioner::CancelToken::new();
    state
        .spawn_provisioner_daemons(2, daemons.clone())
        .await
        .expect("start provisioner daemons");
    TestServer {
        url,
        addr,
        clock,
        counter: db.db.counter(),
        state,
        task,
        daemons,
    }
}
