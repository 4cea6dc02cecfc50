//! Files, templates, versions, workspaces, builds and their jobs (04 §4.1–4.5).

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, QueryParams, check_query};
use crate::views_ws::*;
use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_core::wire::{self, Validation};
use hangar_identity::IdentityStore;
use hangar_identity::service::Caller;
use hangar_workspaces::WorkspaceError;
use hangar_workspaces::agents::StatusIndex;
use hangar_workspaces::model::*;
use hangar_workspaces::rules::parse_workspace_query;
use hangar_workspaces::service::{CreateBuild, CreateTemplate, CreateVersion, CreateWorkspace};
use hangar_workspaces::store::{WorkspaceQuery, WorkspaceStore};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request(format!("Invalid UUID {what:?}."))
            .detail(format!("{raw:?} is not a valid uuid"))
    })
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(wire::Response::message(text))).into_response()
}

// ---------------------------------------------------------------- files

pub async fn upload_file(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (id, created) = state
        .workspaces
        .upload_file(&caller, ct, body.to_vec())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "hash": id }))).into_response())
}

pub async fn get_file(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let f = state
        .workspaces
        .file(&caller, parse_id(&id, "fileID")?)
        .await?;
    Ok(([(header::CONTENT_TYPE, f.mimetype.clone())], f.data).into_response())
}

// ---------------------------------------------------------------- versions

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateVersionRequest {
    file_id: Option<Uuid>,
    provisioner: String,
    storage_method: String,
    name: Option<String>,
    message: String,
    template_id: Option<Uuid>,
    tags: std::collections::BTreeMap<String, String>,
    user_variable_values: Vec<NameValue>,
}

async fn creator(state: &AppState, id: Uuid) -> (Uuid, String, String) {
    match state
        .db
        .users_by_ids(vec![id])
        .await
        .ok()
        .and_then(|mut v| v.pop())
    {
        Some(u) => (u.id, u.username, u.avatar_url),
        None => (id, String::new(), String::new()),
    }
}

async fn version_value(state: &AppState, v: &TemplateVersion, job: &QueuedJob) -> Value {
    let (id, name, avatar) = creator(state, v.created_by).await;
    let template = match v.template_id {
        Some(t) => state.db.template_by_id(t).await.ok().flatten(),
        None => None,
    };
    version_json(v, job, (id, &name, &avatar), template.as_ref())
}

pub async fn create_version(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
    Body(req): Body<CreateVersionRequest>,
) -> ApiResult<Response> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let mut errors = vec![];
    if req.file_id.is_none() {
        errors.push(Validation::new(
            "file_id",
            "Validation failed for tag \"required\" with value: \"\"",
        ));
    }
    if !req.storage_method.is_empty() && req.storage_method != "file" {
        errors.push(Validation::new("storage_method", "must be \"file\""));
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request("Validation failed.").validations(errors));
    }
    let (v, job) = state
        .workspaces
        .create_version(
            &caller,
            &o,
            CreateVersion {
                file_id: req.file_id.unwrap_or_default(),
                provisioner: if req.provisioner.is_empty() {
                    "terraform".into()
                } else {
                    req.provisioner
                },
                name: req.name,
                message: req.message,
                template_id: req.template_id,
                tags: req.tags,
                user_variable_values: req.user_variable_values,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(version_value(&state, &v, &job).await),
    )
        .into_response())
}

pub async fn get_version(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (v, job) = state
        .workspaces
        .version(&caller, parse_id(&id, "templateversion")?)
        .await?;
    Ok(Json(version_value(&state, &v, &job).await))
}

pub async fn version_resources(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let res = state
        .workspaces
        .version_resources(&caller, parse_id(&id, "templateversion")?)
        .await?;
    let now = state.workspaces.now();
    let none = StatusIndex::default();
    Ok(Json(
        res.iter().map(|r| resource_json(r, now, &none)).collect(),
    ))
}

