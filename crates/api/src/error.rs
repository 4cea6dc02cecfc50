//! Errors → Coder's envelope with the right status (00, 02 §8).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hangar_core::StoreError;
use hangar_core::wire::{self, Validation};
use hangar_identity::IdentityError;

/// An error answer of an `/api/v2` route.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: wire::Response,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: wire::Response::message(message),
            headers: vec![],
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.body.detail = detail.into();
        self
    }

    pub fn validations(mut self, v: Vec<Validation>) -> Self {
        self.body.validations = v;
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Resource not found or you do not have access to this resource",
        )
    }

    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Route not found.")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden.")
    }

    /// 500 without internals; the cause is logged with the request id by the caller.
    pub fn internal(request_id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred. Please try again or contact the system administrator.",
        )
        .detail(format!("Request ID: {request_id}"))
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable.",
        )
        .header(header::RETRY_AFTER, "1")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Unavailable => ApiError::unavailable(),
            other => {
                let id = crate::observe::current_request_id();
                tracing::error!(request_id = %id, error = %other, "storage error");
                ApiError::internal(&id)
            }
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::NotFound => ApiError::not_found(),
            IdentityError::Forbidden => ApiError::forbidden(),
            IdentityError::SystemUser => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            IdentityError::SelfDelete => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            IdentityError::HasWorkspaces => {
                ApiError::new(StatusCode::EXPECTATION_FAILED, e.to_string())
            }
            IdentityError::Invalid {
                message,
                detail,
                validations,
            } => ApiError::bad_request(message)
                .detail(detail)
                .validations(validations),
            IdentityError::Unauthenticated { message, detail } => {
                ApiError::new(StatusCode::UNAUTHORIZED, message).detail(detail)
            }
            IdentityError::Conflict { message, detail } => {
                ApiError::new(StatusCode::CONFLICT, message).detail(detail)
            }
            IdentityError::Store(s) => s.into(),
        }
    }
}

impl From<hangar_workspaces::WorkspaceError> for ApiError {
    fn from(e: hangar_workspaces::WorkspaceError) -> Self {
        use hangar_workspaces::WorkspaceError as W;
        match e {
            W::NotFound => ApiError::not_found(),
            W::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            W::Invalid {
                message,
                detail,
                validations,
            } => ApiError::bad_request(message)
                .detail(detail)
                .validations(validations),
            W::Conflict {
                message,
                detail,
                validations,
            } => ApiError::new(StatusCode::CONFLICT, message)
                .detail(detail)
                .validations(validations),
            W::Gone(m) => ApiError::new(StatusCode::GONE, m),
            W::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "File is too large.")
                .detail(format!(
                    "The limit is {} bytes.",
                    hangar_workspaces::service::MAX_FILE_BYTES
                )),
            W::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body)).into_response();
        for (k, v) in self.headers {
            res.headers_mut().append(k, v);
        }
        res
    }
}
