//! The authorization endpoint with its server-rendered consent page (03 §5.3), and the small
//! login page it sends signed-out users to. Consent is a POST carrying a CSRF token derived
//! from the login's own key, so no Referer or Origin is ever consulted.

use crate::AppState;
use crate::auth::{find_token, request_ip};
use crate::routes::oauth2::oauth_error;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_identity::model::LoginType;
use hangar_identity::service::Caller;
use hangar_oauth2_provider::grants::{AuthorizeError, ValidAuthorize};
use hangar_oauth2_provider::{OAuthError, consent_csrf_token, csrf_matches, parse_form, single};
use std::time::Instant;

fn count(state: &AppState, result: &'static str) {
    state
        .metrics
        .registry
        .inc(crate::metrics::OAUTH2_AUTHORIZATIONS, &[("result", result)]);
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An HTML page with the headers of §5.3 step 5.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}\
         .notice{{color:#a15c00}}button,a.button{{padding:.5rem 1rem;margin-right:.5rem}}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    res
}

fn error_page(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    page(
        status,
        "Authorization error",
        &format!(
            "<h1>Authorization error</h1><p><code>{}</code></p><p>{}</p>",
            escape(e.code),
            escape(&e.description)
        ),
    )
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

fn query_pairs(req_query: Option<&str>) -> Result<Vec<(String, String)>, OAuthError> {
    parse_form(req_query.unwrap_or("").as_bytes())
}

/// The signed-in user, and whether the session came from the cookie (only those need the CSRF
/// token: a cross-site form cannot set headers). A header token, when present, is the one
/// used: a request that carries one cannot be a cross-site form.
async fn user(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    ext: &axum::http::Extensions,
) -> Option<(Caller, bool)> {
    let header_token = crate::auth::header_token(headers);
    let from_cookie = header_token.is_none();
    let token = match header_token {
        Some(t) => t,
        None => find_token(headers, uri.query())?,
    };
    let ip = request_ip(state, ext, headers);
    match state.identity.authenticate(&token, &ip.to_string()).await {
        Ok(Ok(auth)) => Some((auth.caller, from_cookie)),
        _ => None,
    }
}

fn csrf_token(caller: &Caller, client_id: &str) -> String {
    consent_csrf_token(&caller.key.hashed_secret, client_id, &caller.key.id)
}

/// `GET /oauth2/authorize`: the consent page.
pub async fn show(State(state): State<AppState>, req: Request) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let found = user(&state, req.headers(), req.uri(), req.extensions()).await;
    let Some((caller, _)) = found else {
        let target: String =
            url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
        return redirect(
            StatusCode::TEMPORARY_REDIRECT,
            &format!("/login?redirect={target}"),
        );
    };
    if caller.key.login_type == LoginType::OAuth2ProviderApp {
        count(&state, "local_error");
        return error_page(&OAuthError::access_denied(
            "an OAuth2 access token cannot approve applications",
        ));
    }
    let pairs = match query_pairs(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let v = match state.oauth2.authorize_check(&pairs).await {
        Ok(v) => v,
        Err(AuthorizeError::Local(e)) => {
            count(&state, "local_error");
            return error_page(&e);
        }
        Err(AuthorizeError::Redirect(to)) => {
            count(&state, "redirected_error");
            return redirect(StatusCode::FOUND, &to);
        }
    };
    consent_page(&state, &caller, &v, &path_and_query)
}

fn consent_page(state: &AppState, caller: &Caller, v: &ValidAuthorize, action: &str) -> Response {
    let host = url::Url::parse(&v.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| v.redirect_uri.clone());
    let cancel = state.oauth2.error_redirect(
        &v.redirect_uri,
        &OAuthError::access_denied("The user denied the request."),
        v.params.state.as_deref(),
    );
    let icon = if v.app.icon.is_empty() {
        String::new()
    } else {
        format!(
            "<img src=\"{}\" alt=\"\" width=\"48\" height=\"48\">",
            escape(&v.app.icon)
        )
    };
    let notice = if v.app.dynamically_registered {
        "<p class=\"notice\">This application is unverified: it registered itself, and nobody at \
         this deployment has reviewed it.</p>"
    } else {
        ""
    };
    let body = format!(
        "{icon}<h1>Authorize {name}</h1>\
         <p>Signed in as <strong>{user}</strong>.</p>\
         <p><strong>{name}</strong> will get full access to your account and act on your behalf.</p>\
         {notice}\
         <p>After you decide, you are sent to <code>{host}</code>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\">Allow</button>\
         <a class=\"button\" href=\"{cancel}\">Cancel</a></form>",
        name = escape(&v.app.name),
        user = escape(&caller.user.username),
        host = escape(&host),
        action = escape(action),
        csrf = csrf_token(caller, &v.app.id.to_string()),
        cancel = escape(&cancel),
    );
    page(StatusCode::OK, "Authorize application", &body)
}

/// `POST /oauth2/authorize`: approval. Errors before the redirect URI is known are JSON.
pub async fn approve(State(state): State<AppState>, req: Request) -> Response {
    let found = user(&state, req.headers(), req.uri(), req.extensions()).await;
    let Some((caller, from_cookie)) = found else {
        count(&state, "local_error");
        return oauth_error(
            &OAuthError::invalid_request("sign in to approve applications").with_status(401),
        );
    };
    if caller.key.login_type == LoginType::OAuth2ProviderApp {
        count(&state, "local_error");
        return oauth_error(&OAuthError::access_denied(
            "an OAuth2 access token cannot approve applications",
        ));
    }
    let pairs = match query_pairs(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return oauth_error(&e),
    };
    let headers = req.headers().clone();
    let body: Bytes =
        match axum::body::to_bytes(req.into_body(), crate::routes::oauth2::MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
    // An empty body (a header-authenticated approval) needs no content type.
    let form = if body.is_empty() {
        vec![]
    } else {
        match crate::routes::oauth2::form_body(&headers, &body) {
            Ok(f) => f,
            Err(e) => return oauth_error(&e),
        }
    };
    let v = match state.oauth2.authorize_check(&pairs).await {
        Ok(v) => v,
        Err(AuthorizeError::Local(e)) => {
            count(&state, "local_error");
            return oauth_error(&e);
        }
        Err(AuthorizeError::Redirect(to)) => {
            count(&state, "redirected_error");
            return redirect(StatusCode::FOUND, &to);
        }
    };
    if from_cookie {
        let expected = csrf_token(&caller, &v.app.id.to_string());
        let given = single(&form, "csrf_token")
            .ok()
            .flatten()
            .unwrap_or_default();
        if !csrf_matches(&expected, &given) {
            count(&state, "csrf_rejected");
            return oauth_error(&OAuthError::access_denied(
                "the consent form's CSRF token is missing or wrong",
            ));
        }
    }
    match state.oauth2.approve(caller.user_id(), &v).await {
        Ok(to) => {
            count(&state, "approved");
            redirect(StatusCode::FOUND, &to)
        }
        Err(e) => oauth_error(&e),
    }
}

/// Where `/login` may send the browser afterwards: a local path only.
fn safe_redirect(target: Option<&str>) -> String {
    // Browsers drop tabs and newlines from URLs and read `\` as `/`, so `/\t/evil` or
    // `/\\evil` would leave the site: a target with any of them goes to `/`.
    let local = |t: &str| {
        t.starts_with('/')
            && !t.starts_with("//")
            && !t.contains('\\')
            && !t.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    match target {
        Some(t) if local(t) => t.to_owned(),
        _ => "/".to_owned(),
    }
}

fn login_page(status: StatusCode, target: &str, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"notice\">{}</p>", escape(error))
    };
    let target_q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    page(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in to Hangar</h1>{error}\
             <form method=\"post\" action=\"/login?redirect={}\">\
             <p><label>Email <input name=\"email\" type=\"email\" autocomplete=\"username\"></label></p>\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p>\
             <button type=\"submit\">Sign in</button></form>",
            escape(&target_q)
        ),
    )
}

fn redirect_param(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "redirect")
        .map(|(_, v)| v.into_owned())
}