pub async fn version_parameters(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let params = state
        .workspaces
        .version_parameters(&caller, parse_id(&id, "templateversion")?)
        .await?;
    Ok(Json(json!(params)))
}

pub async fn version_logs(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    q: QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let (v, _) = state
        .workspaces
        .version(&caller, parse_id(&id, "templateversion")?)
        .await?;
    super::job_logs::respond(state, v.job_id, &q, upgrade).await
}

pub async fn cancel_version(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, job) = state
        .workspaces
        .version(&caller, parse_id(&id, "templateversion")?)
        .await?;
    state.workspaces.cancel_job(&caller, &job.job, None).await?;
    Ok(message(
        StatusCode::OK,
        "Job has been marked as canceled...",
    ))
}

// ---------------------------------------------------------------- templates

async fn template_value(state: &AppState, t: &Template) -> Value {
    let org = state
        .db
        .organization_by_id(t.organization_id, true)
        .await
        .ok()
        .flatten();
    let (_, created_by_name, _) = creator(state, t.created_by).await;
    let ctx = TemplateContext {
        organization_name: org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        organization_display_name: org
            .as_ref()
            .map(|o| o.display_name.clone())
            .unwrap_or_default(),
        organization_icon: org.as_ref().map(|o| o.icon.clone()).unwrap_or_default(),
        created_by_name,
        active_user_count: 0,
    };
    template_json(t, &ctx)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateTemplateRequest {
    name: String,
    template_version_id: Option<Uuid>,
    display_name: String,
    description: String,
    icon: String,
    default_ttl_ms: i64,
    allow_user_cancel_workspace_jobs: Option<bool>,
    require_active_version: bool,
}

pub async fn create_template(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
    Body(req): Body<CreateTemplateRequest>,
) -> ApiResult<Response> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let Some(version) = req.template_version_id else {
        return Err(
            ApiError::bad_request("Validation failed.").validations(vec![Validation::new(
                "template_version_id",
                "Validation failed for tag \"required\" with value: \"\"",
            )]),
        );
    };
    let t = state
        .workspaces
        .create_template(
            &caller,
            &o,
            CreateTemplate {
                name: req.name,
                template_version_id: version,
                display_name: req.display_name,
                description: req.description,
                icon: req.icon,
                default_ttl_ms: req.default_ttl_ms,
                allow_user_cancel_workspace_jobs: req.allow_user_cancel_workspace_jobs,
                require_active_version: req.require_active_version,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(template_value(&state, &t).await)).into_response())
}

async fn templates_value(state: &AppState, list: Vec<Template>) -> Value {
    let mut out = vec![];
    for t in &list {
        out.push(template_value(state, t).await);
    }
    json!(out)
}

pub async fn list_org_templates(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let list = state.workspaces.list_templates(&caller, Some(&o)).await?;
    Ok(Json(templates_value(&state, list).await))
}

