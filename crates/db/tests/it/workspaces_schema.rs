//! The workspace data model of m0005 (04 §2, 05 §2.1–2.4) on both backends: the generated
//! job status, `workspace_latest_builds`, tag matching and the triggers.

use crate::fixtures::*;
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::StoreError;
use hangar_db::Db;
use serde_json::json;
use uuid::Uuid;

fn violation(e: StoreError) -> (String, String) {
    match e {
        StoreError::Violation { rule, message } => (rule, message),
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// A user, an org, a template and an uploaded file: what every job needs.
struct Base {
    user: Uuid,
    org: Uuid,
    template: Uuid,
    file: Uuid,
}

async fn base(db: &Db, name: &str) -> Base {
    let u = user(db, name).await;
    let o = org(db, &format!("{name}-org"), &u).await;
    let t = template(db, o.id, u.id).await;
    let c = db.ctx();
    let file = Uuid::new_v4();
    db.execute(
        "INSERT INTO files (id, hash, created_at, created_by, mimetype, data) VALUES ($1, $2, $3, $4, 'application/x-tar', $5)",
        vec![c.uuid(file), c.text(file.simple().to_string()), c.ts(now()), c.uuid(u.id), c.bytes(b"tar".to_vec())],
    )
    .await
    .expect("insert file");
    Base {
        user: u.id,
        org: o.id,
        template: t,
        file,
    }
}

/// The columns the job-status rule reads; `None` is NULL.
#[derive(Clone, Copy, Default)]
struct JobState {
    started: bool,
    canceled: bool,
    completed: bool,
    error: Option<&'static str>,
}

async fn job_with(db: &Db, b: &Base, kind: &str, s: JobState) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    let at = |set: bool| if set { "$2" } else { "NULL" };
    let sql = format!(
        "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, canceled_at, completed_at, error, \
           organization_id, initiator_id, provisioner, type, file_id, input) \
         VALUES ($1, $2, $2, {}, {}, {}, $5, $3, $4, 'echo'::provisioner_type, '{kind}'::provisioner_job_type, $6, $7::jsonb)",
        at(s.started),
        at(s.canceled),
        at(s.completed),
    );
    db.execute(
        &sql,
        vec![
            c.uuid(id),
            c.ts(now()),
            c.uuid(b.org),
            c.uuid(b.user),
            c.opt_text(s.error.map(String::from)),
            c.uuid(b.file),
            c.json(&json!({})),
        ],
    )
    .await
    .expect("insert job");
    id
}

async fn job(db: &Db, b: &Base, kind: &str) -> Uuid {
    job_with(db, b, kind, JobState::default()).await
}

async fn job_status(db: &Db, job: Uuid) -> String {
    let c = db.ctx();
    db.query(
        "SELECT job_status::text AS s FROM provisioner_jobs WHERE id = $1",
        vec![c.uuid(job)],
    )
    .await
    .unwrap()[0]
        .string("s")
        .unwrap()
}

/// A template version with its (import) job.
async fn version(db: &Db, b: &Base) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    let j = job(db, b, "template_version_import").await;
    db.execute(
        "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at, name, job_id, created_by) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        vec![c.uuid(id), c.uuid(b.template), c.uuid(b.org), c.ts(now()), c.text(id.simple().to_string()), c.uuid(j), c.uuid(b.user)],
    )
    .await
    .expect("insert version");
    id
}

async fn version_job(db: &Db, version: Uuid) -> Uuid {
    let c = db.ctx();
    let r = db
        .query(
            "SELECT job_id::text AS j FROM template_versions WHERE id = $1",
            vec![c.uuid(version)],
        )
        .await
        .unwrap();
    r[0].string("j").unwrap().parse().unwrap()
}

async fn preset(db: &Db, version: Uuid, name: &str) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO template_version_presets (id, template_version_id, name, created_at) VALUES ($1, $2, $3, $4)",
        vec![c.uuid(id), c.uuid(version), c.text(name), c.ts(now())],
    )
    .await
    .expect("insert preset");
    id
}

struct NewBuild {
    workspace: Uuid,
    version: Uuid,
    number: i32,
    transition: &'static str,
    job: Uuid,
    preset: Option<Uuid>,
    created_at: DateTime<Utc>,
}

