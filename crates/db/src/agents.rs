//! [`AgentStore`] on both backends (04 §2.9–2.11, §6.10).

use crate::Db;
use crate::sql::{Params, Row};
use chrono::{DateTime, Utc};
use hangar_core::StoreError;
use hangar_workspaces::agents::*;
use hangar_workspaces::model::{WorkspaceAgent, WorkspaceApp};
use std::collections::BTreeMap;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

pub(crate) const AGENT_COLS: &str = "a.id, a.parent_id, a.created_at, a.updated_at, a.name, a.resource_id, a.auth_token, a.architecture, \
    a.operating_system, a.environment_variables::text AS environment_variables, a.directory, a.expanded_directory, a.version, \
    a.api_version, a.lifecycle_state::text AS lifecycle_state, a.first_connected_at, a.last_connected_at, a.disconnected_at, \
    a.started_at, a.ready_at, a.connection_timeout_seconds, a.troubleshooting_url";

pub(crate) fn agent_from(r: &Row) -> R<WorkspaceAgent> {
    let env: Option<BTreeMap<String, String>> = r
        .opt_string("environment_variables")?
        .and_then(|s| serde_json::from_str(&s).ok());
    Ok(WorkspaceAgent {
        id: r.uuid("id")?,
        parent_id: r.opt_uuid("parent_id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        name: r.string("name")?,
        resource_id: r.uuid("resource_id")?,
        auth_token: r.uuid("auth_token")?,
        architecture: r.string("architecture")?,
        operating_system: r.string("operating_system")?,
        environment_variables: env.unwrap_or_default(),
        directory: r.string("directory")?,
        expanded_directory: r.string("expanded_directory")?,
        version: r.string("version")?,
        api_version: r.string("api_version")?,
        lifecycle_state: r.string("lifecycle_state")?,
        first_connected_at: r.opt_ts("first_connected_at")?,
        last_connected_at: r.opt_ts("last_connected_at")?,
        disconnected_at: r.opt_ts("disconnected_at")?,
        started_at: r.opt_ts("started_at")?,
        ready_at: r.opt_ts("ready_at")?,
        connection_timeout_seconds: r.i32("connection_timeout_seconds")?,
        troubleshooting_url: r.string("troubleshooting_url")?,
        apps: vec![],
    })
}

fn app_from(r: &Row) -> R<WorkspaceApp> {
    Ok(WorkspaceApp {
        id: r.uuid("id")?,
        agent_id: r.uuid("agent_id")?,
        slug: r.string("slug")?,
        display_name: r.string("display_name")?,
        icon: r.string("icon")?,
        command: r.opt_string("command")?,
        url: r.opt_string("url")?,
        healthcheck_url: r.string("healthcheck_url")?,
        healthcheck_interval: r.i32("healthcheck_interval")?,
        healthcheck_threshold: r.i32("healthcheck_threshold")?,
        health: r.string("health")?,
        subdomain: r.bool("subdomain")?,
        sharing_level: r.string("sharing_level")?,
        external: r.bool("external")?,
        display_order: r.i32("display_order")?,
        hidden: r.bool("hidden")?,
        open_in: r.string("open_in")?,
        display_group: r.opt_string("display_group")?,
    })
}

const STATUS_COLS: &str = "s.id, s.created_at, s.workspace_id, s.agent_id, s.app_id, s.state::text AS state, s.message, s.uri";

fn status_from(r: &Row) -> R<AppStatus> {
    Ok(AppStatus {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        workspace_id: r.uuid("workspace_id")?,
        agent_id: r.uuid("agent_id")?,
        app_id: r.uuid("app_id")?,
        state: r.parse("state")?,
        message: r.string("message")?,
        uri: r.opt_string("uri")?,
    })
}

impl Db {
    /// Apps of these agents, in display order.
    pub(crate) async fn apps_of_agents(&self, agents: &[Uuid]) -> R<Vec<WorkspaceApp>> {
        if agents.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let list: Vec<String> = agents.iter().map(|a| p.push(c.uuid(*a))).collect();
        c.all(
            &self.conn,
            &format!(
                "SELECT p.id, p.agent_id, p.slug, p.display_name, p.icon, p.command, p.url, p.healthcheck_url, \
                   p.healthcheck_interval, p.healthcheck_threshold, p.health::text AS health, p.subdomain, \
                   p.sharing_level::text AS sharing_level, p.external, p.display_order, p.hidden, \
                   p.open_in::text AS open_in, p.display_group \
                 FROM workspace_apps p WHERE p.agent_id IN ({}) ORDER BY p.display_order, p.display_name, p.slug",
                list.join(", ")
            ),
            p.values,
        )
        .await?
        .iter()
        .map(app_from)
        .collect()
    }

    async fn agent_ctx_where(
        &self,
        clause: &str,
        values: Vec<sea_orm::Value>,
    ) -> R<Option<AgentCtx>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {AGENT_COLS}, w.id AS ws_id, w.name AS ws_name, w.owner_id AS ws_owner_id, w.organization_id AS ws_org_id, \
               u.username AS owner_name, \
               CASE WHEN b.build_number = (SELECT max(b2.build_number) FROM workspace_builds b2 WHERE b2.workspace_id = w.id) \
                 THEN 1 ELSE 0 END AS is_latest \
             FROM workspace_agents a JOIN workspace_resources r ON r.id = a.resource_id \
               JOIN workspace_builds b ON b.job_id = r.job_id JOIN workspaces w ON w.id = b.workspace_id \
               JOIN users u ON u.id = w.owner_id \
             WHERE {clause} AND a.deleted = FALSE AND w.deleted = FALSE"
        );
        let Some(row) = c.one(&self.conn, &sql, values).await? else {
            return Ok(None);
        };
        Ok(Some(AgentCtx {
            agent: agent_from(&row)?,
            workspace_id: row.uuid("ws_id")?,
            workspace_name: row.string("ws_name")?,
            owner_id: row.uuid("ws_owner_id")?,
            owner_name: row.string("owner_name")?,
            organization_id: row.uuid("ws_org_id")?,
            is_latest: row.i32("is_latest")? == 1,
        }))
    }
}

