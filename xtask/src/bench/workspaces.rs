//! `cargo xtask bench workspaces`: the performance targets of spec 04 §10.
//!
//! Three measurements, each on its own freshly migrated database, each printing its ratios
//! from one run and the plan shapes behind them:
//! 1. **Latest builds** (PostgreSQL, and SQLite at a smaller scale): `workspace_latest_builds`
//!    restricted to a set of workspace ids, against a naive `DISTINCT ON` / `GROUP BY` view of
//!    the same rows; then the same id set after doubling the builds per workspace. Two more
//!    forms are measured because the view's plan alone does not tell the whole story: the
//!    view's LATERAL lookup driven by `workspaces.id` (the per-workspace lookup of §6.9),
//!    and the join the stores write (`workspaces w LEFT JOIN workspace_latest_builds lb ON
//!    lb.workspace_id = w.id WHERE w.id IN (…)`).
//! 2. **Queue position** (PostgreSQL): `WorkspaceStore::queue_positions` for 10 pending ids
//!    with 1 000 pending jobs and 20 live daemons, as the finished jobs grow tenfold.
//! 3. **Acquire** (both backends): pending echo jobs drained by 1, 4 and 16 concurrent
//!    `WorkspaceStore::acquire` loops; every job must be acquired exactly once.
//!
//! PostgreSQL work happens in scratch databases `hangar_bench_<random>` created next to the
//! one `HANGAR_TEST_POSTGRES_URL` names (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and dropped afterwards, also when a step fails. SQLite uses a file under
//! `target/bench/`. Benchmarks inform: a missed target is printed, never an error; wrong
//! answers (a job acquired twice, forms that disagree) fail the command.

use super::{build_release, load_average, ratio, reexec, verdict};
use crate::{ScratchDir, display, target_dir};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hangar_core::{Clock, SystemClock};
use hangar_db::{Backend, ConnectOptions, Db, Value};
use hangar_workspaces::model::{ProvisionerType, Tags};
use hangar_workspaces::store::{AcquireRequest, DaemonRegistration, WorkspaceStore};
use serde_json::{Map, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Spec 04 §10 targets.
const MIN_NAIVE_OVER_LATERAL: f64 = 20.0;
const MAX_DOUBLED_OVER_BASE: f64 = 1.5;
const MAX_QUEUE_TENFOLD: f64 = 1.5;
const MIN_ACQUIRE_16_OVER_1: f64 = 3.0;

/// The queue measurement goes on to 10× its second size (1 M → 10 M finished jobs) only
/// when adding those rows is projected to take less than this; otherwise its tenfold
/// comparison is the first two sizes (100 000 → 1 M), and it says so.
const STRETCH_BUDGET: Duration = Duration::from_secs(180);
/// A slow query stops repeating once it has run this long (and at least `MIN_RUNS` times).
const QUERY_BUDGET: Duration = Duration::from_secs(15);
const MIN_RUNS: usize = 5;
/// Finished jobs per INSERT statement (one transaction each).
const CHUNK: u64 = 500_000;
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const ACQUIRERS: [usize; 3] = [1, 4, 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// A smoke test: small tables, well under a minute.
    Small,
    /// The spec's sizes (about ten minutes on 2 cores).
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Postgres,
    Sqlite,
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct WorkspacesArgs {
    /// Table sizes: `full` is the spec's, `small` a quick smoke test.
    #[arg(long, value_enum, default_value_t = Scale::Full)]
    scale: Scale,
    /// Which databases to measure (PostgreSQL from HANGAR_TEST_POSTGRES_URL).
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Timed runs per query (the median is reported); a slow query stops after 5 runs once
    /// it has taken 15 s.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Use the release binary as it is instead of running `cargo build --release`.
    #[arg(long)]
    no_build: bool,
    /// Run only these measurements (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Measurement>,
}

/// One of the three measurements of 04 §10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measurement {
    Latest,
    Queue,
    Acquire,
}

impl WorkspacesArgs {
    fn runs(&self, m: Measurement) -> bool {
        self.only.is_empty() || self.only.contains(&m)
    }
}

/// Table sizes of one scale.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    pg_workspaces: u64,
    sqlite_workspaces: u64,
    builds_per_workspace: u64,
    ids: usize,
    /// Finished jobs of the first two queue measurements; the third (10× the second) runs
    /// only when `stretch` and it fits `STRETCH_BUDGET`.
    queue_finished: [u64; 2],
    stretch: bool,
    pending: u64,
    daemons: usize,
    queue_ids: usize,
    pg_acquire_jobs: u64,
    sqlite_acquire_jobs: u64,
}

impl Sizes {
    fn of(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self {
                pg_workspaces: 100_000,
                sqlite_workspaces: 10_000,
                builds_per_workspace: 10,
                ids: 1_000,
                queue_finished: [100_000, 1_000_000],
                stretch: true,
                pending: 1_000,
                daemons: 20,
                queue_ids: 10,
                pg_acquire_jobs: 10_000,
                sqlite_acquire_jobs: 2_000,
            },
            Scale::Small => Self {
                pg_workspaces: 5_000,
                sqlite_workspaces: 2_000,
                builds_per_workspace: 10,
                ids: 200,
                queue_finished: [10_000, 100_000],
                stretch: false,
                pending: 100,
                daemons: 20,
                queue_ids: 10,
                pg_acquire_jobs: 1_000,
                sqlite_acquire_jobs: 300,
            },
        }
    }
}

