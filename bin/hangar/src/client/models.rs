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
