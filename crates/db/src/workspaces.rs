//! [`WorkspaceStore`] on both backends (04 §2, §6).

use crate::sql::{Ctx, Params, Row};
use crate::{Db, Tx};
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::{PREBUILDS_SYSTEM_USER_ID, StoreError};
use hangar_provisioner::model as pm;
use hangar_workspaces::model::*;
use hangar_workspaces::store::*;
use sea_orm::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

/// A daemon not seen for this long is offline (04 §7).
use hangar_workspaces::rules::STALE_DAEMON;
/// A job keeps at most this many bytes of log output (04 §2.5).
const MAX_LOG_BYTES: i64 = 1_048_576;

const TEMPLATE_COLS: &str = "t.id, t.created_at, t.updated_at, t.organization_id, t.deleted, t.name, t.display_name, \
    t.description, t.icon, t.provisioner::text AS provisioner, t.active_version_id, t.created_by, t.default_ttl, \
    t.allow_user_cancel_workspace_jobs, t.require_active_version, t.deprecated";

fn template_from(r: &Row) -> R<Template> {
    Ok(Template {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        organization_id: r.uuid("organization_id")?,
        deleted: r.bool("deleted")?,
        name: r.string("name")?,
        display_name: r.string("display_name")?,
        description: r.string("description")?,
        icon: r.string("icon")?,
        provisioner: r.parse("provisioner")?,
        active_version_id: r.uuid("active_version_id")?,
        created_by: r.uuid("created_by")?,
        default_ttl: r.i64("default_ttl")?,
        allow_user_cancel_workspace_jobs: r.bool("allow_user_cancel_workspace_jobs")?,
        require_active_version: r.bool("require_active_version")?,
        deprecated: r.string("deprecated")?,
    })
}

const VERSION_COLS: &str = "v.id, v.template_id, v.organization_id, v.created_at, v.updated_at, v.name, v.message, \
    v.readme, v.job_id, v.created_by, v.archived, v.has_ai_task";