pub async fn run(root: &Path, args: WorkspacesArgs) -> anyhow::Result<ExitCode> {
    if !args.no_build {
        build_release(root)?;
    }
    if cfg!(debug_assertions) {
        // An unoptimised client would add its own decoding time to every figure.
        return reexec(
            &target_dir(root).join("release").join("xtask"),
            args.no_build,
        );
    }
    let sizes = Sizes::of(args.scale);
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();
    println!(
        "workspaces benchmarks (spec 04 §10): scale {:?}, {cores} cores, load average {}",
        args.scale,
        load_before.as_deref().unwrap_or("unknown")
    );
    let mut report = Map::new();
    report.insert("benchmark".into(), json!("workspaces"));
    report.insert("spec".into(), json!("04 §10"));
    report.insert(
        "scale".into(),
        json!(format!("{:?}", args.scale).to_lowercase()),
    );
    report.insert("cores".into(), json!(cores));
    report.insert("load_average_before".into(), json!(load_before));
    if matches!(args.backend, BackendChoice::Postgres | BackendChoice::Both) {
        report.insert("postgres".into(), postgres(&args, &sizes).await?);
    }
    if matches!(args.backend, BackendChoice::Sqlite | BackendChoice::Both) {
        report.insert("sqlite".into(), sqlite(root, &args, &sizes).await?);
    }
    report.insert(
        "seconds".into(),
        json!(started.elapsed().as_secs_f64().round()),
    );
    let out = target_dir(root).join("bench").join("workspaces.json");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&out, format!("{:#}\n", serde_json::Value::Object(report)))
        .with_context(|| format!("write {}", out.display()))?;
    println!(
        "Finished in {:.0} s. Wrote {}.",
        started.elapsed().as_secs_f64(),
        display(root, &out)
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// Backends

/// The admin connection that creates and drops scratch databases.
struct Postgres {
    admin: Db,
    url: String,
}

impl Postgres {
    /// A migrated scratch database `hangar_bench_<random>`; dropped again if migrating fails.
    async fn scratch(&self) -> anyhow::Result<(String, Db)> {
        let name = format!("hangar_bench_{}", Uuid::new_v4().simple());
        self.admin
            .execute(&format!("CREATE DATABASE {name}"), vec![])
            .await
            .with_context(|| format!("create database {name}"))?;
        let opened = async {
            let mut url = url::Url::parse(&self.url).context("HANGAR_TEST_POSTGRES_URL")?;
            url.set_path(&format!("/{name}"));
            let mut opts = ConnectOptions::new(url.as_str());
            // 16 acquirers, the lock sampler and a spare.
            opts.max_connections = 20;
            opts.retry_for = Duration::from_secs(5);
            let db = Db::connect(&opts).await?;
            if let Err(e) = db.migrate().await {
                db.close().await;
                return Err(anyhow::Error::from(e).context("migrate the scratch database"));
            }
            Ok(db)
        }
        .await;
        match opened {
            Ok(db) => Ok((name, db)),
            Err(e) => {
                self.drop_scratch(&name).await;
                Err(e)
            }
        }
    }

    async fn drop_scratch(&self, name: &str) {
        if let Err(e) = self
            .admin
            .execute(
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                vec![],
            )
            .await
        {
            eprintln!("warning: could not drop scratch database {name}: {e}");
        }
    }
}

async fn postgres(args: &WorkspacesArgs, sizes: &Sizes) -> anyhow::Result<serde_json::Value> {
    let url = std::env::var("HANGAR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string());
    let mut opts = ConnectOptions::new(&url);
    opts.max_connections = 2;
    opts.retry_for = Duration::from_secs(5);
    let admin = Db::connect(&opts)
        .await
        .with_context(|| format!("connect to {url} (set HANGAR_TEST_POSTGRES_URL)"))?;
    let version = admin
        .query("SELECT version() AS v", vec![])
        .await?
        .first()
        .map(|r| r.string("v"))
        .transpose()?
        .unwrap_or_default();
    let superuser = admin
        .query(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            vec![],
        )
        .await?
        .first()
        .map(|r| r.bool("rolsuper"))
        .transpose()?
        .unwrap_or(false);
    let pg = Postgres { admin, url };
    println!();
    println!("== PostgreSQL: {version}");
    if superuser {
        println!(
            "   bulk loads run with session_replication_role = replica (no FK triggers); the rows satisfy the FKs by construction, checked after each load"
        );
    }
    let mut out = Map::new();
    out.insert("version".into(), json!(version));

    if args.runs(Measurement::Latest) {
        let (name, db) = pg.scratch().await?;
        println!("-- latest builds (04 §10): scratch database {name}");
        let result = latest_builds(
            &db,
            sizes.pg_workspaces,
            sizes.builds_per_workspace,
            sizes.ids,
            args.repeat,
            superuser,
        )
        .await;
        db.close().await;
        pg.drop_scratch(&name).await;
        out.insert("latest_builds".into(), result?);
    }

    if args.runs(Measurement::Queue) {
        let (name, db) = pg.scratch().await?;
        println!("-- queue position (04 §10): scratch database {name}");
        let result = queue(&db, sizes, args.repeat, superuser).await;
        db.close().await;
        pg.drop_scratch(&name).await;
        out.insert("queue_position".into(), result?);
    }

    if args.runs(Measurement::Acquire) {
        let (name, db) = pg.scratch().await?;
        println!("-- acquire (04 §10): scratch database {name}");
        let result = acquire(&db, sizes.pg_acquire_jobs).await;
        db.close().await;
        pg.drop_scratch(&name).await;
        out.insert("acquire".into(), result?);
    }

    pg.admin.close().await;
    Ok(serde_json::Value::Object(out))
}

async fn sqlite(
    root: &Path,
    args: &WorkspacesArgs,
    sizes: &Sizes,
) -> anyhow::Result<serde_json::Value> {
    let work = ScratchDir(
        target_dir(root)
            .join("bench")
            .join(format!("workspaces-{}", Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&work.0).with_context(|| format!("create {}", work.0.display()))?;
    println!();
    println!(
        "== SQLite (a file under {}; no ANALYZE, as Hangar never runs it)",
        display(root, &work.0)
    );
    let mut out = Map::new();

    if args.runs(Measurement::Latest) {
        let db = open_sqlite(&work.0.join("latest.db")).await?;
        println!("-- latest builds (04 §10, at SQLite's scale)");
        let result = latest_builds(
            &db,
            sizes.sqlite_workspaces,
            sizes.builds_per_workspace,
            sizes.ids,
            args.repeat,
            false,
        )
        .await;
        db.close().await;
        out.insert("latest_builds".into(), result?);
    }

    if args.runs(Measurement::Acquire) {
        let db = open_sqlite(&work.0.join("acquire.db")).await?;
        println!("-- acquire (04 §10; SQLite has one writer, so expect no scaling)");
        let result = acquire(&db, sizes.sqlite_acquire_jobs).await;
        db.close().await;
        out.insert("acquire".into(), result?);
    }
    Ok(serde_json::Value::Object(out))
}

async fn open_sqlite(path: &Path) -> anyhow::Result<Db> {
    let db = Db::connect(&ConnectOptions::sqlite_file(path)).await?;
    db.migrate().await?;
    Ok(db)
}

// ---------------------------------------------------------------------------------------
// Data

/// The rows every generated job, workspace and build points at.
#[derive(Debug, Clone, Copy)]
struct Fixture {
    org: Uuid,
    user: Uuid,
    file: Uuid,
    version: Uuid,
    template: Uuid,
}

/// One user, one file, one imported template version and its template, in the seeded
/// default organization.
async fn fixture(db: &Db) -> anyhow::Result<Fixture> {
    let c = db.ctx();
    let now = SystemClock.now();
    let org = db
        .query(
            "SELECT id FROM organizations WHERE is_default = TRUE",
            vec![],
        )
        .await?
        .first()
        .context("no default organization (migrations seed it)")?
        .uuid("id")?;
    let f = Fixture {
        org,
        user: Uuid::new_v4(),
        file: Uuid::new_v4(),
        version: Uuid::new_v4(),
        template: Uuid::new_v4(),
    };
    let import_job = Uuid::new_v4();
    db.execute(
        "INSERT INTO users (id, email, username, name, hashed_password, created_at, updated_at, status) \
         VALUES ($1, 'bench@example.com', 'bench', 'Bench', $2, $3, $3, 'active'::user_status)",
        vec![c.uuid(f.user), c.bytes(vec![0]), c.ts(now)],
    )
    .await?;
    db.execute(
        "INSERT INTO files (id, hash, created_at, created_by, mimetype, data) \
         VALUES ($1, $2, $3, $4, 'application/x-tar', $5)",
        vec![
            c.uuid(f.file),
            c.text("0".repeat(64)),
            c.ts(now),
            c.uuid(f.user),
            c.bytes(vec![0]),
        ],
    )
    .await?;
    db.execute(
        "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, completed_at, organization_id, \
           initiator_id, provisioner, type, file_id, input) \
         VALUES ($1, $2, $2, $2, $2, $3, $4, 'echo'::provisioner_type, \
           'template_version_import'::provisioner_job_type, $5, $6::jsonb)",
        vec![
            c.uuid(import_job),
            c.ts(now),
            c.uuid(f.org),
            c.uuid(f.user),
            c.uuid(f.file),
            c.json(&json!({ "template_version_id": f.version })),
        ],
    )
    .await?;
    db.execute(
        "INSERT INTO template_versions (id, organization_id, created_at, updated_at, name, job_id, created_by) \
         VALUES ($1, $2, $3, $3, 'v1', $4, $5)",
        vec![
            c.uuid(f.version),
            c.uuid(f.org),
            c.ts(now),
            c.uuid(import_job),
            c.uuid(f.user),
        ],
    )
    .await?;
    db.execute(
        "INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner, active_version_id, created_by) \
         VALUES ($1, $2, $2, $3, 'bench', 'echo'::provisioner_type, $4, $5)",
        vec![
            c.uuid(f.template),
            c.ts(now),
            c.uuid(f.org),
            c.uuid(f.version),
            c.uuid(f.user),
        ],
    )
    .await?;
    db.execute(
        "UPDATE template_versions SET template_id = $1 WHERE id = $2",
        vec![c.uuid(f.template), c.uuid(f.version)],
    )
    .await?;
    Ok(f)
}

/// A random v4-shaped UUID in SQLite's text form (a fresh value per row).
const SQLITE_UUID: &str = "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
    substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";

/// `2026-01-01` plus `seconds` (an SQL expression), in SQLite's timestamp text.
fn sqlite_ts(seconds: &str) -> String {
    format!(
        "(strftime('%Y-%m-%d %H:%M:%f', '2026-01-01 00:00:00', '+' || ({seconds}) || ' seconds') || '000+00:00')"
    )
}

/// `SELECT n FROM <series 1..=count>` as a recursive CTE (SQLite).
fn sqlite_series(name: &str, from: u64, to: u64) -> String {
    format!(
        "WITH RECURSIVE {name}(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM {name} WHERE n < {to})"
    )
}

/// Runs one bulk statement, on PostgreSQL in a transaction with FK triggers off when
/// `bulk` (superuser only).
async fn bulk_exec(db: &Db, sql: &str, bulk: bool) -> anyhow::Result<u64> {
    if bulk && db.backend() == Backend::Postgres {
        let tx = db.begin().await?;
        tx.execute("SET LOCAL session_replication_role = replica", vec![])
            .await?;
        let n = tx.execute(sql, vec![]).await?;
        tx.commit().await?;
        Ok(n)
    } else {
        Ok(db.execute(sql, vec![]).await?)
    }
}

async fn insert_workspaces(db: &Db, f: &Fixture, n: u64, bulk: bool) -> anyhow::Result<()> {
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name) \
             SELECT md5('ws' || n)::uuid, t, t, '{user}', '{org}', '{template}', 'ws-' || n \
             FROM generate_series(1, {n}) n \
             CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + n * interval '1 second' AS t) tt",
            user = f.user,
            org = f.org,
            template = f.template,
        ),
        Backend::Sqlite => {
            db.execute(
                &format!(
                    "CREATE TABLE bench_ws AS {} SELECT n, {SQLITE_UUID} AS id FROM s",
                    sqlite_series("s", 1, n)
                ),
                vec![],
            )
            .await?;
            format!(
                "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name) \
                 SELECT id, {ts}, {ts}, '{user}', '{org}', '{template}', 'ws-' || n FROM bench_ws ORDER BY n",
                ts = sqlite_ts("n"),
                user = f.user,
                org = f.org,
                template = f.template,
            )
        }
    };
    bulk_exec(db, &sql, bulk).await?;
    Ok(())
}

