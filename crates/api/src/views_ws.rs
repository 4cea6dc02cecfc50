//! JSON shapes of the workspace area (04 §4.9), with Coder's field names.

use chrono::{DateTime, Utc};
use hangar_workspaces::agents::{AppStatus, StatusIndex};
use hangar_workspaces::model::*;
use hangar_workspaces::rules::build_status;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

fn never_is_none(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (t > hangar_core::clock::never()).then_some(t)
}

/// Names a job's JSON carries beside the job itself.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    pub template_version_name: String,
    pub template_id: Option<Uuid>,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub workspace_id: Option<Uuid>,
    pub workspace_name: Option<String>,
}

pub fn job_json(q: &QueuedJob, ctx: &JobContext) -> Value {
    let j = &q.job;
    let mut v = json!({
        "id": j.id,
        "created_at": j.created_at,
        "status": j.status,
        "file_id": j.file_id,
        "tags": j.tags,
        "queue_position": q.queue_position,
        "queue_size": q.queue_size,
        "organization_id": j.organization_id,
        "input": {
            "template_version_id": j.input.template_version_id,
            "workspace_build_id": j.input.workspace_build_id,
        },
        "type": j.job_type,
        "metadata": {
            "template_version_name": ctx.template_version_name,
            "template_id": ctx.template_id,
            "template_name": ctx.template_name,
            "template_display_name": ctx.template_display_name,
            "template_icon": ctx.template_icon,
            "workspace_id": ctx.workspace_id,
            "workspace_name": ctx.workspace_name,
        },
        "logs_overflowed": j.logs_overflowed,
    });
    let obj = v.as_object_mut().expect("object literal");
    for (k, val) in [
        ("started_at", j.started_at.map(|t| json!(t))),
        ("completed_at", j.completed_at.map(|t| json!(t))),
        ("canceled_at", j.canceled_at.map(|t| json!(t))),
        (
            "error",
            j.error.clone().filter(|e| !e.is_empty()).map(Value::from),
        ),
        ("error_code", j.error_code.clone().map(Value::from)),
        ("worker_id", j.worker_id.map(|w| json!(w))),
    ] {
        if let Some(val) = val {
            obj.insert(k.into(), val);
        }
    }
    v
}

pub fn version_json(
    v: &TemplateVersion,
    job: &QueuedJob,
    creator: (Uuid, &str, &str),
    template: Option<&Template>,
) -> Value {
    let ctx = JobContext {
        template_version_name: v.name.clone(),
        template_id: v.template_id,
        template_name: template.map(|t| t.name.clone()).unwrap_or_default(),
        template_display_name: template.map(|t| t.display_name.clone()).unwrap_or_default(),
        template_icon: template.map(|t| t.icon.clone()).unwrap_or_default(),
        ..Default::default()
    };
    json!({
        "id": v.id,
        "template_id": v.template_id,
        "organization_id": v.organization_id,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "name": v.name,
        "message": v.message,
        "job": job_json(job, &ctx),
        "readme": v.readme,
        "created_by": {"id": creator.0, "username": creator.1, "avatar_url": creator.2},
        "archived": v.archived,
        "warnings": [],
        "matched_provisioners": {"count": 0, "available": 0},
        "has_ai_task": v.has_ai_task,
    })
}

#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    pub organization_name: String,
    pub organization_display_name: String,
    pub organization_icon: String,
    pub created_by_name: String,
    pub active_user_count: i64,
}

pub fn template_json(t: &Template, ctx: &TemplateContext) -> Value {
    json!({
        "id": t.id,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "organization_id": t.organization_id,
        "organization_name": ctx.organization_name,
        "organization_display_name": ctx.organization_display_name,
        "organization_icon": ctx.organization_icon,
        "name": t.name,
        "display_name": t.display_name,
        "provisioner": t.provisioner,
        "active_version_id": t.active_version_id,
        "active_user_count": ctx.active_user_count,
        "build_time_stats": {"start": {"P50": null, "P95": null}, "stop": {"P50": null, "P95": null}, "delete": {"P50": null, "P95": null}},
        "description": t.description,
        "deprecated": !t.deprecated.is_empty(),
        "deprecation_message": t.deprecated,
        "icon": t.icon,
        "default_ttl_ms": t.default_ttl / 1_000_000,
        "activity_bump_ms": 3_600_000,
        "autostop_requirement": {"days_of_week": [], "weeks": 1},
        "autostart_requirement": {"days_of_week": ["monday","tuesday","wednesday","thursday","friday","saturday","sunday"]},
        "created_by_id": t.created_by,
        "created_by_name": ctx.created_by_name,
        "allow_user_autostart": true,
        "allow_user_autostop": true,
        "allow_user_cancel_workspace_jobs": t.allow_user_cancel_workspace_jobs,
        "failure_ttl_ms": 0,
        "time_til_dormant_ms": 0,
        "time_til_dormant_autodelete_ms": 0,
        "require_active_version": t.require_active_version,
        "max_port_share_level": "owner",
    })
}

