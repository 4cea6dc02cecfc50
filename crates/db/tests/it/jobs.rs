//! Provisioner jobs through `WorkspaceStore` on both backends: the queue (04 §6.1),
//! acquire, cancel (§6.5), completion (§6.4) and logs (§2.5); acceptance 35–45.

use crate::fixtures::*;
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::{PREBUILDS_SYSTEM_USER_ID, StoreError};
use hangar_db::Db;
use hangar_identity::store::IdentityStore;
use hangar_provisioner::model as pm;
use hangar_workspaces::model::*;
use hangar_workspaces::store::*;
use std::collections::BTreeSet;
use uuid::Uuid;

/// A timestamp both backends store exactly (µs).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("in range")
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

/// The spec's shorthand: `t("a1,b2")` = `{"a":"1","b":"2"}`, `t("")` = `{}` (an empty tag
/// object, which every daemon matches).
fn t(s: &str) -> Tags {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| (p[..1].to_string(), p[1..].to_string()))
        .collect()
}

/// The canonical tags of an untagged job or a built-in daemon.
fn untagged() -> Tags {
    [("owner", ""), ("scope", "organization")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with(mut tags: Tags, key: &str, value: &str) -> Tags {
    tags.insert(key.into(), value.into());
    tags
}

/// What every job needs: an initiator, an org and an uploaded file.
#[derive(Clone, Copy)]
struct World {
    user: Uuid,
    org: Uuid,
    file: Uuid,
    t0: DateTime<Utc>,
}

async fn world(db: &Db, name: &str) -> World {
    let u = user(db, name).await;
    let org = db.default_organization().await.expect("default org").id;
    let t0 = micros(now());
    let (file, created) = db
        .insert_file(File {
            id: Uuid::new_v4(),
            hash: Uuid::new_v4().simple().to_string(),
            created_at: t0,
            created_by: u.id,
            mimetype: "application/x-tar".into(),
            data: b"tar".to_vec(),
        })
        .await
        .expect("insert file");
    assert!(created);
    World {
        user: u.id,
        org,
        file: file.id,
        t0,
    }
}

/// The same world in a new org (queue cases are isolated by org).
async fn other_org(db: &Db, w: &World, name: &str) -> World {
    let creator = db
        .user_by_id(w.user)
        .await
        .expect("read user")
        .expect("user");
    World {
        org: org(db, name, &creator).await.id,
        ..*w
    }
}

struct NewJob {
    org: Uuid,
    tags: Tags,
    created_at: DateTime<Utc>,
    provisioner: ProvisionerType,
    initiator: Uuid,
}

fn job_at(w: &World, tags: Tags, created_at: DateTime<Utc>) -> NewJob {
    NewJob {
        org: w.org,
        tags,
        created_at,
        provisioner: ProvisionerType::Echo,
        initiator: w.user,
    }
}

fn pending_job(
    w: &World,
    id: Uuid,
    n: &NewJob,
    job_type: JobType,
    input: JobInput,
) -> ProvisionerJob {
    ProvisionerJob {
        id,
        created_at: n.created_at,
        updated_at: n.created_at,
        started_at: None,
        canceled_at: None,
        completed_at: None,
        error: None,
        error_code: None,
        organization_id: n.org,
        initiator_id: n.initiator,
        provisioner: n.provisioner,
        job_type,
        file_id: w.file,
        input,
        worker_id: None,
        tags: n.tags.clone(),
        logs_length: 0,
        logs_overflowed: false,
        status: JobStatus::Pending,
    }
}

/// A template version and its pending import job, through the store; returns the job id.
async fn import_job(db: &Db, w: &World, n: NewJob) -> Uuid {
    import_version(db, w, n).await.1
}

/// Returns (version, job).
async fn import_version(db: &Db, w: &World, n: NewJob) -> (Uuid, Uuid) {
    let (vid, jid) = (Uuid::new_v4(), Uuid::new_v4());
    let input = JobInput {
        template_version_id: Some(vid),
        ..Default::default()
    };
    let job = pending_job(w, jid, &n, JobType::TemplateVersionImport, input);
    let version = TemplateVersion {
        id: vid,
        template_id: None,
        organization_id: n.org,
        created_at: n.created_at,
        updated_at: n.created_at,
        name: vid.simple().to_string(),
        message: String::new(),
        readme: String::new(),
        job_id: jid,
        created_by: w.user,
        archived: false,
        has_ai_task: None,
    };
    db.insert_version_with_job(version, job)
        .await
        .expect("insert version with job");
    (vid, jid)
}

async fn daemon_at(db: &Db, org: Uuid, name: &str, tags: Tags, seen: DateTime<Utc>) -> Uuid {
    daemon_of(db, org, name, tags, vec![ProvisionerType::Echo], seen).await
}

async fn daemon_of(
    db: &Db,
    org: Uuid,
    name: &str,
    tags: Tags,
    provisioners: Vec<ProvisionerType>,
    seen: DateTime<Utc>,
) -> Uuid {
    db.register_daemon(DaemonRegistration {
        name: name.into(),
        organization_id: org,
        provisioners,
        tags,
        key_id: None,
        version: "v0.0.0".into(),
        now: seen,
    })
    .await
    .expect("register daemon")
}

fn req(daemon: Uuid, org: Uuid, tags: Tags, at: DateTime<Utc>) -> AcquireRequest {
    AcquireRequest {
        daemon_id: daemon,
        organization_id: org,
        provisioners: vec![ProvisionerType::Echo],
        tags,
        now: at,
    }
}

async fn acquire_id(db: &Db, r: AcquireRequest) -> Option<Uuid> {
    db.acquire(r).await.expect("acquire").map(|j| j.id)
}

async fn job(db: &Db, id: Uuid) -> ProvisionerJob {
    db.job_by_id(id)
        .await
        .expect("read job")
        .expect("job exists")
}

/// Sets the columns the status rule reads, straight in SQL.
async fn set_state(
    db: &Db,
    id: Uuid,
    started: bool,
    canceled: bool,
    completed: bool,
    error: Option<&str>,
) {
    let c = db.ctx();
    let at = |set: bool| if set { "$2" } else { "NULL" };
    db.execute(
        &format!(
            "UPDATE provisioner_jobs SET started_at = {}, canceled_at = {}, completed_at = {}, error = $3 WHERE id = $1",
            at(started),
            at(canceled),
            at(completed)
        ),
        vec![c.uuid(id), c.ts(now()), c.opt_text(error.map(String::from))],
    )
    .await
    .expect("set job state");
}

async fn count(db: &Db, sql: &str, id: Uuid) -> i64 {
    let c = db.ctx();
    db.query(
        &format!("SELECT count(*) AS n FROM {sql}"),
        vec![c.uuid(id)],
    )
    .await
    .expect("count")[0]
        .i64("n")
        .expect("n")
}

fn log(at: DateTime<Utc>, output: impl Into<String>) -> NewLog {
    NewLog {
        created_at: at,
        source: LogSource::Provisioner,
        level: LogLevel::Info,
        stage: "Planning".into(),
        output: output.into(),
    }
}

fn not_held(r: Result<impl std::fmt::Debug, StoreError>) {
    match r {
        Err(e) if e.is_conflict_on("job_not_held") => {}
        other => panic!("expected Conflict {{ job_not_held }}, got {other:?}"),
    }
}

/// An echo-template-like result: resource `dev` (type `hangar_test`), agent `main`, app `code`.
fn echo_resources() -> Vec<pm::Resource> {
    vec![pm::Resource {
        name: "dev".into(),
        r#type: "hangar_test".into(),
        agents: vec![pm::Agent {
            name: "main".into(),
            token: Some(Uuid::new_v4().to_string()),
            operating_system: "linux".into(),
            architecture: "amd64".into(),
            apps: vec![pm::App {
                id: "code-app".into(),
                slug: "code".into(),
                url: Some("http://localhost:13337".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn import_result() -> ImportResult {
    ImportResult {
        readme: "# echo".into(),
        has_ai_task: false,
        resources: echo_resources(),
        parameters: vec![],
        variables: vec![],
    }
}

fn build_result() -> BuildResult {
    BuildResult {
        state: b"state".to_vec(),
        resources: echo_resources(),
        ai_task_sidebar_app: None,
        has_ai_task: false,
    }
}

/// One row of the queue table of 04 §11 (35–38): jobs and live daemons by raw tag set, the
/// jobs asked for (`None` = all), and the expected sizes and positions of those jobs.
struct QueueCase {
    name: &'static str,
    jobs: &'static [&'static str],
    daemons: &'static [&'static str],
    ask: Option<&'static [usize]>,
    sizes: &'static [i64],
    positions: &'static [i64],
}

const QUEUE_CASES: &[QueueCase] = &[
    QueueCase {
        name: "1",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1"],
        ask: None,
        sizes: &[2, 2, 0],
        positions: &[1, 1, 0],
    },
    QueueCase {
        name: "2",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: None,
        sizes: &[3, 3, 3],
        positions: &[1, 1, 3],
    },
    QueueCase {
        name: "3 (omit job 0)",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: Some(&[1, 2]),
        sizes: &[3, 3],
        positions: &[1, 3],
    },
    QueueCase {
        name: "4 (omit job 1)",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: Some(&[0, 2]),
        sizes: &[3, 3],
        positions: &[1, 3],
    },
    QueueCase {
        name: "5 (omit job 2)",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: Some(&[0, 1]),
        sizes: &[3, 3],
        positions: &[1, 1],
    },
    QueueCase {
        name: "6 (omit jobs 0 and 2)",
        jobs: &["a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: Some(&[1]),
        sizes: &[3],
        positions: &[1],
    },
    QueueCase {
        name: "7",
        jobs: &["", "", "a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: None,
        sizes: &[5, 5, 5, 5, 5],
        positions: &[1, 2, 3, 3, 5],
    },
    QueueCase {
        name: "8 (omit jobs 0 and 1)",
        jobs: &["", "", "a1,b2", "a1", "a1,c3"],
        daemons: &["a1,b2", "a1", "a1,b2,c3"],
        ask: Some(&[2, 3, 4]),
        sizes: &[5, 5, 5],
        positions: &[3, 3, 5],
    },
    QueueCase {
        name: "9 (no daemons)",
        jobs: &["", "a1", "b2"],
        daemons: &[],
        ask: None,
        sizes: &[0, 0, 0],
        positions: &[0, 0, 0],
    },
    QueueCase {
        name: "10",
        jobs: &["", "a1", "b2"],
        daemons: &["", "a1", "b2"],
        ask: None,
        sizes: &[2, 2, 2],
        positions: &[1, 2, 2],
    },
    QueueCase {
        name: "11",
        jobs: &["c3", "", "a1", "b2"],
        daemons: &["", "a1", "b2"],
        ask: None,
        sizes: &[0, 2, 2, 2],
        positions: &[0, 1, 2, 2],
    },
    QueueCase {
        name: "12 (nothing)",
        jobs: &[],
        daemons: &[],
        ask: None,
        sizes: &[],
        positions: &[],
    },
];

hangar_testkit::db_tests! {
    /// Acceptance 35–38: the twelve queue cases. Each case lives in its own org, so the
    /// daemons and jobs of the other cases (same database) must not leak in.
    async fn queue_position_table(db: TestDb) {
        let base = world(&db, "queue").await;
        for (i, case) in QUEUE_CASES.iter().enumerate() {
            let w = other_org(&db, &base, &format!("queue-{i}")).await;
            let mut ids = vec![];
            for (k, tags) in case.jobs.iter().enumerate() {
                ids.push(import_job(&db, &w, job_at(&w, t(tags), w.t0 + ms(k as i64))).await);
            }
            for (k, tags) in case.daemons.iter().enumerate() {
                daemon_at(&db, w.org, &format!("d{k}"), t(tags), w.t0).await;
            }
            let asked: Vec<Uuid> = match case.ask {
                Some(ix) => ix.iter().map(|&k| ids[k]).collect(),
                None => ids.clone(),
            };
            // The answer is ordered by created_at whatever the order asked in.
            let mut reversed = asked.clone();
            reversed.reverse();
            let got = db.queue_positions(reversed, w.t0 + TimeDelta::seconds(1)).await.unwrap();
            let got_ids: Vec<Uuid> = got.iter().map(|q| q.job.id).collect();
            assert_eq!(got_ids, asked, "case {}: ids", case.name);
            let sizes: Vec<i64> = got.iter().map(|q| q.queue_size).collect();
            let positions: Vec<i64> = got.iter().map(|q| q.queue_position).collect();
            assert_eq!(sizes, case.sizes, "case {}: sizes", case.name);
            assert_eq!(positions, case.positions, "case {}: positions", case.name);
            // The stored tags are the raw sets (`{}` stays empty, not the untagged set).
            for (k, q) in got.iter().enumerate() {
                let src = case.ask.map_or(k, |ix| ix[k]);
                assert_eq!(q.job.tags, t(case.jobs[src]), "case {}: tags of job {src}", case.name);
                assert_eq!(q.job.status, JobStatus::Pending);
            }
        }
        // Case 12 again with an unknown id: still nothing.
        assert!(db.queue_positions(vec![Uuid::new_v4()], base.t0).await.unwrap().is_empty());
    }

    /// Acceptance 39: only pending jobs are ranked; ranks follow `created_at`, not insertion.
    async fn queue_counts_only_pending_jobs(db: TestDb) {
        let w = world(&db, "statuses").await;
        daemon_at(&db, w.org, "d0", t(""), w.t0).await;
        // (started, canceled, completed, error), oldest first.
        let states = [
            ("failed", true, false, true, Some("boom")),
            ("canceled", true, true, true, None),
            ("canceling", true, true, false, None),
            ("succeeded", true, false, true, None),
            ("running", true, false, false, None),
            ("pending", false, false, false, None),
            ("pending", false, false, false, None),
        ];
        let mut ids = vec![];
        for (k, (_, started, canceled, completed, error)) in states.iter().enumerate() {
            let id = import_job(&db, &w, job_at(&w, t(""), w.t0 + ms(k as i64))).await;
            set_state(&db, id, *started, *canceled, *completed, *error).await;
            ids.push(id);
        }
        let got = db.queue_positions(ids.clone(), w.t0 + TimeDelta::seconds(1)).await.unwrap();
        assert_eq!(got.iter().map(|q| q.job.id).collect::<Vec<_>>(), ids);
        let statuses: Vec<&str> = got.iter().map(|q| q.job.status.as_str()).collect();
        assert_eq!(statuses, states.iter().map(|s| s.0).collect::<Vec<_>>());
        assert_eq!(got.iter().map(|q| q.queue_size).collect::<Vec<_>>(), [0, 0, 0, 0, 0, 2, 2]);
        assert_eq!(got.iter().map(|q| q.queue_position).collect::<Vec<_>>(), [0, 0, 0, 0, 0, 1, 2]);

        // Six pending jobs inserted out of order (in a fresh org with one `{}` daemon).
        let w = other_org(&db, &w, "shuffled").await;
        daemon_at(&db, w.org, "d0", t(""), w.t0).await;
        let offsets = [3, 0, 5, 1, 4, 2];
        let mut by_offset = vec![Uuid::nil(); 6];
        let mut inserted = vec![];
        for off in offsets {
            let id = import_job(&db, &w, job_at(&w, t(""), w.t0 + ms(off))).await;
            by_offset[off as usize] = id;
            inserted.push(id);
        }
        let got = db.queue_positions(inserted, w.t0 + TimeDelta::seconds(1)).await.unwrap();
        assert_eq!(got.iter().map(|q| q.job.id).collect::<Vec<_>>(), by_offset, "ordered by created_at");
        assert_eq!(got.iter().map(|q| q.queue_position).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert!(got.iter().all(|q| q.queue_size == 6));
    }

    /// 04 §6.1: only live daemons of the job's org that run its provisioner count, and
    /// prebuild jobs queue behind human ones.
    async fn queue_daemon_filters_and_prebuilds(db: TestDb) {
        let w = world(&db, "filters").await;
        let other = other_org(&db, &w, "elsewhere").await;
        let at = w.t0 + TimeDelta::seconds(100);
        let pb = NewJob { initiator: PREBUILDS_SYSTEM_USER_ID, ..job_at(&w, t(""), w.t0) };
        let prebuild = import_job(&db, &w, pb).await;
        let human = import_job(&db, &w, job_at(&w, t(""), w.t0 + ms(1))).await;
        // None of these may rank the jobs.
        daemon_at(&db, w.org, "stale", t(""), at - TimeDelta::seconds(91)).await;
        daemon_of(&db, w.org, "tf", t(""), vec![ProvisionerType::Terraform], at).await;
        daemon_at(&db, other.org, "foreign", t(""), at).await;
        let got = db.queue_positions(vec![prebuild, human], at).await.unwrap();
        assert!(got.iter().all(|q| (q.queue_position, q.queue_size) == (0, 0)), "{got:?}");

        daemon_at(&db, w.org, "live", t(""), at - TimeDelta::seconds(89)).await;
        let got = db.queue_positions(vec![prebuild, human], at).await.unwrap();
        // Ordered by created_at (the prebuild is older), ranked humans first.
        assert_eq!(got.iter().map(|q| q.job.id).collect::<Vec<_>>(), [prebuild, human]);
        assert_eq!(got.iter().map(|q| q.queue_position).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(got.iter().map(|q| q.queue_size).collect::<Vec<_>>(), [2, 2]);
    }

    /// Acceptance 40: the oldest matching pending job of the daemon's org, type and tags.
    async fn acquire_takes_oldest_matching_job(db: TestDb) {
        let w = world(&db, "acquire").await;
        let b = other_org(&db, &w, "org-b").await;
        let gpu = with(untagged(), "env", "gpu");
        let prebuild = import_job(&db, &w, NewJob { initiator: PREBUILDS_SYSTEM_USER_ID, ..job_at(&w, untagged(), w.t0) }).await;
        let terraform = import_job(&db, &w, NewJob { provisioner: ProvisionerType::Terraform, ..job_at(&w, untagged(), w.t0 + ms(1)) }).await;
        let tagged = import_job(&db, &w, job_at(&w, gpu.clone(), w.t0 + ms(2))).await;
        let oldest = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(3))).await;
        let newer = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(4))).await;

        let at = w.t0 + TimeDelta::seconds(5);
        let da = daemon_at(&db, w.org, "a", untagged(), w.t0).await;
        let db_b = daemon_at(&db, b.org, "b", untagged(), w.t0).await;
        // Another org's daemon gets nothing although org A has matching jobs.
        assert_eq!(acquire_id(&db, req(db_b, b.org, untagged(), at)).await, None);

        let got = db.acquire(req(da, w.org, untagged(), at)).await.unwrap().expect("a job");
        assert_eq!(got.id, oldest);
        assert_eq!(got.started_at, Some(at));
        assert_eq!(got.updated_at, at);
        assert_eq!(got.worker_id, Some(da));
        assert_eq!(got.status, JobStatus::Running);
        assert_eq!(job(&db, oldest).await, got, "RETURNING matches the stored row");
        // The daemon's liveness stamp moved too.
        let c = db.ctx();
        let seen = db
            .query("SELECT last_seen_at FROM provisioner_daemons WHERE id = $1", vec![c.uuid(da)])
            .await
            .unwrap()[0]
            .ts("last_seen_at")
            .unwrap();
        assert_eq!(seen, at);

        assert_eq!(acquire_id(&db, req(da, w.org, untagged(), at)).await, Some(newer));
        // Prebuild jobs come after human ones, whatever their age.
        assert_eq!(acquire_id(&db, req(da, w.org, untagged(), at)).await, Some(prebuild));
        // The terraform job and the gpu-tagged job are not for an untagged echo daemon.
        assert_eq!(acquire_id(&db, req(da, w.org, untagged(), at)).await, None);
        for id in [terraform, tagged] {
            assert_eq!(job(&db, id).await.status, JobStatus::Pending);
        }
        let tf = AcquireRequest { provisioners: vec![ProvisionerType::Terraform], ..req(da, w.org, untagged(), at) };
        assert_eq!(acquire_id(&db, tf).await, Some(terraform));
        let dg = daemon_at(&db, w.org, "gpu", gpu.clone(), w.t0).await;
        assert_eq!(acquire_id(&db, req(dg, w.org, gpu, at)).await, Some(tagged));
        assert_eq!(job(&db, tagged).await.worker_id, Some(dg));

        // Org B's daemon takes org B's job.
        let mine = import_job(&db, &b, job_at(&b, untagged(), w.t0 + ms(10))).await;
        assert_eq!(acquire_id(&db, req(db_b, b.org, untagged(), at)).await, Some(mine));
    }

    /// Acceptance 41: concurrent acquires never hand one job out twice.
    async fn acquire_is_exclusive_under_concurrency(db: TestDb) {
        let w = world(&db, "race").await;
        let d1 = daemon_at(&db, w.org, "r1", untagged(), w.t0).await;
        let d2 = daemon_at(&db, w.org, "r2", untagged(), w.t0).await;
        let at = w.t0 + TimeDelta::seconds(1);
        for round in 0..5 {
            let id = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(round))).await;
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let tasks: Vec<_> = [d1, d2]
                .into_iter()
                .map(|d| {
                    let (db, barrier, org) = (db.db.clone(), barrier.clone(), w.org);
                    tokio::spawn(async move {
                        barrier.wait().await;
                        db.acquire(req(d, org, untagged(), at)).await.unwrap().map(|j| (j.id, d))
                    })
                })
                .collect();
            let mut got = vec![];
            for task in tasks {
                got.extend(task.await.unwrap());
            }
            assert_eq!(got.len(), 1, "round {round}: exactly one acquirer gets the job: {got:?}");
            assert_eq!(got[0].0, id);
            assert_eq!(job(&db, id).await.worker_id, Some(got[0].1));
        }

        // 200 jobs, 8 acquirers looping until the queue is empty.
        let mut all = BTreeSet::new();
        for k in 0..200 {
            all.insert(import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(100 + k))).await);
        }
        let mut daemons = vec![];
        for k in 0..8 {
            daemons.push(daemon_at(&db, w.org, &format!("drain{k}"), untagged(), w.t0).await);
        }
        let tasks: Vec<_> = daemons
            .iter()
            .map(|&d| {
                let (db, org) = (db.db.clone(), w.org);
                tokio::spawn(async move {
                    let mut mine = vec![];
                    while let Some(j) = db.acquire(req(d, org, untagged(), at)).await.unwrap() {
                        assert_eq!(j.worker_id, Some(d));
                        mine.push(j.id);
                    }
                    (d, mine)
                })
            })
            .collect();
        let mut seen = BTreeSet::new();
        let mut total = 0;
        for task in tasks {
            let (d, mine) = task.await.unwrap();
            for id in mine {
                total += 1;
                assert!(seen.insert(id), "job {id} handed out twice");
                assert_eq!(job(&db, id).await.worker_id, Some(d));
            }
        }
        assert_eq!(total, 200);
        assert_eq!(seen, all, "every job exactly once");
        let pending = db
            .query("SELECT count(*) AS n FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status", vec![])
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap();
        assert_eq!(pending, 0);
    }

    /// Acceptance 42 (store level): cancel of pending, running, canceled and completed jobs.
    async fn cancel_jobs(db: TestDb) {
        let w = world(&db, "cancel").await;
        let d = daemon_at(&db, w.org, "d", untagged(), w.t0).await;
        let at = |s: i64| w.t0 + TimeDelta::seconds(s);
        let take = |expected: Uuid| {
            let db = db.db.clone();
            async move {
                let got = db.acquire(req(d, w.org, untagged(), at(1))).await.unwrap().map(|j| j.id);
                assert_eq!(got, Some(expected));
            }
        };

        // Running → canceling; the daemon learns it from its next update; its fail ends the
        // job `canceled` with no error.
        let running = import_job(&db, &w, job_at(&w, untagged(), w.t0)).await;
        take(running).await;
        assert!(!db.append_logs(running, d, vec![log(at(2), "before")], at(2)).await.unwrap());
        assert_eq!(db.cancel_job(running, at(3)).await.unwrap(), CancelOutcome::Canceling);
        let j = job(&db, running).await;
        assert_eq!(j.status, JobStatus::Canceling);
        assert_eq!((j.canceled_at, j.completed_at), (Some(at(3)), None));
        assert_eq!(db.cancel_job(running, at(4)).await.unwrap(), CancelOutcome::AlreadyCanceled);
        assert!(db.append_logs(running, d, vec![], at(5)).await.unwrap(), "update answers canceled");
        assert!(db.append_logs(running, d, vec![log(at(5), "stopping")], at(5)).await.unwrap());
        db.fail_job(running, d, "provisioner canceled".into(), None, None, at(6)).await.unwrap();
        let j = job(&db, running).await;
        assert_eq!(j.status, JobStatus::Canceled);
        assert_eq!(j.error, None);
        assert_eq!(j.canceled_at, Some(at(3)), "the cancel time is kept");
        assert_eq!(j.completed_at, Some(at(6)));
        assert_eq!(db.cancel_job(running, at(7)).await.unwrap(), CancelOutcome::AlreadyCanceled);

        // Succeeded and failed jobs are already completed.
        let succeeded = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(1))).await;
        take(succeeded).await;
        db.complete_import(succeeded, d, import_result(), at(2)).await.unwrap();
        assert_eq!(job(&db, succeeded).await.status, JobStatus::Succeeded);
        assert_eq!(db.cancel_job(succeeded, at(3)).await.unwrap(), CancelOutcome::AlreadyCompleted);
        assert_eq!(job(&db, succeeded).await.canceled_at, None);

        let failed = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(2))).await;
        take(failed).await;
        db.fail_job(failed, d, "boom".into(), None, None, at(2)).await.unwrap();
        let j = job(&db, failed).await;
        assert_eq!((j.status, j.error.as_deref()), (JobStatus::Failed, Some("boom")));
        assert_eq!(db.cancel_job(failed, at(3)).await.unwrap(), CancelOutcome::AlreadyCompleted);

        // Pending → canceled at once, and never acquired afterwards.
        let pending = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(3))).await;
        assert_eq!(db.cancel_job(pending, at(4)).await.unwrap(), CancelOutcome::Canceled);
        let j = job(&db, pending).await;
        assert_eq!(j.status, JobStatus::Canceled);
        assert_eq!((j.canceled_at, j.completed_at, j.started_at), (Some(at(4)), Some(at(4)), None));
        assert_eq!(j.error, None);
        assert_eq!(acquire_id(&db, req(d, w.org, untagged(), at(5))).await, None);
        assert_eq!(db.cancel_job(pending, at(5)).await.unwrap(), CancelOutcome::AlreadyCanceled);
        let q = db.queue_positions(vec![pending], at(5)).await.unwrap();
        assert_eq!((q[0].queue_position, q[0].queue_size), (0, 0));

        assert!(matches!(db.cancel_job(Uuid::new_v4(), at(5)).await, Err(StoreError::NotFound)));
    }

    /// Acceptance 43 (store level): only the holding daemon completes, once.
    async fn completion_requires_the_holder(db: TestDb) {
        let w = world(&db, "holder").await;
        let da = daemon_at(&db, w.org, "a", untagged(), w.t0).await;
        let db_b = daemon_at(&db, w.org, "b", untagged(), w.t0).await;
        let at = |s: i64| w.t0 + TimeDelta::seconds(s);
        let resources = |job: Uuid| count(&db, "workspace_resources WHERE job_id = $1", job);
        let agents = |job: Uuid| {
            count(&db, "workspace_agents a JOIN workspace_resources r ON r.id = a.resource_id WHERE r.job_id = $1", job)
        };

        // Template import.
        let (version, import) = import_version(&db, &w, job_at(&w, untagged(), w.t0)).await;
        // Not acquired yet: nobody holds it.
        not_held(db.complete_import(import, da, import_result(), at(1)).await);
        assert_eq!(acquire_id(&db, req(da, w.org, untagged(), at(1))).await, Some(import));
        not_held(db.complete_import(import, db_b, import_result(), at(2)).await);
        not_held(db.append_logs(import, db_b, vec![log(at(2), "intruder")], at(2)).await);
        not_held(db.fail_job(import, db_b, "intruder".into(), None, None, at(2)).await);
        assert_eq!(resources(import).await, 0);
        assert!(db.job_logs(import, 0).await.unwrap().is_empty());
        let j = job(&db, import).await;
        assert_eq!((j.status, j.updated_at), (JobStatus::Running, at(1)), "no change");

        db.complete_import(import, da, import_result(), at(3)).await.unwrap();
        let j = job(&db, import).await;
        assert_eq!((j.status, j.completed_at, j.error), (JobStatus::Succeeded, Some(at(3)), None));
        assert_eq!(resources(import).await, 1);
        assert_eq!(agents(import).await, 1);
        let v = db.version_by_id(version).await.unwrap().unwrap();
        assert_eq!((v.readme.as_str(), v.has_ai_task), ("# echo", Some(false)));
        // A repeat (the daemon retrying) is refused and writes nothing.
        not_held(db.complete_import(import, da, import_result(), at(4)).await);
        not_held(db.append_logs(import, da, vec![log(at(4), "late")], at(4)).await);
        not_held(db.fail_job(import, da, "late".into(), None, None, at(4)).await);
        assert_eq!(resources(import).await, 1);
        assert_eq!(agents(import).await, 1);
        let j = job(&db, import).await;
        assert_eq!((j.status, j.completed_at, j.updated_at), (JobStatus::Succeeded, Some(at(3)), at(3)));

        // Workspace build.
        let template = template(&db, w.org, w.user).await;
        let c = db.ctx();
        db.execute("UPDATE template_versions SET template_id = $1 WHERE id = $2", vec![c.uuid(template), c.uuid(version)])
            .await
            .unwrap();
        let (ws_id, build_id, build_job) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ws = Workspace {
            id: ws_id,
            created_at: at(5),
            updated_at: at(5),
            owner_id: w.user,
            organization_id: w.org,
            template_id: template,
            deleted: false,
            name: "dev".into(),
            autostart_schedule: None,
            ttl: None,
            last_used_at: at(5),
            automatic_updates: AutomaticUpdates::Never,
            next_start_at: None,
        };
        let build = WorkspaceBuild {
            id: build_id,
            created_at: at(5),
            updated_at: at(5),
            workspace_id: ws_id,
            template_version_id: version,
            build_number: 1,
            transition: Transition::Start,
            initiator_id: w.user,
            provisioner_state: None,
            job_id: build_job,
            deadline: hangar_core::clock::never(),
            max_deadline: hangar_core::clock::never(),
            reason: BuildReason::Initiator,
            daily_cost: 0,
            template_version_preset_id: None,
            has_ai_task: None,
            ai_task_sidebar_app_id: None,
        };
        let input = JobInput { workspace_build_id: Some(build_id), ..Default::default() };
        let pj = pending_job(&w, build_job, &job_at(&w, untagged(), at(5)), JobType::WorkspaceBuild, input);
        db.insert_workspace(ws, build.clone(), pj, vec![]).await.unwrap();
        // A pending job is held by nobody: neither a daemon nor the daemonless (orphan) path
        // may complete it.
        not_held(db.complete_build(build_job, Some(da), build_result(), at(6)).await);
        not_held(db.complete_build(build_job, None, build_result(), at(6)).await);
        assert_eq!(resources(build_job).await, 0);
        assert_eq!(job(&db, build_job).await.status, JobStatus::Pending);
        assert_eq!(acquire_id(&db, req(da, w.org, untagged(), at(6))).await, Some(build_job));
        not_held(db.complete_build(build_job, Some(db_b), build_result(), at(7)).await);
        // Without a daemon (the orphan path) a held job is refused too.
        not_held(db.complete_build(build_job, None, build_result(), at(7)).await);
        assert_eq!(resources(build_job).await, 0);
        db.complete_build(build_job, Some(da), build_result(), at(8)).await.unwrap();
        assert_eq!(job(&db, build_job).await.status, JobStatus::Succeeded);
        assert_eq!(resources(build_job).await, 1);
        assert_eq!(agents(build_job).await, 1);
        not_held(db.complete_build(build_job, Some(da), build_result(), at(9)).await);
        not_held(db.complete_build(build_job, Some(db_b), build_result(), at(9)).await);
        assert_eq!(resources(build_job).await, 1, "no duplicate resources");
        assert_eq!(agents(build_job).await, 1);
        let state = db
            .query("SELECT provisioner_state FROM workspace_builds WHERE id = $1", vec![c.uuid(build_id)])
            .await
            .unwrap()[0]
            .opt_bytes("provisioner_state")
            .unwrap();
        assert_eq!(state.as_deref(), Some(&b"state"[..]));

        // The daemonless path: a canceled pending job is refused, an orphan delete (inserted
        // already finished, no worker) completes.
        let next = |number: i32, transition: Transition, finished: bool| {
            let (id, job_id) = (Uuid::new_v4(), Uuid::new_v4());
            let b = WorkspaceBuild { id, job_id, build_number: number, transition, created_at: at(10), updated_at: at(10), ..build.clone() };
            let input = JobInput { workspace_build_id: Some(id), ..Default::default() };
            let mut j = pending_job(&w, job_id, &job_at(&w, untagged(), at(10)), JobType::WorkspaceBuild, input);
            if finished {
                (j.started_at, j.completed_at) = (Some(at(10)), Some(at(10)));
            }
            (b, j)
        };
        let (stop, stop_job) = next(2, Transition::Stop, false);
        db.insert_build(stop, stop_job.clone(), vec![]).await.unwrap();
        assert_eq!(db.cancel_job(stop_job.id, at(11)).await.unwrap(), CancelOutcome::Canceled);
        not_held(db.complete_build(stop_job.id, None, build_result(), at(12)).await);
        assert_eq!(resources(stop_job.id).await, 0);
        assert_eq!(job(&db, stop_job.id).await.status, JobStatus::Canceled);
        let (delete, delete_job) = next(3, Transition::Delete, true);
        db.insert_build(delete, delete_job.clone(), vec![]).await.unwrap();
        let empty = BuildResult { state: vec![], resources: vec![], ai_task_sidebar_app: None, has_ai_task: false };
        db.complete_build(delete_job.id, None, empty, at(12)).await.unwrap();
        assert_eq!(job(&db, delete_job.id).await.status, JobStatus::Succeeded);
        assert_eq!(db.workspace_by_id(ws_id, false).await.unwrap(), None, "the orphan delete marks it deleted");
        assert!(db.workspace_by_id(ws_id, true).await.unwrap().unwrap().deleted);

        assert!(matches!(
            db.complete_import(Uuid::new_v4(), da, import_result(), at(9)).await,
            Err(StoreError::NotFound)
        ));
    }

    /// Acceptance 44 (store level): `after` pages by id, ascending, one job only.
    async fn job_logs_after(db: TestDb) {
        let w = world(&db, "logs").await;
        let d = daemon_at(&db, w.org, "d", untagged(), w.t0).await;
        let at = w.t0 + TimeDelta::seconds(1);
        let j1 = import_job(&db, &w, job_at(&w, untagged(), w.t0)).await;
        let j2 = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(1))).await;
        assert_eq!(acquire_id(&db, req(d, w.org, untagged(), at)).await, Some(j1));
        let d2 = daemon_at(&db, w.org, "d2", untagged(), w.t0).await;
        assert_eq!(acquire_id(&db, req(d2, w.org, untagged(), at)).await, Some(j2));

        let mut want = vec![];
        for batch in 0..4 {
            let lines: Vec<String> = (0..3).map(|k| format!("batch {batch} line {k}")).collect();
            want.extend(lines.clone());
            let logs = lines.into_iter().map(|l| log(at, l)).collect();
            assert!(!db.append_logs(j1, d, logs, at).await.unwrap());
            // Interleave another job's lines so j1's ids have gaps.
            db.append_logs(j2, d2, vec![log(at, format!("other {batch}"))], at).await.unwrap();
        }
        let all = db.job_logs(j1, 0).await.unwrap();
        assert_eq!(all.iter().map(|l| l.output.clone()).collect::<Vec<_>>(), want);
        let ids: Vec<i64> = all.iter().map(|l| l.id).collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "ascending: {ids:?}");
        let l = &all[0];
        assert_eq!((l.log_source, l.log_level, l.stage.as_str(), l.created_at), (LogSource::Provisioner, LogLevel::Info, "Planning", at));

        for after in [ids[0], ids[4], ids[5], ids[10], 5] {
            let got: Vec<i64> = db.job_logs(j1, after).await.unwrap().iter().map(|l| l.id).collect();
            let expect: Vec<i64> = ids.iter().copied().filter(|id| *id > after).collect();
            assert_eq!(got, expect, "after {after}");
        }
        assert!(db.job_logs(j1, *ids.last().unwrap()).await.unwrap().is_empty());
        assert_eq!(db.job_logs(j2, 0).await.unwrap().len(), 4);
        let bytes: usize = want.iter().map(String::len).sum();
        assert_eq!(job(&db, j1).await.logs_length as usize, bytes);
    }

    /// Acceptance 45: a job keeps at most 1 MiB of output; the batch that would pass the
    /// limit is dropped whole and later batches are dropped too.
    async fn logs_overflow_past_one_mib(db: TestDb) {
        let w = world(&db, "overflow").await;
        let d = daemon_at(&db, w.org, "d", untagged(), w.t0).await;
        let at = |s: i64| w.t0 + TimeDelta::seconds(s);
        let lines = |n: usize, bytes: usize| -> Vec<NewLog> { (0..n).map(|_| log(at(1), "x".repeat(bytes))).collect() };
        let j = import_job(&db, &w, job_at(&w, untagged(), w.t0)).await;
        assert_eq!(acquire_id(&db, req(d, w.org, untagged(), at(1))).await, Some(j));

        // 300 KiB batches of three 100 KiB lines: three fit (900 KiB), the fourth does not.
        for k in 0..3 {
            assert!(!db.append_logs(j, d, lines(3, 100 * 1024), at(2 + k)).await.unwrap());
        }
        let s = job(&db, j).await;
        assert_eq!((s.logs_length, s.logs_overflowed), (900 * 1024, false));
        assert!(!db.append_logs(j, d, lines(3, 100 * 1024), at(5)).await.unwrap());
        let s = job(&db, j).await;
        assert!(s.logs_overflowed);
        assert_eq!(s.logs_length, 900 * 1024, "the overflowing batch is dropped whole");
        assert!(s.logs_length <= 1_048_576);
        assert_eq!(s.updated_at, at(5), "the liveness stamp moves anyway");
        assert_eq!(db.job_logs(j, 0).await.unwrap().len(), 9);
        // Later batches are dropped, even small ones that would fit.
        assert!(!db.append_logs(j, d, lines(1, 10), at(6)).await.unwrap());
        let s = job(&db, j).await;
        assert_eq!((s.logs_length, s.logs_overflowed, s.updated_at), (900 * 1024, true, at(6)));
        assert_eq!(db.job_logs(j, 0).await.unwrap().len(), 9);
        let stored = db.job_logs(j, 0).await.unwrap().iter().map(|l| l.output.len()).sum::<usize>();
        assert_eq!(stored, 900 * 1024);

        // Exactly 1 MiB fits; one byte more overflows.
        let j = import_job(&db, &w, job_at(&w, untagged(), w.t0 + ms(1))).await;
        assert_eq!(acquire_id(&db, req(d, w.org, untagged(), at(7))).await, Some(j));
        for k in 0..4 {
            db.append_logs(j, d, lines(1, 256 * 1024), at(8 + k)).await.unwrap();
        }
        let s = job(&db, j).await;
        assert_eq!((s.logs_length, s.logs_overflowed), (1_048_576, false));
        db.append_logs(j, d, lines(1, 1), at(12)).await.unwrap();
        let s = job(&db, j).await;
        assert_eq!((s.logs_length, s.logs_overflowed), (1_048_576, true));
        assert_eq!(db.job_logs(j, 0).await.unwrap().len(), 4);
    }
}
