//! Typed views of the API's JSON bodies (02 §4.4), holding only the fields the tables show.
//! JSON output prints the server's value itself, so nothing is lost by leaving fields out.

use anyhow::{Result, anyhow};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub login_type: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub organization_ids: Vec<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub last_seen_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKey {
    pub id: String,
    #[serde(default)]
    pub token_name: String,
    #[serde(default)]
    pub last_used: String,
    #[serde(default)]
    pub expires_at: String,
    #[serde(default)]
    pub created_at: String,
    /// Present in token lists (the owner's username).
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub global_roles: Vec<Role>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub organization_name: String,
    pub active_version_id: String,
    pub active_user_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TemplateVersion {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub created_by: CreatedBy,
    pub job: ProvisionerJob,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreatedBy {
    pub username: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProvisionerJob {
    pub id: String,
    pub status: String,
    pub error: Option<String>,
    pub queue_position: i64,
    pub queue_size: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

impl ProvisionerJob {
    /// Whether the job has reached a final status.
    pub fn is_completed(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "canceled")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProvisionerJobLog {
    pub id: i64,
    pub log_level: String,
    pub stage: String,
    pub output: String,
}

/// The parameters of a template version the user may have to fill in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TemplateVersionParameter {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub required: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub owner_name: String,
    pub template_name: String,
    pub latest_build: Option<WorkspaceBuild>,
    pub latest_app_status: Option<WorkspaceAppStatus>,
    pub outdated: bool,
    pub health: WorkspaceHealth,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceHealth {
    pub healthy: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceBuild {
    pub id: String,
    pub build_number: i64,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub job: ProvisionerJob,
    pub resources: Vec<WorkspaceResource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceResource {
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub hide: bool,
    pub agents: Vec<WorkspaceAgent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceAgent {
    pub name: String,
    pub status: String,
    pub lifecycle_state: String,
    pub apps: Vec<WorkspaceApp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceApp {
    pub id: String,
    pub slug: String,
    pub health: String,
    pub url: Option<String>,
    pub command: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceAppStatus {
    pub app_id: String,
    pub state: String,
    pub message: String,
}

/// Reads a typed view out of a response, naming what was expected when it does not fit.
pub fn decode<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T> {
    T::deserialize(value)
        .map_err(|e| anyhow!("unexpected answer from the server (expected {what}): {e}"))
}

/// Role names joined for a table cell.
pub fn role_names<'a>(roles: impl IntoIterator<Item = &'a Role>) -> String {
    roles
        .into_iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_a_user_and_ignores_unknown_fields() -> Result<()> {
        let value = json!({
            "id": "0b8f7c2e-0000-4000-8000-000000000001",
            "username": "admin",
            "email": "admin@example.com",
            "status": "active",
            "roles": [{"name": "owner", "display_name": "Owner"}],
            "avatar_url": "",
        });
        let user: User = decode(&value, "a user")?;
        assert_eq!(user.username, "admin");
        assert_eq!(role_names(&user.roles), "owner");
        Ok(())
    }

    #[test]
    fn a_mismatch_names_the_expected_shape() {
        let err = decode::<User>(&json!({"message": "nope"}), "a user")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("unexpected answer from the server (expected a user)"));
    }
}