async fn try_build(db: &Db, b: &Base, n: NewBuild) -> Result<Uuid, StoreError> {
    let c = db.ctx();
    let id = Uuid::new_v4();
    let (preset_sql, mut extra) = match n.preset {
        Some(p) => ("$8", vec![c.uuid(p)]),
        None => ("NULL", vec![]),
    };
    let sql = format!(
        "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, template_version_id, build_number, \
           transition, initiator_id, job_id, template_version_preset_id) \
         VALUES ($1, $2, $2, $3, $4, $5, '{}'::workspace_transition, $6, $7, {preset_sql})",
        n.transition
    );
    let mut values = vec![
        c.uuid(id),
        c.ts(n.created_at),
        c.uuid(n.workspace),
        c.uuid(n.version),
        c.i32(n.number),
        c.uuid(b.user),
        c.uuid(n.job),
    ];
    values.append(&mut extra);
    db.execute(&sql, values).await.map(|_| id)
}

/// Build `number` of `workspace` on `version`, with a new build job.
async fn build(db: &Db, b: &Base, workspace: Uuid, version: Uuid, number: i32) -> (Uuid, Uuid) {
    let j = job(db, b, "workspace_build").await;
    let id = try_build(
        db,
        b,
        NewBuild {
            workspace,
            version,
            number,
            transition: "start",
            job: j,
            preset: None,
            created_at: now(),
        },
    )
    .await
    .expect("insert build");
    (id, j)
}

async fn resource(db: &Db, job: Uuid, name: &str) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO workspace_resources (id, created_at, job_id, transition, type, name) \
         VALUES ($1, $2, $3, 'start'::workspace_transition, 'hangar_test', $4)",
        vec![c.uuid(id), c.ts(now()), c.uuid(job), c.text(name)],
    )
    .await
    .expect("insert resource");
    id
}

async fn try_agent(
    db: &Db,
    resource: Uuid,
    name: &str,
    parent: Option<Uuid>,
) -> Result<Uuid, StoreError> {
    let c = db.ctx();
    let id = Uuid::new_v4();
    let (parent_sql, mut extra) = match parent {
        Some(p) => ("$6", vec![c.uuid(p)]),
        None => ("NULL", vec![]),
    };
    let sql = format!(
        "INSERT INTO workspace_agents (id, created_at, updated_at, name, resource_id, auth_token, architecture, operating_system, parent_id) \
         VALUES ($1, $2, $2, $3, $4, $5, 'amd64', 'linux', {parent_sql})"
    );
    let mut values = vec![
        c.uuid(id),
        c.ts(now()),
        c.text(name),
        c.uuid(resource),
        c.uuid(Uuid::new_v4()),
    ];
    values.append(&mut extra);
    db.execute(&sql, values).await.map(|_| id)
}

async fn rename_agent(db: &Db, agent: Uuid, name: &str) -> Result<u64, StoreError> {
    let c = db.ctx();
    db.execute(
        "UPDATE workspace_agents SET name = $2, updated_at = $3 WHERE id = $1",
        vec![c.uuid(agent), c.text(name), c.ts(now())],
    )
    .await
}

/// 04 §2.9's `soft_delete_sub_agent`.
async fn soft_delete_sub_agent(db: &Db, agent: Uuid) -> u64 {
    let c = db.ctx();
    db.execute(
        "UPDATE workspace_agents SET deleted = TRUE, updated_at = $2 WHERE id = $1 AND parent_id IS NOT NULL AND deleted = FALSE",
        vec![c.uuid(agent), c.ts(now())],
    )
    .await
    .unwrap()
}

async fn count(db: &Db, sql: &str, id: Uuid) -> i64 {
    let c = db.ctx();
    db.query(
        &format!("SELECT count(*) AS n FROM {sql}"),
        vec![c.uuid(id)],
    )
    .await
    .unwrap()[0]
        .i64("n")
        .unwrap()
}

fn assert_agent_name_taken(db: &Db, e: StoreError, name: &str) {
    let (rule, message) = violation(e);
    assert_eq!(rule, "agent_name_unique");
    if db.ctx().is_postgres() {
        assert_eq!(
            message,
            format!(
                "hangar:agent_name_unique: workspace agent name \"{name}\" already exists in this workspace build"
            )
        );
    }
}

