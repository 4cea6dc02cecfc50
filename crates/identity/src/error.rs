//! Outcomes of identity operations that are not success. `crates/api` maps each to a status.

use hangar_core::StoreError;
use hangar_core::wire::Validation;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 404: missing, or hidden from the caller.
    #[error("Resource not found or you do not have access to this resource")]
    NotFound,
    /// 403.
    #[error("Forbidden.")]
    Forbidden,
    /// 403: any mutation of a system user.
    #[error("Cannot modify or delete system users.")]
    SystemUser,
    /// 403: deleting oneself.
    #[error("You cannot delete yourself!")]
    SelfDelete,
    /// 400 with optional detail and field errors.
    #[error("{message}")]
    Invalid {
        message: String,
        detail: String,
        validations: Vec<Validation>,
    },
    /// 401 (login failures).
    #[error("{message}")]
    Unauthenticated { message: String, detail: String },
    /// 409.
    #[error("{message}")]
    Conflict { message: String, detail: String },
    /// 417: a user that still has workspaces.
    #[error("You cannot delete a user that has workspaces. Delete their workspaces and try again!")]
    HasWorkspaces,
    #[error("storage failed")]
    Store(#[from] StoreError),
}

impl IdentityError {
    pub fn invalid(message: impl Into<String>) -> Self {
        IdentityError::Invalid {
            message: message.into(),
            detail: String::new(),
            validations: vec![],
        }
    }

    pub fn invalid_detail(message: impl Into<String>, detail: impl Into<String>) -> Self {
        IdentityError::Invalid {
            message: message.into(),
            detail: detail.into(),
            validations: vec![],
        }
    }

    /// 400 `Validation failed.` with one entry per bad field.
    pub fn validation(validations: Vec<Validation>) -> Self {
        IdentityError::Invalid {
            message: "Validation failed.".into(),
            detail: String::new(),
            validations,
        }
    }

    pub fn field(field: &str, detail: impl Into<String>) -> Self {
        Self::validation(vec![Validation::new(field, detail)])
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        IdentityError::Conflict {
            message: message.into(),
            detail: String::new(),
        }
    }
}

/// Collects field errors from a list of checks.
pub fn check_fields(checks: Vec<(&str, Result<(), String>)>) -> Result<(), IdentityError> {
    let validations: Vec<Validation> = checks
        .into_iter()
        .filter_map(|(field, r)| r.err().map(|detail| Validation::new(field, detail)))
        .collect();
    if validations.is_empty() {
        Ok(())
    } else {
        Err(IdentityError::validation(validations))
    }
}