fn version_from(r: &Row) -> R<TemplateVersion> {
    Ok(TemplateVersion {
        id: r.uuid("id")?,
        template_id: r.opt_uuid("template_id")?,
        organization_id: r.uuid("organization_id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        name: r.string("name")?,
        message: r.string("message")?,
        readme: r.string("readme")?,
        job_id: r.uuid("job_id")?,
        created_by: r.uuid("created_by")?,
        archived: r.bool("archived")?,
        has_ai_task: r.opt_bool("has_ai_task")?,
    })
}

const JOB_COLS: &str = "j.id, j.created_at, j.updated_at, j.started_at, j.canceled_at, j.completed_at, j.error, \
    j.error_code, j.organization_id, j.initiator_id, j.provisioner::text AS provisioner, j.type::text AS job_type, \
    j.file_id, j.input::text AS input, j.worker_id, j.tags::text AS tags, j.logs_length, j.logs_overflowed, \
    j.job_status::text AS job_status";

fn job_from(r: &Row) -> R<ProvisionerJob> {
    Ok(ProvisionerJob {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        started_at: r.opt_ts("started_at")?,
        canceled_at: r.opt_ts("canceled_at")?,
        completed_at: r.opt_ts("completed_at")?,
        error: r.opt_string("error")?,
        error_code: r.opt_string("error_code")?,
        organization_id: r.uuid("organization_id")?,
        initiator_id: r.uuid("initiator_id")?,
        provisioner: r.parse("provisioner")?,
        job_type: r.parse("job_type")?,
        file_id: r.uuid("file_id")?,
        input: r.json("input")?,
        worker_id: r.opt_uuid("worker_id")?,
        tags: r.json("tags")?,
        logs_length: r.i32("logs_length")?,
        logs_overflowed: r.bool("logs_overflowed")?,
        status: r.parse("job_status")?,
    })
}

const WORKSPACE_COLS: &str = "w.id, w.created_at, w.updated_at, w.owner_id, w.organization_id, w.template_id, w.deleted, \
    w.name, w.autostart_schedule, w.ttl, w.last_used_at, w.automatic_updates::text AS automatic_updates, w.next_start_at";

fn workspace_from(r: &Row) -> R<Workspace> {
    Ok(Workspace {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        owner_id: r.uuid("owner_id")?,
        organization_id: r.uuid("organization_id")?,
        template_id: r.uuid("template_id")?,
        deleted: r.bool("deleted")?,
        name: r.string("name")?,
        autostart_schedule: r.opt_string("autostart_schedule")?,
        ttl: r.opt_i64("ttl")?,
        last_used_at: r.ts("last_used_at")?,
        automatic_updates: r.parse("automatic_updates")?,
        next_start_at: r.opt_ts("next_start_at")?,
    })
}

const BUILD_COLS: &str = "b.id, b.created_at, b.updated_at, b.workspace_id, b.template_version_id, b.build_number, \
    b.transition::text AS transition, b.initiator_id, b.provisioner_state, b.job_id, b.deadline, b.max_deadline, \
    b.reason::text AS reason, b.daily_cost, b.template_version_preset_id, b.has_ai_task, b.ai_task_sidebar_app_id";

fn build_from(r: &Row) -> R<WorkspaceBuild> {
    Ok(WorkspaceBuild {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        workspace_id: r.uuid("workspace_id")?,
        template_version_id: r.uuid("template_version_id")?,
        build_number: r.i32("build_number")?,
        transition: r.parse("transition")?,
        initiator_id: r.uuid("initiator_id")?,
        provisioner_state: r.opt_bytes("provisioner_state")?,
        job_id: r.uuid("job_id")?,
        deadline: r.ts("deadline")?,
        max_deadline: r.ts("max_deadline")?,
        reason: r.parse("reason")?,
        daily_cost: r.i32("daily_cost")?,
        template_version_preset_id: r.opt_uuid("template_version_preset_id")?,
        has_ai_task: r.opt_bool("has_ai_task")?,
        ai_task_sidebar_app_id: r.opt_uuid("ai_task_sidebar_app_id")?,
    })
}

fn list(c: &Ctx, p: &mut Params, ids: &[Uuid]) -> String {
    ids.iter()
        .map(|id| p.push(c.uuid(*id)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_text(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// SQL for "daemon `d` may run pending job `p`" on each backend (04 §2.13).
fn tag_match(c: &Ctx, daemon_tags: &str, job_tags: &str) -> String {
    if c.is_postgres() {
        format!("provisioner_tagset_contains({daemon_tags}, {job_tags})")
    } else {
        format!(
            "(CASE WHEN json({job_tags}) = json('{{\"owner\":\"\",\"scope\":\"organization\"}}') \
               THEN json({daemon_tags}) = json({job_tags}) \
               ELSE NOT EXISTS (SELECT 1 FROM json_each({job_tags}) jt WHERE NOT EXISTS \
                 (SELECT 1 FROM json_each({daemon_tags}) dt WHERE dt.key = jt.key AND dt.value = jt.value)) END)"
        )
    }
}

/// SQL for "the daemon's provisioner list holds the job's provisioner".
fn provisioner_match(c: &Ctx, daemon_provisioners: &str, job_provisioner: &str) -> String {
    if c.is_postgres() {
        format!("{job_provisioner} = ANY({daemon_provisioners})")
    } else {
        format!(
            "EXISTS (SELECT 1 FROM json_each({daemon_provisioners}) dp WHERE dp.value = {job_provisioner})"
        )
    }
}

/// Canonical tag JSON: keys sorted (BTreeMap), compact, so equal sets are equal text.
fn tags_json(tags: &Tags) -> serde_json::Value {
    json_text(tags)
}

impl Db {
    async fn insert_job_in(&self, tx: &Tx, job: &ProvisionerJob) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &tx,
            "INSERT INTO provisioner_jobs (id, created_at, updated_at, started_at, completed_at, organization_id, initiator_id, \
               provisioner, type, file_id, input, tags) \
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7::provisioner_type, $8::provisioner_job_type, $9, $10::jsonb, $11::jsonb)",
            vec![
                c.uuid(job.id),
                c.ts(job.created_at),
                opt_ts(c, job.started_at),
                opt_ts(c, job.completed_at),
                c.uuid(job.organization_id),
                c.uuid(job.initiator_id),
                c.text(job.provisioner.as_str()),
                c.text(job.job_type.as_str()),
                c.uuid(job.file_id),
                c.json(&json_text(&job.input)),
                c.json(&tags_json(&job.tags)),
            ],
        )
        .await?;
        Ok(())
    }

    async fn insert_build_in(&self, tx: &Tx, b: &WorkspaceBuild, params: &[NameValue]) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &tx,
            "INSERT INTO workspace_builds (id, created_at, updated_at, workspace_id, template_version_id, build_number, transition, \
               initiator_id, job_id, deadline, max_deadline, reason, template_version_preset_id) \
             VALUES ($1, $2, $2, $3, $4, $5, $6::workspace_transition, $7, $8, $9, $9, $10::build_reason, $11)",
            vec![
                c.uuid(b.id),
                c.ts(b.created_at),
                c.uuid(b.workspace_id),
                c.uuid(b.template_version_id),
                c.i32(b.build_number),
                c.text(b.transition.as_str()),
                c.uuid(b.initiator_id),
                c.uuid(b.job_id),
                c.ts(b.deadline),
                c.text(b.reason.as_str()),
                opt_uuid_value(c, b.template_version_preset_id),
            ],
        )
        .await?;
        for p in params {
            c.exec(
                &tx,
                "INSERT INTO workspace_build_parameters (workspace_build_id, name, value) VALUES ($1, $2, $3)",
                vec![c.uuid(b.id), c.text(&p.name), c.text(&p.value)],
            )
            .await?;
        }
        Ok(())
    }

    /// Locks the job row and checks the daemon holds it uncompleted.
    async fn held_job(&self, tx: &Tx, job: Uuid, daemon: Option<Uuid>) -> R<ProvisionerJob> {
        let c = &self.ctx;
        let held = |j: &ProvisionerJob| match daemon {
            Some(d) => j.worker_id == Some(d) && j.completed_at.is_none(),
            // Orphan deletes: inserted already finished (started and completed, no worker, no
            // error, not canceled) and completed without a daemon. A pending or canceled job
            // has no worker either, but nobody holds it.
            None => j.worker_id.is_none() && j.status == JobStatus::Succeeded,
        };
        let read = |lock: &'static str| {
            let sql = format!("SELECT {JOB_COLS} FROM provisioner_jobs j WHERE j.id = $1{lock}");
            async move {
                let row = c
                    .one(&tx, &sql, vec![c.uuid(job)])
                    .await?
                    .ok_or(StoreError::NotFound)?;
                job_from(&row)
            }
        };
        let not_held = || StoreError::Conflict {
            constraint: "job_not_held".into(),
        };
        // Check without a lock first: a refused caller must not leave a row lock behind
        // until its dropped transaction is rolled back (acquire's SKIP LOCKED would skip
        // the job meanwhile).
        let first = read("").await?;
        if !held(&first) {
            return Err(not_held());
        }
        if !c.is_postgres() {
            return Ok(first); // BEGIN IMMEDIATE already excludes other writers
        }
        let j = read(" FOR UPDATE").await?;
        if held(&j) { Ok(j) } else { Err(not_held()) }
    }

    /// Writes a provisioner's resources under `job` (04 §6.4); app rows get new ids.
    /// Returns a map from provisioner app id to row id.
    async fn insert_resources(
        &self,
        tx: &Tx,
        job: Uuid,
        transition: Transition,
        resources: &[pm::Resource],
        build: bool,
        now: DateTime<Utc>,
    ) -> R<BTreeMap<String, Uuid>> {
        let c = &self.ctx;
        let mut app_ids = BTreeMap::new();
        for r in resources {
            let rid = Uuid::new_v4();
            c.exec(
                &tx,
                "INSERT INTO workspace_resources (id, created_at, job_id, transition, type, name, hide, icon, instance_type, daily_cost) \
                 VALUES ($1, $2, $3, $4::workspace_transition, $5, $6, $7, $8, $9, $10)",
                vec![
                    c.uuid(rid),
                    c.ts(now),
                    c.uuid(job),
                    c.text(transition.as_str()),
                    c.text(&r.r#type),
                    c.text(&r.name),
                    c.bool(r.hide),
                    c.text(&r.icon),
                    c.opt_text(r.instance_type.clone()),
                    c.i32(r.daily_cost),
                ],
            )
            .await?;
            for m in &r.metadata {
                c.exec(
                    &tx,
                    "INSERT INTO workspace_resource_metadata (workspace_resource_id, key, value, sensitive) VALUES ($1, $2, $3, $4)",
                    vec![c.uuid(rid), c.text(&m.key), c.opt_text(m.value.clone()), c.bool(m.sensitive)],
                )
                .await?;
            }
            for a in &r.agents {
                let aid = Uuid::new_v4();
                // Import previews get tokens that can never authenticate.
                let token = match (&a.token, build) {
                    (Some(t), true) => Uuid::parse_str(t).unwrap_or_else(|_| Uuid::new_v4()),
                    _ => Uuid::new_v4(),
                };
                let display_apps = a
                    .display_apps
                    .as_ref()
                    .map(|d| {
                        let mut v = vec![];
                        for (on, name) in [
                            (d.vscode, "vscode"),
                            (d.vscode_insiders, "vscode_insiders"),
                            (d.web_terminal, "web_terminal"),
                            (d.ssh_helper, "ssh_helper"),
                            (d.port_forwarding_helper, "port_forwarding_helper"),
                        ] {
                            if on {
                                v.push(name);
                            }
                        }
                        json_text(&v)
                    })
                    .unwrap_or_else(|| {
                        json_text(&[
                            "vscode",
                            "web_terminal",
                            "ssh_helper",
                            "port_forwarding_helper",
                        ])
                    });
                c.exec(
                    &tx,
                    "INSERT INTO workspace_agents (id, created_at, updated_at, name, resource_id, auth_token, architecture, \
                       operating_system, environment_variables, directory, connection_timeout_seconds, troubleshooting_url, \
                       motd_file, display_apps, display_order) \
                     VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13::jsonb, $14)",
                    vec![
                        c.uuid(aid),
                        c.ts(now),
                        c.text(&a.name),
                        c.uuid(rid),
                        c.uuid(token),
                        c.text(&a.architecture),
                        c.text(&a.operating_system),
                        c.json(&json_text(&a.env)),
                        c.text(&a.directory),
                        c.i32(a.connection_timeout_seconds),
                        c.text(&a.troubleshooting_url),
                        c.text(&a.motd_file),
                        c.json(&display_apps),
                        c.i32(a.order),
                    ],
                )
                .await?;
                if let Some(m) = &a.resources_monitoring {
                    if let Some(mem) = &m.memory {
                        c.exec(
                            &tx,
                            "INSERT INTO workspace_agent_memory_resource_monitors (agent_id, enabled, threshold, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $4)",
                            vec![c.uuid(aid), c.bool(mem.enabled), c.i32(mem.threshold), c.ts(now)],
                        )
                        .await?;
                    }
                    for v in &m.volumes {
                        c.exec(
                            &tx,
                            "INSERT INTO workspace_agent_volume_resource_monitors (agent_id, enabled, threshold, path, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $5)",
                            vec![c.uuid(aid), c.bool(v.enabled), c.i32(v.threshold), c.text(&v.path), c.ts(now)],
                        )
                        .await?;
                    }
                }
                for d in &a.devcontainers {
                    c.exec(
                        &tx,
                        "INSERT INTO workspace_agent_devcontainers (id, workspace_agent_id, created_at, workspace_folder, config_path, name) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        vec![c.uuid(Uuid::new_v4()), c.uuid(aid), c.ts(now), c.text(&d.workspace_folder), c.text(&d.config_path), c.text(&d.name)],
                    )
                    .await?;
                }
                for app in &a.apps {
                    let app_row = Uuid::new_v4();
                    app_ids.insert(app.id.clone(), app_row);
                    let (hc_url, hc_interval, hc_threshold) =
                        app.healthcheck.as_ref().map_or((String::new(), 0, 0), |h| {
                            (h.url.clone(), h.interval, h.threshold)
                        });
                    let health = if hc_url.is_empty() {
                        "disabled"
                    } else {
                        "initializing"
                    };
                    c.exec(
                        &tx,
                        "INSERT INTO workspace_apps (id, created_at, agent_id, slug, display_name, icon, command, url, healthcheck_url, \
                           healthcheck_interval, healthcheck_threshold, health, subdomain, sharing_level, external, display_order, \
                           hidden, open_in, display_group) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::workspace_app_health, $13, \
                           $14::app_sharing_level, $15, $16, $17, $18::workspace_app_open_in, $19)",
                        vec![
                            c.uuid(app_row),
                            c.ts(now),
                            c.uuid(aid),
                            c.text(&app.slug),
                            c.text(if app.display_name.is_empty() { &app.slug } else { &app.display_name }),
                            c.text(&app.icon),
                            c.opt_text(app.command.clone()),
                            c.opt_text(app.url.clone()),
                            c.text(hc_url),
                            c.i32(hc_interval),
                            c.i32(hc_threshold),
                            c.text(health),
                            c.bool(app.subdomain),
                            c.text(if app.sharing_level.is_empty() { "owner" } else { &app.sharing_level }),
                            c.bool(app.external),
                            c.i32(app.order),
                            c.bool(app.hidden),
                            c.text(if app.open_in.is_empty() { "slim-window" } else { &app.open_in }),
                            c.opt_text(app.group.clone()),
                        ],
                    )
                    .await?;
                }
            }
        }
        Ok(app_ids)
    }

    async fn complete_job_row(&self, tx: &Tx, job: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &tx,
            "UPDATE provisioner_jobs SET completed_at = $1, updated_at = $1, error = NULL WHERE id = $2",
            vec![c.ts(now), c.uuid(job)],
        )
        .await?;
        Ok(())
    }

    async fn agents_of_resources(&self, resource_ids: &[Uuid]) -> R<Vec<WorkspaceAgent>> {
        if resource_ids.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let ids = list(c, &mut p, resource_ids);
        let rows = c
            .all(
                &self.conn,
                &format!(
                    "SELECT {} FROM workspace_agents a WHERE a.resource_id IN ({ids}) AND a.deleted = FALSE \
                     ORDER BY a.display_order, a.name",
                    crate::agents::AGENT_COLS
                ),
                p.values,
            )
            .await?;
        let mut agents = rows
            .iter()
            .map(crate::agents::agent_from)
            .collect::<R<Vec<_>>>()?;
        let agent_ids: Vec<Uuid> = agents.iter().map(|a| a.id).collect();
        for app in self.apps_of_agents(&agent_ids).await? {
            if let Some(a) = agents.iter_mut().find(|a| a.id == app.agent_id) {
                a.apps.push(app);
            }
        }
        Ok(agents)
    }

    async fn resources_of_jobs(&self, jobs: &[Uuid]) -> R<Vec<WorkspaceResource>> {
        if jobs.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let ids = list(c, &mut p, jobs);
        let rows = c
            .all(
                &self.conn,
                &format!(
                    "SELECT r.id, r.created_at, r.job_id, r.transition::text AS transition, r.type, r.name, r.hide, r.icon, r.daily_cost \
                     FROM workspace_resources r WHERE r.job_id IN ({ids}) ORDER BY r.type, r.name"
                ),
                p.values,
            )
            .await?;
        let mut out = vec![];
        for r in rows {
            out.push(WorkspaceResource {
                id: r.uuid("id")?,
                created_at: r.ts("created_at")?,
                job_id: r.uuid("job_id")?,
                transition: r.parse("transition")?,
                resource_type: r.string("type")?,
                name: r.string("name")?,
                hide: r.bool("hide")?,
                icon: r.string("icon")?,
                daily_cost: r.i32("daily_cost")?,
                metadata: vec![],
                agents: vec![],
            });
        }
        let rids: Vec<Uuid> = out.iter().map(|r| r.id).collect();
        if !rids.is_empty() {
            let mut p = Params::default();
            let ids = list(c, &mut p, &rids);
            let rows = c
                .all(
                    &self.conn,
                    &format!(
                        "SELECT m.workspace_resource_id, m.key, m.value, m.sensitive FROM workspace_resource_metadata m \
                         WHERE m.workspace_resource_id IN ({ids}) ORDER BY m.key"
                    ),
                    p.values,
                )
                .await?;
            for r in rows {
                let rid = r.uuid("workspace_resource_id")?;
                let sensitive = r.bool("sensitive")?;
                let value = if sensitive {
                    String::new()
                } else {
                    r.opt_string("value")?.unwrap_or_default()
                };
                if let Some(res) = out.iter_mut().find(|x| x.id == rid) {
                    res.metadata.push(ResourceMetadata {
                        key: r.string("key")?,
                        value,
                        sensitive,
                    });
                }
            }
            for a in self.agents_of_resources(&rids).await? {
                if let Some(res) = out.iter_mut().find(|x| x.id == a.resource_id) {
                    res.agents.push(a);
                }
            }
        }
        Ok(out)
    }
}