/// Agent status derived at read time (04 §6.10).
fn agent_status(a: &WorkspaceAgent, now: DateTime<Utc>) -> &'static str {
    match a.last_connected_at {
        None => {
            if a.connection_timeout_seconds > 0
                && a.created_at
                    + chrono::TimeDelta::seconds(i64::from(a.connection_timeout_seconds))
                    < now
            {
                "timeout"
            } else {
                "connecting"
            }
        }
        Some(last) => {
            let disconnected = a.disconnected_at.is_some_and(|d| d >= last);
            if !disconnected && now - last < chrono::TimeDelta::seconds(45) {
                "connected"
            } else {
                "disconnected"
            }
        }
    }
}

pub fn app_json(app: &WorkspaceApp, statuses: &StatusIndex) -> Value {
    let mut v = json!({
        "id": app.id,
        "external": app.external,
        "slug": app.slug,
        "display_name": app.display_name,
        "icon": app.icon,
        "subdomain": app.subdomain,
        "sharing_level": app.sharing_level,
        "healthcheck": {"url": app.healthcheck_url, "interval": app.healthcheck_interval, "threshold": app.healthcheck_threshold},
        "health": app.health,
        "hidden": app.hidden,
        "open_in": app.open_in,
        "statuses": statuses.for_app(app.id).into_iter().map(status_json).collect::<Vec<_>>(),
    });
    let obj = v.as_object_mut().expect("object literal");
    if let Some(u) = &app.url {
        obj.insert("url".into(), json!(u));
    }
    if let Some(c) = &app.command {
        obj.insert("command".into(), json!(c));
    }
    if let Some(g) = &app.display_group {
        obj.insert("group".into(), json!(g));
    }
    v
}

pub fn agent_json(a: &WorkspaceAgent, now: DateTime<Utc>, statuses: &StatusIndex) -> Value {
    let status = agent_status(a, now);
    let health = match status {
        "disconnected" => json!({"healthy": false, "reason": "agent has lost connection"}),
        "timeout" => json!({"healthy": false, "reason": "agent is taking too long to connect"}),
        _ => json!({"healthy": true}),
    };
    json!({
        "id": a.id,
        "parent_id": a.parent_id,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "first_connected_at": a.first_connected_at,
        "last_connected_at": a.last_connected_at,
        "disconnected_at": a.disconnected_at,
        "started_at": a.started_at,
        "ready_at": a.ready_at,
        "status": status,
        "lifecycle_state": a.lifecycle_state,
        "name": a.name,
        "resource_id": a.resource_id,
        "architecture": a.architecture,
        "environment_variables": a.environment_variables,
        "operating_system": a.operating_system,
        "logs_length": 0,
        "logs_overflowed": false,
        "directory": a.directory,
        "expanded_directory": a.expanded_directory,
        "version": a.version,
        "api_version": a.api_version,
        "apps": a.apps.iter().map(|p| app_json(p, statuses)).collect::<Vec<_>>(),
        "connection_timeout_seconds": a.connection_timeout_seconds,
        "troubleshooting_url": a.troubleshooting_url,
        "subsystems": [],
        "health": health,
        "display_apps": [],
        "log_sources": [],
        "scripts": [],
    })
}

pub fn resource_json(r: &WorkspaceResource, now: DateTime<Utc>, statuses: &StatusIndex) -> Value {
    json!({
        "id": r.id,
        "created_at": r.created_at,
        "job_id": r.job_id,
        "workspace_transition": r.transition,
        "type": r.resource_type,
        "name": r.name,
        "hide": r.hide,
        "icon": r.icon,
        "agents": r.agents.iter().map(|a| agent_json(a, now, statuses)).collect::<Vec<_>>(),
        "metadata": r.metadata,
        "daily_cost": r.daily_cost,
    })
}