/// Builds `from..=to` of every workspace (one statement per build number, so the tables
/// grow in time order as real builds do), each with its finished job.
async fn insert_builds(
    db: &Db,
    f: &Fixture,
    workspaces: u64,
    from: u64,
    to: u64,
    bulk: bool,
) -> anyhow::Result<()> {
    for b in from..=to {
        match db.backend() {
            Backend::Postgres => {
                let series = format!(
                    "FROM generate_series(1, {workspaces}) n \
                     CROSS JOIN LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + ({b} * {workspaces} + n) * interval '1 second' AS t) tt"
                );
                bulk_exec(
                    db,
                    &format!(
                        "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, completed_at, \
                           organization_id, initiator_id, provisioner, type, file_id, input) \
                         SELECT md5('job' || n || '-' || {b})::uuid, t, t, t, t + interval '30 seconds', '{org}', '{user}', \
                           'echo', 'workspace_build', '{file}', \
                           jsonb_build_object('workspace_build_id', md5('build' || n || '-' || {b})::uuid) {series}",
                        org = f.org,
                        user = f.user,
                        file = f.file,
                    ),
                    bulk,
                )
                .await?;
                bulk_exec(
                    db,
                    &format!(
                        "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, template_version_id, \
                           build_number, transition, initiator_id, job_id) \
                         SELECT md5('build' || n || '-' || {b})::uuid, t, t, md5('ws' || n)::uuid, '{version}', {b}, \
                           '{transition}', '{user}', md5('job' || n || '-' || {b})::uuid {series}",
                        version = f.version,
                        user = f.user,
                        transition = if b % 2 == 1 { "start" } else { "stop" },
                    ),
                    bulk,
                )
                .await?;
            }
            Backend::Sqlite => {
                db.execute("DROP TABLE IF EXISTS bench_b", vec![]).await?;
                db.execute(
                    &format!(
                        "CREATE TABLE bench_b AS SELECT n, id AS workspace_id, {SQLITE_UUID} AS build_id, \
                           {SQLITE_UUID} AS job_id, {ts} AS t FROM bench_ws ORDER BY n",
                        ts = sqlite_ts(&format!("{b} * {workspaces} + n")),
                    ),
                    vec![],
                )
                .await?;
                db.execute(
                    &format!(
                        "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, completed_at, \
                           organization_id, initiator_id, provisioner, type, file_id, input) \
                         SELECT job_id, t, t, t, t, '{org}', '{user}', 'echo', 'workspace_build', '{file}', \
                           json_object('workspace_build_id', build_id) FROM bench_b ORDER BY n",
                        org = f.org,
                        user = f.user,
                        file = f.file,
                    ),
                    vec![],
                )
                .await?;
                db.execute(
                    &format!(
                        "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, template_version_id, \
                           build_number, transition, initiator_id, job_id) \
                         SELECT build_id, t, t, workspace_id, '{version}', {b}, '{transition}', '{user}', job_id \
                         FROM bench_b ORDER BY n",
                        version = f.version,
                        user = f.user,
                        transition = if b % 2 == 1 { "start" } else { "stop" },
                    ),
                    vec![],
                )
                .await?;
            }
        }
    }
    if db.backend() == Backend::Sqlite {
        db.execute("DROP TABLE IF EXISTS bench_b", vec![]).await?;
    }
    Ok(())
}

