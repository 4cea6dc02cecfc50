//! A small JSON client for `/api/v2`, and the error type that renders Coder's error envelope.

use std::fmt;
use std::time::Duration;

use anyhow::{Result, anyhow};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

/// The header Coder's clients send the session token in (00-conventions).
const SESSION_HEADER: &str = "Coder-Session-Token";

/// How much of a non-JSON error body is worth showing (an HTML proxy page can be huge).
const MAX_RAW_BODY: usize = 500;

/// A non-2xx answer from the API, displayed as the message, the detail and one
/// `field: detail` line per validation: exactly what the CLI prints on stderr (02 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub detail: String,
    pub validations: Vec<Validation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Validation {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    validations: Option<Vec<Validation>>,
}

impl ApiError {
    /// Builds the error from a response body: Coder's envelope when it is one, else a
    /// message naming the request with (a prefix of) the raw body as detail.
    pub fn from_body(status: StatusCode, method: &Method, url: &Url, body: &[u8]) -> Self {
        match serde_json::from_slice::<Envelope>(body) {
            Ok(envelope) if !envelope.message.is_empty() => Self {
                status,
                message: envelope.message,
                detail: envelope.detail,
                validations: envelope.validations.unwrap_or_default(),
            },
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let detail = match text.char_indices().nth(MAX_RAW_BODY) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text.to_owned(),
                };
                Self {
                    status,
                    message: format!(
                        "unexpected status code {} from {method} {}",
                        status.as_u16(),
                        url.path()
                    ),
                    detail,
                    validations: Vec::new(),
                }
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.detail.is_empty() {
            write!(f, "\n{}", self.detail)?;
        }
        for v in &self.validations {
            write!(f, "\n{}: {}", v.field, v.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The status of an API error inside an `anyhow::Error`, if that is what it is.
pub fn api_status(err: &anyhow::Error) -> Option<StatusCode> {
    err.downcast_ref::<ApiError>().map(|e| e.status)
}

/// How long an upload may take; uploads can be up to 100 MiB, more than the default allows.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The body of one request.
enum Payload<'a> {
    Empty,
    Json(&'a Value),
    Raw {
        content_type: &'a str,
        bytes: Vec<u8>,
    },
}

/// An HTTP client bound to one deployment and, optionally, one session token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(base: Url, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hangar-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| anyhow!("cannot create the HTTP client: {}", error_chain(&e)))?;
        Ok(Self { http, base, token })
    }

    /// The same deployment with another session token.
    pub fn with_token(&self, token: String) -> Self {
        Self {
            token: Some(token),
            ..self.clone()
        }
    }

    /// The deployment URL as the user should see it: no trailing slash.
    pub fn base_display(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// `<base>/api/v2/<segments…>`, each segment percent-encoded, so a user-supplied name
    /// can never escape its path segment.
    pub fn endpoint(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot be used as a base URL", self.base))?
            .pop_if_empty()
            .extend(["api", "v2"])
            .extend(segments);
        Ok(url)
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::GET, self.endpoint(segments)?, Payload::Empty)
            .await
    }

    pub async fn get_url(&self, url: Url) -> Result<Value> {
        self.send(Method::GET, url, Payload::Empty).await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::POST, self.endpoint(segments)?, Payload::Json(body))
            .await
    }

    /// POSTs raw bytes (an archive upload) with the given content type.
    pub async fn post_bytes(
        &self,
        segments: &[&str],
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Value> {
        let payload = Payload::Raw {
            content_type,
            bytes,
        };
        self.send(Method::POST, self.endpoint(segments)?, payload)
            .await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value> {
        self.send(Method::PATCH, self.endpoint(segments)?, Payload::Json(body))
            .await
    }

    pub async fn put(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::PUT, self.endpoint(segments)?, Payload::Empty)
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value> {
        self.send(Method::DELETE, self.endpoint(segments)?, Payload::Empty)
            .await
    }

    /// Sends one request; a 2xx body is parsed as JSON (empty → `null`), anything else
    /// becomes an [`ApiError`].
    async fn send(&self, method: Method, url: Url, body: Payload<'_>) -> Result<Value> {
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.header(SESSION_HEADER, token);
        }
        match body {
            Payload::Empty => {}
            Payload::Json(body) => request = request.json(body),
            Payload::Raw {
                content_type,
                bytes,
            } => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .timeout(UPLOAD_TIMEOUT)
                    .body(bytes);
            }
        }
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the Hangar deployment at {}: {}",
                self.base_display(),
                error_chain(&e)
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            anyhow!(
                "cannot read the answer to {method} {}: {}",
                url.path(),
                error_chain(&e)
            )
        })?;
        if !status.is_success() {
            return Err(ApiError::from_body(status, &method, &url, &bytes).into());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "the answer to {method} {} is not valid JSON: {e}",
                url.path()
            )
        })
    }
}

