//! The API key middleware (02 §4.1): find the token in Coder's order, authenticate it, and
//! attach the [`Caller`]. Every 401 carries `WWW-Authenticate` (03 §5.8).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hangar_identity::service::{AuthFailure, Caller};
use std::net::{IpAddr, SocketAddr};

pub const SESSION_COOKIE: &str = "coder_session_token";
pub const SESSION_HEADER: &str = "coder-session-token";

const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

/// The token in Coder's lookup order: cookie, query `coder_session_token`, header
/// `Coder-Session-Token`, `Authorization: Bearer`, query `access_token`.
pub fn find_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let query_param = |name: &str| {
        query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.into_owned())
        })
    };
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';').find_map(|pair| {
                let (k, val) = pair.trim().split_once('=')?;
                (k == SESSION_COOKIE && !val.is_empty()).then(|| val.to_string())
            })
        });
    cookie
        .or_else(|| query_param(SESSION_COOKIE))
        .or_else(|| header_token(headers))
        .or_else(|| query_param("access_token"))
}

/// A token sent in a header (`Coder-Session-Token`, then `Authorization: Bearer`): the only
/// kind a cross-site page cannot make a browser send, so MCP and the consent POST use it.
pub fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
}

/// A 401 with the `WWW-Authenticate` challenge; `error` only when a token was presented.
pub fn unauthorized(state: &AppState, detail: &str, token_presented: bool) -> ApiError {
    let mut challenge = format!(
        "Bearer realm=\"coder\", resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        state.config.base_url()
    );
    if token_presented {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            detail.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    ApiError::new(StatusCode::UNAUTHORIZED, SIGNED_OUT)
        .detail(detail)
        .header(header::WWW_AUTHENTICATE, &challenge)
}

/// The client address as the rest of the API sees it.
pub fn request_ip(
    state: &AppState,
    parts_ext: &axum::http::Extensions,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    crate::net::client_ip(
        peer,
        headers,
        &state.config.proxy_trusted_origins,
        &state.config.proxy_trusted_headers,
    )
}

/// Middleware for every authenticated route.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let found = authenticate_request(&state, req.headers(), req.uri(), req.extensions()).await;
    match found {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(res) => res,
    }
}

/// Authenticates a request the way the middleware does: token lookup, key check, and the
/// audience of an OAuth2 access token against the request path (03 §5.8).
pub async fn authenticate_request(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    extensions: &axum::http::Extensions,
) -> Result<Caller, Response> {
    let Some(token) = find_token(headers, uri.query()) else {
        return Err(unauthorized(
            state,
            "Cookie \"coder_session_token\" or query parameter must be provided.",
            false,
        )
        .into_response());
    };
    let ip = request_ip(state, extensions, headers);
    match state.identity.authenticate(&token, &ip.to_string()).await {
        Ok(Ok(auth)) => {
            if let Some(reason) = auth.usage_write {
                state.metrics.api_key_write(reason);
            }
            if let Some(aud) = &auth.audience
                && !hangar_oauth2_provider::audience_covers(
                    aud,
                    state.oauth2.access_url(),
                    uri.path(),
                )
            {
                return Err(audience_rejected(state, "api"));
            }
            Ok(auth.caller)
        }
        Ok(Err(failure)) => {
            let detail = failure.detail();
            let err = match failure {
                AuthFailure::NotActive(_) => ApiError::new(StatusCode::UNAUTHORIZED, detail.clone()).header(
                    header::WWW_AUTHENTICATE,
                    &format!(
                        "Bearer realm=\"coder\", resource_metadata=\"{}/.well-known/oauth-protected-resource\", error=\"invalid_token\"",
                        state.config.base_url()
                    ),
                ),
                _ => unauthorized(state, &detail, true),
            };
            Err(err.into_response())
        }
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// 401 for an OAuth2 token bound to another resource (03 §5.8); `route` labels the metric.
pub fn audience_rejected(state: &AppState, route: &'static str) -> Response {
    state.metrics.registry.inc(
        crate::metrics::OAUTH2_AUDIENCE_REJECTIONS,
        &[("route", route)],
    );
    ApiError::new(StatusCode::UNAUTHORIZED, "Token audience validation failed")
        .detail("The access token was issued for a different resource.")
        .header(
            header::WWW_AUTHENTICATE,
            &format!(
                "Bearer realm=\"coder\", resource_metadata=\"{}/.well-known/oauth-protected-resource\", error=\"invalid_token\", error_description=\"The access token audience does not match this resource.\"",
                state.config.base_url()
            ),
        )
        .into_response()
}

/// Handlers take the authenticated caller as an argument.
pub struct Auth(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| {
                // Only reachable if a route was mounted without the middleware.
                ApiError::new(StatusCode::UNAUTHORIZED, SIGNED_OUT)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lookup_order() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            "Bearer bearer-token".parse().unwrap(),
        );
        assert_eq!(
            find_token(&h, Some("access_token=q2")).as_deref(),
            Some("bearer-token")
        );
        h.insert(SESSION_HEADER, "header-token".parse().unwrap());
        assert_eq!(find_token(&h, None).as_deref(), Some("header-token"));
        assert_eq!(
            find_token(&h, Some("coder_session_token=q1")).as_deref(),
            Some("q1")
        );
        h.insert(
            header::COOKIE,
            "a=b; coder_session_token=cookie-token".parse().unwrap(),
        );
        assert_eq!(
            find_token(&h, Some("coder_session_token=q1")).as_deref(),
            Some("cookie-token")
        );
        assert_eq!(
            find_token(&HeaderMap::new(), Some("access_token=q2")).as_deref(),
            Some("q2")
        );
        assert_eq!(find_token(&HeaderMap::new(), None), None);
    }
}