/// After a bulk load: statistics (PostgreSQL, as autovacuum would eventually) and, when the
/// FK triggers were off, proof that the rows satisfy the FKs anyway.
async fn after_load(db: &Db, tables: &[&str], bulk: bool) -> anyhow::Result<()> {
    if db.backend() != Backend::Postgres {
        return Ok(());
    }
    for t in tables {
        db.execute(&format!("VACUUM ANALYZE {t}"), vec![]).await?;
    }
    if bulk {
        let checks = [
            (
                "workspace_builds",
                "SELECT count(*) AS n FROM workspace_builds wb \
                 WHERE NOT EXISTS (SELECT 1 FROM provisioner_jobs pj WHERE pj.id = wb.job_id) \
                    OR NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = wb.workspace_id) \
                    OR NOT EXISTS (SELECT 1 FROM template_versions v WHERE v.id = wb.template_version_id) \
                    OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = wb.initiator_id)",
            ),
            (
                "provisioner_jobs",
                "SELECT count(*) AS n FROM provisioner_jobs pj \
                 WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = pj.file_id) \
                    OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = pj.initiator_id) \
                    OR NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = pj.organization_id)",
            ),
        ];
        for (table, sql) in checks {
            if tables.contains(&table) {
                let orphans = db.query(sql, vec![]).await?[0].i64("n")?;
                if orphans != 0 {
                    bail!("{orphans} rows of {table} break a foreign key");
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Latest builds

/// One of the measured query forms.
struct Form {
    key: &'static str,
    label: &'static str,
    sql: String,
}

fn latest_forms(backend: Backend, filter: &str) -> Vec<Form> {
    let cols = "wb.id, wb.workspace_id, wb.template_version_id, wb.job_id, \
                wb.template_version_preset_id, wb.transition, wb.created_at, pj.job_status";
    let direct = match backend {
        Backend::Postgres => format!(
            "SELECT lb.* FROM workspaces w LEFT JOIN LATERAL (SELECT {cols} \
               FROM workspace_builds wb JOIN provisioner_jobs pj ON pj.id = wb.job_id \
               WHERE wb.workspace_id = w.id ORDER BY wb.build_number DESC LIMIT 1) lb ON TRUE \
             WHERE w.deleted = FALSE AND w.id {filter}"
        ),
        Backend::Sqlite => format!(
            "SELECT {cols} FROM workspaces w \
             LEFT JOIN workspace_builds wb ON wb.id = (SELECT b.id FROM workspace_builds b \
               WHERE b.workspace_id = w.id ORDER BY b.build_number DESC LIMIT 1) \
             LEFT JOIN provisioner_jobs pj ON pj.id = wb.job_id \
             WHERE w.deleted = FALSE AND w.id {filter}"
        ),
    };
    vec![
        Form {
            key: "view",
            label: "workspace_latest_builds (the view)",
            sql: format!("SELECT * FROM workspace_latest_builds WHERE workspace_id {filter}"),
        },
        Form {
            key: "naive",
            label: "naive_latest_builds (naive view)",
            sql: format!("SELECT * FROM naive_latest_builds WHERE workspace_id {filter}"),
        },
        Form {
            key: "direct",
            label: "the view's lookup driven by w.id",
            sql: direct,
        },
        Form {
            key: "store_join",
            label: "stores' join on the view",
            sql: format!(
                "SELECT lb.id FROM workspaces w LEFT JOIN workspace_latest_builds lb \
                   ON lb.workspace_id = w.id WHERE w.id {filter}"
            ),
        },
    ]
}

/// The naive view of 04 §10: DISTINCT ON over the whole join (PostgreSQL), a GROUP BY
/// max(build_number) join (SQLite). Not temporary: the pool's other connections need it,
/// and the scratch database goes away anyway.
fn naive_view(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "CREATE VIEW naive_latest_builds AS \
             SELECT DISTINCT ON (wb.workspace_id) wb.id, wb.workspace_id, wb.template_version_id, wb.job_id, \
               wb.template_version_preset_id, wb.transition, wb.created_at, pj.job_status \
             FROM workspace_builds wb JOIN provisioner_jobs pj ON pj.id = wb.job_id \
             JOIN workspaces w ON w.id = wb.workspace_id AND w.deleted = FALSE \
             ORDER BY wb.workspace_id, wb.build_number DESC"
        }
        Backend::Sqlite => {
            "CREATE VIEW naive_latest_builds AS \
             SELECT wb.id, wb.workspace_id, wb.template_version_id, wb.job_id, \
               wb.template_version_preset_id, wb.transition, wb.created_at, pj.job_status \
             FROM workspace_builds wb \
             JOIN (SELECT workspace_id, MAX(build_number) AS build_number FROM workspace_builds \
                   GROUP BY workspace_id) m \
               ON m.workspace_id = wb.workspace_id AND m.build_number = wb.build_number \
             JOIN provisioner_jobs pj ON pj.id = wb.job_id \
             JOIN workspaces w ON w.id = wb.workspace_id AND w.deleted = FALSE"
        }
    }
}

/// The id filter of a form and its bound values: `= ANY(ARRAY[$1, …])` on PostgreSQL, an
/// `IN ($1, …)` list on SQLite, one uuid parameter per id either way.
///
/// Not `= ANY($1::uuid[])` with one text parameter: sea-orm binds no arrays here, and the
/// text-to-`uuid[]` cast is not constant-folded (`array_in` is only stable), so PostgreSQL
/// would parse the whole list again for every row the filter sees.
fn id_filter(db: &Db, ids: &[Uuid]) -> (String, Vec<Value>) {
    let c = db.ctx();
    let marks = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = match db.backend() {
        Backend::Postgres => format!("= ANY(ARRAY[{marks}])"),
        Backend::Sqlite => format!("IN ({marks})"),
    };
    (filter, ids.iter().map(|id| c.uuid(*id)).collect())
}

#[derive(Debug, Clone)]
struct Timing {
    median_ms: f64,
    runs: usize,
    rows: usize,
    /// The `id` column of the result, sorted: the forms must agree.
    ids: Vec<Uuid>,
}

impl Timing {
    fn json(&self) -> serde_json::Value {
        json!({ "median_ms": self.median_ms, "runs": self.runs, "rows": self.rows })
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    match samples.len() {
        0 => 0.0,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}

/// One untimed run, then up to `repeat` timed runs (fewer for a slow query); every run
/// fetches and decodes all rows.
async fn time_query(db: &Db, sql: &str, values: &[Value], repeat: usize) -> anyhow::Result<Timing> {
    let rows = db.query(sql, values.to_vec()).await?;
    let mut ids = rows
        .iter()
        .map(|r| r.opt_uuid("id"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    ids.sort_unstable();
    let count = rows.len();
    let mut samples = Vec::with_capacity(repeat);
    let started = Instant::now();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let rows = db.query(sql, values.to_vec()).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if rows.len() != count {
            bail!(
                "row count changed between runs ({count}, then {})",
                rows.len()
            );
        }
        if samples.len() >= MIN_RUNS && started.elapsed() > QUERY_BUDGET {
            break;
        }
    }
    Ok(Timing {
        runs: samples.len(),
        median_ms: median(samples),
        rows: count,
        ids,
    })
}

async fn explain(db: &Db, sql: &str, values: &[Value]) -> anyhow::Result<Vec<String>> {
    match db.backend() {
        Backend::Postgres => db
            .query(&format!("EXPLAIN (COSTS OFF) {sql}"), values.to_vec())
            .await?
            .iter()
            .map(|r| Ok(r.string("QUERY PLAN")?))
            .collect(),
        Backend::Sqlite => {
            let rows = db
                .query(&format!("EXPLAIN QUERY PLAN {sql}"), values.to_vec())
                .await?;
            // Indent each step under its parent, like the sqlite3 shell.
            let mut depth: Vec<(i64, usize)> = Vec::new();
            let mut lines = Vec::new();
            for r in &rows {
                let (id, parent) = (r.i64("id")?, r.i64("parent")?);
                let d = depth
                    .iter()
                    .find(|(i, _)| *i == parent)
                    .map_or(0, |(_, d)| d + 1);
                depth.push((id, d));
                lines.push(format!("{}{}", "  ".repeat(d), r.string("detail")?));
            }
            Ok(lines)
        }
    }
}

/// What `EXPLAIN (ANALYZE, BUFFERS)` says about one form (PostgreSQL).
struct Analyzed {
    /// `(actual rows, loops)` of the first plan node that names the index asked about.
    index: Option<(u64, u64)>,
    /// The root node's `Buffers:` line (shared hit / read): reads came from outside
    /// `shared_buffers`.
    buffers: Option<String>,
}

async fn analyze(db: &Db, sql: &str, values: &[Value], index: &str) -> anyhow::Result<Analyzed> {
    let rows = db
        .query(
            &format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"),
            values.to_vec(),
        )
        .await?;
    let mut out = Analyzed {
        index: None,
        buffers: None,
    };
    for r in &rows {
        let line = r.string("QUERY PLAN")?;
        if out.buffers.is_none() && line.trim().starts_with("Buffers:") {
            out.buffers = Some(
                line.trim()
                    .trim_start_matches("Buffers:")
                    .trim()
                    .to_string(),
            );
        }
        if out.index.is_none() && line.contains(index) {
            let field = |name: &str| {
                let start = line.find(name)? + name.len();
                let digits: String = line[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse::<u64>().ok()
            };
            out.index = field("rows=").zip(field("loops="));
        }
    }
    Ok(out)
}

/// What a plan touches, for the checks 04 §10 asks for.
#[derive(Debug, Default)]
struct PlanCheck {
    builds_index: bool,
    jobs_pkey: bool,
    /// Full scans of `workspace_builds` or `provisioner_jobs`.
    full_scans: Vec<String>,
    /// Full scans of anything else (informational).
    other_scans: Vec<String>,
}

struct IndexNames {
    builds: String,
    jobs_pkey: String,
}

async fn index_names(db: &Db) -> anyhow::Result<IndexNames> {
    if db.backend() == Backend::Postgres {
        return Ok(IndexNames {
            builds: "workspace_builds_workspace_id_build_number_key".into(),
            jobs_pkey: "provisioner_jobs_pkey".into(),
        });
    }
    // SQLite names the indexes of table constraints itself.
    let builds = db
        .query(
            "SELECT il.name AS name FROM pragma_index_list('workspace_builds') il \
             WHERE (SELECT group_concat(ii.name, ',') FROM pragma_index_info(il.name) ii) = 'workspace_id,build_number'",
            vec![],
        )
        .await?
        .first()
        .context("no (workspace_id, build_number) index on workspace_builds")?
        .string("name")?;
    let jobs_pkey = db
        .query(
            "SELECT name FROM pragma_index_list('provisioner_jobs') WHERE origin = 'pk'",
            vec![],
        )
        .await?
        .first()
        .context("no primary key index on provisioner_jobs")?
        .string("name")?;
    Ok(IndexNames { builds, jobs_pkey })
}

fn check_plan(backend: Backend, plan: &[String], names: &IndexNames) -> PlanCheck {
    let mut check = PlanCheck {
        builds_index: plan.iter().any(|l| l.contains(&names.builds)),
        jobs_pkey: plan.iter().any(|l| l.contains(&names.jobs_pkey)),
        ..Default::default()
    };
    for line in plan {
        let step = line.trim().trim_start_matches("->").trim();
        let scanned = match backend {
            Backend::Postgres => step
                .split_once("Seq Scan on ")
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_string()),
            // `SCAN <alias>` reads a whole table (or a whole index); `SEARCH` does not.
            Backend::Sqlite => step
                .strip_prefix("SCAN ")
                .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string()),
        };
        let Some(table) = scanned else { continue };
        let tracked = match backend {
            Backend::Postgres => ["workspace_builds", "provisioner_jobs"].contains(&table.as_str()),
            Backend::Sqlite => {
                ["wb", "b", "pj", "workspace_builds", "provisioner_jobs"].contains(&table.as_str())
            }
        };
        if tracked {
            check.full_scans.push(step.to_string());
        } else {
            check.other_scans.push(step.to_string());
        }
    }
    check
}

fn print_plan(label: &str, plan: &[String]) {
    println!("   plan of {label}:");
    for line in plan {
        // The SQLite IN list and long PostgreSQL conditions are cut, not wrapped.
        let shown: String = line.chars().take(150).collect();
        let cut = if shown.len() < line.len() { "…" } else { "" };
        println!("     | {shown}{cut}");
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A form's plan, its checks and (PostgreSQL) how often the builds index was scanned.
struct Inspected {
    plan: Vec<String>,
    loops: Option<u64>,
    json: serde_json::Value,
}

impl Inspected {
    /// Whether the id filter reached the per-workspace lookup: PostgreSQL ran it no more
    /// often than there are ids; SQLite's plan does not scan all of `workspaces` (`w`).
    fn pushed_down(&self, backend: Backend, ids: usize) -> bool {
        match backend {
            Backend::Postgres => self.loops.is_none_or(|l| l <= ids as u64),
            Backend::Sqlite => !self
                .plan
                .iter()
                .any(|l| l.trim() == "SCAN w" || l.trim().starts_with("SCAN w ")),
        }
    }
}

/// Prints a form's plan (or that it did not change since `previous`) and what it touches.
async fn inspect(
    db: &Db,
    form: &Form,
    values: &[Value],
    names: &IndexNames,
    previous: Option<&[String]>,
) -> anyhow::Result<Inspected> {
    let backend = db.backend();
    let plan = explain(db, &form.sql, values).await?;
    if previous == Some(plan.as_slice()) {
        println!("   plan of {}: unchanged", form.label);
    } else {
        print_plan(form.label, &plan);
    }
    let check = check_plan(backend, &plan, names);
    println!(
        "     → index {}: {}; {}: {}; full scans of builds/jobs: {}{}",
        names.builds,
        yes_no(check.builds_index),
        names.jobs_pkey,
        yes_no(check.jobs_pkey),
        if check.full_scans.is_empty() {
            "none".to_string()
        } else {
            check.full_scans.join("; ")
        },
        if check.other_scans.is_empty() {
            String::new()
        } else {
            format!("; other full scans: {}", check.other_scans.join("; "))
        }
    );
    let mut json = json!({
        "plan": plan,
        "uses_builds_index": check.builds_index,
        "uses_jobs_pkey": check.jobs_pkey,
        "full_scans_of_builds_or_jobs": check.full_scans,
        "other_full_scans": check.other_scans,
    });
    let mut loops = None;
    if backend == Backend::Postgres {
        let analyzed = analyze(db, &form.sql, values, &names.builds).await?;
        if let Some((rows, n)) = analyzed.index {
            println!(
                "     → EXPLAIN ANALYZE: {} scanned {n} time(s), {rows} row(s) per scan; buffers {}",
                names.builds,
                analyzed.buffers.as_deref().unwrap_or("?")
            );
            json["builds_index_loops"] = json!(n);
            json["builds_index_rows_per_loop"] = json!(rows);
            loops = Some(n);
        }
        json["buffers"] = json!(analyzed.buffers);
    }
    Ok(Inspected { plan, loops, json })
}

async fn latest_builds(
    db: &Db,
    workspaces: u64,
    builds: u64,
    id_count: usize,
    repeat: usize,
    bulk: bool,
) -> anyhow::Result<serde_json::Value> {
    let backend = db.backend();
    let f = fixture(db).await?;
    let t = Instant::now();
    insert_workspaces(db, &f, workspaces, bulk).await?;
    insert_builds(db, &f, workspaces, 1, builds, bulk).await?;
    after_load(
        db,
        &["workspaces", "workspace_builds", "provisioner_jobs"],
        bulk,
    )
    .await?;
    let generated = t.elapsed();
    println!(
        "   generated {workspaces} workspaces × {builds} builds ({} builds and jobs) in {:.1} s",
        workspaces * builds,
        generated.as_secs_f64()
    );
    db.execute(naive_view(backend), vec![]).await?;
    let names = index_names(db).await?;
    let ids: Vec<Uuid> = db
        .query(
            &format!("SELECT id FROM workspaces ORDER BY random() LIMIT {id_count}"),
            vec![],
        )
        .await?
        .iter()
        .map(|r| r.uuid("id"))
        .collect::<Result<_, _>>()?;
    let (filter, values) = id_filter(db, &ids);
    let forms = latest_forms(backend, &filter);
    println!(
        "   {} random workspace ids; each form returns their latest builds",
        ids.len()
    );

    let mut plans = Map::new();
    let mut plan_texts = Vec::new();
    let mut pushed_down = true;
    for form in &forms {
        let inspected = inspect(db, form, &values, &names, None).await?;
        if form.key == "view" && !inspected.pushed_down(backend, ids.len()) {
            pushed_down = false;
        }
        plans.insert(form.key.into(), inspected.json);
        plan_texts.push(inspected.plan);
    }
    if pushed_down {
        println!("   The id filter reaches the view's per-workspace lookup.");
    } else {
        println!(
            "   NOTE: the planner does NOT push `workspace_id {}` into workspace_latest_builds:\n   \
             it runs the per-workspace lookup for every live workspace ({workspaces}) and filters afterwards.\n   \
             The view's `workspace_id` comes out of the lookup itself, so the filter cannot become `w.id = …`.",
            if backend == Backend::Postgres {
                "= ANY(…)"
            } else {
                "IN (…)"
            }
        );
    }

    println!(
        "   timings (median of up to {repeat} runs, {} ids):",
        ids.len()
    );
    let mut before = Map::new();
    let mut timings = Vec::new();
    for form in &forms {
        let timing = time_query(db, &form.sql, &values, repeat).await?;
        println!(
            "     {:<40} {:>10.2} ms  ({} runs, {} rows)",
            form.label, timing.median_ms, timing.runs, timing.rows
        );
        before.insert(form.key.into(), timing.json());
        timings.push(timing);
    }
    let [view, naive, direct, store_join] =
        <[Timing; 4]>::try_from(timings).map_err(|_| anyhow::anyhow!("expected four forms"))?;
    for (label, other) in [
        ("naive view", &naive),
        ("lookup driven by w.id", &direct),
        ("stores' join", &store_join),
    ] {
        if other.ids != view.ids {
            bail!(
                "{label} returned other builds than workspace_latest_builds ({} vs {} rows)",
                other.ids.len(),
                view.ids.len()
            );
        }
    }
    if view.rows != ids.len() {
        bail!(
            "workspace_latest_builds returned {} rows for {} ids",
            view.rows,
            ids.len()
        );
    }
    let naive_over_view = ratio(naive.median_ms, view.median_ms);
    let naive_over_direct = ratio(naive.median_ms, direct.median_ms);
    println!(
        "   naive / view                  = {naive_over_view:>7.2}×  (target ≥ {MIN_NAIVE_OVER_LATERAL}×)  {}",
        verdict(naive_over_view >= MIN_NAIVE_OVER_LATERAL)
    );
    println!(
        "   naive / lookup driven by w.id = {naive_over_direct:>7.2}×  (the same target, for the form the filter reaches)  {}",
        verdict(naive_over_direct >= MIN_NAIVE_OVER_LATERAL)
    );

    let t = Instant::now();
    insert_builds(db, &f, workspaces, builds + 1, 2 * builds, bulk).await?;
    after_load(db, &["workspace_builds", "provisioner_jobs"], bulk).await?;
    println!(
        "   doubled to {} builds per workspace ({} builds) in {:.1} s; same ids:",
        2 * builds,
        2 * workspaces * builds,
        t.elapsed().as_secs_f64()
    );
    let mut plans_after = Map::new();
    for (form, previous) in forms.iter().zip(&plan_texts) {
        if form.key != "store_join" {
            let inspected = inspect(db, form, &values, &names, Some(previous)).await?;
            plans_after.insert(form.key.into(), inspected.json);
        }
    }
    let mut after = Map::new();
    let mut doubled = Vec::new();
    for form in forms.iter().filter(|f| f.key != "store_join") {
        let timing = time_query(db, &form.sql, &values, repeat).await?;
        println!(
            "     {:<40} {:>10.2} ms  ({} runs, {} rows)",
            form.label, timing.median_ms, timing.runs, timing.rows
        );
        after.insert(form.key.into(), timing.json());
        doubled.push(timing);
    }
    let [view2, naive2, direct2] =
        <[Timing; 3]>::try_from(doubled).map_err(|_| anyhow::anyhow!("expected three forms"))?;
    if naive2.ids != view2.ids || direct2.ids != view2.ids {
        bail!("after doubling, the forms returned different builds");
    }
    if view2.ids == view.ids {
        bail!("after doubling, the view still returned the old builds");
    }
    let view_growth = ratio(view2.median_ms, view.median_ms);
    let direct_growth = ratio(direct2.median_ms, direct.median_ms);
    let naive_growth = ratio(naive2.median_ms, naive.median_ms);
    println!(
        "   view after / before                  = {view_growth:>5.2}×  (target < {MAX_DOUBLED_OVER_BASE}×)  {}",
        verdict(view_growth < MAX_DOUBLED_OVER_BASE)
    );
    println!(
        "   lookup driven by w.id after / before = {direct_growth:>5.2}×  (same target)  {}",
        verdict(direct_growth < MAX_DOUBLED_OVER_BASE)
    );
    println!("   naive after / before                 = {naive_growth:>5.2}×  (for comparison)");
    Ok(json!({
        "workspaces": workspaces,
        "builds_per_workspace": builds,
        "ids": ids.len(),
        "generation_seconds": generated.as_secs_f64(),
        "bulk_load_without_fk_triggers": bulk,
        "plans": plans,
        "id_filter_pushed_into_view": pushed_down,
        "before": before,
        "after_doubling": after,
        "plans_after_doubling": plans_after,
        "ratio_naive_over_view": naive_over_view,
        "ratio_naive_over_direct": naive_over_direct,
        "ratio_view_doubled": view_growth,
        "ratio_direct_doubled": direct_growth,
        "ratio_naive_doubled": naive_growth,
        "targets": {
            "naive_over_lateral_min": MIN_NAIVE_OVER_LATERAL,
            "doubled_over_base_max": MAX_DOUBLED_OVER_BASE,
        },
    }))
}

// ---------------------------------------------------------------------------------------
// Queue position

fn untagged() -> Tags {
    Tags::from([
        ("owner".to_string(), String::new()),
        ("scope".to_string(), "organization".to_string()),
    ])
}

async fn register_daemons(db: &Db, org: Uuid, prefix: &str, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(
            db.register_daemon(DaemonRegistration {
                name: format!("{prefix}-{i}"),
                organization_id: org,
                provisioners: vec![ProvisionerType::Echo],
                tags: untagged(),
                key_id: None,
                version: "bench".into(),
                now: SystemClock.now(),
            })
            .await
            .with_context(|| format!("register daemon {prefix}-{i}"))?,
        );
    }
    Ok(ids)
}

/// `n` pending untagged echo jobs, created 1 ms apart.
async fn insert_pending(db: &Db, f: &Fixture, n: u64) -> anyhow::Result<()> {
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "INSERT INTO provisioner_jobs (id, created_at, updated_at, organization_id, initiator_id, provisioner, \
               type, file_id, input) \
             SELECT gen_random_uuid(), t, t, '{org}', '{user}', 'echo', 'workspace_build', '{file}', \
               jsonb_build_object('workspace_build_id', gen_random_uuid()) \
             FROM generate_series(1, {n}) n \
             CROSS JOIN LATERAL (SELECT timestamptz '2026-06-01 00:00:00+00' + n * interval '1 millisecond' AS t) tt",
            org = f.org,
            user = f.user,
            file = f.file,
        ),
        Backend::Sqlite => format!(
            "{series} INSERT INTO provisioner_jobs (id, created_at, updated_at, organization_id, initiator_id, \
               provisioner, type, file_id, input) \
             SELECT {SQLITE_UUID}, {ts}, {ts}, '{org}', '{user}', 'echo', 'workspace_build', '{file}', \
               json_object('workspace_build_id', {SQLITE_UUID}) FROM s ORDER BY n",
            series = sqlite_series("s", 1, n),
            ts = sqlite_ts("n / 1000.0 + 13000000"),
            org = f.org,
            user = f.user,
            file = f.file,
        ),
    };
    db.execute(&sql, vec![]).await?;
    Ok(())
}

/// Finished jobs `from..=to` (PostgreSQL): 90 % succeeded, 5 % failed, 5 % canceled.
async fn insert_finished(
    db: &Db,
    f: &Fixture,
    from: u64,
    to: u64,
    bulk: bool,
) -> anyhow::Result<()> {
    let mut start = from;
    while start <= to {
        let end = (start + CHUNK - 1).min(to);
        bulk_exec(
            db,
            &format!(
                "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, completed_at, canceled_at, \
                   error, organization_id, initiator_id, provisioner, type, file_id, input) \
                 SELECT gen_random_uuid(), t, t, t, t + interval '1 minute', \
                   CASE WHEN n % 20 = 1 THEN t END, CASE WHEN n % 20 = 2 THEN 'boom' END, \
                   '{org}', '{user}', 'echo', 'workspace_build', '{file}', \
                   jsonb_build_object('workspace_build_id', gen_random_uuid()) \
                 FROM generate_series({start}, {end}) n \
                 CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + n * interval '1 second' AS t) tt",
                org = f.org,
                user = f.user,
                file = f.file,
            ),
            bulk,
        )
        .await?;
        start = end + 1;
    }
    Ok(())
}

/// The PostgreSQL statement of `queue_positions` (crates/db/src/workspaces.rs), copied for
/// `EXPLAIN`; its answers are compared with the store's, so a stale copy shows.
fn queue_sql(ids: usize) -> String {
    let list = (3..ids + 3)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH pending AS (SELECT id, created_at, tags, organization_id, provisioner, \
             CASE WHEN initiator_id = $1 THEN 1 ELSE 0 END AS pb \
           FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status), \
         ranked AS (SELECT p.id, \
             ROW_NUMBER() OVER (PARTITION BY d.id ORDER BY p.pb, p.created_at, p.id) AS pos, \
             COUNT(*) OVER (PARTITION BY d.id) AS size \
           FROM pending p JOIN provisioner_daemons d ON d.organization_id = p.organization_id \
            AND p.provisioner = ANY(d.provisioners) AND d.last_seen_at > $2 \
            AND provisioner_tagset_contains(d.tags, p.tags)) \
         SELECT j.id, \
           COALESCE((SELECT MIN(r.pos) FROM ranked r WHERE r.id = j.id), 0) AS queue_position, \
           COALESCE((SELECT MAX(r.size) FROM ranked r WHERE r.id = j.id), 0) AS queue_size \
         FROM provisioner_jobs j WHERE j.id IN ({list}) ORDER BY j.created_at, j.id"
    )
}

struct QueueStep {
    finished: u64,
    median_ms: f64,
    runs: usize,
    generation_seconds: f64,
}

/// `queue_positions` of `ids`, after re-registering the daemons so they count as live.
async fn time_queue(
    db: &Db,
    org: Uuid,
    daemons: usize,
    ids: &[Uuid],
    pending: u64,
    repeat: usize,
) -> anyhow::Result<(f64, usize, Vec<(Uuid, i64, i64)>)> {
    register_daemons(db, org, "bench-queue", daemons).await?;
    let answer = db.queue_positions(ids.to_vec(), SystemClock.now()).await?;
    let positions: Vec<(Uuid, i64, i64)> = answer
        .iter()
        .map(|q| (q.job.id, q.queue_position, q.queue_size))
        .collect();
    let pending = i64::try_from(pending)?;
    if positions.len() != ids.len()
        || positions
            .iter()
            .any(|(_, pos, size)| *size != pending || !(1..=pending).contains(pos))
    {
        bail!(
            "queue_positions answered {positions:?}; expected positions in 1..={pending} and size {pending}"
        );
    }
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let answer = db.queue_positions(ids.to_vec(), SystemClock.now()).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if answer.len() != ids.len() {
            bail!("queue_positions lost jobs");
        }
    }
    let runs = samples.len();
    Ok((median(samples), runs, positions))
}

async fn queue(
    db: &Db,
    sizes: &Sizes,
    repeat: usize,
    bulk: bool,
) -> anyhow::Result<serde_json::Value> {
    let f = fixture(db).await?;
    insert_pending(db, &f, sizes.pending).await?;
    let ids: Vec<Uuid> = db
        .query(
            &format!(
                "SELECT id FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status \
                 ORDER BY random() LIMIT {}",
                sizes.queue_ids
            ),
            vec![],
        )
        .await?
        .iter()
        .map(|r| r.uuid("id"))
        .collect::<Result<_, _>>()?;
    println!(
        "   {} pending untagged echo jobs, {} live untagged daemons; queue_positions of {} pending ids",
        sizes.pending,
        sizes.daemons,
        ids.len()
    );
    let mut steps: Vec<QueueStep> = Vec::new();
    let mut finished = 0;
    let mut positions = Vec::new();
    let mut targets = sizes.queue_finished.to_vec();
    let mut stretch_note = None;
    let mut i = 0;
    while i < targets.len() {
        let target = targets[i];
        let t = Instant::now();
        insert_finished(db, &f, finished + 1, target, bulk).await?;
        after_load(db, &["provisioner_jobs"], bulk).await?;
        let generation = t.elapsed();
        let added = target - finished;
        finished = target;
        let (median_ms, runs, answer) =
            time_queue(db, f.org, sizes.daemons, &ids, sizes.pending, repeat).await?;
        println!(
            "     {finished:>10} finished jobs (+{added} in {:.1} s): {median_ms:>8.2} ms  ({runs} runs)",
            generation.as_secs_f64()
        );
        if !positions.is_empty() && positions != answer {
            bail!("queue positions changed when only finished jobs were added");
        }
        positions = answer;
        steps.push(QueueStep {
            finished,
            median_ms,
            runs,
            generation_seconds: generation.as_secs_f64(),
        });
        // After the second step, decide on the tenfold stretch from the measured rate.
        if i == 1 && sizes.stretch {
            let next = finished * 10;
            let rate = added as f64 / generation.as_secs_f64().max(0.001);
            let projected = (next - finished) as f64 / rate;
            if projected < STRETCH_BUDGET.as_secs_f64() {
                println!(
                    "     adding {} more finished jobs (projected {projected:.0} s < {} s)",
                    next - finished,
                    STRETCH_BUDGET.as_secs()
                );
                targets.push(next);
            } else {
                let note = format!(
                    "{} → {} finished jobs would take about {projected:.0} s to generate here (budget {} s), \
                     so the tenfold comparison is {} → {} instead",
                    finished,
                    next,
                    STRETCH_BUDGET.as_secs(),
                    targets[0],
                    finished
                );
                println!("     NOTE: {note}");
                stretch_note = Some(note);
            }
        }
        i += 1;
    }

    // The plan and the copy's agreement with the store.
    let c = db.ctx();
    let mut values = vec![
        c.uuid(hangar_core::PREBUILDS_SYSTEM_USER_ID),
        c.ts(SystemClock.now() - chrono::TimeDelta::seconds(90)),
    ];
    values.extend(ids.iter().map(|id| c.uuid(*id)));
    let sql = queue_sql(ids.len());
    let mut copy: Vec<(Uuid, i64, i64)> = db
        .query(&sql, values.clone())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.uuid("id")?,
                r.i64("queue_position")?,
                r.i64("queue_size")?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut store = positions.clone();
    copy.sort_unstable();
    store.sort_unstable();
    let copy_agrees = copy == store;
    let plan = explain(db, &sql, &values).await?;
    print_plan("queue_positions (a copy of the store's statement)", &plan);
    let status_index = plan
        .iter()
        .any(|l| l.contains("idx_provisioner_jobs_status"));
    let pending_index = plan
        .iter()
        .any(|l| l.contains("idx_provisioner_jobs_pending"));
    let seq_scan = plan
        .iter()
        .any(|l| l.contains("Seq Scan on provisioner_jobs"));
    println!(
        "     → idx_provisioner_jobs_status: {}; idx_provisioner_jobs_pending: {}; Seq Scan on provisioner_jobs: {}; copy answers like the store: {}",
        yes_no(status_index),
        yes_no(pending_index),
        yes_no(seq_scan),
        yes_no(copy_agrees)
    );
    if !copy_agrees {
        println!(
            "     NOTE: the copied statement no longer answers like the store; update queue_sql()"
        );
    }
    let last = &steps[steps.len() - 1];
    let prev = &steps[steps.len() - 2];
    let growth = ratio(last.median_ms, prev.median_ms);
    println!(
        "   {} / {} finished jobs = {growth:.2}×  (target < {MAX_QUEUE_TENFOLD}× for 10× the finished jobs)  {}",
        last.finished,
        prev.finished,
        verdict(growth < MAX_QUEUE_TENFOLD)
    );
    Ok(json!({
        "pending": sizes.pending,
        "daemons": sizes.daemons,
        "ids": ids.len(),
        "bulk_load_without_fk_triggers": bulk,
        "steps": steps.iter().map(|s| json!({
            "finished_jobs": s.finished,
            "median_ms": s.median_ms,
            "runs": s.runs,
            "generation_seconds": s.generation_seconds,
        })).collect::<Vec<_>>(),
        "substitution": stretch_note,
        "ratio_tenfold": growth,
        "compared": [prev.finished, last.finished],
        "plan": plan,
        "uses_status_index": status_index,
        "uses_pending_index": pending_index,
        "seq_scan_of_jobs": seq_scan,
        "copy_agrees_with_store": copy_agrees,
        "target_tenfold_max": MAX_QUEUE_TENFOLD,
    }))
}

// ---------------------------------------------------------------------------------------
// Acquire

/// Drains the pending jobs with one task per daemon, each calling `acquire` until it gets
/// nothing. Returns the elapsed time and every acquired id.
async fn drain(db: &Db, org: Uuid, daemons: &[Uuid]) -> anyhow::Result<(Duration, Vec<Uuid>)> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(daemons.len());
    for &daemon in daemons {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = db
                .acquire(AcquireRequest {
                    daemon_id: daemon,
                    organization_id: org,
                    provisioners: vec![ProvisionerType::Echo],
                    tags: untagged(),
                    now: SystemClock.now(),
                })
                .await?
            {
                got.push(job.id);
            }
            anyhow::Ok(got)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("acquirer task")??);
    }
    Ok((started.elapsed(), all))
}

