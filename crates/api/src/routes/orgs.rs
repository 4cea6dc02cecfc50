//! Organizations, members and groups (02 §4.4, §4.5).

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, QueryParams, check_query};
use crate::views::{GroupJson, MemberJson, MemberWithUserJson, OrganizationJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hangar_core::wire;
use hangar_identity::model::{GroupPatch, OrganizationPatch};
use serde::Deserialize;
use uuid::Uuid;

pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<Json<Vec<OrganizationJson>>> {
    Ok(Json(
        state
            .identity
            .list_organizations(&caller)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateOrgRequest {
    name: String,
    display_name: Option<String>,
    description: String,
    icon: String,
}

pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<CreateOrgRequest>,
) -> ApiResult<Response> {
    let org = state
        .identity
        .create_organization(
            &caller,
            req.name,
            req.display_name,
            req.description,
            req.icon,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(OrganizationJson::from(org))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<OrganizationJson>> {
    Ok(Json(
        state.identity.resolve_org(&caller, &org).await?.into(),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PatchOrgRequest {
    name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    icon: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
    Body(req): Body<PatchOrgRequest>,
) -> ApiResult<Json<OrganizationJson>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let patch = OrganizationPatch {
        name: req.name.filter(|n| !n.is_empty()),
        display_name: req.display_name.filter(|n| !n.is_empty()),
        description: req.description,
        icon: req.icon,
    };
    Ok(Json(
        state
            .identity
            .update_organization(&caller, &o, patch)
            .await?
            .into(),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    state.identity.delete_organization(&caller, &o).await?;
    Ok((
        StatusCode::OK,
        Json(wire::Response::message("Organization has been deleted.")),
    )
        .into_response())
}

pub async fn members(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<Vec<MemberWithUserJson>>> {
    let mut errors = vec![];
    let include_system = q.bool("include_system", &mut errors);
    check_query(errors)?;
    let o = state.identity.resolve_org(&caller, &org).await?;
    let list = state
        .identity
        .list_members(&caller, &o, include_system)
        .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

pub async fn add_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<Json<MemberJson>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(
        state.identity.add_member(&caller, &o, &u).await?.into(),
    ))
}

pub async fn remove_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let u = state.identity.resolve_user(&caller, &user).await?;
    state.identity.remove_member(&caller, &o, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RolesRequest {
    roles: Vec<String>,
}

pub async fn set_member_roles(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((org, user)): Path<(String, String)>,
    Body(req): Body<RolesRequest>,
) -> ApiResult<Json<MemberJson>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(
        state
            .identity
            .set_member_roles(&caller, &o, &u, req.roles)
            .await?
            .into(),
    ))
}

async fn group_json(
    state: &AppState,
    caller: &hangar_identity::service::Caller,
    g: hangar_identity::model::Group,
) -> ApiResult<GroupJson> {
    let org = state
        .identity
        .resolve_org(caller, &g.organization_id.to_string())
        .await?;
    let members = state.identity.group_members(&g).await?;
    Ok(GroupJson::new(g, &org, members))
}

pub async fn list_groups(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<GroupJson>>> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let mut out = vec![];
    for g in state.identity.list_groups(&caller, &o).await? {
        let members = state.identity.group_members(&g).await?;
        out.push(GroupJson::new(g, &o, members));
    }
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateGroupRequest {
    name: String,
    display_name: String,
    avatar_url: String,
    quota_allowance: i32,
}

pub async fn create_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(org): Path<String>,
    Body(req): Body<CreateGroupRequest>,
) -> ApiResult<Response> {
    let o = state.identity.resolve_org(&caller, &org).await?;
    let g = state
        .identity
        .create_group(
            &caller,
            &o,
            req.name,
            req.display_name,
            req.avatar_url,
            req.quota_allowance,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(GroupJson::new(g, &o, vec![]))).into_response())
}

fn group_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request("Invalid UUID \"group\".")
            .detail(format!("{raw:?} is not a valid uuid"))
    })
}

pub async fn get_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(group): Path<String>,
) -> ApiResult<Json<GroupJson>> {
    let g = state.identity.group(&caller, group_id(&group)?).await?;
    Ok(Json(group_json(&state, &caller, g).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PatchGroupRequest {
    name: Option<String>,
    display_name: Option<String>,
    avatar_url: Option<String>,
    quota_allowance: Option<i32>,
    add_users: Vec<String>,
    remove_users: Vec<String>,
}

fn user_ids(field: &str, raw: &[String]) -> ApiResult<Vec<Uuid>> {
    raw.iter()
        .map(|s| {
            Uuid::parse_str(s).map_err(|_| {
                ApiError::bad_request("Validation failed.").validations(vec![
                    wire::Validation::new(field, format!("{s:?} must be a valid UUID")),
                ])
            })
        })
        .collect()
}

pub async fn update_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(group): Path<String>,
    Body(req): Body<PatchGroupRequest>,
) -> ApiResult<Json<GroupJson>> {
    let g = state.identity.group(&caller, group_id(&group)?).await?;
    let patch = GroupPatch {
        name: req.name.filter(|n| !n.is_empty()),
        display_name: req.display_name,
        avatar_url: req.avatar_url,
        quota_allowance: req.quota_allowance,
        add_users: user_ids("add_users", &req.add_users)?,
        remove_users: user_ids("remove_users", &req.remove_users)?,
    };
    let updated = state.identity.update_group(&caller, &g, patch).await?;
    Ok(Json(group_json(&state, &caller, updated).await?))
}

pub async fn delete_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    let g = state.identity.group(&caller, group_id(&group)?).await?;
    state.identity.delete_group(&caller, &g).await?;
    Ok((
        StatusCode::OK,
        Json(wire::Response::message("Successfully deleted group!")),
    )
        .into_response())
}