/// An error and its sources on one line; reqwest's own `Display` hides the useful cause
/// ("connection refused", a TLS failure, …) in the source chain.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("bad test URL {s}: {e}"))
    }

    #[test]
    fn envelope_is_rendered_line_by_line() {
        let body = br#"{"message":"Validation failed.","detail":"Check the fields.","validations":[{"field":"username","detail":"Validation failed for tag \"username\""},{"field":"email","detail":"must be an email"}]}"#;
        let err = ApiError::from_body(
            StatusCode::BAD_REQUEST,
            &Method::POST,
            &url("http://h/api/v2/users"),
            body,
        );
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_string(),
            "Validation failed.\nCheck the fields.\nusername: Validation failed for tag \"username\"\nemail: must be an email"
        );
    }

    #[test]
    fn envelope_without_detail_is_just_the_message() {
        let err = ApiError::from_body(
            StatusCode::FORBIDDEN,
            &Method::DELETE,
            &url("http://h/api/v2/users/me"),
            br#"{"message":"You cannot delete yourself!"}"#,
        );
        assert_eq!(err.to_string(), "You cannot delete yourself!");
    }

    #[test]
    fn non_envelope_body_names_the_request() {
        let err = ApiError::from_body(
            StatusCode::BAD_GATEWAY,
            &Method::GET,
            &url("http://h/api/v2/users/me"),
            b"  upstream down\n",
        );
        assert_eq!(
            err.to_string(),
            "unexpected status code 502 from GET /api/v2/users/me\nupstream down"
        );
    }

    #[test]
    fn long_raw_bodies_are_cut() {
        let body = "x".repeat(2 * MAX_RAW_BODY);
        let err = ApiError::from_body(
            StatusCode::BAD_GATEWAY,
            &Method::GET,
            &url("http://h/"),
            body.as_bytes(),
        );
        assert_eq!(err.detail.chars().count(), MAX_RAW_BODY + 1);
    }

    #[test]
    fn api_status_sees_through_anyhow() {
        let err: anyhow::Error = ApiError {
            status: StatusCode::NOT_FOUND,
            message: "m".into(),
            detail: String::new(),
            validations: Vec::new(),
        }
        .into();
        assert_eq!(api_status(&err), Some(StatusCode::NOT_FOUND));
        assert_eq!(api_status(&anyhow!("other")), None);
    }

    #[test]
    fn endpoints_keep_a_base_path_and_encode_segments() -> Result<()> {
        let plain = ApiClient::new(url("https://h.example.com"), None)?;
        assert_eq!(
            plain.endpoint(&["users", "me"])?.as_str(),
            "https://h.example.com/api/v2/users/me"
        );
        let prefixed = ApiClient::new(url("https://h.example.com/hangar/"), None)?;
        assert_eq!(
            prefixed.endpoint(&["users", "a/b?c"])?.as_str(),
            "https://h.example.com/hangar/api/v2/users/a%2Fb%3Fc"
        );
        assert_eq!(prefixed.base_display(), "https://h.example.com/hangar");
        Ok(())
    }
}
