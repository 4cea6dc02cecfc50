//! `cargo xtask bench oauth2`: the performance targets of spec 03 §11.
//!
//! One `hangar server --experiments '*'` (SQLite in a scratch data directory unless
//! `--database-url` names another database) runs as a child process; the load generator of
//! `bench auth` drives five phases against it, each as a ratio of phase A's rate:
//! - A: `GET /api/v2/users/me` with a plain API key (`POST /users/me/keys/tokens`);
//! - B: the same with an OAuth2 access token bound to the access URL;
//! - C: the refresh grant, one chain per connection (each worker sends the refresh token of
//!   its previous response: each refresh token works once), Basic client authentication;
//! - D: the authorization-code grant with a wrong client secret (401 `invalid_client`);
//! - E: MCP `tools/call` `coder_get_authenticated_user` with a token bound to the MCP URL.
//!
//! Then the server stops, and the same router runs in this process on the same database so
//! its statement counter (the one the test suite reads) can count the SQL statements per
//! request of each phase: B must run as many as A. With the server still stopped, 1 000 apps
//! and 10 000 token rows are written through the OAuth2 store, C's count is taken again, and a
//! restarted server measures C once more: its rate must stay ≥ 0.8× the first C.
//!
//! Each grant is one (user, app) pair: a new code exchange replaces the user's earlier grant of
//! the same app (03 §5.4 step 8), so B, E, D and every chain of C get an app of their own.

