//! The OAuth2 protocol routes (03 §5.1–5.5): discovery, token, revocation and grant
//! removal. They answer RFC 6749 error JSON, not Coder's envelope, and are 404 while the
//! `oauth2` experiment is off (the gate is [`protocol_layer`]).

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hangar_core::experiments::Experiment;
use hangar_oauth2_provider::OAuthError;
use hangar_oauth2_provider::form::parse_form;
use hangar_oauth2_provider::grants::grant_label;
use hangar_oauth2_provider::metadata::{Config, MCP_PATH, as_metadata, prm};
use std::time::Instant;

/// Bodies of the token and revocation endpoints are small forms (03 §5.1).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// An OAuth error as its JSON body, with `WWW-Authenticate` where the error needs one.
pub fn oauth_error(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (status, axum::Json(e.body())).into_response();
    if let Some(w) = e.www_authenticate() {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(w));
    }
    res
}

fn discovery_config(state: &AppState) -> Config {
    Config {
        access_url: state.oauth2.access_url().clone(),
        dcr_enabled: state.config.oauth2.dcr_enabled,
    }
}

/// Paths that answer CORS (03 §5.1): discovery, registration, clients, token, revoke, MCP.
fn cors_path(path: &str) -> bool {
    path.starts_with("/.well-known/oauth-")
        || path == "/oauth2/register"
        || path.starts_with("/oauth2/clients/")
        || path == "/oauth2/tokens"
        || path == "/oauth2/token"
        || path == "/oauth2/revoke"
        || path == MCP_PATH
}

const CORS_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const CORS_HEADERS: &str =
    "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID";
const CORS_EXPOSE: &str = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version";

/// The experiment gate, CORS and the `no-store` rule of every protocol route.
pub async fn protocol_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let protocol = path.starts_with("/.well-known/oauth-")
        || path.starts_with("/oauth2/")
        || path == "/login"
        || path == MCP_PATH;
    if !protocol {
        return next.run(req).await;
    }
    let mcp = path == MCP_PATH || path.starts_with("/.well-known/oauth-protected-resource/api/");
    let experiments = &state.config.experiments;
    if !experiments.enabled(Experiment::OAuth2)
        || (mcp && !experiments.enabled(Experiment::McpServerHttp))
    {
        return crate::error::ApiError::route_not_found().into_response();
    }
    let cors = cors_path(&path);
    let mut res = if cors && req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static(CORS_METHODS),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(CORS_HEADERS),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("86400"));
        r
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    if cors {
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(CORS_EXPOSE),
        );
    }
    if path.starts_with("/oauth2/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    res
}

/// CORS preflight; [`protocol_layer`] answers it before this runs.
pub async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /.well-known/oauth-authorization-server[/…]` (RFC 8414): one document for every suffix.
pub async fn as_metadata_doc(State(state): State<AppState>) -> Response {
    axum::Json(as_metadata(&discovery_config(&state))).into_response()
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728), root suffix.
pub async fn prm_root(State(state): State<AppState>) -> Response {
    prm_response(&state, "")
}

/// `GET /.well-known/oauth-protected-resource/{*suffix}`: the MCP one, else 404.
pub async fn prm_suffix(State(state): State<AppState>, Path(suffix): Path<String>) -> Response {
    prm_response(&state, &format!("/{suffix}"))
}

fn prm_response(state: &AppState, suffix: &str) -> Response {
    match prm(&discovery_config(state), suffix) {
        Some(doc) => axum::Json(doc).into_response(),
        None => crate::error::ApiError::route_not_found().into_response(),
    }
}

/// Reads a form body: `application/x-www-form-urlencoded` only, at most 64 KiB.
pub fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(OAuthError::invalid_request("the body is larger than 64 KiB").with_status(413));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    parse_form(body)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// `POST /oauth2/tokens` and its alias `/oauth2/token`.
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    let grant = grant_label(&form);
    let result = state.oauth2.token(authorization(&headers), &form).await;
    let m = &state.metrics.registry;
    m.observe(
        crate::metrics::OAUTH2_TOKEN_DURATION,
        &[("grant_type", grant)],
        started.elapsed().as_secs_f64(),
    );
    let outcome = match &result {
        Ok(_) => "success",
        Err(e) => e.code,
    };
    m.inc(
        crate::metrics::OAUTH2_TOKEN_REQUESTS,
        &[("grant_type", grant), ("result", outcome)],
    );
    match result {
        Ok(t) => axum::Json(t).into_response(),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 with an empty body whatever the token was.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    match state.oauth2.revoke(authorization(&headers), &form).await {
        Ok(revoked) => {
            let result = if revoked { "revoked" } else { "noop" };
            state
                .metrics
                .registry
                .inc(crate::metrics::OAUTH2_REVOCATIONS, &[("result", result)]);
            StatusCode::OK.into_response()
        }
        Err(e) => oauth_error(&e),
    }
}

/// `DELETE /oauth2/tokens?client_id=`: the signed-in user removes their grants of an app.
pub async fn remove_grants(State(state): State<AppState>, req: Request) -> Response {
    let found =
        crate::auth::authenticate_request(&state, req.headers(), req.uri(), req.extensions()).await;
    let caller = match found {
        Ok(c) => c,
        Err(r) => return r,
    };
    let client_id = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    });
    match state
        .oauth2
        .remove_grants(caller.user_id(), client_id.as_deref())
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => oauth_error(&e),
    }
}

fn registration_result(state: &AppState, result: &str) {
    state
        .metrics
        .registry
        .inc(crate::metrics::OAUTH2_REGISTRATIONS, &[("result", result)]);
}

/// `POST /oauth2/register` (RFC 7591): JSON, no authentication, rate limited per peer.
pub async fn register(State(state): State<AppState>, req: Request) -> Response {
    if !state.config.oauth2.dcr_enabled {
        registration_result(&state, "disabled");
        return oauth_error(&OAuthError::access_denied(
            "Dynamic client registration is disabled.",
        ));
    }
    let ip = crate::auth::request_ip(&state, req.extensions(), req.headers());
    if !state.registration_limiter.allow(ip, Instant::now()) {
        registration_result(&state, "rate_limited");
        let mut res = oauth_error(&OAuthError::temporarily_unavailable());
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return res;
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return oauth_error(
                &OAuthError::invalid_request("the body is larger than 64 KiB").with_status(413),
            );
        }
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        registration_result(&state, "invalid_client_metadata");
        return oauth_error(&OAuthError::invalid_client_metadata(
            "The registration must be a JSON object.",
        ));
    };
    match state.oauth2.register(&doc).await {
        Ok(v) => {
            registration_result(&state, "success");
            (StatusCode::CREATED, axum::Json(v)).into_response()
        }
        Err(e) => {
            registration_result(&state, e.code);
            oauth_error(&e)
        }
    }
}

/// `GET /oauth2/clients/{client_id}` (RFC 7592) with the registration access token.
pub async fn read_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.oauth2.read_client(&id, authorization(&headers)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => oauth_error(&e),
    }
}

/// `PUT /oauth2/clients/{client_id}`: full replacement of the registration.
pub async fn update_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return oauth_error(&OAuthError::invalid_client_metadata(
            "The registration must be a JSON object.",
        ));
    };
    match state
        .oauth2
        .update_client(&id, authorization(&headers), &doc)
        .await
    {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => oauth_error(&e),
    }
}

/// `DELETE /oauth2/clients/{client_id}`: the client and everything issued to it.
pub async fn delete_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state
        .oauth2
        .delete_client(&id, authorization(&headers))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => oauth_error(&e),
    }
}
