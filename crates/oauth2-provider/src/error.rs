//! OAuth error responses (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6750 §3.1): protocol routes answer
//! `{"error","error_description"}` instead of the Coder envelope (03 §5.1).

use serde_json::{Value, json};

/// One OAuth error: its registered code, a free-text description and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: u16,
}

/// The one description of every client-authentication failure, so that a response never tells
/// which half of the credentials was wrong (03 §5.4, §9).
pub const INVALID_CLIENT_DESCRIPTION: &str = "Client authentication failed.";

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>, status: u16) -> Self {
        Self {
            code,
            description: description.into(),
            status,
        }
    }

    /// The same error with another status, e.g. the 401 `invalid_request` of an unauthenticated
    /// consent POST (03 §5.3 step 1).
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description, 400)
    }

    /// 401 with one fixed description for every cause.
    pub fn invalid_client() -> Self {
        Self::new("invalid_client", INVALID_CLIENT_DESCRIPTION, 401)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description, 400)
    }

    pub fn unauthorized_client() -> Self {
        Self::new(
            "unauthorized_client",
            "The client is not authorized to use this grant type.",
            400,
        )
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            "unsupported_grant_type",
            "The grant type is not supported; use authorization_code or refresh_token.",
            400,
        )
    }

    pub fn unsupported_response_type() -> Self {
        Self::new(
            "unsupported_response_type",
            "The response type is not supported; use code.",
            400,
        )
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new("invalid_target", description, 400)
    }

    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new("access_denied", description, 403)
    }

    /// 401 for a missing or wrong registration access token; the text never reveals whether the
    /// client exists (03 §5.6).
    pub fn invalid_token() -> Self {
        Self::new(
            "invalid_token",
            "The access token is missing, invalid or not valid for this client.",
            401,
        )
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", description, 400)
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", description, 400)
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            "temporarily_unavailable",
            "Too many registration requests; try again later.",
            429,
        )
    }

    /// Unexpected failures: details go to the log, never to the client (00 wire rules).
    pub fn server_error() -> Self {
        Self::new("server_error", "An internal server error occurred.", 500)
    }

    /// The JSON body: exactly `error` and `error_description` (03 §12 item 39).
    pub fn body(&self) -> Value {
        json!({ "error": self.code, "error_description": self.description })
    }

    /// The `WWW-Authenticate` header that must accompany this error, if any (03 §5.1, §5.6).
    pub fn www_authenticate(&self) -> Option<&'static str> {
        match self.code {
            "invalid_client" if self.status == 401 => Some(r#"Basic realm="coder""#),
            "invalid_token" if self.status == 401 => {
                Some(r#"Bearer realm="coder", error="invalid_token""#)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_exactly_error_and_description() {
        let body = OAuthError::invalid_grant("code expired").body();
        let obj = body.as_object().unwrap();
        assert_eq!(obj.len(), 2);
        assert_eq!(obj["error"], "invalid_grant");
        assert_eq!(obj["error_description"], "code expired");
    }

    #[test]
    fn constructors_set_codes_and_statuses() {
        let cases = [
            (OAuthError::invalid_request("x"), "invalid_request", 400),
            (OAuthError::invalid_client(), "invalid_client", 401),
            (OAuthError::invalid_grant("x"), "invalid_grant", 400),
            (
                OAuthError::unauthorized_client(),
                "unauthorized_client",
                400,
            ),
            (
                OAuthError::unsupported_grant_type(),
                "unsupported_grant_type",
                400,
            ),
            (
                OAuthError::unsupported_response_type(),
                "unsupported_response_type",
                400,
            ),
            (OAuthError::invalid_target("x"), "invalid_target", 400),
            (OAuthError::access_denied("x"), "access_denied", 403),
            (OAuthError::invalid_token(), "invalid_token", 401),
            (
                OAuthError::invalid_redirect_uri("x"),
                "invalid_redirect_uri",
                400,
            ),
            (
                OAuthError::invalid_client_metadata("x"),
                "invalid_client_metadata",
                400,
            ),
            (
                OAuthError::temporarily_unavailable(),
                "temporarily_unavailable",
                429,
            ),
            (OAuthError::server_error(), "server_error", 500),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.code, code);
            assert_eq!(err.status, status, "{code}");
            assert!(!err.description.is_empty(), "{code}");
        }
    }

    #[test]
    fn invalid_client_description_is_fixed() {
        assert_eq!(
            OAuthError::invalid_client().description,
            INVALID_CLIENT_DESCRIPTION
        );
    }

    #[test]
    fn www_authenticate_only_for_401_client_and_token_errors() {
        assert_eq!(
            OAuthError::invalid_client().www_authenticate(),
            Some(r#"Basic realm="coder""#)
        );
        assert_eq!(
            OAuthError::invalid_token().www_authenticate(),
            Some(r#"Bearer realm="coder", error="invalid_token""#)
        );
        assert_eq!(OAuthError::invalid_grant("x").www_authenticate(), None);
        assert_eq!(
            OAuthError::invalid_client()
                .with_status(400)
                .www_authenticate(),
            None
        );
    }

    #[test]
    fn with_status_keeps_code_and_text() {
        let err = OAuthError::invalid_request("no login").with_status(401);
        assert_eq!(err.status, 401);
        assert_eq!(err.code, "invalid_request");
        assert_eq!(err.to_string(), "invalid_request: no login");
    }
}