use super::child::Server;
use super::load::{self, Endpoint, Plan, Requests, Stats};
use super::{load_average, login, phase_json, print_phase, ratio, seed, verdict};
use crate::{ScratchDir, display, target_dir};
use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Args;
use hangar_api::{ApiConfig, AppState};
use hangar_core::experiments::Experiments;
use hangar_core::{Clock, SystemClock};
use hangar_db::{ConnectOptions, Db};
use hangar_identity::{ApiKey, ApiKeyScope, IdentityStore, LoginType, NewUser, UserStatus, apikey};
use hangar_oauth2_provider::model::{App, AppSecret, Token};
use hangar_oauth2_provider::store::OAuth2Store;
use hangar_oauth2_provider::{display_secret, generate_secret};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Spec 03 §11 targets (req/s as a fraction of A's, and the seeded C over the empty C).
const MIN_B: f64 = 0.85;
const MIN_C: f64 = 0.10;
const MIN_D: f64 = 0.50;
const MIN_E: f64 = 0.40;
const MIN_C_SEEDED: f64 = 0.8;

const MCP_PATH: &str = "/api/experimental/mcp/http";
const CALLBACK: &str = "http://localhost:9876/callback";
/// PKCE verifier of every grant (43–128 unreserved characters).
const VERIFIER: &str = "bench-oauth2-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
/// Requests per phase whose statements are counted, after `COUNT_WARMUP` uncounted ones.
const COUNT_REQUESTS: u64 = 200;
const COUNT_WARMUP: u64 = 20;
/// Concurrent seeding tasks (PostgreSQL gains from them; SQLite queues them on its lock).
const SEED_TASKS: usize = 4;

#[derive(Debug, Clone, Args)]
pub struct OAuth2Args {
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each phase's measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Keep-alive HTTP/1.1 connections of the load generator (and refresh chains in C).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Apps written before the second C run.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Token rows (grants) written before the second C run, spread over the apps.
    #[arg(long, default_value_t = 10_000)]
    tokens: usize,
    /// The server's database: `postgres://…` makes a scratch database `hangar_bench_<random>`
    /// next to the one named (dropped afterwards); `sqlite://…` is used as it is and must be
    /// empty. Default: SQLite in a scratch data directory under target/bench.
    #[arg(long)]
    database_url: Option<String>,
    /// Use the release binaries as they are instead of running `cargo build --release`.
    #[arg(long)]
    no_build: bool,
}

impl OAuth2Args {
    fn is_full_length(&self) -> bool {
        self.seconds == 10
            && self.warmup == 2
            && self.connections == 32
            && self.apps == 1000
            && self.tokens == 10_000
    }
}

pub async fn run(root: &Path, args: OAuth2Args) -> anyhow::Result<ExitCode> {
    let hangar = match super::release(root, args.no_build)? {
        super::Release::Ready(h) => h,
        super::Release::HandedOver(code) => return Ok(code),
    };
    ensure!(args.connections > 0, "at least one connection is needed");
    ensure!(
        args.apps > 0 && args.tokens > 0,
        "--apps and --tokens must be positive"
    );
    let bench_dir = target_dir(root).join("bench");
    let work = ScratchDir(bench_dir.join(format!("run-{}", Uuid::new_v4().simple())));
    std::fs::create_dir_all(&work.0).with_context(|| format!("create {}", work.0.display()))?;

    let (database, scratch) = Database::open(args.database_url.as_deref(), &work.0).await?;
    let result = bench(root, &args, &hangar, &bench_dir, &database).await;
    if let Some(scratch) = scratch {
        scratch.drop_database().await;
    }
    result
}

/// Where the server keeps its data, and how this process opens the same database.
enum Database {
    /// The default: `--data-dir` with `hangar.db` in it.
    DataDir(PathBuf),
    /// `--database-url`.
    Url(String),
}

impl Database {
    async fn open(url: Option<&str>, work: &Path) -> anyhow::Result<(Self, Option<PgScratch>)> {
        match url {
            None => Ok((Self::DataDir(work.join("oauth2")), None)),
            Some(url) if ConnectOptions::new(url).is_postgres() => {
                let scratch = PgScratch::create(url).await?;
                Ok((Self::Url(scratch.url.clone()), Some(scratch)))
            }
            Some(url) if url.starts_with("sqlite:") => Ok((Self::Url(url.to_string()), None)),
            Some(url) => {
                bail!("--database-url must be a postgres:// or sqlite:// URL, not {url:?}")
            }
        }
    }

    fn server_args(&self) -> Vec<OsString> {
        match self {
            Self::DataDir(dir) => vec!["--data-dir".into(), dir.into()],
            Self::Url(url) => vec!["--database-url".into(), url.into()],
        }
    }

    fn connect_options(&self) -> ConnectOptions {
        match self {
            Self::DataDir(dir) => ConnectOptions::sqlite_file(&dir.join("hangar.db")),
            Self::Url(url) => ConnectOptions::new(url.clone()),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            Self::Url(url) if ConnectOptions::new(url.clone()).is_postgres() => "postgres",
            _ => "sqlite",
        }
    }
}

/// A scratch PostgreSQL database next to the one `--database-url` names.
struct PgScratch {
    admin: Db,
    name: String,
    url: String,
}

impl PgScratch {
    async fn create(url: &str) -> anyhow::Result<Self> {
        let mut opts = ConnectOptions::new(url);
        opts.max_connections = 2;
        opts.retry_for = Duration::from_secs(5);
        let admin = Db::connect(&opts).await.context("connect --database-url")?;
        let name = format!("hangar_bench_{}", Uuid::new_v4().simple());
        admin
            .execute(&format!("CREATE DATABASE {name}"), vec![])
            .await
            .with_context(|| format!("create database {name}"))?;
        let mut scratch = url::Url::parse(url).context("--database-url")?;
        scratch.set_path(&format!("/{name}"));
        Ok(Self {
            admin,
            name,
            url: scratch.to_string(),
        })
    }

    async fn drop_database(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.admin.execute(&sql, vec![]).await {
            eprintln!(
                "warning: could not drop scratch database {}: {e}",
                self.name
            );
        }
        self.admin.close().await;
    }
}

async fn start_server(hangar: &Path, database: &Database, log: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new(hangar);
    cmd.arg("server").args(database.server_args()).args([
        "--http-address",
        "127.0.0.1:0",
        "--login-rate-limit",
        "0",
        "--experiments",
        "*",
    ]);
    Server::start(cmd, log).await
}

async fn bench(
    root: &Path,
    args: &OAuth2Args,
    hangar: &Path,
    bench_dir: &Path,
    database: &Database,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();
    let plan = Plan::Timed {
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
    };
    println!(
        "OAuth2 + MCP (spec 03 §11): hangar server --experiments '*' on {}, {} keep-alive connections, {} s warm-up + {} s per phase, {cores} cores, load average {}{}",
        database.backend(),
        args.connections,
        args.warmup,
        args.seconds,
        load_before.as_deref().unwrap_or("unknown"),
        if args.is_full_length() {
            ""
        } else {
            " (shortened run)"
        }
    );

    let server = start_server(hangar, database, &bench_dir.join("hangar-oauth2.log")).await?;
    let setup = Setup::new(server.addr, args.connections).await?;
    let (a, b, d, e) = (&setup.a, &setup.b, &setup.d, &setup.e);
    let connections = args.connections;
    let mut phases = vec![
        measure("A", "GET /users/me, API key", a, connections, plan).await?,
        measure(
            "B",
            "GET /users/me, A-bound OAuth2 token",
            b,
            connections,
            plan,
        )
        .await?,
    ];
    let (c_stats, _) = load::run_each(setup.chains(server.addr).await?, plan).await?;
    print_phase("C", "refresh grant, 1 chain/connection", &c_stats);
    phases.push(Phase {
        label: "C",
        what: "refresh grant, one chain per connection, Basic auth",
        stats: c_stats,
    });
    phases.push(measure("D", "code grant, wrong secret (401)", d, connections, plan).await?);
    phases.push(measure("E", "MCP tools/call, M-bound token", e, connections, plan).await?);
    drop(server);

    // The server is stopped: the same router in this process, on the same database, counts
    // the statements of each request; then the grants are seeded through the same handle.
    println!(
        "statements per request (the router in-process on the same database, {COUNT_REQUESTS} requests each after {COUNT_WARMUP}):"
    );
    let counted = count_and_seed(args, database, &setup).await?;

    let log = bench_dir.join("hangar-oauth2-seeded.log");
    let server = start_server(hangar, database, &log).await?;
    let (c2_stats, _) = load::run_each(setup.chains(server.addr).await?, plan).await?;
    drop(server);
    print_phase(
        "C2",
        &format!("C after +{} apps, +{} tokens", args.apps, args.tokens),
        &c2_stats,
    );
    phases.push(Phase {
        label: "C2",
        what: "C again after seeding apps and token rows",
        stats: c2_stats,
    });

    let rate = |label: &str| {
        phases
            .iter()
            .find(|p| p.label == label)
            .map_or(0.0, |p| p.stats.per_second())
    };
    let a_rate = rate("A");
    let ratios = [
        ("b_over_a", "B/A ", ratio(rate("B"), a_rate), MIN_B),
        ("c_over_a", "C/A ", ratio(rate("C"), a_rate), MIN_C),
        ("d_over_a", "D/A ", ratio(rate("D"), a_rate), MIN_D),
        ("e_over_a", "E/A ", ratio(rate("E"), a_rate), MIN_E),
        (
            "c2_over_c",
            "C2/C",
            ratio(rate("C2"), rate("C")),
            MIN_C_SEEDED,
        ),
    ];
    for (_, name, value, min) in ratios {
        println!(
            "  {name} = {value:.3}  (target ≥ {min})  {}",
            verdict(value >= min)
        );
    }
    let b_as_a = counted.a == counted.b;
    let c_constant = counted.c == counted.c2;
    println!(
        "  B's statements = A's: {}  ({} vs {})  {}",
        if b_as_a { "yes" } else { "no" },
        counted.b,
        counted.a,
        verdict(b_as_a)
    );
    println!(
        "  C's statements constant after seeding: {}  ({} vs {})  {}",
        if c_constant { "yes" } else { "no" },
        counted.c2,
        counted.c,
        verdict(c_constant)
    );

    let load_after = load_average();
    let mut met: serde_json::Map<String, Value> = ratios
        .iter()
        .map(|(key, _, value, min)| ((*key).to_string(), json!(*value >= *min)))
        .collect();
    met.insert("statements_b_equal_a".into(), json!(b_as_a));
    met.insert("statements_c_constant".into(), json!(c_constant));
    let all_met = met.values().all(|v| v == &json!(true));
    let report = json!({
        "benchmark": "oauth2",
        "spec": "03 §11",
        "full_length": args.is_full_length(),
        "backend": database.backend(),
        "cores": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "connections": args.connections,
        "warmup_seconds": args.warmup,
        "measure_seconds": args.seconds,
        "phases": phases
            .iter()
            .map(|p| {
                let mut v = phase_json(&p.stats);
                v["request"] = json!(p.what);
                v["unexpected_statuses"] = json!(p.stats.errors);
                v["error_samples"] = json!(p.stats.error_samples);
                (p.label.to_lowercase(), v)
            })
            .collect::<serde_json::Map<_, _>>(),
        "ratios": ratios
            .iter()
            .map(|(key, _, value, _)| ((*key).to_string(), json!(value)))
            .collect::<serde_json::Map<_, _>>(),
        "statements_per_request": counted.json(),
        "seed": {
            "apps": args.apps,
            "token_rows": args.tokens,
            "users": counted.seed_users,
            "seconds": counted.seed_seconds,
        },
        "targets": {
            "b_over_a_min": MIN_B,
            "c_over_a_min": MIN_C,
            "d_over_a_min": MIN_D,
            "e_over_a_min": MIN_E,
            "c2_over_c_min": MIN_C_SEEDED,
            "statements_b_equal_a": true,
            "statements_c_constant": true,
        },
        "met": met,
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    let out = bench_dir.join("oauth2.json");
    std::fs::write(&out, format!("{report:#}\n"))
        .with_context(|| format!("write {}", out.display()))?;
    println!(
        "Finished in {:.0} s. Wrote {}.",
        started.elapsed().as_secs_f64(),
        display(root, &out)
    );

    let mut failed = !all_met;
    for p in &phases {
        if p.stats.errors > 0 {
            failed = true;
            eprintln!(
                "{}: {} unexpected responses, e.g.:",
                p.label, p.stats.errors
            );
            for sample in &p.stats.error_samples {
                eprintln!("  {sample}");
            }
        }
    }
    if !all_met {
        eprintln!("A target of spec 03 §11 was missed (see above).");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

struct Phase {
    label: &'static str,
    what: &'static str,
    stats: Stats,
}

async fn measure(
    label: &'static str,
    what: &'static str,
    endpoint: &Endpoint,
    connections: usize,
    plan: Plan,
) -> anyhow::Result<Phase> {
    let stats = load::run(endpoint, connections, plan, None).await?.main;
    print_phase(label, what, &stats);
    Ok(Phase { label, what, stats })
}

// ---------------------------------------------------------------------------------------
// Set-up over HTTP

/// A confidential app made through the management API, and its secret.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    secret: String,
}

impl Client {
    /// `Authorization: Basic` (03 §5.4; neither half needs form-encoding).
    fn basic(&self, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{secret}", self.id)))
    }
}

/// What the phases need, made through the API as a client would.
struct Setup {
    session: String,
    org: String,
    a: Endpoint,
    b: Endpoint,
    d: Endpoint,
    e: Endpoint,
    /// One app per refresh chain.
    chain_apps: Vec<Client>,
}

impl Setup {
    async fn new(addr: SocketAddr, chains: usize) -> anyhow::Result<Self> {
        let first = json!({
            "email": seed::EMAIL,
            "username": "admin",
            "name": "Bench Owner",
            "password": seed::PASSWORD,
        });
        expect(
            &Endpoint::new(
                addr,
                Method::POST,
                "/api/v2/users/first",
                StatusCode::CREATED,
            )?
            .json(&first),
            StatusCode::CREATED,
            "create the first user (is the database empty?)",
        )
        .await?;
        let session = login(addr).await?;
        let org = get_json(addr, &session, "/api/v2/organizations/default").await?["id"]
            .as_str()
            .context("default organization without id")?
            .to_string();
        let key = expect(
            &Endpoint::new(
                addr,
                Method::POST,
                "/api/v2/users/me/keys/tokens",
                StatusCode::CREATED,
            )?
            .header("coder-session-token", &session)?
            .json(&json!({ "token_name": "bench-oauth2", "lifetime": 86_400_000_000_000i64 })),
            StatusCode::CREATED,
            "create an API key",
        )
        .await?;
        let key = json_field(&key, "key")?;

        let access = access_url(addr);
        let mcp = format!("{access}{MCP_PATH}");
        let me = |token: &str| {
            Endpoint::new(addr, Method::GET, "/api/v2/users/me", StatusCode::OK)?
                .header("authorization", &format!("Bearer {token}"))
        };
        let a = me(&key)?;
        check_me(&a, "A (API key)").await?;

        let b_app = create_app(addr, &session, "bench-b").await?;
        let b_grant = grant(addr, &session, &b_app, &access).await?;
        let b = me(&json_field(&b_grant, "access_token")?)?;
        check_me(&b, "B (A-bound OAuth2 token)").await?;
        let anonymous = Endpoint::new(addr, Method::GET, "/api/v2/users/me", StatusCode::OK)?;
        let (status, _) = anonymous.once().await?;
        ensure!(
            status == StatusCode::UNAUTHORIZED,
            "GET /api/v2/users/me without a token answered {status}, not 401"
        );

        let d_app = create_app(addr, &session, "bench-d").await?;
        let d_code = code(addr, &session, &d_app, &access).await?;
        let wrong = wrong_secret(&d_app.secret)?;
        let d = Endpoint::new(
            addr,
            Method::POST,
            "/oauth2/tokens",
            StatusCode::UNAUTHORIZED,
        )?
        .header("authorization", &d_app.basic(&wrong))?
        .form(code_form(&d_code, &access));
        let body = expect(&d, StatusCode::UNAUTHORIZED, "D (wrong secret)").await?;
        ensure!(
            json_field(&body, "error")? == "invalid_client",
            "D answered {}",
            String::from_utf8_lossy(&body)
        );

        let e_app = create_app(addr, &session, "bench-e").await?;
        let e_grant = grant(addr, &session, &e_app, &mcp).await?;
        let e = Endpoint::new(addr, Method::POST, MCP_PATH, StatusCode::OK)?
            .header(
                "authorization",
                &format!("Bearer {}", json_field(&e_grant, "access_token")?),
            )?
            .header("accept", "application/json, text/event-stream")?
            .header("mcp-protocol-version", "2025-06-18")?
            .json(&json!({
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": { "name": "coder_get_authenticated_user", "arguments": {} },
            }));
        check_mcp(&e).await?;

        let mut chain_apps = Vec::with_capacity(chains);
        for i in 0..chains {
            chain_apps.push(create_app(addr, &session, &format!("bench-c{i}")).await?);
        }
        Ok(Self {
            session,
            org,
            a,
            b,
            d,
            e,
            chain_apps,
        })
    }

    /// A fresh grant per chain app on the server at `addr` (its access URL as `resource`);
    /// each replaces that app's earlier grant.
    async fn chains(&self, addr: SocketAddr) -> anyhow::Result<Vec<RefreshChain>> {
        let access = access_url(addr);
        let mut chains = Vec::with_capacity(self.chain_apps.len());
        for app in &self.chain_apps {
            let tokens = grant(addr, &self.session, app, &access).await?;
            chains.push(RefreshChain::new(
                addr,
                app,
                &json_field(&tokens, "refresh_token")?,
            )?);
        }
        // One refresh per chain before the phase: a broken chain fails here, not as a
        // stream of errors in the measurement.
        let (stats, chains) = load::run_each(chains, Plan::Count(1)).await?;
        if stats.errors > 0 {
            bail!("a refresh chain failed: {:?}", stats.error_samples);
        }
        Ok(chains)
    }
}

/// `http://<addr>`: the access URL `hangar server` takes from the bound address.
fn access_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Sends `endpoint` once and returns the body, or fails naming `what`.
async fn expect(endpoint: &Endpoint, status: StatusCode, what: &str) -> anyhow::Result<Bytes> {
    let (got, body) = endpoint.once().await.with_context(|| what.to_string())?;
    if got != status {
        bail!(
            "{what}: {got} (expected {status}) {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

async fn get_json(addr: SocketAddr, session: &str, path: &str) -> anyhow::Result<Value> {
    let endpoint = Endpoint::new(addr, Method::GET, path, StatusCode::OK)?
        .header("coder-session-token", session)?;
    let body = expect(&endpoint, StatusCode::OK, path).await?;
    Ok(serde_json::from_slice(&body)?)
}

fn json_field(body: &[u8], field: &str) -> anyhow::Result<String> {
    let value: Value = serde_json::from_slice(body)
        .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(body)))?;
    value[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no {field:?} in {value}"))
}

async fn check_me(endpoint: &Endpoint, what: &str) -> anyhow::Result<()> {
    let body = expect(endpoint, StatusCode::OK, what).await?;
    let username = json_field(&body, "username")?;
    ensure!(username == "admin", "{what}: /users/me is {username}");
    Ok(())
}

/// The MCP call must succeed as a tool result, not only as HTTP.
async fn check_mcp(endpoint: &Endpoint) -> anyhow::Result<()> {
    let body = expect(endpoint, StatusCode::OK, "E (MCP tools/call)").await?;
    let value: Value = serde_json::from_slice(&body)?;
    let text = value["result"]["content"][0]["text"].as_str();
    ensure!(
        value["result"]["isError"] != json!(true)
            && text
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .is_some_and(|user| user["username"] == "admin"),
        "E: unexpected tools/call result {value}"
    );
    Ok(())
}

async fn create_app(addr: SocketAddr, session: &str, name: &str) -> anyhow::Result<Client> {
    let created = expect(
        &Endpoint::new(
            addr,
            Method::POST,
            "/api/v2/oauth2-provider/apps",
            StatusCode::CREATED,
        )?
        .header("coder-session-token", session)?
        .json(&json!({ "name": name, "callback_url": CALLBACK, "icon": "" })),
        StatusCode::CREATED,
        "create an OAuth2 app",
    )
    .await?;
    let id = json_field(&created, "id")?;
    let secret = expect(
        &Endpoint::new(
            addr,
            Method::POST,
            &format!("/api/v2/oauth2-provider/apps/{id}/secrets"),
            StatusCode::CREATED,
        )?
        .header("coder-session-token", session)?
        .json(&json!({})),
        StatusCode::CREATED,
        "create an app secret",
    )
    .await?;
    Ok(Client {
        id,
        secret: json_field(&secret, "client_secret_full")?,
    })
}

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        VERIFIER.as_bytes(),
    ))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Approves the consent with the owner's header token (03 §5.3) and returns the code.
async fn code(
    addr: SocketAddr,
    session: &str,
    app: &Client,
    resource: &str,
) -> anyhow::Result<String> {
    let challenge = challenge();
    let query = form(&[
        ("client_id", &app.id),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("state", "bench"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", resource),
    ]);
    let endpoint = Endpoint::new(
        addr,
        Method::POST,
        &format!("/oauth2/authorize?{query}"),
        StatusCode::FOUND,
    )?
    .header("coder-session-token", session)?;
    let (parts, body) = endpoint.once_with_headers().await?;
    ensure!(
        parts.status == StatusCode::FOUND,
        "authorize: {} {}",
        parts.status,
        String::from_utf8_lossy(&body)
    );
    let location = parts
        .headers
        .get("location")
        .context("authorize without Location")?
        .to_str()?;
    url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("no code in {location}"))
}

fn code_form(code: &str, resource: &str) -> String {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", CALLBACK),
        ("resource", resource),
    ])
}

/// Authorize + code exchange; the token response body.
async fn grant(
    addr: SocketAddr,
    session: &str,
    app: &Client,
    resource: &str,
) -> anyhow::Result<Bytes> {
    let code = code(addr, session, app, resource).await?;
    let exchange = Endpoint::new(addr, Method::POST, "/oauth2/tokens", StatusCode::OK)?
        .header("authorization", &app.basic(&app.secret))?
        .form(code_form(&code, resource));
    expect(&exchange, StatusCode::OK, "exchange a code").await
}

/// The app's own secret prefix with another secret part: the server finds the secret and
/// compares hashes (the 401 path that costs the most).
fn wrong_secret(secret: &str) -> anyhow::Result<String> {
    let (head, tail) = secret
        .rsplit_once('_')
        .context("client secret is not coder_<prefix>_<secret>")?;
    let other = if tail.starts_with('A') { 'B' } else { 'A' };
    Ok(format!("{head}_{}", other.to_string().repeat(tail.len())))
}

/// Phase C's worker state: the refresh token of the previous response is the next request's.
struct RefreshChain {
    template: Endpoint,
    current: Endpoint,
}

impl RefreshChain {
    fn new(addr: SocketAddr, app: &Client, refresh: &str) -> anyhow::Result<Self> {
        let template = Endpoint::new(addr, Method::POST, "/oauth2/tokens", StatusCode::OK)?
            .header("authorization", &app.basic(&app.secret))?;
        let current = template.clone().form(Self::body(refresh));
        Ok(Self { template, current })
    }

    fn body(refresh: &str) -> String {
        form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
    }
}

impl Requests for RefreshChain {
    fn next(&self) -> &Endpoint {
        &self.current
    }

    fn accepted(&mut self, body: &Bytes) -> anyhow::Result<()> {
        let refresh = json_field(body, "refresh_token")?;
        self.current = self.template.clone().form(Self::body(&refresh));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Statement counts and seeding (server stopped)

/// Statements per request, over `COUNT_REQUESTS` requests.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Statements {
    selects: f64,
    writes: f64,
}

impl std::fmt::Display for Statements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} SELECT + {} writes", self.selects, self.writes)
    }
}

