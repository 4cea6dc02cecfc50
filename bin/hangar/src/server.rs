//! `hangar server` and `hangar server migrate`: configuration, start-up (02 §6), serving,
//! and graceful shutdown.

use crate::client::duration::parse_go_duration;
use anyhow::{Context, bail};
use chrono::TimeDelta;
use clap::{Args, Subcommand};
use hangar_api::{ApiConfig, AppState};
use hangar_core::SystemClock;
use hangar_core::experiments::Experiments;
use hangar_db::{ConnectOptions, DataDirLock, Db};
use hangar_identity::IdentityConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub action: Option<ServerAction>,
    /// Address to serve the API on.
    #[arg(long, env = "HANGAR_HTTP_ADDRESS", default_value = "127.0.0.1:3000")]
    pub http_address: String,
    /// The URL users reach this deployment at (default http://<http-address>).
    #[arg(long, env = "HANGAR_ACCESS_URL")]
    pub access_url: Option<String>,
    /// Where the embedded SQLite database lives (default $XDG_DATA_HOME/hangar).
    #[arg(long, env = "HANGAR_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    #[arg(long, env = "HANGAR_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// PostgreSQL connection pool size.
    #[arg(
        long,
        env = "HANGAR_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,
    /// Comma list of experiments; `*` enables every safe one.
    #[arg(long, env = "HANGAR_EXPERIMENTS", default_value = "")]
    pub experiments: String,
    /// `human` or `json`.
    #[arg(
        long,
        env = "HANGAR_LOG_FORMAT",
        default_value = "human",
        global = true
    )]
    pub log_format: String,
    #[arg(long, env = "HANGAR_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
    /// Serve Prometheus metrics on this address (empty = off).
    #[arg(long, env = "HANGAR_PROMETHEUS_ADDRESS", default_value = "")]
    pub prometheus_address: String,
    #[arg(long, env = "HANGAR_SESSION_DURATION", default_value = "24h")]
    pub session_duration: String,
    #[arg(
        long,
        env = "HANGAR_DISABLE_SESSION_EXPIRY_REFRESH",
        default_value_t = false
    )]
    pub disable_session_expiry_refresh: bool,
    #[arg(long, env = "HANGAR_MAX_TOKEN_LIFETIME", default_value = "876600h")]
    pub max_token_lifetime: String,
    /// Lifetime of OAuth2 access tokens (1m to 720h); never extended on use.
    #[arg(
        long,
        env = "HANGAR_OAUTH2_ACCESS_TOKEN_LIFETIME",
        default_value = "1h"
    )]
    pub oauth2_access_token_lifetime: String,
    /// Lifetime of OAuth2 refresh tokens; must be longer than the access token's.
    #[arg(
        long,
        env = "HANGAR_DEFAULT_OAUTH_REFRESH_LIFETIME",
        default_value = "720h"
    )]
    pub default_oauth_refresh_lifetime: String,
    /// Allow RFC 7591 dynamic client registration at /oauth2/register.
    #[arg(
        long,
        env = "HANGAR_OAUTH2_DYNAMIC_CLIENT_REGISTRATION",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub oauth2_dynamic_client_registration: bool,
    /// Client registrations per minute per peer IP; 0 turns the limit off.
    #[arg(
        long,
        env = "HANGAR_OAUTH2_REGISTRATION_RATE_LIMIT",
        default_value_t = 60
    )]
    pub oauth2_registration_rate_limit: u32,
    /// Dynamically registered clients unused for this long are deleted; 0 = never.
    #[arg(long, env = "HANGAR_OAUTH2_UNUSED_CLIENT_TTL", default_value = "720h")]
    pub oauth2_unused_client_ttl: String,
    /// Password logins per minute per IP; 0 turns the limit off.
    #[arg(long, env = "HANGAR_LOGIN_RATE_LIMIT", default_value_t = 60)]
    pub login_rate_limit: u32,
    /// Refuse to start when migrations are pending instead of applying them.
    #[arg(long, env = "HANGAR_SKIP_MIGRATIONS", default_value_t = false)]
    pub skip_migrations: bool,
    /// Built-in provisioner daemons per replica (0 = none).
    #[arg(long, env = "HANGAR_PROVISIONER_DAEMONS", default_value_t = 3)]
    pub provisioner_daemons: usize,
    /// A `canceling` job older than this is completed as canceled.
    #[arg(
        long,
        env = "HANGAR_PROVISIONER_FORCE_CANCEL_INTERVAL",
        default_value = "10m"
    )]
    pub provisioner_force_cancel_interval: String,
    /// Comma list of CIDRs whose forwarding headers are trusted.
    #[arg(long, env = "HANGAR_PROXY_TRUSTED_ORIGINS", default_value = "")]
    pub proxy_trusted_origins: String,
    /// Comma list of forwarding headers to trust, e.g. X-Forwarded-For.
    #[arg(long, env = "HANGAR_PROXY_TRUSTED_HEADERS", default_value = "")]
    pub proxy_trusted_headers: String,
}

