//! The error every store trait returns. `crates/db` maps driver errors into it; domain crates
//! turn it into their own outcomes.

/// What went wrong in storage, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or is hidden, e.g. soft-deleted).
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the change.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// A trigger refused the change; `rule` is the tag after `hangar:`.
    #[error("{message}")]
    Violation { rule: String, message: String },
    /// The database could not be reached.
    #[error("database unavailable")]
    Unavailable,
    /// Anything else; the text is for logs only, never for clients.
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_conflict_on(&self, name: &str) -> bool {
        matches!(self, StoreError::Conflict { constraint } if constraint == name)
    }
}
