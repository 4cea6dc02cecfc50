//! The agent side of a workspace (04 §4.6–4.7, §6.10): agent-token authentication, the
//! manifest, lifecycle and heartbeats, app health and app statuses, sub agents.

use crate::error::WorkspaceError;
use crate::model::{WorkspaceAgent, WorkspaceApp};
use crate::service::Workspaces;
use chrono::{DateTime, Utc};
use hangar_core::text_enum;
use hangar_core::wire::Validation;
use hangar_core::{Clock, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

text_enum!(AppStatusState { Working = "working", Complete = "complete", Failure = "failure", Idle = "idle" });
text_enum!(LifecycleState {
    Created = "created",
    Starting = "starting",
    StartTimeout = "start_timeout",
    StartError = "start_error",
    Ready = "ready",
    ShuttingDown = "shutting_down",
    ShutdownTimeout = "shutdown_timeout",
    ShutdownError = "shutdown_error",
    Off = "off",
});

/// Longest accepted app status message, in characters.
pub const MAX_STATUS_MESSAGE: usize = 160;
/// Statuses returned per app.
pub const STATUSES_PER_APP: usize = 20;

/// An app status row (04 §2.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppStatus {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub workspace_id: Uuid,
    pub agent_id: Uuid,
    pub app_id: Uuid,
    pub state: AppStatusState,
    pub message: String,
    pub uri: Option<String>,
}

