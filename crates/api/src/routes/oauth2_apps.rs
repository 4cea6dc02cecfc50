//! The OAuth2 provider's management API under `/api/v2/oauth2-provider` (03 §5.7), in Coder's
//! envelope; 404 while the `oauth2` experiment is off.

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, QueryParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hangar_core::experiments::Experiment;
use hangar_oauth2_provider::apps::{AppRequest, ManageError};
use hangar_oauth2_provider::model::App;
use serde_json::{Value, json};
use uuid::Uuid;

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::NotFound => ApiError::not_found(),
            ManageError::Forbidden => ApiError::forbidden(),
            ManageError::Invalid {
                message,
                validations,
            } => ApiError::bad_request(message).validations(validations),
            ManageError::Store(s) => s.into(),
        }
    }
}

fn enabled(state: &AppState) -> ApiResult<()> {
    if state.config.experiments.enabled(Experiment::OAuth2) {
        Ok(())
    } else {
        Err(ApiError::route_not_found())
    }
}

fn uuid(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("Invalid UUID {raw:?}.")))
}

/// Coder's `OAuth2ProviderApp`.
fn app_json(state: &AppState, a: &App) -> Value {
    let base = state.config.base_url();
    json!({
        "id": a.id,
        "name": a.name,
        "callback_url": a.callback_url,
        "icon": a.icon,
        "redirect_uris": a.redirect_uris,
        "client_type": a.client_type,
        "dynamically_registered": a.dynamically_registered,
        "endpoints": {
            "authorization": format!("{base}/oauth2/authorize"),
            "token": format!("{base}/oauth2/tokens"),
            "device_authorization": "",
            "token_revoke": format!("{base}/oauth2/revoke"),
        },
    })
}

pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    enabled(&state)?;
    let user = match q.get("user_id") {
        None => None,
        Some("me") => Some(caller.user_id()),
        Some(raw) => Some(uuid(raw)?),
    };
    let apps = state.oauth2_apps.list(&caller, user).await?;
    Ok(Json(json!(
        apps.iter().map(|a| app_json(&state, a)).collect::<Vec<_>>()
    )))
}

pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<AppRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    enabled(&state)?;
    let app = state.oauth2_apps.create(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(app_json(&state, &app))))
}

pub async fn get(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    enabled(&state)?;
    let app = state.oauth2_apps.get(&caller, uuid(&app)?).await?;
    Ok(Json(app_json(&state, &app)))
}

pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(app): Path<String>,
    Body(req): Body<AppRequest>,
) -> ApiResult<Json<Value>> {
    enabled(&state)?;
    let app = state.oauth2_apps.update(&caller, uuid(&app)?, req).await?;
    Ok(Json(app_json(&state, &app)))
}

pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(app): Path<String>,
) -> ApiResult<StatusCode> {
    enabled(&state)?;
    state.oauth2_apps.delete(&caller, uuid(&app)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn secrets(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    enabled(&state)?;
    let list = state.oauth2_apps.secrets(&caller, uuid(&app)?).await?;
    Ok(Json(json!(
        list.iter()
            .map(|s| json!({
                "id": s.id,
                "last_used_at": s.last_used_at,
                "client_secret_truncated": s.display_secret,
            }))
            .collect::<Vec<_>>()
    )))
}

pub async fn create_secret(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(app): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    enabled(&state)?;
    let (secret, full) = state
        .oauth2_apps
        .create_secret(&caller, uuid(&app)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": secret.id, "client_secret_full": full})),
    ))
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((app, secret)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    enabled(&state)?;
    state
        .oauth2_apps
        .delete_secret(&caller, uuid(&app)?, uuid(&secret)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
