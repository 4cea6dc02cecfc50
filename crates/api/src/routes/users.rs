//! Users, login and logout (02 §4.2).

use crate::AppState;
use crate::auth::{Auth, SESSION_COOKIE, request_ip};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, QueryParams, check_query};
use crate::views::{OrganizationJson, UserJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_core::Pagination;
use hangar_core::wire::{self, Validation};
use hangar_identity::model::{LoginType, UserFilter, UserStatus};
use hangar_identity::service::{Caller, CreateUser};
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;
use uuid::Uuid;

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(wire::Response::message(text))).into_response()
}

pub async fn first_user_exists(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(if state.identity.first_user_exists().await? {
        message(StatusCode::OK, "The initial user has already been created!")
    } else {
        message(
            StatusCode::NOT_FOUND,
            "The initial user has not been created!",
        )
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateFirstUserRequest {
    email: String,
    username: String,
    name: String,
    password: String,
    trial: bool,
    trial_info: serde_json::Value,
}

pub async fn create_first_user(
    State(state): State<AppState>,
    Body(req): Body<CreateFirstUserRequest>,
) -> ApiResult<Response> {
    let _ = (req.trial, &req.trial_info);
    let (user, org) = state
        .identity
        .create_first_user(CreateUser {
            email: req.email,
            username: req.username,
            name: req.name,
            password: req.password,
            ..Default::default()
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user_id": user.id, "organization_id": org })),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginRequest {
    email: String,
    password: String,
}

pub(crate) fn session_cookie(state: &AppState, value: &str, clear: bool) -> String {
    let secure = if state.config.access_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let expiry = if clear { "; Max-Age=0" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{expiry}{secure}")
}

pub async fn login(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Response> {
    let ip = request_ip(&state, &ext, &headers);
    if !state.login_limiter.allow(ip, Instant::now()) {
        state.metrics.login_attempt("rate_limited");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You've been rate limited for sending more than {} requests in 1m0s.",
                state.login_limiter.limit()
            ),
        ));
    }
    let mut missing = vec![];
    if req.email.is_empty() {
        missing.push(Validation::new(
            "email",
            "Validation failed for tag \"required\" with value: \"\"",
        ));
    }
    if req.password.is_empty() {
        missing.push(Validation::new(
            "password",
            "Validation failed for tag \"required\" with value: \"\"",
        ));
    }
    if !missing.is_empty() {
        return Err(ApiError::bad_request("Validation failed.").validations(missing));
    }
    match state
        .identity
        .login(&req.email, &req.password, &ip.to_string())
        .await
    {
        Ok(session) => {
            state.metrics.login_attempt("success");
            let mut res = (
                StatusCode::CREATED,
                Json(json!({ "session_token": session.token })),
            )
                .into_response();
            if let Ok(v) = session_cookie(&state, &session.token, false).parse() {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(res)
        }
        Err(e) => {
            let result = match &e {
                hangar_identity::IdentityError::Unauthenticated { message, .. }
                    if message.contains("suspended") =>
                {
                    "suspended"
                }
                _ => "bad_credentials",
            };
            state.metrics.login_attempt(result);
            Err(e.into())
        }
    }
}

pub async fn logout(State(state): State<AppState>, Auth(caller): Auth) -> ApiResult<Response> {
    state.identity.logout(&caller).await?;
    let mut res = message(StatusCode::OK, "Logged out!");
    if let Ok(v) = session_cookie(&state, "", true).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// Parses `q`: free text plus `status:` and `role:` terms.
fn parse_user_query(q: &str) -> Result<UserFilter, ApiError> {
    let mut filter = UserFilter::default();
    let mut text = vec![];
    let mut errors = vec![];
    for term in q.split_whitespace() {
        match term.split_once(':') {
            Some(("status", v)) => match v.parse::<UserStatus>() {
                Ok(s) => filter.status = Some(s),
                Err(_) => errors.push(Validation::new(
                    "status",
                    format!("{v:?} is not a valid user status"),
                )),
            },
            Some(("role", v)) if !v.is_empty() => filter.role = Some(v.to_string()),
            Some(("search" | "username" | "email", v)) => text.push(v.to_string()),
            Some((k, _)) => errors.push(Validation::new(
                k,
                format!("{k:?} is not a valid query param"),
            )),
            None => text.push(term.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request("Invalid user search query.").validations(errors));
    }
    filter.search = text.join(" ");
    Ok(filter)
}

pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> ApiResult<Json<serde_json::Value>> {
    let mut errors = vec![];
    let page = Pagination {
        limit: q.u64("limit", &mut errors),
        offset: q.u64("offset", &mut errors),
        after_id: q.uuid("after_id", &mut errors),
    };
    check_query(errors)?;
    let filter = parse_user_query(q.get("q").unwrap_or(""))?;
    let (users, count) = state.identity.list_users(&caller, filter, page).await?;
    let users: Vec<UserJson> = users.into_iter().map(Into::into).collect();
    Ok(Json(json!({ "users": users, "count": count })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateUserRequest {
    email: String,
    username: String,
    name: String,
    password: String,
    login_type: String,
    user_status: Option<String>,
    organization_ids: Vec<Uuid>,
}

pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<CreateUserRequest>,
) -> ApiResult<Response> {
    let login_type = match req.login_type.as_str() {
        "" => None,
        other => Some(other.parse::<LoginType>().map_err(|_| {
            ApiError::bad_request("Validation failed.").validations(vec![Validation::new(
                "login_type",
                format!("{other:?} is not a valid login type"),
            )])
        })?),
    };
    let status = match req.user_status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<UserStatus>().map_err(|_| {
            ApiError::bad_request("Validation failed.").validations(vec![Validation::new(
                "user_status",
                format!("{s:?} is not a valid user status"),
            )])
        })?),
    };
    let view = state
        .identity
        .create_user(
            &caller,
            CreateUser {
                email: req.email,
                username: req.username,
                name: req.name,
                password: req.password,
                login_type,
                status,
                organization_ids: req.organization_ids,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(UserJson::from(view))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<UserJson>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(state.identity.view(u).await?.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> ApiResult<Response> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    state.identity.delete_user(&caller, &u).await?;
    Ok(message(StatusCode::OK, "User has been deleted!"))
}

pub async fn organizations(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<OrganizationJson>>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    let orgs = state.identity.user_organizations(&caller, &u).await?;
    Ok(Json(orgs.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordRequest {
    old_password: String,
    password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
    Body(req): Body<PasswordRequest>,
) -> ApiResult<StatusCode> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    state
        .identity
        .change_password(&caller, &u, &req.old_password, &req.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: AppState,
    caller: Auth,
    user: String,
    status: UserStatus,
) -> ApiResult<Json<UserJson>> {
    let Auth(caller) = caller;
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(
        state.identity.set_status(&caller, &u, status).await?.into(),
    ))
}

pub async fn suspend(
    State(state): State<AppState>,
    caller: Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<UserJson>> {
    set_status(state, caller, user, UserStatus::Suspended).await
}

pub async fn activate(
    State(state): State<AppState>,
    caller: Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<UserJson>> {
    set_status(state, caller, user, UserStatus::Active).await
}

pub async fn roles(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    let (site, orgs) = state.identity.roles_of(&u).await?;
    let org_roles: serde_json::Map<String, serde_json::Value> = orgs
        .into_iter()
        .map(|(org, roles)| (org.to_string(), json!(roles)))
        .collect();
    Ok(Json(
        json!({ "roles": site, "organization_roles": org_roles }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RolesRequest {
    roles: Vec<String>,
}

pub async fn set_roles(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
    Body(req): Body<RolesRequest>,
) -> ApiResult<Json<UserJson>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(
        state
            .identity
            .set_site_roles(&caller, &u, req.roles)
            .await?
            .into(),
    ))
}

/// `coder_get_authenticated_user` (03 §5.9): the JSON of `GET /api/v2/users/me`.
pub(crate) async fn user_value(state: &AppState, caller: &Caller) -> ApiResult<serde_json::Value> {
    let u = state.identity.resolve_user(caller, "me").await?;
    let view = state.identity.view(u).await?;
    Ok(serde_json::json!(UserJson::from(view)))
}