#[derive(Debug, Subcommand)]
pub enum ServerAction {
    /// Apply pending database migrations (or, with --check, list them and exit 1 if any).
    Migrate {
        #[arg(long)]
        check: bool,
    },
}

fn go_duration(flag: &str, value: &str) -> anyhow::Result<TimeDelta> {
    let ns = parse_go_duration(value).with_context(|| format!("--{flag}"))?;
    if ns <= 0 {
        bail!("--{flag} must be positive");
    }
    Ok(TimeDelta::nanoseconds(ns))
}

fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hangar")
}

pub fn init_tracing(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},sea_orm=warn,sea_orm_migration=warn,sqlx=warn"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// An open database plus, for SQLite, the data-directory lock held for the process.
struct Opened {
    db: Db,
    _lock: Option<DataDirLock>,
}

async fn open(args: &ServerArgs) -> anyhow::Result<Opened> {
    match &args.database_url {
        Some(url) if !url.is_empty() => {
            let mut opts = ConnectOptions::new(url.clone());
            opts.max_connections = args.database_max_connections;
            if !opts.is_postgres() && !url.starts_with("sqlite:") {
                bail!("--database-url must be a postgres:// or sqlite:// URL");
            }
            Ok(Opened {
                db: Db::connect(&opts).await?,
                _lock: None,
            })
        }
        _ => {
            let dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
            let lock = DataDirLock::acquire(&dir).map_err(anyhow::Error::msg)?;
            let db = Db::connect(&ConnectOptions::sqlite_file(&dir.join("hangar.db"))).await?;
            Ok(Opened {
                db,
                _lock: Some(lock),
            })
        }
    }
}

/// `hangar server migrate [--check]`.
pub async fn migrate(args: &ServerArgs, check: bool) -> anyhow::Result<i32> {
    let opened = open(args).await?;
    let status = opened.db.migration_status().await?;
    if check {
        if status.pending.is_empty() {
            println!("Database is up to date.");
            return Ok(0);
        }
        println!("Pending migrations:");
        for step in &status.pending {
            println!("  {step}");
        }
        return Ok(1);
    }
    if status.pending.is_empty() {
        println!("Database is up to date.");
    } else {
        let n = opened.db.migrate().await?;
        println!("Applied {n} migrations.");
    }
    Ok(0)
}

fn api_config(args: &ServerArgs) -> anyhow::Result<ApiConfig> {
    let access = args
        .access_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.http_address));
    let access_url: url::Url = access
        .parse()
        .with_context(|| format!("--access-url {access:?} is not a URL"))?;
    if !matches!(access_url.scheme(), "http" | "https") || access_url.host_str().is_none() {
        bail!("--access-url must be an absolute http(s) URL");
    }
    let (experiments, unknown) = Experiments::parse(args.experiments.split(','));
    for name in unknown {
        tracing::warn!(experiment = %name, "ignoring unknown experiment");
    }
    let mut config = ApiConfig::new(access_url);
    config.experiments = experiments;
    config.login_rate_limit = args.login_rate_limit;
    config.identity = IdentityConfig {
        session_duration: go_duration("session-duration", &args.session_duration)?,
        disable_session_expiry_refresh: args.disable_session_expiry_refresh,
        max_token_lifetime: go_duration("max-token-lifetime", &args.max_token_lifetime)?,
    };
    config.proxy_trusted_origins = comma_list(&args.proxy_trusted_origins)
        .iter()
        .map(|c| c.parse().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    config.proxy_trusted_headers = comma_list(&args.proxy_trusted_headers);
    config.oauth2 = oauth2_settings(args)?;
    if config
        .experiments
        .enabled(hangar_core::experiments::Experiment::OAuth2)
        && args.access_url.is_some()
        && config.access_url.path() != "/"
    {
        bail!("--access-url must not contain a path when the oauth2 experiment is enabled");
    }
    Ok(config)
}

/// The OAuth2 provider's flags (03 §8).
fn oauth2_settings(args: &ServerArgs) -> anyhow::Result<hangar_api::OAuth2Settings> {
    let access = go_duration(
        "oauth2-access-token-lifetime",
        &args.oauth2_access_token_lifetime,
    )?;
    if access < TimeDelta::minutes(1) || access > TimeDelta::hours(720) {
        bail!("--oauth2-access-token-lifetime must be between 1m and 720h");
    }
    let refresh = go_duration(
        "default-oauth-refresh-lifetime",
        &args.default_oauth_refresh_lifetime,
    )?;
    if refresh <= access {
        bail!(
            "--default-oauth-refresh-lifetime must be longer than --oauth2-access-token-lifetime"
        );
    }
    let unused_client_ttl = match args.oauth2_unused_client_ttl.trim() {
        "0" | "0s" => None,
        v => Some(go_duration("oauth2-unused-client-ttl", v)?),
    };
    Ok(hangar_api::OAuth2Settings {
        lifetimes: hangar_oauth2_provider::grants::Lifetimes { access, refresh },
        dcr_enabled: args.oauth2_dynamic_client_registration,
        registration_rate_limit: args.oauth2_registration_rate_limit,
        unused_client_ttl,
    })
}

