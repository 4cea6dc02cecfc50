//! Outcomes of workspace-area operations that are not success; `crates/api` maps each to
//! a status.

use hangar_core::StoreError;
use hangar_core::wire::Validation;

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// 404: missing or hidden from the caller.
    #[error("Resource not found or you do not have access to this resource")]
    NotFound,
    /// 403 with Coder's text.
    #[error("{0}")]
    Forbidden(String),
    /// 400.
    #[error("{message}")]
    Invalid {
        message: String,
        detail: String,
        validations: Vec<Validation>,
    },
    /// 409.
    #[error("{message}")]
    Conflict {
        message: String,
        detail: String,
        validations: Vec<Validation>,
    },
    /// 410: a deleted workspace.
    #[error("{0}")]
    Gone(String),
    /// 413.
    #[error("File is too large.")]
    TooLarge,
    #[error("storage failed")]
    Store(#[from] StoreError),
}

impl WorkspaceError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            detail: String::new(),
            validations: vec![],
        }
    }

    pub fn invalid_detail(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            detail: detail.into(),
            validations: vec![],
        }
    }

    pub fn invalid_field(
        message: impl Into<String>,
        field: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            message: message.into(),
            detail: String::new(),
            validations: vec![Validation::new(field, detail)],
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            detail: String::new(),
            validations: vec![],
        }
    }

    pub fn forbidden() -> Self {
        Self::Forbidden("Forbidden.".into())
    }
}
