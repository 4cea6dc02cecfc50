//! API keys and tokens (02 §4.3).

use crate::AppState;
use crate::auth::{Auth, request_ip};
use crate::error::ApiResult;
use crate::extract::{Body, QueryParams, check_query};
use crate::views::{ApiKeyJson, TokenJson};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hangar_identity::service::CreateToken;
use serde::Deserialize;
use serde_json::json;

pub async fn create_session_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult<Response> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    let ip = request_ip(&state, &ext, &headers).to_string();
    let session = state.identity.create_session_key(&caller, &u, &ip).await?;
    Ok((StatusCode::CREATED, Json(json!({ "key": session.token }))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateTokenRequest {
    /// Nanoseconds, as Go's `time.Duration` marshals.
    lifetime: i64,
    scope: String,
    token_name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Path(user): Path<String>,
    Body(req): Body<CreateTokenRequest>,
) -> ApiResult<Response> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    let ip = request_ip(&state, &ext, &headers).to_string();
    let session = state
        .identity
        .create_token(
            &caller,
            &u,
            CreateToken {
                lifetime_ns: req.lifetime,
                scope: Some(req.scope),
                token_name: req.token_name,
            },
            &ip,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "key": session.token }))).into_response())
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<Vec<TokenJson>>> {
    let mut errors = vec![];
    let include_all = q.bool("include_all", &mut errors);
    check_query(errors)?;
    let u = state.identity.resolve_user(&caller, &user).await?;
    let keys = state.identity.list_tokens(&caller, &u, include_all).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| TokenJson {
                key: k.key.into(),
                username: k.username,
            })
            .collect(),
    ))
}

pub async fn token_config(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(user): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    state.identity.resolve_user(&caller, &user).await?;
    let max = state.identity.config().max_token_lifetime;
    let ns = i128::from(max.num_seconds()) * 1_000_000_000;
    Ok(Json(json!({ "max_token_lifetime": ns })))
}

pub async fn token_by_name(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((user, name)): Path<(String, String)>,
) -> ApiResult<Json<ApiKeyJson>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(
        state
            .identity
            .token_by_name(&caller, &u, &name)
            .await?
            .into(),
    ))
}

pub async fn get_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<Json<ApiKeyJson>> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    Ok(Json(state.identity.key_of(&caller, &u, &id).await?.into()))
}

pub async fn delete_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let u = state.identity.resolve_user(&caller, &user).await?;
    state.identity.delete_key(&caller, &u, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