pub fn build_json(
    b: &BuildRow,
    template: Option<&Template>,
    owner_avatar_url: &str,
    now: DateTime<Utc>,
    statuses: &StatusIndex,
) -> Value {
    let ctx = JobContext {
        template_version_name: b.template_version_name.clone(),
        template_id: template.map(|t| t.id),
        template_name: template.map(|t| t.name.clone()).unwrap_or_default(),
        template_display_name: template.map(|t| t.display_name.clone()).unwrap_or_default(),
        template_icon: template.map(|t| t.icon.clone()).unwrap_or_default(),
        workspace_id: Some(b.build.workspace_id),
        workspace_name: Some(b.workspace_name.clone()),
    };
    let mut v = json!({
        "id": b.build.id,
        "created_at": b.build.created_at,
        "updated_at": b.build.updated_at,
        "workspace_id": b.build.workspace_id,
        "workspace_name": b.workspace_name,
        "workspace_owner_id": b.workspace_owner_id,
        "workspace_owner_name": b.workspace_owner_name,
        "workspace_owner_avatar_url": owner_avatar_url,
        "template_version_id": b.build.template_version_id,
        "template_version_name": b.template_version_name,
        "build_number": b.build.build_number,
        "transition": b.build.transition,
        "initiator_id": b.build.initiator_id,
        "initiator_name": b.initiator_name,
        "job": job_json(&b.job, &ctx),
        "reason": b.build.reason,
        "resources": b.resources.iter().map(|r| resource_json(r, now, statuses)).collect::<Vec<_>>(),
        "deadline": never_is_none(b.build.deadline),
        "max_deadline": never_is_none(b.build.max_deadline),
        "status": build_status(b.job.job.status, b.build.transition),
        "daily_cost": b.build.daily_cost,
        "matched_provisioners": {"count": 0, "available": 0},
        "template_version_preset_id": b.build.template_version_preset_id,
        "has_ai_task": b.build.has_ai_task,
    });
    if let Some(app) = b.build.ai_task_sidebar_app_id
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("ai_task_sidebar_app_id".into(), json!(app));
    }
    v
}

pub fn workspace_json(w: &WorkspaceRow, now: DateTime<Utc>, statuses: &StatusIndex) -> Value {
    let ws = &w.workspace;
    let agents: Vec<&WorkspaceAgent> = w
        .latest_build
        .iter()
        .flat_map(|b| &b.resources)
        .flat_map(|r| &r.agents)
        .collect();
    let failing: Vec<Uuid> = agents
        .iter()
        .filter(|a| matches!(agent_status(a, now), "disconnected" | "timeout"))
        .map(|a| a.id)
        .collect();
    json!({
        "id": ws.id,
        "created_at": ws.created_at,
        "updated_at": ws.updated_at,
        "owner_id": ws.owner_id,
        "owner_name": w.owner_name,
        "owner_avatar_url": w.owner_avatar_url,
        "organization_id": ws.organization_id,
        "organization_name": w.organization_name,
        "template_id": w.template.id,
        "template_name": w.template.name,
        "template_display_name": w.template.display_name,
        "template_icon": w.template.icon,
        "template_allow_user_cancel_workspace_jobs": w.template.allow_user_cancel_workspace_jobs,
        "template_active_version_id": w.template.active_version_id,
        "template_require_active_version": w.template.require_active_version,
        "latest_build": w.latest_build.as_ref().map(|b| build_json(b, Some(&w.template), &w.owner_avatar_url, now, statuses)),
        "latest_app_status": statuses.latest_for(ws.id).map(status_json),
        "outdated": w.latest_build.as_ref().is_some_and(|b| b.build.template_version_id != w.template.active_version_id),
        "name": ws.name,
        "autostart_schedule": ws.autostart_schedule,
        "ttl_ms": ws.ttl.map(|t| t / 1_000_000),
        "last_used_at": ws.last_used_at,
        "deleting_at": Value::Null,
        "dormant_at": Value::Null,
        "health": {"healthy": failing.is_empty(), "failing_agents": failing},
        "automatic_updates": ws.automatic_updates,
        "allow_renames": false,
        "favorite": false,
        "next_start_at": ws.next_start_at,
    })
}

#[derive(Serialize)]
pub struct LogJson<'a> {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub log_source: LogSource,
    pub log_level: LogLevel,
    pub stage: &'a str,
    pub output: &'a str,
}

/// WorkspaceAppStatus (04 §4.9); `icon` and `needs_user_attention` are deprecated constants.
pub fn status_json(s: &AppStatus) -> Value {
    json!({
        "id": s.id,
        "created_at": s.created_at,
        "workspace_id": s.workspace_id,
        "agent_id": s.agent_id,
        "app_id": s.app_id,
        "state": s.state,
        "message": s.message,
        "uri": s.uri.clone().unwrap_or_default(),
        "icon": "",
        "needs_user_attention": false,
    })
}

/// Every app id in the rows' latest builds.
pub fn app_ids(rows: &[&BuildRow]) -> Vec<Uuid> {
    rows.iter()
        .flat_map(|b| &b.resources)
        .flat_map(|r| &r.agents)
        .flat_map(|a| &a.apps)
        .map(|p| p.id)
        .collect()
}