fn opt_ts(c: &Ctx, t: Option<DateTime<Utc>>) -> Value {
    match t {
        Some(t) => c.ts(t),
        None if c.is_postgres() => Value::ChronoDateTimeUtc(None),
        None => Value::String(None),
    }
}

fn opt_uuid_value(c: &Ctx, id: Option<Uuid>) -> Value {
    match id {
        Some(id) => c.uuid(id),
        None if c.is_postgres() => Value::Uuid(None),
        None => Value::String(None),
    }
}

impl WorkspaceStore for Db {
    async fn insert_file(&self, f: File) -> R<(File, bool)> {
        let c = &self.ctx;
        let n = c
            .exec(
                &self.conn,
                "INSERT INTO files (id, hash, created_at, created_by, mimetype, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (hash, created_by) DO NOTHING",
                vec![c.uuid(f.id), c.text(&f.hash), c.ts(f.created_at), c.uuid(f.created_by), c.text(&f.mimetype), c.bytes(f.data.clone())],
            )
            .await?;
        if n > 0 {
            return Ok((f, true));
        }
        let row = c
            .one(
                &self.conn,
                "SELECT id, hash, created_at, created_by, mimetype, data FROM files WHERE hash = $1 AND created_by = $2",
                vec![c.text(&f.hash), c.uuid(f.created_by)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((file_from(&row)?, false))
    }

    async fn file_by_id(&self, id: Uuid) -> R<Option<File>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            "SELECT id, hash, created_at, created_by, mimetype, data FROM files WHERE id = $1",
            vec![c.uuid(id)],
        )
        .await?
        .map(|r| file_from(&r))
        .transpose()
    }