struct Counted {
    a: Statements,
    b: Statements,
    c: Statements,
    d: Statements,
    e: Statements,
    c2: Statements,
    seed_users: usize,
    seed_seconds: f64,
}

impl Counted {
    fn json(&self) -> Value {
        let s = |x: &Statements| json!({ "selects": x.selects, "writes": x.writes });
        json!({
            "requests": COUNT_REQUESTS,
            "a": s(&self.a),
            "b": s(&self.b),
            "c": s(&self.c),
            "d": s(&self.d),
            "e": s(&self.e),
            "c2": s(&self.c2),
        })
    }
}

/// Counts statements of `COUNT_REQUESTS` requests from `source`, one at a time, after
/// `COUNT_WARMUP` uncounted ones (they fill SQLite's auth cache as a running server's is).
async fn statements<R: Requests>(db: &Db, source: R) -> anyhow::Result<(Statements, R)> {
    let (warm, sources) = load::run_each(vec![source], Plan::Count(COUNT_WARMUP)).await?;
    ensure!(warm.errors == 0, "{:?}", warm.error_samples);
    let counter = db.counter();
    let (s0, w0) = (counter.selects(), counter.writes());
    let (stats, mut sources) = load::run_each(sources, Plan::Count(COUNT_REQUESTS)).await?;
    ensure!(stats.errors == 0, "{:?}", stats.error_samples);
    let per = |n: u64| n as f64 / COUNT_REQUESTS as f64;
    let counted = Statements {
        selects: per(counter.selects() - s0),
        writes: per(counter.writes() - w0),
    };
    Ok((counted, sources.pop().context("no source back")?))
}