/// An authenticated agent: the agent, its workspace and owner.
#[derive(Debug, Clone)]
pub struct AgentCtx {
    pub agent: WorkspaceAgent,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub owner_id: Uuid,
    pub owner_name: String,
    pub organization_id: Uuid,
    /// The agent belongs to its workspace's latest build.
    pub is_latest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Devcontainer {
    pub id: Uuid,
    pub name: String,
    pub workspace_folder: String,
    pub config_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryMonitor {
    pub enabled: bool,
    pub threshold: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMonitor {
    pub path: String,
    pub enabled: bool,
    pub threshold: i32,
}

/// Storage for the agent side, implemented by `crates/db`.
pub trait AgentStore: Send + Sync + 'static {
    /// A live (not soft-deleted) agent of a live workspace, by token.
    fn agent_by_token(&self, token: Uuid) -> impl Future<Output = R<Option<AgentCtx>>> + Send;
    /// A live agent by id, with its context.
    fn agent_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<AgentCtx>>> + Send;
    fn agent_startup(
        &self,
        id: Uuid,
        version: &str,
        expanded_directory: &str,
        reachable_host: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn agent_heartbeat(&self, id: Uuid, now: DateTime<Utc>) -> impl Future<Output = R<()>> + Send;
    fn agent_lifecycle(
        &self,
        id: Uuid,
        state: LifecycleState,
        changed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn set_app_health(&self, app: Uuid, health: &str) -> impl Future<Output = R<()>> + Send;
    fn insert_app_status(&self, status: AppStatus) -> impl Future<Output = R<()>> + Send;
    /// The newest [`STATUSES_PER_APP`] statuses of each app, newest first.
    fn app_statuses(&self, apps: Vec<Uuid>) -> impl Future<Output = R<Vec<AppStatus>>> + Send;
    /// The newest status of each workspace.
    fn latest_app_statuses(
        &self,
        workspaces: Vec<Uuid>,
    ) -> impl Future<Output = R<Vec<AppStatus>>> + Send;
    fn devcontainers(&self, agent: Uuid) -> impl Future<Output = R<Vec<Devcontainer>>> + Send;
    fn monitors(
        &self,
        agent: Uuid,
    ) -> impl Future<Output = R<(Option<MemoryMonitor>, Vec<VolumeMonitor>)>> + Send;
    /// Inserts a child agent on the parent's resource; the name trigger guards duplicates.
    fn insert_sub_agent(
        &self,
        parent: &WorkspaceAgent,
        name: &str,
        directory: &str,
        arch: &str,
        os: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<(Uuid, Uuid)>> + Send;
    fn sub_agents(&self, parent: Uuid) -> impl Future<Output = R<Vec<WorkspaceAgent>>> + Send;
    /// Marks a child deleted; `false` when it is not a live child of `parent`.
    fn soft_delete_sub_agent(
        &self,
        parent: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<bool>> + Send;
    fn apps_of_agent(&self, agent: Uuid) -> impl Future<Output = R<Vec<WorkspaceApp>>> + Send;
}

/// `PATCH /workspaceagents/me/app-status`.
#[derive(Debug, Clone, Default)]
pub struct PatchAppStatus {
    pub app_slug: String,
    pub state: String,
    pub message: String,
    pub uri: String,
}

/// The agent manifest (04 §6.10).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub ctx: AgentCtx,
    pub apps: Vec<WorkspaceApp>,
    pub devcontainers: Vec<Devcontainer>,
    pub memory: Option<MemoryMonitor>,
    pub volumes: Vec<VolumeMonitor>,
}

fn name_taken(name: &str) -> WorkspaceError {
    WorkspaceError::conflict(format!(
        "workspace agent name {name:?} already exists in this workspace build"
    ))
}

impl<S: crate::store::WorkspaceStore + AgentStore, C: Clock + ?Sized> Workspaces<S, C> {
    /// Agent-token authentication: only agents of the latest build (04 §4.7).
    pub async fn authenticate_agent(
        &self,
        token: &str,
    ) -> Result<Option<AgentCtx>, WorkspaceError> {
        let Ok(token) = Uuid::parse_str(token) else {
            return Ok(None);
        };
        Ok(self
            .store()
            .agent_by_token(token)
            .await?
            .filter(|c| c.is_latest))
    }

    pub async fn manifest(&self, ctx: &AgentCtx) -> Result<Manifest, WorkspaceError> {
        let store = self.store();
        let apps = store.apps_of_agent(ctx.agent.id).await?;
        let devcontainers = store.devcontainers(ctx.agent.id).await?;
        let (memory, volumes) = store.monitors(ctx.agent.id).await?;
        Ok(Manifest {
            ctx: ctx.clone(),
            apps,
            devcontainers,
            memory,
            volumes,
        })
    }

    pub async fn agent_startup(
        &self,
        ctx: &AgentCtx,
        version: &str,
        expanded_directory: &str,
        reachable_host: &str,
    ) -> Result<(), WorkspaceError> {
        Ok(self
            .store()
            .agent_startup(
                ctx.agent.id,
                version,
                expanded_directory,
                reachable_host,
                self.now(),
            )
            .await?)
    }

    pub async fn agent_heartbeat(&self, ctx: &AgentCtx) -> Result<(), WorkspaceError> {
        Ok(self
            .store()
            .agent_heartbeat(ctx.agent.id, self.now())
            .await?)
    }

    pub async fn agent_lifecycle(
        &self,
        ctx: &AgentCtx,
        state: &str,
        changed_at: Option<DateTime<Utc>>,
    ) -> Result<(), WorkspaceError> {
        let state: LifecycleState = state.parse().map_err(|_| {
            WorkspaceError::invalid_field(
                "Invalid lifecycle state.",
                "state",
                format!("invalid lifecycle state {state:?}"),
            )
        })?;
        let now = self.now();
        Ok(self
            .store()
            .agent_lifecycle(ctx.agent.id, state, changed_at.unwrap_or(now), now)
            .await?)
    }

    pub async fn agent_app_health(
        &self,
        ctx: &AgentCtx,
        healths: BTreeMap<String, String>,
    ) -> Result<(), WorkspaceError> {
        let apps = self.store().apps_of_agent(ctx.agent.id).await?;
        let mut updates = vec![];
        for (id, health) in &healths {
            let app = Uuid::parse_str(id)
                .ok()
                .and_then(|u| apps.iter().find(|a| a.id == u));
            let Some(app) = app else {
                return Err(WorkspaceError::invalid_detail(
                    "Error setting workspace app health",
                    format!("workspace app {id:?} not found"),
                ));
            };
            if app.healthcheck_url.is_empty() {
                return Err(WorkspaceError::invalid_detail(
                    "Error setting workspace app health",
                    format!("health checking is disabled for workspace app {id:?}"),
                ));
            }
            if !matches!(health.as_str(), "healthy" | "unhealthy" | "initializing") {
                return Err(WorkspaceError::invalid_detail(
                    "Error setting workspace app health",
                    format!("workspace app health {health:?} is not valid"),
                ));
            }
            updates.push((app.id, health.clone()));
        }
        for (id, health) in updates {
            self.store().set_app_health(id, &health).await?;
        }
        Ok(())
    }

    /// Checks in the order of 04 §6.10: state, message length, slug on the calling agent.
    pub async fn patch_app_status(
        &self,
        ctx: &AgentCtx,
        req: PatchAppStatus,
    ) -> Result<AppStatus, WorkspaceError> {
        let state: AppStatusState = req.state.parse().map_err(|_| WorkspaceError::Invalid {
            message: "Invalid state provided.".into(),
            detail: format!("invalid state: {:?}", req.state),
            validations: vec![Validation::new(
                "state",
                "State must be one of: complete, failure, working, idle.",
            )],
        })?;
        if req.message.chars().count() > MAX_STATUS_MESSAGE {
            return Err(WorkspaceError::Invalid {
                message: "Message is too long.".into(),
                detail: "Message must be less than 160 characters.".into(),
                validations: vec![Validation::new(
                    "message",
                    "Message must be less than 160 characters.",
                )],
            });
        }
        let apps = self.store().apps_of_agent(ctx.agent.id).await?;
        let Some(app) = apps.iter().find(|a| a.slug == req.app_slug) else {
            return Err(WorkspaceError::invalid_detail(
                "Failed to get workspace app.",
                format!("No app found with slug {:?}", req.app_slug),
            ));
        };
        let status = AppStatus {
            id: Uuid::new_v4(),
            created_at: self.now(),
            workspace_id: ctx.workspace_id,
            agent_id: ctx.agent.id,
            app_id: app.id,
            state,
            message: req.message,
            uri: Some(req.uri).filter(|u| !u.is_empty()),
        };
        self.store().insert_app_status(status.clone()).await?;
        Ok(status)
    }

    /// A user reports an app status for a workspace they may update (03 §5.9
    /// `coder_report_task`): it is stored for the agent owning the app in the latest build,
    /// with the same rules as the agent route.
    pub async fn patch_app_status_for_user(
        &self,
        caller: &hangar_identity::service::Caller,
        ws: &crate::model::Workspace,
        req: PatchAppStatus,
    ) -> Result<AppStatus, WorkspaceError> {
        if !Self::allowed(
            caller,
            hangar_core::rbac::Action::Update,
            Self::workspace_object(ws),
        ) {
            return Err(WorkspaceError::Forbidden("Forbidden.".into()));
        }
        let row = self.workspace_row(ws.id).await?;
        let agent = row
            .latest_build
            .iter()
            .flat_map(|b| &b.resources)
            .flat_map(|r| &r.agents)
            .find(|a| a.apps.iter().any(|app| app.slug == req.app_slug))
            .map(|a| a.id);
        let Some(agent) = agent else {
            return Err(WorkspaceError::invalid_detail(
                "Failed to get workspace app.",
                format!("No app found with slug {:?}", req.app_slug),
            ));
        };
        let ctx = self
            .store()
            .agent_by_id(agent)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        self.patch_app_status(&ctx, req).await
    }

    pub async fn create_sub_agent(
        &self,
        ctx: &AgentCtx,
        name: &str,
        directory: &str,
        arch: &str,
        os: &str,
    ) -> Result<(Uuid, Uuid), WorkspaceError> {
        if ctx.agent.parent_id.is_some() {
            return Err(WorkspaceError::Forbidden(
                "Sub agents cannot create sub agents.".into(),
            ));
        }
        crate::rules::validate_agent_name(name)
            .map_err(|d| WorkspaceError::invalid_field("Validation failed.", "name", d))?;
        match self
            .store()
            .insert_sub_agent(&ctx.agent, name, directory, arch, os, self.now())
            .await
        {
            Ok(ids) => Ok(ids),
            Err(StoreError::Violation { rule, .. }) if rule == "agent_name_unique" => {
                Err(name_taken(name))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn sub_agents(&self, ctx: &AgentCtx) -> Result<Vec<WorkspaceAgent>, WorkspaceError> {
        Ok(self.store().sub_agents(ctx.agent.id).await?)
    }

    pub async fn delete_sub_agent(&self, ctx: &AgentCtx, id: Uuid) -> Result<(), WorkspaceError> {
        if self
            .store()
            .soft_delete_sub_agent(ctx.agent.id, id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(WorkspaceError::NotFound)
        }
    }

    /// `GET /workspaceagents/{id}` for users: readable when the workspace is.
    pub async fn agent_for_user(
        &self,
        caller: &hangar_identity::service::Caller,
        id: Uuid,
    ) -> Result<WorkspaceAgent, WorkspaceError> {
        let ctx = self
            .store()
            .agent_by_id(id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        self.workspace(caller, ctx.workspace_id, false).await?;
        let mut agent = ctx.agent;
        agent.apps = self.store().apps_of_agent(agent.id).await?;
        Ok(agent)
    }

    /// Statuses for the apps of `rows` and the latest per workspace, for responses.
    pub async fn status_index(
        &self,
        workspace_ids: Vec<Uuid>,
        app_ids: Vec<Uuid>,
    ) -> Result<StatusIndex, WorkspaceError> {
        let per_app = self.store().app_statuses(app_ids).await?;
        let latest = self.store().latest_app_statuses(workspace_ids).await?;
        Ok(StatusIndex { per_app, latest })
    }
}

/// App statuses loaded in batches for a response (04 §6.9).
#[derive(Debug, Clone, Default)]
pub struct StatusIndex {
    pub per_app: Vec<AppStatus>,
    pub latest: Vec<AppStatus>,
}

impl StatusIndex {
    pub fn for_app(&self, app: Uuid) -> Vec<&AppStatus> {
        self.per_app.iter().filter(|s| s.app_id == app).collect()
    }

    pub fn latest_for(&self, workspace: Uuid) -> Option<&AppStatus> {
        self.latest.iter().find(|s| s.workspace_id == workspace)
    }
}