hangar_testkit::db_tests! {
    /// 04 §2.5: `job_status` for every branch of the rule, recomputed on update.
    async fn job_status_is_generated(db: TestDb) {
        let b = base(&db, "jobs").await;
        let s = |started, canceled, completed, error| JobState { started, canceled, completed, error };
        let cases = [
            // Completed.
            (s(true, false, true, Some("boom")), "failed"),
            (s(true, true, true, Some("boom")), "failed"),
            (s(true, true, true, Some("")), "canceled"),
            (s(false, true, true, None), "canceled"),
            (s(true, false, true, None), "succeeded"),
            (s(true, false, true, Some("")), "succeeded"),
            // Not completed.
            (s(true, false, false, Some("boom")), "failed"),
            (s(false, true, false, Some("boom")), "failed"),
            (s(true, true, false, None), "canceling"),
            (s(false, true, false, Some("")), "canceling"),
            (s(false, false, false, None), "pending"),
            (s(false, false, false, Some("")), "pending"),
            (s(true, false, false, None), "running"),
            (s(true, false, false, Some("")), "running"),
        ];
        for (i, (state, want)) in cases.into_iter().enumerate() {
            let j = job_with(&db, &b, "workspace_build", state).await;
            assert_eq!(job_status(&db, j).await, want, "case {i}");
        }

        // The stored value follows updates.
        let c = db.ctx();
        let j = job(&db, &b, "workspace_build").await;
        assert_eq!(job_status(&db, j).await, "pending");
        db.execute("UPDATE provisioner_jobs SET started_at = $2 WHERE id = $1", vec![c.uuid(j), c.ts(now())]).await.unwrap();
        assert_eq!(job_status(&db, j).await, "running");
        db.execute("UPDATE provisioner_jobs SET canceled_at = $2 WHERE id = $1", vec![c.uuid(j), c.ts(now())]).await.unwrap();
        assert_eq!(job_status(&db, j).await, "canceling");
        db.execute("UPDATE provisioner_jobs SET completed_at = $2 WHERE id = $1", vec![c.uuid(j), c.ts(now())]).await.unwrap();
        assert_eq!(job_status(&db, j).await, "canceled");
        let pending = db
            .query("SELECT count(*) AS n FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status", vec![])
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap();
        assert_eq!(pending, 2, "the two pending cases");

        // Defaults: untagged tags, storage `file`, no logs.
        let r = db
            .query(
                "SELECT tags::text AS tags, storage_method::text AS sm, logs_length, logs_overflowed FROM provisioner_jobs WHERE id = $1",
                vec![c.uuid(j)],
            )
            .await
            .unwrap();
        let tags: serde_json::Value = r[0].json("tags").unwrap();
        assert_eq!(tags, json!({"owner": "", "scope": "organization"}));
        assert_eq!(r[0].string("sm").unwrap(), "file");
        assert_eq!(r[0].i32("logs_length").unwrap(), 0);
        assert!(!r[0].bool("logs_overflowed").unwrap());
    }

    /// 04 §2.5: log ids only grow, and a job keeps at most 1 MiB of output.
    async fn job_logs_ids_grow(db: TestDb) {
        let b = base(&db, "logs").await;
        let c = db.ctx();
        let j = job(&db, &b, "workspace_build").await;
        for i in 0..3 {
            db.execute(
                "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
                 VALUES ($1, $2, 'provisioner'::log_source, 'info'::log_level, 'Planning', $3)",
                vec![c.uuid(j), c.ts(now()), c.text(format!("line {i}"))],
            )
            .await
            .unwrap();
        }
        let rows = db
            .query("SELECT id, output FROM provisioner_job_logs WHERE job_id = $1 AND id > $2 ORDER BY id", vec![c.uuid(j), c.i64(0)])
            .await
            .unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r.i64("id").unwrap()).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(rows[2].string("output").unwrap(), "line 2");
        let too_long = db
            .execute("UPDATE provisioner_jobs SET logs_length = $2 WHERE id = $1", vec![c.uuid(j), c.i32(1_048_577)])
            .await;
        assert!(too_long.is_err(), "{too_long:?}");
        db.execute("UPDATE provisioner_jobs SET logs_length = $2 WHERE id = $1", vec![c.uuid(j), c.i32(1_048_576)]).await.unwrap();
    }

    /// Acceptance 31: the highest build number wins (not the newest row), a deleted
    /// workspace has no row, a live workspace without builds yields a row of NULLs.
    async fn latest_builds_view(db: TestDb) {
        let b = base(&db, "latest").await;
        let v1 = version(&db, &b).await;
        let v2 = version(&db, &b).await;
        let p2 = preset(&db, v2, "small").await;

        let w1 = workspace(&db, b.org, b.template, b.user).await;
        build(&db, &b, w1, v1, 1).await;
        let j2 = job(&db, &b, "workspace_build").await;
        try_build(&db, &b, NewBuild { workspace: w1, version: v1, number: 2, transition: "stop", job: j2, preset: None, created_at: now() })
            .await
            .unwrap();
        // Build 3 is the latest although its row is older than build 2's.
        let j3 = job_with(&db, &b, "workspace_build", JobState { started: true, ..Default::default() }).await;
        let b3 = try_build(
            &db,
            &b,
            NewBuild { workspace: w1, version: v2, number: 3, transition: "delete", job: j3, preset: Some(p2), created_at: now() - TimeDelta::hours(1) },
        )
        .await
        .unwrap();

        let w2 = workspace(&db, b.org, b.template, b.user).await;
        build(&db, &b, w2, v1, 1).await;
        soft_delete(&db, "workspaces", w2).await;

        let w3 = workspace(&db, b.org, b.template, b.user).await;

        let rows = db
            .query(
                "SELECT id::text AS id, workspace_id::text AS workspace_id, template_version_id::text AS version, \
                   job_id::text AS job, template_version_preset_id::text AS preset, transition::text AS transition, \
                   job_status::text AS job_status \
                 FROM workspace_latest_builds",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "one row per live workspace (w1, w3)");
        let opt = |r: &hangar_db::sql::Row, col: &str| r.opt_string(col).unwrap();
        let live: Vec<_> = rows.iter().filter(|r| opt(r, "workspace_id").is_some()).collect();
        assert_eq!(live.len(), 1);
        let r = live[0];
        assert_eq!(opt(r, "workspace_id"), Some(w1.to_string()));
        assert_eq!(opt(r, "id"), Some(b3.to_string()));
        assert_eq!(opt(r, "version"), Some(v2.to_string()));
        assert_eq!(opt(r, "job"), Some(j3.to_string()));
        assert_eq!(opt(r, "preset"), Some(p2.to_string()));
        assert_eq!(opt(r, "transition").as_deref(), Some("delete"));
        assert_eq!(opt(r, "job_status").as_deref(), Some("running"));
        let empty: Vec<_> = rows.iter().filter(|r| opt(r, "workspace_id").is_none()).collect();
        assert_eq!(empty.len(), 1, "w3 has no builds");
        for col in ["id", "version", "job", "preset", "transition", "job_status"] {
            assert_eq!(opt(empty[0], col), None, "{col}");
        }
        // Joined on workspace_id, w3's row drops out and w2 never appears.
        assert_eq!(count(&db, "workspace_latest_builds WHERE workspace_id = $1", w3).await, 0);
        assert_eq!(count(&db, "workspace_latest_builds WHERE workspace_id = $1", w2).await, 0);
    }

    /// Acceptance 48, 49: agent names are unique among the live agents of one build.
    async fn agent_names_unique_per_build(db: TestDb) {
        let b = base(&db, "agents").await;
        let v = version(&db, &b).await;
        let w = workspace(&db, b.org, b.template, b.user).await;
        let (_, j1) = build(&db, &b, w, v, 1).await;
        let r1 = resource(&db, j1, "dev").await;
        let r2 = resource(&db, j1, "other").await;

        try_agent(&db, r1, "main", None).await.unwrap();
        // 48: a second `main` on another resource of the same build.
        let e = try_agent(&db, r2, "main", None).await.unwrap_err();
        assert_agent_name_taken(&db, e, "main");
        // Names compare case-sensitively.
        try_agent(&db, r2, "Main", None).await.unwrap();

        // 49: renaming into a used name fails; keeping the name succeeds.
        let second = try_agent(&db, r2, "second", None).await.unwrap();
        let e = rename_agent(&db, second, "main").await.unwrap_err();
        assert_agent_name_taken(&db, e, "main");
        assert_eq!(rename_agent(&db, second, "second").await.unwrap(), 1);
        assert_eq!(rename_agent(&db, second, "third").await.unwrap(), 1);
        // Moving an agent onto another resource of the same build is checked too.
        let c = db.ctx();
        let moved = db
            .execute("UPDATE workspace_agents SET resource_id = $2 WHERE id = $1", vec![c.uuid(second), c.uuid(r1)])
            .await
            .unwrap();
        assert_eq!(moved, 1);
        // Updates of other columns do not fire the check.
        db.execute(
            "UPDATE workspace_agents SET lifecycle_state = 'ready'::workspace_agent_lifecycle_state WHERE resource_id = $1",
            vec![c.uuid(r1)],
        )
        .await
        .unwrap();

        // Two builds of one workspace may each have `main`.
        let (_, j2) = build(&db, &b, w, v, 2).await;
        let r3 = resource(&db, j2, "dev").await;
        try_agent(&db, r3, "main", None).await.unwrap();

        // Resources of an import job belong to no build and may repeat a name.
        let import = version_job(&db, v).await;
        let ri1 = resource(&db, import, "dev").await;
        let ri2 = resource(&db, import, "other").await;
        try_agent(&db, ri1, "main", None).await.unwrap();
        try_agent(&db, ri2, "main", None).await.unwrap();
        try_agent(&db, ri2, "main", None).await.unwrap();
    }

    /// Acceptance 50 (store level): a soft-deleted sub agent frees its name.
    async fn deleted_sub_agents_do_not_collide(db: TestDb) {
        let b = base(&db, "subagents").await;
        let v = version(&db, &b).await;
        let w = workspace(&db, b.org, b.template, b.user).await;
        let (_, j) = build(&db, &b, w, v, 1).await;
        let r = resource(&db, j, "dev").await;
        let parent = try_agent(&db, r, "main", None).await.unwrap();
        let child = try_agent(&db, r, "child", Some(parent)).await.unwrap();
        let e = try_agent(&db, r, "child", Some(parent)).await.unwrap_err();
        assert_agent_name_taken(&db, e, "child");
        assert_eq!(soft_delete_sub_agent(&db, child).await, 1);
        assert_eq!(soft_delete_sub_agent(&db, child).await, 0, "a repeat is a no-op");
        let again = try_agent(&db, r, "child", Some(parent)).await.unwrap();
        // Renaming the live one to its own name still works next to the deleted twin.
        assert_eq!(rename_agent(&db, again, "child").await.unwrap(), 1);
    }

    /// Acceptance 51: a top-level agent is never soft-deleted; deleting a parent row removes
    /// its sub agents.
    async fn sub_agents_cascade(db: TestDb) {
        let b = base(&db, "cascade").await;
        let c = db.ctx();
        let v = version(&db, &b).await;
        let w = workspace(&db, b.org, b.template, b.user).await;
        let (_, j) = build(&db, &b, w, v, 1).await;
        let r = resource(&db, j, "dev").await;
        let parent = try_agent(&db, r, "main", None).await.unwrap();
        let child = try_agent(&db, r, "child", Some(parent)).await.unwrap();
        try_agent(&db, r, "grandchild", Some(child)).await.unwrap();

        assert_eq!(soft_delete_sub_agent(&db, parent).await, 0);
        assert_eq!(count(&db, "workspace_agents WHERE id = $1 AND deleted = FALSE", parent).await, 1);

        db.execute("DELETE FROM workspace_agents WHERE id = $1", vec![c.uuid(parent)]).await.unwrap();
        assert_eq!(count(&db, "workspace_agents WHERE resource_id = $1", r).await, 0);

        // And deleting the build's job removes resources, agents and apps with it.
        let a = try_agent(&db, resource(&db, j, "again").await, "main", None).await.unwrap();
        db.execute(
            "INSERT INTO workspace_apps (id, created_at, agent_id, slug) VALUES ($1, $2, $3, 'code')",
            vec![c.uuid(Uuid::new_v4()), c.ts(now()), c.uuid(a)],
        )
        .await
        .unwrap();
        db.execute("DELETE FROM provisioner_jobs WHERE id = $1", vec![c.uuid(j)]).await.unwrap();
        assert_eq!(count(&db, "workspace_apps WHERE agent_id = $1", a).await, 0);
        assert_eq!(count(&db, "workspace_builds WHERE workspace_id = $1", w).await, 0);
    }

    /// Acceptance 34: tag matching. PostgreSQL calls `provisioner_tagset_contains`; SQLite
    /// evaluates the predicate `crates/db` inlines (04 §2.13).
    async fn tagset_contains(db: TestDb) {
        let c = db.ctx();
        let sql = c.pick(
            "SELECT provisioner_tagset_contains($1::jsonb, $2::jsonb) AS ok",
            "SELECT CASE WHEN $2 = '{\"owner\":\"\",\"scope\":\"organization\"}' THEN $1 = $2 \
               ELSE NOT EXISTS (SELECT 1 FROM json_each($2) j WHERE NOT EXISTS \
                 (SELECT 1 FROM json_each($1) d WHERE d.key = j.key AND d.value = j.value)) END AS ok",
        );
        let untagged = json!({"owner": "", "scope": "organization"});
        let cases = [
            (json!({"a": "1", "b": "2"}), json!({"a": "1"}), true),
            (json!({"a": "1"}), json!({"a": "1", "b": "2"}), false),
            (json!({"foo": "bar", "owner": "", "scope": "organization"}), untagged.clone(), false),
            (untagged.clone(), untagged.clone(), true),
            (json!({}), json!({}), true),
            (json!({"a": "1"}), json!({}), true),
            (untagged.clone(), json!({}), true),
            (json!({"a": "1"}), json!({"a": "2"}), false),
        ];
        for (daemon, job, want) in cases {
            let got = db.query(sql, vec![c.json(&daemon), c.json(&job)]).await.unwrap()[0].bool("ok").unwrap();
            assert_eq!(got, want, "daemon {daemon} job {job}");
        }
    }

    /// 05 §2.4: a build's preset must belong to the build's version.
    async fn preset_version_mismatch(db: TestDb) {
        let b = base(&db, "presets").await;
        let c = db.ctx();
        let v1 = version(&db, &b).await;
        let v2 = version(&db, &b).await;
        let p1 = preset(&db, v1, "small").await;
        let p2 = preset(&db, v2, "small").await;
        let w = workspace(&db, b.org, b.template, b.user).await;
        let new = |number, job, version, preset| NewBuild { workspace: w, version, number, transition: "start", job, preset, created_at: now() };

        let check = |e: StoreError| {
            let (rule, message) = violation(e);
            assert_eq!(rule, "preset_version_mismatch");
            if c.is_postgres() {
                assert_eq!(message, "hangar:preset_version_mismatch: preset does not belong to the template version");
            }
        };
        let j = job(&db, &b, "workspace_build").await;
        check(try_build(&db, &b, new(1, j, v1, Some(p2))).await.unwrap_err());
        let build1 = try_build(&db, &b, new(1, j, v1, Some(p1))).await.unwrap();

        check(
            db.execute("UPDATE workspace_builds SET template_version_preset_id = $2 WHERE id = $1", vec![c.uuid(build1), c.uuid(p2)])
                .await
                .unwrap_err(),
        );
        check(
            db.execute("UPDATE workspace_builds SET template_version_id = $2 WHERE id = $1", vec![c.uuid(build1), c.uuid(v2)])
                .await
                .unwrap_err(),
        );
        // Moving both together is consistent.
        db.execute(
            "UPDATE workspace_builds SET template_version_id = $2, template_version_preset_id = $3 WHERE id = $1",
            vec![c.uuid(build1), c.uuid(v2), c.uuid(p2)],
        )
        .await
        .unwrap();
        // Deleting the preset sets the build's preset to NULL (the trigger allows it).
        db.execute("DELETE FROM template_version_presets WHERE id = $1", vec![c.uuid(p2)]).await.unwrap();
        assert_eq!(count(&db, "workspace_builds WHERE id = $1 AND template_version_preset_id IS NULL", build1).await, 1);
        // Without a preset any version goes.
        let j2 = job(&db, &b, "workspace_build").await;
        try_build(&db, &b, new(2, j2, v1, None)).await.unwrap();
    }

    /// 05 §2.2: one default preset per version, unique names, TTL bounds.
    async fn preset_constraints(db: TestDb) {
        let b = base(&db, "presetrules").await;
        let c = db.ctx();
        let v = version(&db, &b).await;
        let p = preset(&db, v, "a").await;
        let r = db.query("SELECT prebuild_status::text AS s, invalidate_after_secs FROM template_version_presets WHERE id = $1", vec![c.uuid(p)]).await.unwrap();
        assert_eq!(r[0].string("s").unwrap(), "normal");
        assert_eq!(r[0].i32("invalidate_after_secs").unwrap(), 0);
        assert!(matches!(
            db.execute(
                "INSERT INTO template_version_presets (id, template_version_id, name, created_at) VALUES ($1, $2, 'a', $3)",
                vec![c.uuid(Uuid::new_v4()), c.uuid(v), c.ts(now())],
            )
            .await,
            Err(StoreError::Conflict { .. })
        ));
        let default = |name: &'static str| {
            db.execute(
                "INSERT INTO template_version_presets (id, template_version_id, name, created_at, is_default) VALUES ($1, $2, $3, $4, TRUE)",
                vec![c.uuid(Uuid::new_v4()), c.uuid(v), c.text(name), c.ts(now())],
            )
        };
        default("b").await.unwrap();
        assert!(matches!(default("c").await, Err(StoreError::Conflict { .. })));
        for (ttl, ok) in [(0, true), (3600, true), (31_536_000, true), (60, false), (31_536_001, false)] {
            let res = db
                .execute(
                    "INSERT INTO template_version_presets (id, template_version_id, name, created_at, invalidate_after_secs) VALUES ($1, $2, $3, $4, $5)",
                    vec![c.uuid(Uuid::new_v4()), c.uuid(v), c.text(format!("ttl{ttl}")), c.ts(now()), c.i32(ttl)],
                )
                .await;
            assert_eq!(res.is_ok(), ok, "ttl {ttl}: {res:?}");
        }
    }

    /// 04 §2.8: the AI-task CHECK (acceptance 62, store level) and the deadline CHECK.
    async fn build_checks(db: TestDb) {
        let b = base(&db, "checks").await;
        let c = db.ctx();
        let v = version(&db, &b).await;
        let w = workspace(&db, b.org, b.template, b.user).await;
        let (id, j) = build(&db, &b, w, v, 1).await;
        let e = db
            .execute("UPDATE workspace_builds SET has_ai_task = TRUE WHERE id = $1", vec![c.uuid(id)])
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("workspace_builds_ai_task_sidebar_app_id_required"), "{e:?}");
        db.execute("UPDATE workspace_builds SET has_ai_task = FALSE WHERE id = $1", vec![c.uuid(id)]).await.unwrap();

        let r = resource(&db, j, "dev").await;
        let a = try_agent(&db, r, "main", None).await.unwrap();
        let app = Uuid::new_v4();
        db.execute(
            "INSERT INTO workspace_apps (id, created_at, agent_id, slug) VALUES ($1, $2, $3, 'sidebar')",
            vec![c.uuid(app), c.ts(now()), c.uuid(a)],
        )
        .await
        .unwrap();
        db.execute(
            "UPDATE workspace_builds SET has_ai_task = TRUE, ai_task_sidebar_app_id = $2 WHERE id = $1",
            vec![c.uuid(id), c.uuid(app)],
        )
        .await
        .unwrap();

        // deadline <= max_deadline unless max_deadline is the sentinel.
        let t = now();
        let set = |deadline: DateTime<Utc>, max: DateTime<Utc>| {
            db.execute(
                "UPDATE workspace_builds SET deadline = $2, max_deadline = $3 WHERE id = $1",
                vec![c.uuid(id), c.ts(deadline), c.ts(max)],
            )
        };
        set(t + TimeDelta::hours(2), hangar_core::clock::never()).await.unwrap();
        set(t, t + TimeDelta::hours(1)).await.unwrap();
        let e = set(t + TimeDelta::hours(2), t + TimeDelta::hours(1)).await.unwrap_err();
        assert!(format!("{e:?}").contains("workspace_builds_deadline_below_max_deadline"), "{e:?}");
    }

    /// 04 §2.6: one daemon name per org and owner (case-insensitive owner).
    async fn daemon_name_unique_per_owner(db: TestDb) {
        let b = base(&db, "daemons").await;
        let c = db.ctx();
        let daemon = |name: &'static str, tags: serde_json::Value| {
            db.execute(
                "INSERT INTO provisioner_daemons (id, created_at, name, provisioners, tags, organization_id) \
                 VALUES ($1, $2, $3, $4::provisioner_type[], $5::jsonb, $6)",
                vec![
                    c.uuid(Uuid::new_v4()),
                    c.ts(now()),
                    c.text(name),
                    c.text(if c.is_postgres() { "{echo,terraform}" } else { "[\"echo\",\"terraform\"]" }),
                    c.json(&tags),
                    c.uuid(b.org),
                ],
            )
        };
        daemon("built-in", json!({"owner": "", "scope": "organization"})).await.unwrap();
        daemon("built-in", json!({"owner": "Alice", "scope": "user"})).await.unwrap();
        assert!(matches!(
            daemon("built-in", json!({"owner": "alice", "scope": "user"})).await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(daemon("built-in", json!({})).await, Err(StoreError::Conflict { .. })));
    }
}
