//! The HTTP surface of Hangar: `/api/v2` (Coder's paths and envelope), `/healthz`, and the
//! Prometheus exporter. Handlers parse input, call one domain function, and map the result.

pub mod auth;
pub mod error;
pub mod extract;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod observe;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod views;
pub mod views_ws;

use hangar_core::Clock;
use hangar_core::experiments::Experiments;
use hangar_db::Db;
use hangar_identity::{Identity, IdentityConfig};
use hangar_workspaces::Workspaces;
use std::sync::Arc;

/// Deployment settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub access_url: url::Url,
    pub experiments: Experiments,
    /// Logins per minute per IP; 0 disables the limit.
    pub login_rate_limit: u32,
    pub identity: IdentityConfig,
    /// Peers whose forwarding headers are trusted (00 "Client IP").
    pub proxy_trusted_origins: Vec<net::Cidr>,
    pub proxy_trusted_headers: Vec<String>,
    /// The base64url VAPID key while `web-push` is on (06); empty otherwise.
    pub webpush_public_key: String,
    pub oauth2: OAuth2Settings,
}

/// The OAuth2 provider's flags (03 §8).
#[derive(Debug, Clone)]
pub struct OAuth2Settings {
    pub lifetimes: hangar_oauth2_provider::grants::Lifetimes,
    /// `--oauth2-dynamic-client-registration`.
    pub dcr_enabled: bool,
    /// Registrations per minute per peer IP; 0 = off.
    pub registration_rate_limit: u32,
    /// `--oauth2-unused-client-ttl`; `None` keeps unused registered clients forever.
    pub unused_client_ttl: Option<chrono::TimeDelta>,
}

impl Default for OAuth2Settings {
    fn default() -> Self {
        Self {
            lifetimes: Default::default(),
            dcr_enabled: true,
            registration_rate_limit: 60,
            unused_client_ttl: Some(chrono::TimeDelta::hours(720)),
        }
    }
}

impl ApiConfig {
    pub fn new(access_url: url::Url) -> Self {
        Self {
            access_url,
            experiments: Experiments::default(),
            login_rate_limit: 60,
            identity: IdentityConfig::default(),
            proxy_trusted_origins: vec![],
            proxy_trusted_headers: vec![],
            webpush_public_key: String::new(),
            oauth2: OAuth2Settings::default(),
        }
    }

    /// The access URL without a trailing slash, as used in `WWW-Authenticate` and metadata.
    pub fn base_url(&self) -> String {
        self.access_url.as_str().trim_end_matches('/').to_string()
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub identity: Identity<Db>,
    /// Shared with the built-in provisioner daemons.
    pub workspaces: Arc<Workspaces<Db>>,
    /// The OAuth2 provider's app and secret management (03 §5.7).
    pub oauth2_apps: hangar_oauth2_provider::apps::Apps<Db>,
    /// The authorization server's flows (03 §5.3–5.5).
    pub oauth2: hangar_oauth2_provider::grants::Provider<Db>,
    pub clock: Arc<dyn Clock>,
    pub config: ApiConfig,
    pub metrics: metrics::Metrics,
    pub login_limiter: ratelimit::RateLimiter,
    /// `--oauth2-registration-rate-limit` per peer IP (03 §5.6).
    pub registration_limiter: ratelimit::RateLimiter,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        let identity = Identity::new(db.clone(), clock.clone(), config.identity.clone());
        let metrics = metrics::Metrics::default();
        let workspaces = Arc::new(
            Workspaces::new(db.clone(), clock.clone()).with_metrics(metrics.registry.clone()),
        );
        let oauth2_apps = hangar_oauth2_provider::apps::Apps::new(db.clone(), clock.clone());
        metrics::declare_oauth2(&metrics.registry);
        let reuse = metrics.registry.clone();
        // The access URL is an absolute http(s) URL (checked at startup), so this holds.
        let access = hangar_oauth2_provider::CanonicalUri::parse(config.access_url.as_str())
            .expect("the access URL is an absolute http(s) URL");
        let oauth2 = hangar_oauth2_provider::grants::Provider::new(
            db.clone(),
            clock.clone(),
            access,
            config.oauth2.lifetimes.clone(),
        )
        .on_reuse(move |kind| {
            let kind = match kind {
                hangar_oauth2_provider::grants::Reuse::Code => "code",
                hangar_oauth2_provider::grants::Reuse::RefreshToken => "refresh_token",
            };
            reuse.inc(metrics::OAUTH2_REUSE, &[("kind", kind)]);
        });
        let login_limiter = ratelimit::RateLimiter::new(config.login_rate_limit, 100_000);
        Self(Arc::new(Inner {
            db,
            identity,
            workspaces,
            oauth2_apps,
            oauth2,
            clock,
            metrics,
            login_limiter,
            registration_limiter: ratelimit::RateLimiter::new(
                config.oauth2.registration_rate_limit,
                100_000,
            ),
            config,
        }))
    }
}

impl AppState {
    /// Starts `count` built-in provisioner daemons on the default organization (04 §6.5).
    pub async fn spawn_provisioner_daemons(
        &self,
        count: usize,
        shutdown: hangar_provisioner::CancelToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, hangar_core::StoreError> {
        use hangar_identity::IdentityStore;
        if count == 0 {
            return Ok(vec![]);
        }
        let org = self.db.default_organization().await?;
        hangar_workspaces::daemons::spawn_builtin(
            self.workspaces.clone(),
            count,
            org.id,
            self.config.base_url(),
            shutdown,
        )
        .await
    }
}

pub use routes::router;