/// The background loops of 04 §6.5 and §6.12: each pass is idempotent and safe on several
/// replicas; an error is logged and the loop goes on.
fn spawn_loops(
    state: &AppState,
    force_cancel: TimeDelta,
    stop: hangar_provisioner::CancelToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let hung = {
        let ws = state.workspaces.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            while !stop.is_canceled() {
                tick.tick().await;
                match ws.hung_jobs_tick(force_cancel).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::warn!(count = ids.len(), "failed hung provisioner jobs")
                    }
                    Ok(_) => tracing::debug!("hung job pass done"),
                    Err(e) => tracing::warn!(error = %e, "hung job pass failed"),
                }
            }
        })
    };
    let lifecycle = {
        let ws = state.workspaces.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            while !stop.is_canceled() {
                tick.tick().await;
                match ws.lifecycle_tick().await {
                    Ok(r) => tracing::debug!(
                        started = r.autostarted.len(),
                        stopped = r.autostopped.len(),
                        errors = r.errors,
                        "lifecycle pass done"
                    ),
                    Err(e) => tracing::warn!(error = %e, "lifecycle pass failed"),
                }
            }
        })
    };
    let gauges = {
        let ws = state.workspaces.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            while !stop.is_canceled() {
                tick.tick().await;
                if let Err(e) = ws.refresh_queue_gauges().await {
                    tracing::warn!(error = %e, "refreshing the queue gauges failed");
                }
            }
        })
    };
    let mut loops = vec![hung, lifecycle, gauges];
    if state
        .config
        .experiments
        .enabled(hangar_core::experiments::Experiment::OAuth2)
    {
        loops.push(spawn_oauth2_sweeper(state.clone(), stop));
    }
    loops
}

/// The OAuth2 sweeper (03 §7): every 10 min ± 1 min, so replicas drift apart.
fn spawn_oauth2_sweeper(
    state: AppState,
    stop: hangar_provisioner::CancelToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let rng = ring::rand::SystemRandom::new();
        while !stop.is_canceled() {
            let mut b = [0u8; 2];
            let jitter = match ring::rand::SecureRandom::fill(&rng, &mut b) {
                Ok(()) => u64::from(u16::from_le_bytes(b)) % 120,
                Err(_) => 60,
            };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(540 + jitter)) => {}
                () = stop.canceled() => break,
            }
            let ttl = state.config.oauth2.unused_client_ttl;
            for (kind, n) in state.oauth2.sweep(ttl).await {
                state.metrics.registry.add(
                    hangar_api::metrics::OAUTH2_SWEEP_DELETED,
                    &[("kind", kind.as_str())],
                    n as f64,
                );
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `hangar server`.
pub async fn run(args: &ServerArgs) -> anyhow::Result<()> {
    let mut config = api_config(args)?;
    let opened = open(args).await?;
    let db = opened.db.clone();
    let status = db.migration_status().await?;
    if !status.pending.is_empty() {
        if args.skip_migrations {
            bail!(
                "database has {} pending migrations; run 'hangar server migrate'",
                status.pending.len()
            );
        }
        let n = db.migrate().await?;
        tracing::info!(applied = n, "applied database migrations");
    }
    let listener = tokio::net::TcpListener::bind(&args.http_address)
        .await
        .with_context(|| format!("bind --http-address {}", args.http_address))?;
    if args.access_url.is_none() {
        // Port 0 binds a free port: the access URL names the one actually bound.
        config.access_url = format!("http://{}", listener.local_addr()?).parse()?;
    }
    let state = AppState::new(db.clone(), Arc::new(SystemClock), config);

    if !args.prometheus_address.is_empty() {
        let listener = tokio::net::TcpListener::bind(&args.prometheus_address)
            .await
            .with_context(|| format!("bind --prometheus-address {}", args.prometheus_address))?;
        let app = hangar_api::routes::metrics_router(state.clone());
        tracing::info!(address = %listener.local_addr()?, "serving Prometheus metrics");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    let daemons_shutdown = hangar_provisioner::CancelToken::new();
    let daemons = state
        .spawn_provisioner_daemons(args.provisioner_daemons, daemons_shutdown.clone())
        .await
        .context("start the built-in provisioner daemons")?;

    let force_cancel = go_duration(
        "provisioner-force-cancel-interval",
        &args.provisioner_force_cancel_interval,
    )?;
    let loops = spawn_loops(&state, force_cancel, daemons_shutdown.clone());

    eprintln!("Started HTTP listener at http://{}", listener.local_addr()?);
    let app = hangar_api::router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
    });
    shutdown_signal().await;
    tracing::info!("shutting down; draining requests for up to 10s");
    let _ = tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(_) => {}
        Err(_) => tracing::warn!("requests still running after 10s; exiting"),
    }
    // Daemons finish (or fail) their running jobs before the database closes.
    daemons_shutdown.cancel();
    for l in loops {
        l.abort();
    }
    for d in daemons {
        let _ = d.await;
    }
    db.close().await;
    Ok(())
}
