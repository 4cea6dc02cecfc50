//! The agent API (04 §4.6–4.7): agent-token authentication and the routes a workspace
//! agent calls, plus the user-side agent read.

use crate::AppState;
use crate::auth::{Auth, find_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::views_ws::{agent_json, app_json};
use axum::Json;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hangar_workspaces::agents::{AgentCtx, PatchAppStatus, StatusIndex};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn not_authorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Workspace agent not authorized.")
}

/// Middleware of `/workspaceagents/me/*`: only a live agent of its workspace's latest build.
pub async fn require_agent(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = find_token(req.headers(), req.uri().query()) else {
        return not_authorized().into_response();
    };
    match state.workspaces.authenticate_agent(&token).await {
        Ok(Some(ctx)) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Ok(None) => not_authorized().into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The authenticated agent.
pub struct Agent(pub AgentCtx);

impl<S: Send + Sync> FromRequestParts<S> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AgentCtx>()
            .cloned()
            .map(Agent)
            .ok_or_else(not_authorized)
    }
}

pub async fn manifest(State(state): State<AppState>, Agent(ctx): Agent) -> ApiResult<Json<Value>> {
    let m = state.workspaces.manifest(&ctx).await?;
    let none = StatusIndex::default();
    let apps: Vec<Value> = m
        .apps
        .iter()
        .map(|a| {
            let mut v = app_json(a, &none);
            if let Some(o) = v.as_object_mut() {
                o.remove("statuses");
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "agent_id": ctx.agent.id,
        "agent_name": ctx.agent.name,
        "owner_name": ctx.owner_name,
        "workspace_id": ctx.workspace_id,
        "workspace_name": ctx.workspace_name,
        "parent_id": ctx.agent.parent_id,
        "environment_variables": ctx.agent.environment_variables,
        "directory": ctx.agent.directory,
        "motd_path": "",
        "apps": apps,
        "devcontainers": m.devcontainers,
        "resources_monitoring": {"memory": m.memory, "volumes": m.volumes},
        "vscode_port_proxy_uri": "",
        "disable_direct_connections": false,
        "scripts": [],
        "metadata": [],
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartupRequest {
    version: String,
    expanded_directory: String,
    subsystems: Vec<String>,
    reachable_host: String,
}

pub async fn startup(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Body(req): Body<StartupRequest>,
) -> ApiResult<Response> {
    let _ = req.subsystems;
    state
        .workspaces
        .agent_startup(
            &ctx,
            &req.version,
            &req.expanded_directory,
            &req.reachable_host,
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn heartbeat(State(state): State<AppState>, Agent(ctx): Agent) -> ApiResult<StatusCode> {
    state.workspaces.agent_heartbeat(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LifecycleRequest {
    state: String,
    changed_at: Option<DateTime<Utc>>,
}

pub async fn report_lifecycle(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Body(req): Body<LifecycleRequest>,
) -> ApiResult<StatusCode> {
    state
        .workspaces
        .agent_lifecycle(&ctx, &req.state, req.changed_at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AppHealthRequest {
    healths: BTreeMap<String, String>,
}

pub async fn app_health(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Body(req): Body<AppHealthRequest>,
) -> ApiResult<Response> {
    state.workspaces.agent_app_health(&ctx, req.healths).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AppStatusRequest {
    app_slug: String,
    state: String,
    message: String,
    uri: String,
}

pub async fn app_status(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Body(req): Body<AppStatusRequest>,
) -> ApiResult<Response> {
    state
        .workspaces
        .patch_app_status(
            &ctx,
            PatchAppStatus {
                app_slug: req.app_slug,
                state: req.state,
                message: req.message,
                uri: req.uri,
            },
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubAgentRequest {
    name: String,
    directory: String,
    architecture: String,
    operating_system: String,
}

pub async fn create_sub_agent(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Body(req): Body<SubAgentRequest>,
) -> ApiResult<Response> {
    let (id, token) = state
        .workspaces
        .create_sub_agent(
            &ctx,
            &req.name,
            &req.directory,
            &req.architecture,
            &req.operating_system,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": req.name, "auth_token": token})),
    )
        .into_response())
}

pub async fn list_sub_agents(
    State(state): State<AppState>,
    Agent(ctx): Agent,
) -> ApiResult<Json<Value>> {
    let list = state.workspaces.sub_agents(&ctx).await?;
    Ok(Json(json!(list
        .iter()
        .map(|a| json!({"id": a.id, "name": a.name, "directory": a.directory, "architecture": a.architecture, "operating_system": a.operating_system}))
        .collect::<Vec<_>>())))
}

pub async fn delete_sub_agent(
    State(state): State<AppState>,
    Agent(ctx): Agent,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    state.workspaces.delete_sub_agent(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /workspaceagents/{workspaceagent}` for users.
pub async fn get_agent(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let agent = state.workspaces.agent_for_user(&caller, id).await?;
    let statuses = state
        .workspaces
        .status_index(vec![], agent.apps.iter().map(|a| a.id).collect())
        .await?;
    Ok(Json(agent_json(&agent, state.workspaces.now(), &statuses)))
}