async fn count_and_seed(
    args: &OAuth2Args,
    database: &Database,
    setup: &Setup,
) -> anyhow::Result<Counted> {
    let db = Db::connect(&database.connect_options()).await?;
    let result = async {
        // The tokens of B and E are bound to the stopped server's access URL, so this
        // router gets the same one; it listens elsewhere.
        let first_addr = setup.a.addr();
        let mut config = ApiConfig::new(access_url(first_addr).parse()?);
        config.experiments = Experiments::parse(["*"]).0;
        config.login_rate_limit = 0;
        let state = AppState::new(db.clone(), Arc::new(SystemClock), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = hangar_api::router(state);
        let serve = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let result = async {
            let at = |e: &Endpoint| e.clone().at(addr).map(Arc::new);
            let (a, _) = statements(&db, at(&setup.a)?).await?;
            println!("  A  {a}");
            let (b, _) = statements(&db, at(&setup.b)?).await?;
            println!("  B  {b}");
            // A chain of its own, on the access URL of the stopped server (the router's).
            let app = &setup.chain_apps[0];
            let tokens = grant(addr, &setup.session, app, &access_url(first_addr)).await?;
            let chain = RefreshChain::new(addr, app, &json_field(&tokens, "refresh_token")?)?;
            let (c, chain) = statements(&db, chain).await?;
            println!("  C  {c}");
            let (d, _) = statements(&db, at(&setup.d)?).await?;
            println!("  D  {d}");
            let (e, _) = statements(&db, at(&setup.e)?).await?;
            println!("  E  {e}");

            let seeded = Instant::now();
            let seed_users = seed_grants(&db, setup, args.apps, args.tokens).await?;
            let seed_seconds = seeded.elapsed().as_secs_f64();
            println!(
                "  seeded {} apps and {} token rows ({seed_users} users) in {seed_seconds:.1} s",
                args.apps, args.tokens
            );
            let (c2, _) = statements(&db, chain).await?;
            println!("  C2 {c2}");
            anyhow::Ok(Counted {
                a,
                b,
                c,
                d,
                e,
                c2,
                seed_users,
                seed_seconds,
            })
        }
        .await;
        serve.abort();
        let _ = serve.await;
        result
    }
    .await;
    db.close().await;
    result
}

/// Writes `apps` apps (each with a secret) and `tokens` grants through the OAuth2 store, as
/// the token endpoint would: a grant is an API key plus a token row, one per (user, app),
/// so the grants go to `ceil(tokens / apps)` new users (members of the default org).
async fn seed_grants(db: &Db, setup: &Setup, apps: usize, tokens: usize) -> anyhow::Result<usize> {
    let org: Uuid = setup.org.parse().context("default organization id")?;
    let clock = SystemClock;
    let users_needed = tokens.div_ceil(apps);
    let mut users = Vec::with_capacity(users_needed);
    for i in 0..users_needed {
        let user = db
            .insert_user(
                NewUser {
                    id: Uuid::new_v4(),
                    email: format!("grantee{i}@example.com"),
                    username: format!("grantee{i}"),
                    name: format!("Grantee {i}"),
                    hashed_password: vec![],
                    status: UserStatus::Active,
                    rbac_roles: vec![],
                    login_type: LoginType::None,
                    now: clock.now(),
                },
                vec![org],
            )
            .await
            .with_context(|| format!("insert grantee{i}"))?;
        users.push(user.id);
    }
    let users = Arc::new(users);
    let tasks = (0..SEED_TASKS)
        .map(|t| {
            let db = db.clone();
            let users = users.clone();
            tokio::spawn(async move {
                let rng = ring::rand::SystemRandom::new();
                let lifetimes = hangar_oauth2_provider::grants::Lifetimes::default();
                for i in (t..apps).step_by(SEED_TASKS) {
                    let now = SystemClock.now();
                    let app = App::managed(
                        Uuid::new_v4(),
                        format!("seeded-{i}"),
                        CALLBACK.into(),
                        String::new(),
                        now,
                    );
                    db.insert_app(&app).await?;
                    let g = generate_secret(&rng);
                    let secret = AppSecret {
                        id: Uuid::new_v4(),
                        created_at: now,
                        last_used_at: None,
                        hashed_secret: g.hashed,
                        display_secret: display_secret(&g.full),
                        app_id: app.id,
                        secret_prefix: g.prefix.into_bytes(),
                    };
                    db.insert_secret(&secret).await?;
                    // Grants i, i + apps, i + 2·apps, … belong to this app.
                    for (u, user) in users.iter().enumerate() {
                        if i + u * apps >= tokens {
                            break;
                        }
                        let k = apikey::generate();
                        let key = ApiKey {
                            id: k.id.clone(),
                            hashed_secret: k.hashed_secret.clone(),
                            user_id: *user,
                            last_used: now,
                            expires_at: now + lifetimes.access,
                            created_at: now,
                            updated_at: now,
                            login_type: LoginType::OAuth2ProviderApp,
                            lifetime_seconds: lifetimes.access.num_seconds(),
                            ip_address: "0.0.0.0".into(),
                            scope: ApiKeyScope::All,
                            token_name: format!("{user}_{}_oauth_session_token", app.id),
                        };
                        let r = generate_secret(&rng);
                        let token = Token {
                            id: Uuid::new_v4(),
                            created_at: now,
                            expires_at: now + lifetimes.refresh,
                            hash_prefix: r.prefix.into_bytes(),
                            refresh_hash: r.hashed,
                            app_secret_id: Some(secret.id),
                            api_key_id: key.id.clone(),
                            audience: None,
                            user_id: *user,
                            app_id: app.id,
                            family_id: Uuid::new_v4(),
                        };
                        db.issue_tokens(&key, &token, None, Default::default(), now)
                            .await?;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect::<Vec<_>>();
    for task in tasks {
        task.await.context("seeding task panicked")??;
    }
    Ok(users_needed)
}