/// `GET /login?redirect=`.
pub async fn login_form(req: Request) -> Response {
    let target = safe_redirect(redirect_param(req.uri().query()).as_deref());
    login_page(StatusCode::OK, &target, "")
}

/// `POST /login`: verifies like the JSON login, sets the session cookie, 303 to the target.
pub async fn login_submit(State(state): State<AppState>, req: Request) -> Response {
    let target = safe_redirect(redirect_param(req.uri().query()).as_deref());
    let ip = request_ip(&state, req.extensions(), req.headers());
    if !state.login_limiter.allow(ip, Instant::now()) {
        state.metrics.login_attempt("rate_limited");
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &target,
            "Too many sign-in attempts; try again in a minute.",
        );
    }
    let body =
        match axum::body::to_bytes(req.into_body(), crate::routes::oauth2::MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
    let form = parse_form(&body).unwrap_or_default();
    let field = |k: &str| single(&form, k).ok().flatten().unwrap_or_default();
    match state
        .identity
        .login(&field("email"), &field("password"), &ip.to_string())
        .await
    {
        Ok(session) => {
            state.metrics.login_attempt("success");
            let mut res = redirect(StatusCode::SEE_OTHER, &target);
            if let Ok(v) =
                crate::routes::users::session_cookie(&state, &session.token, false).parse()
            {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(_) => {
            state.metrics.login_attempt("bad_credentials");
            login_page(
                StatusCode::UNAUTHORIZED,
                &target,
                "Incorrect email or password.",
            )
        }
    }
}