/// What the lock sampler saw: samples taken, samples with a backend of this database
/// waiting on a heavyweight lock, and the `wait_event`s seen, with the table when the
/// waiter holds a tuple lock (`transactionid on a provisioner_jobs row` is a row-lock wait;
/// `extend` is relation extension).
#[derive(Debug, Default)]
struct LockWaits {
    samples: u64,
    waiting: u64,
    events: std::collections::BTreeMap<String, u64>,
}

impl LockWaits {
    fn describe(&self) -> String {
        let events = self
            .events
            .iter()
            .map(|(e, n)| format!("{e} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "lock waits in {} of {} pg_stat_activity samples{}",
            self.waiting,
            self.samples,
            if events.is_empty() {
                String::new()
            } else {
                format!(" ({events})")
            }
        )
    }

    fn row_lock_waits(&self) -> u64 {
        self.events
            .iter()
            .filter(|(e, _)| e.starts_with("tuple") || e.starts_with("transactionid"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Samples `pg_stat_activity` every 20 ms for backends of this database waiting on a
/// heavyweight lock, until told to stop.
fn sample_lock_waits(db: &Db, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<LockWaits> {
    let db = db.clone();
    tokio::spawn(async move {
        let mut seen = LockWaits::default();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(rows) = db
                .query(
                    "SELECT coalesce(a.wait_event, '') || coalesce(' on a ' || (SELECT string_agg(DISTINCT l.relation::regclass::text, ',') \
                       FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'tuple') || ' row', '') AS e \
                     FROM pg_stat_activity a \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    vec![],
                )
                .await
            {
                seen.samples += 1;
                if !rows.is_empty() {
                    seen.waiting += 1;
                }
                for r in &rows {
                    if let Ok(e) = r.string("e") {
                        *seen.events.entry(e).or_default() += 1;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

/// The PostgreSQL acquire statement of the store (crates/db/src/workspaces.rs), copied for
/// `EXPLAIN ANALYZE` in a transaction that is rolled back, so no job is taken.
async fn explain_acquire(db: &Db, f: &Fixture, daemon: Uuid) -> anyhow::Result<Vec<String>> {
    let c = db.ctx();
    let sql = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) \
        UPDATE provisioner_jobs SET started_at = $1, updated_at = $1, worker_id = $2 \
        WHERE id = (SELECT pj.id FROM provisioner_jobs pj \
          WHERE pj.job_status = 'pending'::provisioner_job_status AND pj.organization_id = $3 \
            AND pj.provisioner IN ($5::provisioner_type) AND provisioner_tagset_contains($4::jsonb, pj.tags) \
          ORDER BY (pj.initiator_id = 'c42fdf75-3097-471c-8c33-fb52454d81c0'::uuid), pj.created_at, pj.id FOR UPDATE SKIP LOCKED LIMIT 1) \
        RETURNING id";
    let tx = db.begin().await?;
    let rows = tx
        .query(
            sql,
            vec![
                c.ts(SystemClock.now()),
                c.uuid(daemon),
                c.uuid(f.org),
                c.json(&serde_json::to_value(untagged())?),
                c.text("echo"),
            ],
        )
        .await?;
    // Dropping the transaction rolls the UPDATE back.
    drop(tx);
    rows.iter().map(|r| Ok(r.string("QUERY PLAN")?)).collect()
}

async fn acquire(db: &Db, jobs: u64) -> anyhow::Result<serde_json::Value> {
    let backend = db.backend();
    let f = fixture(db).await?;
    println!("   {jobs} pending untagged echo jobs per run, one organization");
    let mut runs = Vec::new();
    let mut rates = Vec::new();
    let mut plan = Vec::new();
    let mut row_lock_waits = 0;
    for n in ACQUIRERS {
        db.execute(
            "DELETE FROM provisioner_jobs WHERE type = 'workspace_build'::provisioner_job_type",
            vec![],
        )
        .await?;
        insert_pending(db, &f, jobs).await?;
        after_load(db, &["provisioner_jobs"], false).await?;
        let daemons = register_daemons(db, f.org, &format!("bench-acquire-{n}"), n).await?;
        if backend == Backend::Postgres && plan.is_empty() {
            plan = explain_acquire(db, &f, daemons[0]).await?;
            print_plan(
                "one acquire with every job pending (a copy of the store's statement, EXPLAIN ANALYZE, rolled back)",
                &plan,
            );
            let sorts_all = plan.iter().any(|l| {
                l.trim_start().starts_with("->  Sort") || l.trim_start().starts_with("Sort")
            });
            if sorts_all {
                println!(
                    "     → every acquire reads and sorts all pending jobs of the organization: the ORDER BY starts with \
                     `(initiator_id = prebuilds user)`, which idx_provisioner_jobs_acquire should provide"
                );
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = (backend == Backend::Postgres).then(|| sample_lock_waits(db, stop.clone()));
        let drained = drain(db, f.org, &daemons).await;
        stop.store(true, Ordering::Relaxed);
        let lock_waits = match sampler {
            Some(s) => Some(s.await.context("lock sampler")?),
            None => None,
        };
        let (elapsed, ids) = drained?;
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        if unique.len() != ids.len() {
            bail!(
                "{n} acquirers: {} jobs acquired more than once",
                ids.len() - unique.len()
            );
        }
        let left = db
            .query(
                "SELECT count(*) AS n FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status",
                vec![],
            )
            .await?[0]
            .i64("n")?;
        if ids.len() as u64 != jobs || left != 0 {
            bail!(
                "{n} acquirers took {} of {jobs} jobs and left {left} pending",
                ids.len()
            );
        }
        let rate = jobs as f64 / elapsed.as_secs_f64();
        println!(
            "     {n:>2} acquirer(s): {rate:>8.0} jobs/s  ({:.2} s; {} distinct jobs, none twice{})",
            elapsed.as_secs_f64(),
            unique.len(),
            match &lock_waits {
                Some(w) => format!("; {}", w.describe()),
                None => String::new(),
            }
        );
        rates.push(rate);
        row_lock_waits += lock_waits.as_ref().map_or(0, LockWaits::row_lock_waits);
        runs.push(json!({
            "acquirers": n,
            "seconds": elapsed.as_secs_f64(),
            "jobs_per_second": rate,
            "distinct_jobs": unique.len(),
            "lock_waits": lock_waits.as_ref().map(|w| json!({
                "samples": w.samples,
                "waiting": w.waiting,
                "events": w.events,
                "row_lock_waits": w.row_lock_waits(),
            })),
        }));
    }
    if row_lock_waits > 0 {
        println!(
            "   NOTE: despite SKIP LOCKED, an acquire statement waited for another acquirer's transaction \
             while holding a provisioner_jobs tuple lock ({row_lock_waits} sampled waits)"
        );
    }
    let scaling = ratio(rates[rates.len() - 1], rates[0]);
    println!(
        "   16 / 1 acquirers = {scaling:.2}×  (target ≥ {MIN_ACQUIRE_16_OVER_1}×{})  {}",
        if backend == Backend::Sqlite {
            "; SQLite serialises writers (BEGIN IMMEDIATE), so ~1× is expected"
        } else {
            ""
        },
        verdict(scaling >= MIN_ACQUIRE_16_OVER_1)
    );
    Ok(json!({
        "jobs": jobs,
        "runs": runs,
        "ratio_16_over_1": scaling,
        "acquire_plan": plan,
        "row_lock_waits_sampled": row_lock_waits,
        "target_16_over_1_min": MIN_ACQUIRE_16_OVER_1,
    }))
}
