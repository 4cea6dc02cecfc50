//! Platform endpoints (02 §4.6).

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_core::experiments::Experiments;
use serde_json::json;
use std::time::Duration;

/// `v<semver>+<7-char commit>`; the commit comes from the build environment when set.
pub fn version() -> String {
    let commit = option_env!("HANGAR_COMMIT").unwrap_or("0000000");
    format!(
        "v{}+{}",
        env!("CARGO_PKG_VERSION"),
        &commit[..commit.len().min(7)]
    )
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "OK").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

pub async fn buildinfo(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let deployment_id = state.identity.deployment_id().await?;
    let base = state.config.base_url();
    Ok(Json(json!({
        "external_url": "https://github.com/hangar-dev/hangar",
        "version": version(),
        "dashboard_url": base,
        "telemetry": false,
        "workspace_proxy": false,
        "agent_api_version": "1.0",
        "provisioner_api_version": "1.0",
        "upgrade_message": "",
        "deployment_id": deployment_id,
        "webpush_public_key": state.config.webpush_public_key,
    })))
}

pub async fn experiments(State(state): State<AppState>, _: Auth) -> Json<Vec<&'static str>> {
    Json(state.config.experiments.names())
}

pub async fn experiments_available(_: Auth) -> Json<serde_json::Value> {
    Json(json!({ "safe": Experiments::safe_names() }))
}

pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let doc = crate::openapi::document(Some(&state.config.experiments));
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
