//! `cargo xtask bench auth`: spec 02 §10.1 (auth overhead) and §10.4 (memory).
//!
//! Everything is measured in one run, with one load generator, against servers started as
//! child processes from release binaries:
//! - A: a bare hyper `service_fn` answering `200 {}` (this binary, `bench-bare-server`);
//! - B: `hangar server` on SQLite with 1 000 users and 10 000 API keys, serving
//!   `GET /api/v2/experiments` with a valid session token;
//! - B2: B again while 16 password-login loops run against the same server;
//! - memory: a fresh `hangar server` with one user, idle, then after 100 000 authenticated
//!   requests and idle again.
//!
//! Only ratios are meaningful across machines; the absolute rates depend on the cores the
//! servers and the load generator share.

pub mod bare;
mod child;
mod load;
mod oauth2;
mod seed;
mod workspaces;

use crate::{ScratchDir, display, target_dir};
use anyhow::{Context, bail};
use child::Server;
use clap::{Args, Subcommand};
use hyper::{Method, StatusCode};
use load::{Endpoint, Plan, Side, Stats};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// Spec 02 §10 targets.
const MIN_B_OVER_A: f64 = 0.25;
const AIM_B_OVER_A: f64 = 0.5;
const MIN_B2_OVER_B: f64 = 0.8;
const MAX_IDLE_MIB: f64 = 64.0;
const AIM_IDLE_MIB: f64 = 30.0;
const MAX_GROWTH_MIB: f64 = 16.0;

#[derive(Debug, Subcommand)]
pub enum Which {
    /// Auth overhead (spec 02 §10.1) and server memory (§10.4).
    Auth(AuthArgs),
    /// Latest builds, queue position and acquire throughput (spec 04 §10), on PostgreSQL
    /// (HANGAR_TEST_POSTGRES_URL) and SQLite.
    Workspaces(workspaces::WorkspacesArgs),
    /// OAuth2 access tokens, token endpoint and MCP against a plain API key (spec 03 §11).
    Oauth2(oauth2::OAuth2Args),
}

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before each phase's measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds the memory server idles before each RSS reading.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Keep-alive HTTP/1.1 connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Concurrent password-login loops during B2.
    #[arg(long, default_value_t = 16)]
    logins: usize,
    /// Users in B's database (the owner included).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// API keys in B's database (the benchmark's own session included).
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Authenticated requests between the two memory readings.
    #[arg(long, default_value_t = 100_000)]
    rss_requests: u64,
    /// Also measure, on B's server, two diagnostic phases that split B's cost: the same
    /// route without a token (401 from the auth middleware, no database) and the public
    /// `GET /api/v2/buildinfo` (one SELECT).
    #[arg(long)]
    breakdown: bool,
    /// Use the release binaries as they are instead of running `cargo build --release`.
    #[arg(long)]
    no_build: bool,
}

impl AuthArgs {
    /// Whether this run used the spec's parameters (a shortened run says so in its output).
    fn is_full_length(&self) -> bool {
        self.seconds == 10
            && self.warmup == 2
            && self.idle_seconds == 60
            && self.connections == 64
            && self.logins == 16
            && self.users == 1000
            && self.keys == 10_000
            && self.rss_requests == 100_000
    }
}

pub async fn run(root: &Path, which: Which) -> anyhow::Result<ExitCode> {
    match which {
        Which::Auth(args) => auth(root, args).await,
        Which::Workspaces(args) => workspaces::run(root, args).await,
        Which::Oauth2(args) => oauth2::run(root, args).await,
    }
}

/// What a benchmark runs on: the release `hangar`, or (from a debug build of xtask) the
/// exit code of the release xtask it handed over to.
enum Release {
    Ready(PathBuf),
    HandedOver(ExitCode),
}

/// Builds the release binaries unless `no_build`, then either hands over to the release
/// xtask (an unoptimised load generator would measure itself) or returns the release
/// `hangar`.
fn release(root: &Path, no_build: bool) -> anyhow::Result<Release> {
    let release = target_dir(root).join("release");
    if !no_build {
        build_release(root)?;
    }
    if cfg!(debug_assertions) {
        return reexec(&release.join("xtask"), no_build).map(Release::HandedOver);
    }
    let hangar = release.join("hangar");
    if !hangar.is_file() {
        bail!(
            "{} is missing: run `cargo build --release -p hangar -p xtask`",
            hangar.display()
        );
    }
    Ok(Release::Ready(hangar))
}