    async fn insert_version_with_job(&self, v: TemplateVersion, job: ProvisionerJob) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_live_organization(&tx, v.organization_id).await?;
        self.insert_job_in(&tx, &job).await?;
        c.exec(
            &tx,
            "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at, name, message, job_id, created_by) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)",
            vec![
                c.uuid(v.id),
                opt_uuid_value(c, v.template_id),
                c.uuid(v.organization_id),
                c.ts(v.created_at),
                c.text(&v.name),
                c.text(&v.message),
                c.uuid(v.job_id),
                c.uuid(v.created_by),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn version_by_id(&self, id: Uuid) -> R<Option<TemplateVersion>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {VERSION_COLS} FROM template_versions v WHERE v.id = $1"),
            vec![c.uuid(id)],
        )
        .await?
        .map(|r| version_from(&r))
        .transpose()
    }

    async fn version_by_name(&self, template: Uuid, name: &str) -> R<Option<TemplateVersion>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {VERSION_COLS} FROM template_versions v WHERE v.template_id = $1 AND v.name = $2"),
            vec![c.uuid(template), c.text(name)],
        )
        .await?
        .map(|r| version_from(&r))
        .transpose()
    }

    async fn versions_of_template(&self, template: Uuid) -> R<Vec<TemplateVersion>> {
        let c = &self.ctx;
        c.all(
            &self.conn,
            &format!("SELECT {VERSION_COLS} FROM template_versions v WHERE v.template_id = $1 ORDER BY v.created_at, v.id"),
            vec![c.uuid(template)],
        )
        .await?
        .iter()
        .map(version_from)
        .collect()
    }

    async fn insert_template(&self, t: Template) -> R<Template> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_live_organization(&tx, t.organization_id).await?;
        c.exec(
            &tx,
            "INSERT INTO templates (id, created_at, updated_at, organization_id, name, display_name, description, icon, provisioner, \
               active_version_id, created_by, default_ttl, allow_user_cancel_workspace_jobs, require_active_version) \
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8::provisioner_type, $9, $10, $11, $12, $13)",
            vec![
                c.uuid(t.id),
                c.ts(t.created_at),
                c.uuid(t.organization_id),
                c.text(&t.name),
                c.text(&t.display_name),
                c.text(&t.description),
                c.text(&t.icon),
                c.text(t.provisioner.as_str()),
                c.uuid(t.active_version_id),
                c.uuid(t.created_by),
                c.i64(t.default_ttl),
                c.bool(t.allow_user_cancel_workspace_jobs),
                c.bool(t.require_active_version),
            ],
        )
        .await?;
        let n = c
            .exec(
                &tx,
                "UPDATE template_versions SET template_id = $1, updated_at = $2 WHERE id = $3 AND template_id IS NULL",
                vec![c.uuid(t.id), c.ts(t.created_at), c.uuid(t.active_version_id)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict {
                constraint: "version_has_template".into(),
            });
        }
        tx.commit().await?;
        Ok(t)
    }

    async fn template_by_id(&self, id: Uuid) -> R<Option<Template>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!(
                "SELECT {TEMPLATE_COLS} FROM templates t WHERE t.id = $1 AND t.deleted = FALSE"
            ),
            vec![c.uuid(id)],
        )
        .await?
        .map(|r| template_from(&r))
        .transpose()
    }

    async fn template_by_name(&self, org: Uuid, name: &str) -> R<Option<Template>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {TEMPLATE_COLS} FROM templates t WHERE t.organization_id = $1 AND lower(t.name) = lower($2) AND t.deleted = FALSE"),
            vec![c.uuid(org), c.text(name)],
        )
        .await?
        .map(|r| template_from(&r))
        .transpose()
    }

    async fn list_templates(&self, org: Option<Uuid>) -> R<Vec<Template>> {
        let c = &self.ctx;
        let mut p = Params::default();
        let mut sql = format!("SELECT {TEMPLATE_COLS} FROM templates t WHERE t.deleted = FALSE");
        if let Some(o) = org {
            let ph = p.push(c.uuid(o));
            sql.push_str(&format!(" AND t.organization_id = {ph}"));
        }
        sql.push_str(" ORDER BY lower(t.name), t.id");
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(template_from)
            .collect()
    }

    async fn set_active_version(&self, template: Uuid, version: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE templates SET active_version_id = $1, updated_at = $2 WHERE id = $3 AND deleted = FALSE",
            vec![c.uuid(version), c.ts(now), c.uuid(template)],
        )
        .await?;
        Ok(())
    }

    async fn soft_delete_template(&self, template: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE templates SET deleted = TRUE, updated_at = $1 WHERE id = $2",
            vec![c.ts(now), c.uuid(template)],
        )
        .await?;
        Ok(())
    }

    async fn template_workspace_count(&self, template: Uuid) -> R<i64> {
        let c = &self.ctx;
        let row = c
            .one(
                &self.conn,
                "SELECT count(*) AS n FROM workspaces WHERE template_id = $1 AND deleted = FALSE AND owner_id <> $2",
                vec![c.uuid(template), c.uuid(PREBUILDS_SYSTEM_USER_ID)],
            )
            .await?;
        Ok(row.map(|r| r.i64("n")).transpose()?.unwrap_or(0))
    }

    async fn template_version_parameters(&self, version: Uuid) -> R<Vec<pm::Parameter>> {
        let c = &self.ctx;
        let rows = c
            .all(
                &self.conn,
                "SELECT name, display_name, description, type, mutable, default_value, icon, options::text AS options, validation_regex, \
                   validation_error, validation_min, validation_max, validation_monotonic, required, ephemeral, display_order \
                 FROM template_version_parameters WHERE template_version_id = $1 ORDER BY display_order, name",
                vec![c.uuid(version)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(pm::Parameter {
                    name: r.string("name")?,
                    display_name: r.string("display_name")?,
                    description: r.string("description")?,
                    r#type: r.string("type")?,
                    mutable: r.bool("mutable")?,
                    default_value: r.string("default_value")?,
                    icon: r.string("icon")?,
                    options: r.json("options")?,
                    validation_regex: r.string("validation_regex")?,
                    validation_error: r.string("validation_error")?,
                    validation_min: r.opt_i32("validation_min")?,
                    validation_max: r.opt_i32("validation_max")?,
                    validation_monotonic: r.string("validation_monotonic")?,
                    required: r.bool("required")?,
                    ephemeral: r.bool("ephemeral")?,
                    display_order: r.i32("display_order")?,
                })
            })
            .collect()
    }

    async fn job_by_id(&self, id: Uuid) -> R<Option<ProvisionerJob>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {JOB_COLS} FROM provisioner_jobs j WHERE j.id = $1"),
            vec![c.uuid(id)],
        )
        .await?
        .map(|r| job_from(&r))
        .transpose()
    }

    async fn queue_positions(&self, ids: Vec<Uuid>, now: DateTime<Utc>) -> R<Vec<QueuedJob>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let pb = p.push(c.uuid(PREBUILDS_SYSTEM_USER_ID));
        let stale = p.push(c.ts(now - STALE_DAEMON));
        let id_list = list(c, &mut p, &ids);
        let sql = format!(
            "WITH pending AS (SELECT id, created_at, tags, organization_id, provisioner, \
                 CASE WHEN initiator_id = {pb} THEN 1 ELSE 0 END AS pb \
               FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status), \
             ranked AS (SELECT p.id, \
                 ROW_NUMBER() OVER (PARTITION BY d.id ORDER BY p.pb, p.created_at, p.id) AS pos, \
                 COUNT(*) OVER (PARTITION BY d.id) AS size \
               FROM pending p JOIN provisioner_daemons d ON d.organization_id = p.organization_id \
                AND {} AND d.last_seen_at > {stale} AND {}) \
             SELECT {JOB_COLS}, \
               COALESCE((SELECT MIN(r.pos) FROM ranked r WHERE r.id = j.id), 0) AS queue_position, \
               COALESCE((SELECT MAX(r.size) FROM ranked r WHERE r.id = j.id), 0) AS queue_size \
             FROM provisioner_jobs j WHERE j.id IN ({id_list}) ORDER BY j.created_at, j.id",
            provisioner_match(c, "d.provisioners", "p.provisioner"),
            tag_match(c, "d.tags", "p.tags"),
        );
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(|r| {
                Ok(QueuedJob {
                    job: job_from(r)?,
                    queue_position: r.i64("queue_position")?,
                    queue_size: r.i64("queue_size")?,
                })
            })
            .collect()
    }

    async fn acquire(&self, req: AcquireRequest) -> R<Option<ProvisionerJob>> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let mut p = Params::default();
        let now = p.push(c.ts(req.now));
        let daemon = p.push(c.uuid(req.daemon_id));
        let org = p.push(c.uuid(req.organization_id));
        let tags = p.push(c.json(&tags_json(&req.tags)));
        let types: Vec<String> = req
            .provisioners
            .iter()
            .map(|t| p.push(c.text(t.as_str())))
            .collect();
        let type_list = if c.is_postgres() {
            types
                .iter()
                .map(|t| format!("{t}::provisioner_type"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            types.join(", ")
        };
        if types.is_empty() {
            return Ok(None);
        }
        let lock = if c.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE provisioner_jobs SET started_at = {now}, updated_at = {now}, worker_id = {daemon} \
             WHERE id = (SELECT pj.id FROM provisioner_jobs pj \
               WHERE pj.job_status = 'pending'::provisioner_job_status AND pj.organization_id = {org} \
                 AND pj.provisioner IN ({type_list}) AND {} \
               ORDER BY (pj.initiator_id = '{PREBUILDS_SYSTEM_USER_ID}'::uuid), pj.created_at, pj.id{lock} LIMIT 1) \
             RETURNING {}",
            tag_match(c, &format!("{tags}::jsonb"), "pj.tags"),
            JOB_COLS.replace("j.", "")
        );
        let row = c.exec_returning(&tx, &sql, p.values).await?;
        let job = row.map(|r| job_from(&r)).transpose()?;
        c.exec(
            &tx,
            "UPDATE provisioner_daemons SET last_seen_at = $1 WHERE id = $2",
            vec![c.ts(req.now), c.uuid(req.daemon_id)],
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn append_logs(
        &self,
        job: Uuid,
        daemon: Uuid,
        logs: Vec<NewLog>,
        now: DateTime<Utc>,
    ) -> R<bool> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let j = self.held_job(&tx, job, Some(daemon)).await?;
        let bytes: i64 = logs.iter().map(|l| l.output.len() as i64).sum();
        let fits = !j.logs_overflowed && i64::from(j.logs_length) + bytes <= MAX_LOG_BYTES;
        if fits {
            for l in &logs {
                c.exec(
                    &tx,
                    "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
                     VALUES ($1, $2, $3::log_source, $4::log_level, $5, $6)",
                    vec![c.uuid(job), c.ts(l.created_at), c.text(l.source.as_str()), c.text(l.level.as_str()), c.text(&l.stage), c.text(&l.output)],
                )
                .await?;
            }
            c.exec(
                &tx,
                "UPDATE provisioner_jobs SET updated_at = $1, logs_length = logs_length + $2 WHERE id = $3",
                vec![c.ts(now), c.i32(bytes as i32), c.uuid(job)],
            )
            .await?;
        } else {
            c.exec(
                &tx,
                "UPDATE provisioner_jobs SET updated_at = $1, logs_overflowed = TRUE WHERE id = $2",
                vec![c.ts(now), c.uuid(job)],
            )
            .await?;
        }
        c.exec(
            &tx,
            "UPDATE provisioner_daemons SET last_seen_at = $1 WHERE id = $2",
            vec![c.ts(now), c.uuid(daemon)],
        )
        .await?;
        tx.commit().await?;
        Ok(j.canceled_at.is_some())
    }

    async fn job_logs(&self, job: Uuid, after: i64) -> R<Vec<JobLog>> {
        let c = &self.ctx;
        let rows = c
            .all(
                &self.conn,
                "SELECT id, created_at, source::text AS source, level::text AS level, stage, output FROM provisioner_job_logs \
                 WHERE job_id = $1 AND id > $2 ORDER BY id",
                vec![c.uuid(job), c.i64(after)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobLog {
                    id: r.i64("id")?,
                    created_at: r.ts("created_at")?,
                    log_source: r.parse("source")?,
                    log_level: r.parse("level")?,
                    stage: r.string("stage")?,
                    output: r.string("output")?,
                })
            })
            .collect()
    }

    async fn cancel_job(&self, job: Uuid, now: DateTime<Utc>) -> R<CancelOutcome> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let lock = if c.is_postgres() { " FOR UPDATE" } else { "" };
        let row = c
            .one(
                &tx,
                &format!("SELECT {JOB_COLS} FROM provisioner_jobs j WHERE j.id = $1{lock}"),
                vec![c.uuid(job)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let j = job_from(&row)?;
        let outcome = match j.status {
            JobStatus::Succeeded | JobStatus::Failed => CancelOutcome::AlreadyCompleted,
            JobStatus::Canceled | JobStatus::Canceling => CancelOutcome::AlreadyCanceled,
            JobStatus::Pending => {
                c.exec(
                    &tx,
                    "UPDATE provisioner_jobs SET canceled_at = $1, completed_at = $1, updated_at = $1 WHERE id = $2",
                    vec![c.ts(now), c.uuid(job)],
                )
                .await?;
                CancelOutcome::Canceled
            }
            JobStatus::Running | JobStatus::Unknown => {
                c.exec(
                    &tx,
                    "UPDATE provisioner_jobs SET canceled_at = $1, updated_at = $1 WHERE id = $2",
                    vec![c.ts(now), c.uuid(job)],
                )
                .await?;
                CancelOutcome::Canceling
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn complete_import(
        &self,
        job: Uuid,
        daemon: Uuid,
        result: ImportResult,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let j = self.held_job(&tx, job, Some(daemon)).await?;
        let version = j.input.template_version_id.ok_or(StoreError::NotFound)?;
        self.insert_resources(&tx, job, Transition::Start, &result.resources, false, now)
            .await?;
        for p in &result.parameters {
            c.exec(
                &tx,
                "INSERT INTO template_version_parameters (template_version_id, name, display_name, description, type, mutable, \
                   default_value, icon, options, validation_regex, validation_error, validation_min, validation_max, \
                   validation_monotonic, required, ephemeral, display_order) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17)",
                vec![
                    c.uuid(version),
                    c.text(&p.name),
                    c.text(&p.display_name),
                    c.text(&p.description),
                    c.text(&p.r#type),
                    c.bool(p.mutable),
                    c.text(&p.default_value),
                    c.text(&p.icon),
                    c.json(&json_text(&p.options)),
                    c.text(&p.validation_regex),
                    c.text(&p.validation_error),
                    Value::Int(p.validation_min),
                    Value::Int(p.validation_max),
                    c.text(&p.validation_monotonic),
                    c.bool(p.required),
                    c.bool(p.ephemeral),
                    c.i32(p.display_order),
                ],
            )
            .await?;
        }
        for v in &result.variables {
            c.exec(
                &tx,
                "INSERT INTO template_version_variables (template_version_id, name, description, type, value, default_value, required, sensitive) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                vec![
                    c.uuid(version),
                    c.text(&v.name),
                    c.text(&v.description),
                    c.text(&v.r#type),
                    c.text(&v.value),
                    c.text(&v.default_value),
                    c.bool(v.required),
                    c.bool(v.sensitive),
                ],
            )
            .await?;
        }
        c.exec(
            &tx,
            "UPDATE template_versions SET readme = $1, has_ai_task = $2, updated_at = $3 WHERE id = $4",
            vec![c.text(&result.readme), c.bool(result.has_ai_task), c.ts(now), c.uuid(version)],
        )
        .await?;
        self.complete_job_row(&tx, job, now).await?;
        tx.commit().await
    }

    async fn complete_build(
        &self,
        job: Uuid,
        daemon: Option<Uuid>,
        result: BuildResult,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let j = self.held_job(&tx, job, daemon).await?;
        let build_id = j.input.workspace_build_id.ok_or(StoreError::NotFound)?;
        let row = c
            .one(
                &tx,
                &format!("SELECT {BUILD_COLS} FROM workspace_builds b WHERE b.id = $1"),
                vec![c.uuid(build_id)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let build = build_from(&row)?;
        let app_ids = self
            .insert_resources(&tx, job, build.transition, &result.resources, true, now)
            .await?;
        let sidebar = result
            .ai_task_sidebar_app
            .as_ref()
            .and_then(|id| app_ids.get(id))
            .copied();
        let has_ai_task = result.has_ai_task && sidebar.is_some();
        let ws = c
            .one(
                &tx,
                "SELECT ttl FROM workspaces WHERE id = $1",
                vec![c.uuid(build.workspace_id)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let deadline = match (build.transition, ws.opt_i64("ttl")?) {
            (Transition::Start, Some(ttl)) if ttl > 0 => now + TimeDelta::nanoseconds(ttl),
            _ => hangar_core::clock::never(),
        };
        c.exec(
            &tx,
            "UPDATE workspace_builds SET provisioner_state = $1, has_ai_task = $2, ai_task_sidebar_app_id = $3, deadline = $4, \
               updated_at = $5 WHERE id = $6",
            vec![c.bytes(result.state.clone()), c.bool(has_ai_task), opt_uuid_value(c, sidebar), c.ts(deadline), c.ts(now), c.uuid(build.id)],
        )
        .await?;
        if build.transition == Transition::Delete {
            c.exec(
                &tx,
                "UPDATE workspaces SET deleted = TRUE, updated_at = $1 WHERE id = $2",
                vec![c.ts(now), c.uuid(build.workspace_id)],
            )
            .await?;
        }
        self.complete_job_row(&tx, job, now).await?;
        tx.commit().await
    }

    async fn fail_job(
        &self,
        job: Uuid,
        daemon: Uuid,
        error: String,
        error_code: Option<String>,
        state: Option<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let j = self.held_job(&tx, job, Some(daemon)).await?;
        // A canceled job ends `canceled`: no error is stored.
        let error = if j.canceled_at.is_some() {
            None
        } else {
            Some(error)
        };
        c.exec(
            &tx,
            "UPDATE provisioner_jobs SET completed_at = $1, updated_at = $1, error = $2, error_code = $3 WHERE id = $4",
            vec![c.ts(now), c.opt_text(error), c.opt_text(error_code), c.uuid(job)],
        )
        .await?;
        if let Some(build) = j.input.workspace_build_id {
            // State is never lost: the given one, else the previous build's.
            let state = match state {
                Some(s) => Some(s),
                None => c
                    .one(
                        &tx,
                        "SELECT p.provisioner_state FROM workspace_builds b JOIN workspace_builds p \
                           ON p.workspace_id = b.workspace_id AND p.build_number = b.build_number - 1 WHERE b.id = $1",
                        vec![c.uuid(build)],
                    )
                    .await?
                    .map(|r| r.opt_bytes("provisioner_state"))
                    .transpose()?
                    .flatten(),
            };
            if let Some(s) = state {
                c.exec(
                    &tx,
                    "UPDATE workspace_builds SET provisioner_state = $1 WHERE id = $2",
                    vec![c.bytes(s), c.uuid(build)],
                )
                .await?;
            }
        }
        tx.commit().await
    }

    async fn register_daemon(&self, reg: DaemonRegistration) -> R<Uuid> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let owner = reg
            .tags
            .get("owner")
            .cloned()
            .unwrap_or_default()
            .to_lowercase();
        let owner_expr = c.pick(
            "lower(coalesce(tags ->> 'owner', ''))",
            "lower(coalesce(json_extract(tags, '$.owner'), ''))",
        );
        let existing = c
            .one(
                &tx,
                &format!("SELECT id FROM provisioner_daemons WHERE organization_id = $1 AND name = $2 AND {owner_expr} = $3"),
                vec![c.uuid(reg.organization_id), c.text(&reg.name), c.text(&owner)],
            )
            .await?;
        let provisioners: Vec<&str> = reg.provisioners.iter().map(|p| p.as_str()).collect();
        let prov_value = if c.is_postgres() {
            // `provisioner_type[]` from a text array literal.
            c.text(format!("{{{}}}", provisioners.join(",")))
        } else {
            c.json(&json_text(&provisioners))
        };
        let prov_cast = if c.is_postgres() {
            "::provisioner_type[]"
        } else {
            ""
        };
        let id = match existing {
            Some(r) => {
                let id = r.uuid("id")?;
                c.exec(
                    &tx,
                    &format!(
                        "UPDATE provisioner_daemons SET provisioners = $1{prov_cast}, tags = $2::jsonb, last_seen_at = $3, version = $4, \
                           key_id = $5 WHERE id = $6"
                    ),
                    vec![prov_value, c.json(&tags_json(&reg.tags)), c.ts(reg.now), c.text(&reg.version), opt_uuid_value(c, reg.key_id), c.uuid(id)],
                )
                .await?;
                id
            }
            None => {
                let id = Uuid::new_v4();
                c.exec(
                    &tx,
                    &format!(
                        "INSERT INTO provisioner_daemons (id, created_at, name, provisioners, tags, last_seen_at, version, organization_id, key_id) \
                         VALUES ($1, $2, $3, $4{prov_cast}, $5::jsonb, $2, $6, $7, $8)"
                    ),
                    vec![
                        c.uuid(id),
                        c.ts(reg.now),
                        c.text(&reg.name),
                        prov_value,
                        c.json(&tags_json(&reg.tags)),
                        c.text(&reg.version),
                        c.uuid(reg.organization_id),
                        opt_uuid_value(c, reg.key_id),
                    ],
                )
                .await?;
                id
            }
        };
        tx.commit().await?;
        Ok(id)
    }

    async fn resources_of_job(&self, job: Uuid) -> R<Vec<WorkspaceResource>> {
        self.resources_of_jobs(&[job]).await
    }

    async fn insert_workspace(
        &self,
        ws: Workspace,
        build: WorkspaceBuild,
        job: ProvisionerJob,
        params: Vec<NameValue>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_live_organization(&tx, ws.organization_id).await?;
        c.exec(
            &tx,
            "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name, autostart_schedule, ttl, \
               last_used_at, automatic_updates, next_start_at) \
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10::automatic_updates, $11)",
            vec![
                c.uuid(ws.id),
                c.ts(ws.created_at),
                c.uuid(ws.owner_id),
                c.uuid(ws.organization_id),
                c.uuid(ws.template_id),
                c.text(&ws.name),
                c.opt_text(ws.autostart_schedule.clone()),
                Value::BigInt(ws.ttl),
                c.ts(ws.last_used_at),
                c.text(ws.automatic_updates.as_str()),
                opt_ts(c, ws.next_start_at),
            ],
        )
        .await?;
        self.insert_job_in(&tx, &job).await?;
        self.insert_build_in(&tx, &build, &params).await?;
        tx.commit().await
    }

    async fn insert_build(
        &self,
        build: WorkspaceBuild,
        job: ProvisionerJob,
        params: Vec<NameValue>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let lock = if c.is_postgres() { " FOR UPDATE" } else { "" };
        c.one(
            &tx,
            &format!("SELECT id FROM workspaces WHERE id = $1 AND deleted = FALSE{lock}"),
            vec![c.uuid(build.workspace_id)],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let latest = c
            .one(
                &tx,
                "SELECT b.build_number, j.job_status::text AS job_status FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
                 WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1",
                vec![c.uuid(build.workspace_id)],
            )
            .await?;
        if let Some(r) = latest {
            let status: JobStatus = r.parse("job_status")?;
            if status.is_active() || r.i32("build_number")? != build.build_number - 1 {
                return Err(StoreError::Conflict {
                    constraint: "build_active".into(),
                });
            }
        }
        self.insert_job_in(&tx, &job).await?;
        self.insert_build_in(&tx, &build, &params).await?;
        tx.commit().await
    }

    async fn workspace_by_id(&self, id: Uuid, include_deleted: bool) -> R<Option<Workspace>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {WORKSPACE_COLS} FROM workspaces w WHERE w.id = $1 AND ($2 OR w.deleted = FALSE)"),
            vec![c.uuid(id), c.bool(include_deleted)],
        )
        .await?
        .map(|r| workspace_from(&r))
        .transpose()
    }

    async fn workspace_by_owner_and_name(&self, owner: Uuid, name: &str) -> R<Option<Workspace>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {WORKSPACE_COLS} FROM workspaces w WHERE w.owner_id = $1 AND lower(w.name) = lower($2) AND w.deleted = FALSE"),
            vec![c.uuid(owner), c.text(name)],
        )
        .await?
        .map(|r| workspace_from(&r))
        .transpose()
    }

    async fn workspace_rows(&self, ids: Vec<Uuid>, now: DateTime<Utc>) -> R<Vec<WorkspaceRow>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let id_list = list(c, &mut p, &ids);
        let rows = c
            .all(
                &self.conn,
                &format!(
                    "SELECT {WORKSPACE_COLS}, u.username AS owner_name, u.avatar_url AS owner_avatar_url, o.name AS organization_name, \
                       (SELECT b.id FROM workspace_builds b WHERE b.workspace_id = w.id \
                         ORDER BY b.build_number DESC LIMIT 1) AS latest_build_id \
                     FROM workspaces w JOIN users u ON u.id = w.owner_id JOIN organizations o ON o.id = w.organization_id \
                     WHERE w.id IN ({id_list})"
                ),
                p.values,
            )
            .await?;
        let mut templates: BTreeMap<Uuid, Template> = BTreeMap::new();
        let mut build_ids = vec![];
        let mut partial = vec![];
        for r in &rows {
            let ws = workspace_from(r)?;
            let latest = r.opt_uuid("latest_build_id")?;
            if let Some(b) = latest {
                build_ids.push(b);
            }
            partial.push((
                ws,
                r.string("owner_name")?,
                r.string("owner_avatar_url")?,
                r.string("organization_name")?,
                latest,
            ));
        }
        let tids: Vec<Uuid> = partial.iter().map(|p| p.0.template_id).collect();
        if !tids.is_empty() {
            let mut p = Params::default();
            let tl = list(c, &mut p, &tids);
            for r in c
                .all(
                    &self.conn,
                    &format!("SELECT {TEMPLATE_COLS} FROM templates t WHERE t.id IN ({tl})"),
                    p.values,
                )
                .await?
            {
                let t = template_from(&r)?;
                templates.insert(t.id, t);
            }
        }
        let builds = self.build_rows(build_ids, now).await?;
        let mut out = vec![];
        for (ws, owner_name, owner_avatar_url, organization_name, latest) in partial {
            let Some(template) = templates.get(&ws.template_id).cloned() else {
                continue;
            };
            let latest_build =
                latest.and_then(|id| builds.iter().find(|b| b.build.id == id).cloned());
            out.push(WorkspaceRow {
                workspace: ws,
                owner_name,
                owner_avatar_url,
                organization_name,
                template,
                latest_build,
            });
        }
        // Keep the caller's order.
        out.sort_by_key(|r| ids.iter().position(|id| *id == r.workspace.id));
        Ok(out)
    }

    async fn list_workspace_ids(&self, q: WorkspaceQuery) -> R<(Vec<Uuid>, u64)> {
        let c = &self.ctx;
        let mut p = Params::default();
        let mut clauses = vec!["w.deleted = FALSE".to_string()];
        if let Some(o) = q.owner_id {
            clauses.push(format!("w.owner_id = {}", p.push(c.uuid(o))));
        }
        if let Some(o) = q.organization_id {
            clauses.push(format!("w.organization_id = {}", p.push(c.uuid(o))));
        }
        if let Some(t) = &q.template_name {
            clauses.push(format!("lower(t.name) = lower({})", p.push(c.text(t))));
        }
        if let Some(n) = &q.name_contains {
            let escaped = n
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            clauses.push(format!(
                "lower(w.name) LIKE {} ESCAPE '\\'",
                p.push(c.text(format!("%{escaped}%")))
            ));
        }
        if let Some(id) = q.id {
            clauses.push(format!("w.id = {}", p.push(c.uuid(id))));
        }
        if let Some(orgs) = &q.visible_orgs {
            let mut vis = vec![];
            if !orgs.is_empty() {
                vis.push(format!("w.organization_id IN ({})", list(c, &mut p, orgs)));
            }
            if let Some(owner) = q.visible_owner {
                vis.push(format!("w.owner_id = {}", p.push(c.uuid(owner))));
            }
            clauses.push(if vis.is_empty() {
                "1 = 0".into()
            } else {
                format!("({})", vis.join(" OR "))
            });
        }
        if let Some(outdated) = q.outdated {
            let op = if outdated { "<>" } else { "=" };
            clauses.push(format!("lb.template_version_id {op} t.active_version_id"));
        }
        if let Some(ai) = q.has_ai_task {
            clauses.push(format!("lb.has_ai_task = {}", p.push(c.bool(ai))));
        }
        if let Some(status) = q.status {
            let (job, transition) = match status {
                WorkspaceStatus::Pending => ("pending", None),
                WorkspaceStatus::Starting => ("running", Some("start")),
                WorkspaceStatus::Stopping => ("running", Some("stop")),
                WorkspaceStatus::Deleting => ("running", Some("delete")),
                WorkspaceStatus::Running => ("succeeded", Some("start")),
                WorkspaceStatus::Stopped => ("succeeded", Some("stop")),
                WorkspaceStatus::Deleted => ("succeeded", Some("delete")),
                WorkspaceStatus::Canceling => ("canceling", None),
                WorkspaceStatus::Canceled => ("canceled", None),
                WorkspaceStatus::Failed => ("failed", None),
            };
            clauses.push(format!("lj.job_status = '{job}'::provisioner_job_status"));
            if let Some(tr) = transition {
                clauses.push(format!("lb.transition = '{tr}'::workspace_transition"));
            }
        }
        let mut sql = format!(
            "SELECT w.id, COUNT(*) OVER () AS total FROM workspaces w JOIN users u ON u.id = w.owner_id \
               JOIN templates t ON t.id = w.template_id \
               LEFT JOIN workspace_builds lb ON lb.id = (SELECT b.id FROM workspace_builds b WHERE b.workspace_id = w.id \
                 ORDER BY b.build_number DESC LIMIT 1) \
               LEFT JOIN provisioner_jobs lj ON lj.id = lb.job_id \
             WHERE {} ORDER BY lower(u.username), lower(w.name), w.id",
            clauses.join(" AND ")
        );
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        } else if q.offset > 0 {
            sql.push_str(&format!(" LIMIT {}", i64::MAX));
        }
        if q.offset > 0 {
            sql.push_str(&format!(" OFFSET {}", q.offset));
        }
        let rows = c.all(&self.conn, &sql, p.values).await?;
        let total = rows
            .first()
            .map(|r| r.i64("total"))
            .transpose()?
            .unwrap_or(0) as u64;
        let ids = rows.iter().map(|r| r.uuid("id")).collect::<R<Vec<_>>>()?;
        Ok((ids, total))
    }

    async fn build_rows(&self, ids: Vec<Uuid>, now: DateTime<Utc>) -> R<Vec<BuildRow>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        // Jobs are read before builds and resources: completion writes all three in one
        // transaction, so a job seen completed implies its build's fields are visible.
        let mut p = Params::default();
        let id_list = list(c, &mut p, &ids);
        let job_ids = c
            .all(
                &self.conn,
                &format!("SELECT job_id FROM workspace_builds WHERE id IN ({id_list})"),
                p.values,
            )
            .await?
            .iter()
            .map(|r| r.uuid("job_id"))
            .collect::<R<Vec<_>>>()?;
        let jobs = self.queue_positions(job_ids.clone(), now).await?;
        let mut p = Params::default();
        let id_list = list(c, &mut p, &ids);
        let rows = c
            .all(
                &self.conn,
                &format!(
                    "SELECT {BUILD_COLS}, w.name AS workspace_name, w.owner_id AS workspace_owner_id, u.username AS workspace_owner_name, \
                       v.name AS template_version_name, i.username AS initiator_name \
                     FROM workspace_builds b JOIN workspaces w ON w.id = b.workspace_id JOIN users u ON u.id = w.owner_id \
                       JOIN template_versions v ON v.id = b.template_version_id JOIN users i ON i.id = b.initiator_id \
                     WHERE b.id IN ({id_list})"
                ),
                p.values,
            )
            .await?;
        let mut builds = vec![];
        for r in &rows {
            builds.push((
                build_from(r)?,
                r.string("workspace_name")?,
                r.uuid("workspace_owner_id")?,
                r.string("workspace_owner_name")?,
                r.string("template_version_name")?,
                r.string("initiator_name")?,
            ));
        }
        let resources = self.resources_of_jobs(&job_ids).await?;
        let mut out = vec![];
        for (
            build,
            workspace_name,
            workspace_owner_id,
            workspace_owner_name,
            template_version_name,
            initiator_name,
        ) in builds
        {
            let Some(job) = jobs.iter().find(|j| j.job.id == build.job_id).cloned() else {
                continue;
            };
            let res = resources
                .iter()
                .filter(|r| r.job_id == build.job_id)
                .cloned()
                .collect();
            out.push(BuildRow {
                build,
                job,
                workspace_name,
                workspace_owner_id,
                workspace_owner_name,
                template_version_name,
                initiator_name,
                resources: res,
            });
        }
        out.sort_by_key(|r| ids.iter().position(|id| *id == r.build.id));
        Ok(out)
    }

    async fn build_ids_of_workspace(&self, ws: Uuid, limit: u64, offset: u64) -> R<Vec<Uuid>> {
        let c = &self.ctx;
        let mut sql =
            "SELECT id FROM workspace_builds WHERE workspace_id = $1 ORDER BY build_number DESC"
                .to_string();
        if limit > 0 {
            sql.push_str(&format!(" LIMIT {limit}"));
        } else if offset > 0 {
            sql.push_str(&format!(" LIMIT {}", i64::MAX));
        }
        if offset > 0 {
            sql.push_str(&format!(" OFFSET {offset}"));
        }
        c.all(&self.conn, &sql, vec![c.uuid(ws)])
            .await?
            .iter()
            .map(|r| r.uuid("id"))
            .collect()
    }

    async fn build_by_number(&self, ws: Uuid, number: i32) -> R<Option<Uuid>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            "SELECT id FROM workspace_builds WHERE workspace_id = $1 AND build_number = $2",
            vec![c.uuid(ws), c.i32(number)],
        )
        .await?
        .map(|r| r.uuid("id"))
        .transpose()
    }

    async fn build_parameters(&self, build: Uuid) -> R<Vec<NameValue>> {
        let c = &self.ctx;
        c.all(&self.conn, "SELECT name, value FROM workspace_build_parameters WHERE workspace_build_id = $1 ORDER BY name", vec![c.uuid(build)])
            .await?
            .iter()
            .map(|r| Ok(NameValue { name: r.string("name")?, value: r.string("value")? }))
            .collect()
    }

    async fn set_autostart(
        &self,
        ws: Uuid,
        schedule: Option<String>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE workspaces SET autostart_schedule = $1, next_start_at = $2, updated_at = $3 WHERE id = $4",
            vec![c.opt_text(schedule), opt_ts(c, next), c.ts(now), c.uuid(ws)],
        )
        .await?;
        Ok(())
    }

    async fn set_ttl(&self, ws: Uuid, ttl: Option<i64>, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE workspaces SET ttl = $1, updated_at = $2 WHERE id = $3",
            vec![Value::BigInt(ttl), c.ts(now), c.uuid(ws)],
        )
        .await?;
        Ok(())
    }

    async fn lifecycle_candidates(&self, now: DateTime<Utc>) -> R<Option<Vec<Uuid>>> {
        self.lifecycle_candidates_impl(now).await
    }

    async fn fail_hung_jobs(
        &self,
        hung_before: DateTime<Utc>,
        cancel_before: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> R<Vec<Uuid>> {
        self.fail_hung_jobs_impl(hung_before, cancel_before, error, now)
            .await
    }

    async fn provisioner_stats(&self, stale_before: DateTime<Utc>) -> R<ProvisionerStats> {
        self.provisioner_stats_impl(stale_before).await
    }
}

fn file_from(r: &Row) -> R<File> {
    Ok(File {
        id: r.uuid("id")?,
        hash: r.string("hash")?,
        created_at: r.ts("created_at")?,
        created_by: r.uuid("created_by")?,
        mimetype: r.string("mimetype")?,
        data: r.bytes("data")?,
    })
}