impl AgentStore for Db {
    async fn agent_by_token(&self, token: Uuid) -> R<Option<AgentCtx>> {
        self.agent_ctx_where("a.auth_token = $1", vec![self.ctx.uuid(token)])
            .await
    }

    async fn agent_by_id(&self, id: Uuid) -> R<Option<AgentCtx>> {
        self.agent_ctx_where("a.id = $1", vec![self.ctx.uuid(id)])
            .await
    }

    async fn agent_startup(
        &self,
        id: Uuid,
        version: &str,
        expanded_directory: &str,
        reachable_host: &str,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE workspace_agents SET version = $1, expanded_directory = $2, reachable_host = $3, api_version = '1.0', updated_at = $4 \
             WHERE id = $5",
            vec![c.text(version), c.text(expanded_directory), c.text(reachable_host), c.ts(now), c.uuid(id)],
        )
        .await?;
        Ok(())
    }

    async fn agent_heartbeat(&self, id: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE workspace_agents SET first_connected_at = COALESCE(first_connected_at, $1), last_connected_at = $1, \
               disconnected_at = NULL, updated_at = $1 WHERE id = $2",
            vec![c.ts(now), c.uuid(id)],
        )
        .await?;
        Ok(())
    }

    async fn agent_lifecycle(
        &self,
        id: Uuid,
        state: LifecycleState,
        changed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let extra = match state {
            LifecycleState::Starting => ", started_at = $3",
            LifecycleState::Ready | LifecycleState::StartError | LifecycleState::StartTimeout => {
                ", ready_at = $3"
            }
            LifecycleState::Off => ", disconnected_at = $3",
            _ => ", updated_at = $3",
        };
        c.exec(
            &self.conn,
            &format!(
                "UPDATE workspace_agents SET lifecycle_state = $1::workspace_agent_lifecycle_state, updated_at = $2{extra} WHERE id = $4"
            ),
            vec![c.text(state.as_str()), c.ts(now), c.ts(changed_at), c.uuid(id)],
        )
        .await?;
        Ok(())
    }

    async fn set_app_health(&self, app: Uuid, health: &str) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE workspace_apps SET health = $1::workspace_app_health WHERE id = $2",
            vec![c.text(health), c.uuid(app)],
        )
        .await?;
        Ok(())
    }

    async fn insert_app_status(&self, s: AppStatus) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "INSERT INTO workspace_app_statuses (id, created_at, agent_id, app_id, workspace_id, state, message, uri) \
             VALUES ($1, $2, $3, $4, $5, $6::workspace_app_status_state, $7, $8)",
            vec![
                c.uuid(s.id),
                c.ts(s.created_at),
                c.uuid(s.agent_id),
                c.uuid(s.app_id),
                c.uuid(s.workspace_id),
                c.text(s.state.as_str()),
                c.text(&s.message),
                c.opt_text(s.uri.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn app_statuses(&self, apps: Vec<Uuid>) -> R<Vec<AppStatus>> {
        if apps.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let list: Vec<String> = apps.iter().map(|a| p.push(c.uuid(*a))).collect();
        let sql = format!(
            "SELECT * FROM (SELECT {STATUS_COLS}, ROW_NUMBER() OVER (PARTITION BY s.app_id ORDER BY s.created_at DESC, s.id DESC) AS rn \
               FROM workspace_app_statuses s WHERE s.app_id IN ({})) x WHERE x.rn <= {STATUSES_PER_APP} \
             ORDER BY x.created_at DESC, x.id DESC",
            list.join(", ")
        );
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(status_from)
            .collect()
    }

    async fn latest_app_statuses(&self, workspaces: Vec<Uuid>) -> R<Vec<AppStatus>> {
        if workspaces.is_empty() {
            return Ok(vec![]);
        }
        let c = &self.ctx;
        let mut p = Params::default();
        let list: Vec<String> = workspaces.iter().map(|w| p.push(c.uuid(*w))).collect();
        let sql = format!(
            "SELECT * FROM (SELECT {STATUS_COLS}, ROW_NUMBER() OVER (PARTITION BY s.workspace_id ORDER BY s.created_at DESC, s.id DESC) AS rn \
               FROM workspace_app_statuses s WHERE s.workspace_id IN ({})) x WHERE x.rn = 1",
            list.join(", ")
        );
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(status_from)
            .collect()
    }

    async fn devcontainers(&self, agent: Uuid) -> R<Vec<Devcontainer>> {
        let c = &self.ctx;
        c.all(
            &self.conn,
            "SELECT id, name, workspace_folder, config_path FROM workspace_agent_devcontainers WHERE workspace_agent_id = $1 \
             ORDER BY created_at, id",
            vec![c.uuid(agent)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Devcontainer {
                id: r.uuid("id")?,
                name: r.string("name")?,
                workspace_folder: r.string("workspace_folder")?,
                config_path: r.string("config_path")?,
            })
        })
        .collect()
    }

    async fn monitors(&self, agent: Uuid) -> R<(Option<MemoryMonitor>, Vec<VolumeMonitor>)> {
        let c = &self.ctx;
        let memory = c
            .one(&self.conn, "SELECT enabled, threshold FROM workspace_agent_memory_resource_monitors WHERE agent_id = $1", vec![c.uuid(agent)])
            .await?
            .map(|r| Ok::<_, StoreError>(MemoryMonitor { enabled: r.bool("enabled")?, threshold: r.i32("threshold")? }))
            .transpose()?;
        let volumes = c
            .all(
                &self.conn,
                "SELECT path, enabled, threshold FROM workspace_agent_volume_resource_monitors WHERE agent_id = $1 ORDER BY path",
                vec![c.uuid(agent)],
            )
            .await?
            .iter()
            .map(|r| Ok(VolumeMonitor { path: r.string("path")?, enabled: r.bool("enabled")?, threshold: r.i32("threshold")? }))
            .collect::<R<Vec<_>>>()?;
        Ok((memory, volumes))
    }

    async fn insert_sub_agent(
        &self,
        parent: &WorkspaceAgent,
        name: &str,
        directory: &str,
        arch: &str,
        os: &str,
        now: DateTime<Utc>,
    ) -> R<(Uuid, Uuid)> {
        let c = &self.ctx;
        let (id, token) = (Uuid::new_v4(), Uuid::new_v4());
        c.exec(
            &self.conn,
            "INSERT INTO workspace_agents (id, created_at, updated_at, name, resource_id, auth_token, architecture, operating_system, \
               directory, parent_id) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                c.uuid(id),
                c.ts(now),
                c.text(name),
                c.uuid(parent.resource_id),
                c.uuid(token),
                c.text(arch),
                c.text(os),
                c.text(directory),
                c.uuid(parent.id),
            ],
        )
        .await?;
        Ok((id, token))
    }

    async fn sub_agents(&self, parent: Uuid) -> R<Vec<WorkspaceAgent>> {
        let c = &self.ctx;
        c.all(
            &self.conn,
            &format!("SELECT {AGENT_COLS} FROM workspace_agents a WHERE a.parent_id = $1 AND a.deleted = FALSE ORDER BY a.created_at, a.id"),
            vec![c.uuid(parent)],
        )
        .await?
        .iter()
        .map(agent_from)
        .collect()
    }

    async fn soft_delete_sub_agent(&self, parent: Uuid, id: Uuid, now: DateTime<Utc>) -> R<bool> {
        let c = &self.ctx;
        let n = c
            .exec(
                &self.conn,
                "UPDATE workspace_agents SET deleted = TRUE, updated_at = $1 \
                 WHERE id = $2 AND parent_id = $3 AND parent_id IS NOT NULL AND deleted = FALSE",
                vec![c.ts(now), c.uuid(id), c.uuid(parent)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn apps_of_agent(&self, agent: Uuid) -> R<Vec<WorkspaceApp>> {
        self.apps_of_agents(&[agent]).await
    }
}