async fn auth(root: &Path, args: AuthArgs) -> anyhow::Result<ExitCode> {
    let hangar = match release(root, args.no_build)? {
        Release::Ready(h) => h,
        Release::HandedOver(code) => return Ok(code),
    };
    let bench_dir = target_dir(root).join("bench");
    let work = ScratchDir(bench_dir.join(format!("run-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&work.0).with_context(|| format!("create {}", work.0.display()))?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Other work on the machine (a concurrent build) lowers every figure; say how busy it
    // was so a reader can tell a noisy run from a regression.
    let load_before = load_average();
    let plan = Plan::Timed {
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
    };
    println!(
        "auth overhead (spec 02 §10.1): {} keep-alive connections, {} s warm-up + {} s per phase, {cores} cores, load average {}{}",
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

    let mut bare_cmd = Command::new(std::env::current_exe().context("locate xtask binary")?);
    bare_cmd.args(["bench-bare-server", "--address", "127.0.0.1:0"]);
    let bare = Server::start(bare_cmd, &bench_dir.join("bare-server.log")).await?;
    let root_path = Endpoint::new(bare.addr, Method::GET, "/", StatusCode::OK)?;
    let a = load::run(&root_path, args.connections, plan, None)
        .await?
        .main;
    drop(bare);
    print_phase("A", "bare hyper service_fn", &a);

    let data = work.0.join("auth");
    seed::seed(&data, args.users, args.keys.saturating_sub(1)).await?;
    let server = start_hangar(&hangar, &data, &bench_dir.join("hangar-auth.log")).await?;
    let token = login(server.addr).await?;
    let experiments = experiments_endpoint(server.addr, &token).await?;
    let b = load::run(&experiments, args.connections, plan, None)
        .await?
        .main;
    print_phase("B", "hangar GET /api/v2/experiments", &b);
    let mut breakdown = Vec::new();
    if args.breakdown {
        for (label, what, endpoint) in [
            (
                "B0",
                "B without a token (401, no SQL)",
                Endpoint::new(
                    server.addr,
                    Method::GET,
                    "/api/v2/experiments",
                    StatusCode::UNAUTHORIZED,
                )?,
            ),
            (
                "B1",
                "GET /api/v2/buildinfo (1 SELECT)",
                Endpoint::new(
                    server.addr,
                    Method::GET,
                    "/api/v2/buildinfo",
                    StatusCode::OK,
                )?,
            ),
        ] {
            let stats = load::run(&endpoint, args.connections, plan, None)
                .await?
                .main;
            print_phase(label, what, &stats);
            breakdown.push((label, stats));
        }
    }
    let login_endpoint = login_endpoint(server.addr)?;
    let b2_run = load::run(
        &experiments,
        args.connections,
        plan,
        Some(Side {
            endpoint: &login_endpoint,
            concurrency: args.logins,
        }),
    )
    .await?;
    drop(server);
    let b2 = b2_run.main;
    let logins = b2_run.side.unwrap_or_default();
    print_phase("B2", &format!("B + {} login loops", args.logins), &b2);
    println!(
        "      {:<34} {:>9.1} logins/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        "(the login loops)",
        logins.per_second(),
        logins.percentile_ms(50.0),
        logins.percentile_ms(99.0),
    );

    let b_over_a = ratio(b.per_second(), a.per_second());
    let b2_over_b = ratio(b2.per_second(), b.per_second());
    println!(
        "  B/A  = {b_over_a:.3}  (target ≥ {MIN_B_OVER_A}, aim ≥ {AIM_B_OVER_A})  {}",
        verdict(b_over_a >= MIN_B_OVER_A)
    );
    println!(
        "  B2/B = {b2_over_b:.3}  (target ≥ {MIN_B2_OVER_B})  {}",
        verdict(b2_over_b >= MIN_B2_OVER_B)
    );

    let memory = measure_memory(&args, &hangar, &work.0, &bench_dir).await?;

    let mut phases = vec![("A", &a), ("B", &b), ("B2", &b2), ("B2 logins", &logins)];
    phases.extend(breakdown.iter().map(|(label, stats)| (*label, stats)));
    let report = json!({
        "benchmark": "auth_overhead",
        "spec": "02 §10.1 and §10.4",
        "full_length": args.is_full_length(),
        "cores": cores,
        "load_average_before": load_before,
        "connections": args.connections,
        "warmup_seconds": args.warmup,
        "measure_seconds": args.seconds,
        "login_loops": args.logins,
        "seed": { "users": args.users, "api_keys": args.keys },
        "a": phase_json(&a),
        "b": phase_json(&b),
        "b2": phase_json(&b2),
        "b2_logins": phase_json(&logins),
        "a_requests_per_second": a.per_second(),
        "b_requests_per_second": b.per_second(),
        "b2_requests_per_second": b2.per_second(),
        "ratio_b_over_a": b_over_a,
        "ratio_b2_over_b": b2_over_b,
        "breakdown": breakdown
            .iter()
            .map(|(label, stats)| (label.to_lowercase(), phase_json(stats)))
            .collect::<serde_json::Map<_, _>>(),
        "memory": memory.json(),
        "targets": {
            "ratio_b_over_a_min": MIN_B_OVER_A,
            "ratio_b_over_a_aim": AIM_B_OVER_A,
            "ratio_b2_over_b_min": MIN_B2_OVER_B,
            "idle_rss_mib_max": MAX_IDLE_MIB,
            "idle_rss_mib_aim": AIM_IDLE_MIB,
            "rss_growth_mib_max": MAX_GROWTH_MIB,
        },
        "met": {
            "ratio_b_over_a": b_over_a >= MIN_B_OVER_A,
            "ratio_b2_over_b": b2_over_b >= MIN_B2_OVER_B,
            "idle_rss": memory.idle_mib() <= MAX_IDLE_MIB,
            "rss_growth": memory.growth_mib() <= MAX_GROWTH_MIB,
        },
    });
    let out = bench_dir.join("auth_overhead.json");
    std::fs::write(&out, format!("{report:#}\n"))
        .with_context(|| format!("write {}", out.display()))?;
    println!("Wrote {}.", display(root, &out));

    // Failed requests make the figures meaningless (a 401 is cheaper than a 200), so the
    // run fails; missing a target does not, as benchmarks inform rather than gate.
    let mut failed = false;
    phases.push(("memory", &memory.load));
    for (name, stats) in phases {
        if stats.errors > 0 {
            failed = true;
            eprintln!("{name}: {} failed requests, e.g.:", stats.errors);
            for sample in &stats.error_samples {
                eprintln!("  {sample}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Builds both binaries in one cargo invocation, so features are unified once and neither
/// build invalidates the other.
fn build_release(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("Building release binaries (cargo build --release -p hangar -p xtask)…");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "hangar", "-p", "xtask"])
        .current_dir(root)
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    Ok(())
}

fn reexec(xtask: &Path, already_no_build: bool) -> anyhow::Result<ExitCode> {
    if !xtask.is_file() {
        bail!(
            "{} is missing: run without --no-build, or `cargo build --release -p hangar -p xtask`",
            xtask.display()
        );
    }
    let mut cmd = Command::new(xtask);
    cmd.args(std::env::args_os().skip(1));
    if !already_no_build {
        cmd.arg("--no-build");
    }
    let status = cmd
        .status()
        .with_context(|| format!("run {}", xtask.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

async fn start_hangar(binary: &Path, data_dir: &Path, log: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new(binary);
    cmd.arg("server").arg("--data-dir").arg(data_dir).args([
        "--http-address",
        "127.0.0.1:0",
        "--login-rate-limit",
        "0",
    ]);
    Server::start(cmd, log).await
}

fn login_endpoint(addr: SocketAddr) -> anyhow::Result<Endpoint> {
    let body = json!({ "email": seed::EMAIL, "password": seed::PASSWORD });
    Ok(Endpoint::new(
        addr,
        Method::POST,
        "/api/v2/users/login",
        StatusCode::CREATED,
    )?
    .json(&body))
}

/// A session token from a real password login over HTTP.
async fn login(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = login_endpoint(addr)?.once().await?;
    if status != StatusCode::CREATED {
        bail!("login failed: {status} {}", String::from_utf8_lossy(&body));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    value["session_token"]
        .as_str()
        .map(str::to_string)
        .context("login response without session_token")
}

/// The measured request, after checking that it really is authenticated: it must succeed
/// with the token and be refused without it.
async fn experiments_endpoint(addr: SocketAddr, token: &str) -> anyhow::Result<Endpoint> {
    let anonymous = Endpoint::new(addr, Method::GET, "/api/v2/experiments", StatusCode::OK)?;
    let (status, _) = anonymous.once().await?;
    if status != StatusCode::UNAUTHORIZED {
        bail!("GET /api/v2/experiments without a token answered {status}, not 401");
    }
    let endpoint = anonymous.header("coder-session-token", token)?;
    let (status, body) = endpoint.once().await?;
    if status != StatusCode::OK {
        bail!(
            "GET /api/v2/experiments with a token answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(endpoint)
}

/// Spec 02 §10.4 on a fresh server with one user.
struct Memory {
    idle_seconds: u64,
    idle_kib: u64,
    after_kib: u64,
    peak_kib: u64,
    load: Stats,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Memory {
    fn idle_mib(&self) -> f64 {
        mib(self.idle_kib)
    }

    fn growth_mib(&self) -> f64 {
        mib(self.after_kib) - mib(self.idle_kib)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "idle_seconds": self.idle_seconds,
            "idle_rss_mib": self.idle_mib(),
            "requests": self.load.ok,
            "requests_per_second": self.load.per_second(),
            "after_load_rss_mib": mib(self.after_kib),
            "growth_mib": self.growth_mib(),
            "peak_rss_mib": mib(self.peak_kib),
        })
    }
}

async fn measure_memory(
    args: &AuthArgs,
    hangar: &Path,
    work: &Path,
    bench_dir: &Path,
) -> anyhow::Result<Memory> {
    println!(
        "memory (spec 02 §10.4): SQLite, one user, {} s idle, {} requests, {} s idle",
        args.idle_seconds, args.rss_requests, args.idle_seconds
    );
    let data: PathBuf = work.join("memory");
    seed::seed(&data, 1, 0).await?;
    let server = start_hangar(hangar, &data, &bench_dir.join("hangar-memory.log")).await?;
    let idle = Duration::from_secs(args.idle_seconds);
    tokio::time::sleep(idle).await;
    let (idle_kib, _) = server.memory_kib()?;
    println!(
        "  idle RSS:            {:>7.1} MiB  (target ≤ {MAX_IDLE_MIB} MiB, aim ≤ {AIM_IDLE_MIB} MiB)  {}",
        mib(idle_kib),
        verdict(mib(idle_kib) <= MAX_IDLE_MIB)
    );
    let token = login(server.addr).await?;
    let experiments = experiments_endpoint(server.addr, &token).await?;
    let load = load::run(
        &experiments,
        args.connections,
        Plan::Count(args.rss_requests),
        None,
    )
    .await?
    .main;
    tokio::time::sleep(idle).await;
    let (after_kib, peak_kib) = server.memory_kib()?;
    drop(server);
    let memory = Memory {
        idle_seconds: args.idle_seconds,
        idle_kib,
        after_kib,
        peak_kib,
        load,
    };
    println!(
        "  after load + idle:   {:>7.1} MiB  ({:+.1} MiB; target ≤ +{MAX_GROWTH_MIB} MiB)  {}  [{} requests at {:.0}/s, peak RSS {:.1} MiB]",
        mib(after_kib),
        memory.growth_mib(),
        verdict(memory.growth_mib() <= MAX_GROWTH_MIB),
        memory.load.ok,
        memory.load.per_second(),
        mib(peak_kib),
    );
    Ok(memory)
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg` (Linux only).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_phase(label: &str, what: &str, stats: &Stats) {
    println!(
        "  {label:<3} {what:<34} {:>9.0} req/s     p50 {:>7.2} ms  p99 {:>7.2} ms{}",
        stats.per_second(),
        stats.percentile_ms(50.0),
        stats.percentile_ms(99.0),
        if stats.errors > 0 {
            format!("  ({} errors)", stats.errors)
        } else {
            String::new()
        }
    );
}

fn phase_json(stats: &Stats) -> serde_json::Value {
    json!({
        "completed": stats.ok,
        "errors": stats.errors,
        "seconds": stats.seconds,
        "per_second": stats.per_second(),
        "p50_ms": stats.percentile_ms(50.0),
        "p99_ms": stats.percentile_ms(99.0),
    })
}