pub async fn list_templates(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<Json<Value>> {
    let list = state.workspaces.list_templates(&caller, None).await?;
    Ok(Json(templates_value(&state, list).await))
}

async fn resolve_template(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Template> {
    Ok(state
        .workspaces
        .template(caller, parse_id(raw, "template")?)
        .await?)
}

pub async fn get_template(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = resolve_template(&state, &caller, &id).await?;
    Ok(Json(template_value(&state, &t).await))
}

pub async fn get_template_by_name(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let t = state
        .workspaces
        .template_by_name(&caller, &o, &name)
        .await?;
    Ok(Json(template_value(&state, &t).await))
}

pub async fn template_versions(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = resolve_template(&state, &caller, &id).await?;
    let mut out = vec![];
    for (v, job) in state.workspaces.template_versions(&caller, &t).await? {
        out.push(version_value(&state, &v, &job).await);
    }
    Ok(Json(json!(out)))
}

pub async fn template_version_by_name(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let t = resolve_template(&state, &caller, &id).await?;
    let v = state
        .db
        .version_by_name(t.id, &name)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(ApiError::not_found)?;
    let (v, job) = state.workspaces.version(&caller, v.id).await?;
    Ok(Json(version_value(&state, &v, &job).await))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActivateRequest {
    id: Option<Uuid>,
}

pub async fn activate_version(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<ActivateRequest>,
) -> ApiResult<Response> {
    let t = resolve_template(&state, &caller, &id).await?;
    let Some(version) = req.id else {
        return Err(ApiError::bad_request("Validation failed.")
            .validations(vec![Validation::new("id", "required")]));
    };
    state
        .workspaces
        .activate_version(&caller, &t, version)
        .await?;
    Ok(message(
        StatusCode::OK,
        "Updated the active template version!",
    ))
}

pub async fn delete_template(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let t = resolve_template(&state, &caller, &id).await?;
    state.workspaces.delete_template(&caller, &t).await?;
    Ok(message(StatusCode::OK, "Template has been deleted!"))
}

// ---------------------------------------------------------------- workspaces

/// Loads app statuses for the rows in two queries.
async fn statuses_for(state: &AppState, rows: &[&WorkspaceRow]) -> ApiResult<StatusIndex> {
    let builds: Vec<&BuildRow> = rows
        .iter()
        .filter_map(|r| r.latest_build.as_ref())
        .collect();
    let ws_ids = rows.iter().map(|r| r.workspace.id).collect();
    Ok(state
        .workspaces
        .status_index(ws_ids, app_ids(&builds))
        .await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateWorkspaceRequest {
    name: String,
    template_id: Option<Uuid>,
    template_version_id: Option<Uuid>,
    rich_parameter_values: Vec<NameValue>,
    autostart_schedule: Option<String>,
    ttl_ms: Option<i64>,
    automatic_updates: Option<String>,
}

async fn create_workspace_for(
    state: &AppState,
    caller: &Caller,
    user: &str,
    org: Option<&str>,
    req: CreateWorkspaceRequest,
) -> ApiResult<Response> {
    let owner = state.identity.resolve_user(caller, user).await?;
    let o = match org {
        Some(org) => state.identity.resolve_org(caller, org).await?,
        None => {
            // The template decides the org.
            let tid = match (req.template_id, req.template_version_id) {
                (Some(t), _) => Some(t),
                (None, Some(v)) => state
                    .db
                    .version_by_id(v)
                    .await
                    .map_err(ApiError::from)?
                    .and_then(|v| v.template_id),
                _ => None,
            };
            match tid {
                Some(t) => match state.db.template_by_id(t).await.map_err(ApiError::from)? {
                    Some(t) => {
                        state
                            .identity
                            .resolve_org(caller, &t.organization_id.to_string())
                            .await?
                    }
                    None => state.identity.resolve_org(caller, "default").await?,
                },
                None => state.identity.resolve_org(caller, "default").await?,
            }
        }
    };
    let automatic_updates = match req.automatic_updates.as_deref() {
        None | Some("") => None,
        Some(v) => Some(v.parse().map_err(|_| {
            ApiError::bad_request("Validation failed.").validations(vec![Validation::new(
                "automatic_updates",
                "must be always or never",
            )])
        })?),
    };
    let row = state
        .workspaces
        .create_workspace(
            caller,
            &owner,
            &o,
            CreateWorkspace {
                name: req.name,
                template_id: req.template_id,
                template_version_id: req.template_version_id,
                rich_parameter_values: req.rich_parameter_values,
                autostart_schedule: req.autostart_schedule,
                ttl_ms: req.ttl_ms,
                automatic_updates,
            },
        )
        .await?;
    let statuses = statuses_for(state, &[&row]).await?;
    Ok((
        StatusCode::CREATED,
        Json(workspace_json(&row, state.workspaces.now(), &statuses)),
    )
        .into_response())
}

pub async fn create_user_workspace(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
    Body(req): Body<CreateWorkspaceRequest>,
) -> ApiResult<Response> {
    create_workspace_for(&state, &caller, &user, None, req).await
}

pub async fn create_member_workspace(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((org, user)): Path<(String, String)>,
    Body(req): Body<CreateWorkspaceRequest>,
) -> ApiResult<Response> {
    create_workspace_for(&state, &caller, &user, Some(&org), req).await
}

pub async fn list_workspaces(
    State(state): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let mut errors = vec![];
    let limit = q.u64("limit", &mut errors);
    let offset = q.u64("offset", &mut errors);
    check_query(errors)?;
    let filter = parse_workspace_query(q.get("q").unwrap_or(""))
        .map_err(|v| ApiError::bad_request("Invalid workspace search query.").validations(v))?;
    let mut query = WorkspaceQuery {
        limit,
        offset,
        ..Default::default()
    };
    if let Some(owner) = &filter.owner {
        match state.identity.resolve_user(&caller, owner).await {
            Ok(u) => query.owner_id = Some(u.id),
            Err(_) => return Ok(Json(json!({"workspaces": [], "count": 0}))),
        }
    }
    if let Some(org) = &filter.organization {
        match state.identity.resolve_org(&caller, org).await {
            Ok(o) => query.organization_id = Some(o.id),
            Err(_) => return Ok(Json(json!({"workspaces": [], "count": 0}))),
        }
    }
    query.template_name = filter.template;
    query.name_contains = filter.name;
    query.status = filter.status;
    query.outdated = filter.outdated;
    query.has_ai_task = filter.has_ai_task;
    query.id = filter.id;
    let (rows, count) = state.workspaces.list_workspaces(&caller, query).await?;
    let now = state.workspaces.now();
    let statuses = statuses_for(&state, &rows.iter().collect::<Vec<_>>()).await?;
    Ok(Json(
        json!({"workspaces": rows.iter().map(|r| workspace_json(r, now, &statuses)).collect::<Vec<_>>(), "count": count}),
    ))
}

async fn resolve_workspace(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    include_deleted: bool,
) -> ApiResult<Workspace> {
    Ok(state
        .workspaces
        .workspace(caller, parse_id(raw, "workspace")?, include_deleted)
        .await?)
}

pub async fn get_workspace(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let mut errors = vec![];
    let include_deleted = q.bool("include_deleted", &mut errors);
    check_query(errors)?;
    let w = resolve_workspace(&state, &caller, &id, include_deleted).await?;
    let row = state.workspaces.workspace_row(w.id).await?;
    let statuses = statuses_for(&state, &[&row]).await?;
    Ok(Json(workspace_json(
        &row,
        state.workspaces.now(),
        &statuses,
    )))
}

pub async fn get_workspace_by_name(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((user, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let owner = state.identity.resolve_user(&caller, &user).await?;
    let w = state
        .workspaces
        .workspace_by_name(&caller, &owner, &name)
        .await?;
    let row = state.workspaces.workspace_row(w.id).await?;
    let statuses = statuses_for(&state, &[&row]).await?;
    Ok(Json(workspace_json(
        &row,
        state.workspaces.now(),
        &statuses,
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateBuildRequest {
    transition: String,
    template_version_id: Option<Uuid>,
    rich_parameter_values: Vec<NameValue>,
    orphan: bool,
    log_level: Option<String>,
}

async fn build_value(state: &AppState, b: &BuildRow) -> Value {
    let template = match state
        .db
        .workspace_by_id(b.build.workspace_id, true)
        .await
        .ok()
        .flatten()
    {
        Some(w) => state.db.template_by_id(w.template_id).await.ok().flatten(),
        None => None,
    };
    let (_, _, avatar) = creator(state, b.workspace_owner_id).await;
    let statuses = state
        .workspaces
        .status_index(vec![], app_ids(&[b]))
        .await
        .unwrap_or_default();
    build_json(
        b,
        template.as_ref(),
        &avatar,
        state.workspaces.now(),
        &statuses,
    )
}

pub async fn create_build(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<CreateBuildRequest>,
) -> ApiResult<Response> {
    let w = resolve_workspace(&state, &caller, &id, true).await?;
    let transition: Transition = req.transition.parse().map_err(|_| {
        ApiError::bad_request("Validation failed.").validations(vec![Validation::new(
            "transition",
            "must be one of: start, stop, delete",
        )])
    })?;
    if req
        .log_level
        .as_deref()
        .is_some_and(|l| !l.is_empty() && l != "debug")
    {
        return Err(ApiError::bad_request("Validation failed.")
            .validations(vec![Validation::new("log_level", "must be \"debug\"")]));
    }
    let b = state
        .workspaces
        .create_build(
            &caller,
            &w,
            CreateBuild {
                transition,
                template_version_id: req.template_version_id,
                rich_parameter_values: req.rich_parameter_values,
                orphan: req.orphan,
                log_level: req.log_level.filter(|l| !l.is_empty()),
                reason: BuildReason::Initiator,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(build_value(&state, &b).await)).into_response())
}

pub async fn list_builds(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let mut errors = vec![];
    let limit = q.u64("limit", &mut errors);
    let offset = q.u64("offset", &mut errors);
    check_query(errors)?;
    let w = resolve_workspace(&state, &caller, &id, true).await?;
    let mut out = vec![];
    for b in state.workspaces.builds(&w, limit, offset).await? {
        out.push(build_value(&state, &b).await);
    }
    Ok(Json(json!(out)))
}

pub async fn get_build(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _) = state
        .workspaces
        .build(&caller, parse_id(&id, "workspacebuild")?)
        .await?;
    Ok(Json(build_value(&state, &b).await))
}

pub async fn get_build_by_number(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((user, name, number)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let owner = state.identity.resolve_user(&caller, &user).await?;
    let w = state
        .workspaces
        .workspace_by_name(&caller, &owner, &name)
        .await?;
    let n: i32 = number.parse().map_err(|_| {
        ApiError::bad_request("Invalid build number.").detail(format!("{number:?} is not a number"))
    })?;
    let b = state.workspaces.build_by_number(&caller, &w, n).await?;
    Ok(Json(build_value(&state, &b).await))
}

/// `[{name, value}]` of the build, as Coder's `WorkspaceBuildParameter`.
pub async fn build_parameters(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let params = state
        .workspaces
        .build_parameters(&caller, parse_id(&id, "workspacebuild")?)
        .await?;
    Ok(Json(json!(params)))
}

pub async fn build_resources(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _) = state
        .workspaces
        .build(&caller, parse_id(&id, "workspacebuild")?)
        .await?;
    let now = state.workspaces.now();
    let statuses = state
        .workspaces
        .status_index(vec![], app_ids(&[&b]))
        .await?;
    Ok(Json(json!(
        b.resources
            .iter()
            .map(|r| resource_json(r, now, &statuses))
            .collect::<Vec<_>>()
    )))
}

pub async fn build_logs(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    q: QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let (b, _) = state
        .workspaces
        .build(&caller, parse_id(&id, "workspacebuild")?)
        .await?;
    super::job_logs::respond(state, b.build.job_id, &q, upgrade).await
}

pub async fn cancel_build(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (b, w) = state
        .workspaces
        .build(&caller, parse_id(&id, "workspacebuild")?)
        .await?;
    let template = state
        .db
        .template_by_id(w.template_id)
        .await
        .map_err(ApiError::from)?;
    state
        .workspaces
        .cancel_job(&caller, &b.job.job, template.as_ref())
        .await?;
    Ok(message(
        StatusCode::OK,
        "Job has been marked as canceled...",
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TtlRequest {
    ttl_ms: Option<i64>,
}

pub async fn put_ttl(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<TtlRequest>,
) -> ApiResult<StatusCode> {
    let w = resolve_workspace(&state, &caller, &id, false).await?;
    state.workspaces.set_ttl(&caller, &w, req.ttl_ms).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AutostartRequest {
    schedule: Option<String>,
}

pub async fn put_autostart(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<AutostartRequest>,
) -> ApiResult<StatusCode> {
    let w = resolve_workspace(&state, &caller, &id, false).await?;
    state
        .workspaces
        .set_autostart(&caller, &w, req.schedule)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- MCP tool views (03 §5.9)

/// Resolves a workspace argument: a UUID, `owner/name`, or the caller's own workspace name.
/// Anything missing or invisible is "Workspace not found.".
async fn workspace_arg(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Workspace> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "Workspace not found.");
    let found = if let Ok(id) = Uuid::parse_str(raw) {
        state.workspaces.workspace(caller, id, false).await
    } else {
        let (owner, name) = raw.split_once('/').unwrap_or(("me", raw));
        let Ok(user) = state.identity.resolve_user(caller, owner).await else {
            return Err(not_found());
        };
        state
            .workspaces
            .workspace_by_name(caller, &user, name)
            .await
    };
    found.map_err(|e| match e {
        WorkspaceError::NotFound | WorkspaceError::Gone(_) => not_found(),
        other => other.into(),
    })
}

/// `coder_list_templates`: a summary of each template the caller can read.
pub(crate) async fn template_summaries(state: &AppState, caller: &Caller) -> ApiResult<Value> {
    let list = state.workspaces.list_templates(caller, None).await?;
    let full = templates_value(state, list).await;
    let keys = [
        "id",
        "name",
        "display_name",
        "description",
        "active_version_id",
        "active_user_count",
    ];
    Ok(json!(
        full.as_array()
            .map(|a| a.iter().map(|t| pick(t, &keys)).collect::<Vec<_>>())
            .unwrap_or_default()
    ))
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| ((*k).to_owned(), v.get(*k).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// `coder_list_workspaces`: the owner's workspaces the caller can read.
pub(crate) async fn workspace_summaries(
    state: &AppState,
    caller: &Caller,
    owner: &str,
) -> ApiResult<Value> {
    let Ok(user) = state.identity.resolve_user(caller, owner).await else {
        return Ok(json!([]));
    };
    let query = WorkspaceQuery {
        owner_id: Some(user.id),
        ..Default::default()
    };
    let (rows, _) = state.workspaces.list_workspaces(caller, query).await?;
    let now = state.workspaces.now();
    let statuses = statuses_for(state, &rows.iter().collect::<Vec<_>>()).await?;
    let keys = [
        "id",
        "name",
        "template_id",
        "template_name",
        "template_display_name",
        "template_icon",
        "template_active_version_id",
        "outdated",
    ];
    Ok(json!(
        rows.iter()
            .map(|r| pick(&workspace_json(r, now, &statuses), &keys))
            .collect::<Vec<_>>()
    ))
}

/// `coder_get_workspace`: the same JSON as `GET /api/v2/workspaces/{id}`.
pub(crate) async fn workspace_value(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> ApiResult<Value> {
    let w = workspace_arg(state, caller, raw).await?;
    let row = state.workspaces.workspace_row(w.id).await?;
    let statuses = statuses_for(state, &[&row]).await?;
    Ok(workspace_json(&row, state.workspaces.now(), &statuses))
}

/// `coder_report_task`: an app status on the workspace, as its agent would report it.
pub(crate) async fn report_task(
    state: &AppState,
    caller: &Caller,
    workspace: &str,
    app_slug: String,
    task_state: String,
    summary: String,
    link: String,
) -> ApiResult<Value> {
    let w = workspace_arg(state, caller, workspace).await?;
    let req = hangar_workspaces::agents::PatchAppStatus {
        app_slug,
        state: task_state,
        message: summary,
        uri: link,
    };
    state
        .workspaces
        .patch_app_status_for_user(caller, &w, req)
        .await?;
    Ok(json!({"message": "Thanks for reporting!"}))
}
