//! Driver errors → [`StoreError`]. Trigger refusals carry a `hangar:<rule>` tag on both
//! backends (PostgreSQL `P0001`, SQLite `SQLITE_CONSTRAINT_TRIGGER` = 1811).

use hangar_core::StoreError;
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Full texts of rules whose SQLite trigger can only raise the bare tag.
fn rule_message(rule: &str) -> Option<&'static str> {
    match rule {
        "user_deleted" => Some("Cannot create API key for deleted user"),
        "oauth2_token_key_mismatch" => Some(
            "oauth2 provider app token must reference an oauth2_provider_app api key of the same user",
        ),
        "oauth2_token_secret_mismatch" => {
            Some("oauth2 provider app token secret must belong to the token app")
        }
        "oauth2_public_app_secret" => Some("public oauth2 provider apps cannot have secrets"),
        "preset_version_mismatch" => Some("preset does not belong to the template version"),
        _ => None,
    }
}

/// SQLite names the columns of a plain unique index instead of the index; map them to the
/// PostgreSQL constraint names so the domain sees one name.
fn sqlite_constraint_name(detail: &str) -> String {
    if let Some(rest) = detail.strip_prefix("index '") {
        return rest.trim_end_matches('\'').to_string();
    }
    match detail {
        "api_keys.user_id, api_keys.token_name" => "idx_api_key_name",
        "api_keys.id" => "api_keys_pkey",
        "oauth2_provider_app_secrets.secret_prefix" => {
            "oauth2_provider_app_secrets_secret_prefix_key"
        }
        "oauth2_provider_app_codes.secret_prefix" => "oauth2_provider_app_codes_secret_prefix_key",
        "oauth2_provider_app_tokens.hash_prefix" => "oauth2_provider_app_tokens_hash_prefix_key",
        "oauth2_provider_app_tokens.api_key_id" => "oauth2_provider_app_tokens_api_key_id_key",
        "oauth2_provider_app_token_rotations.hash_prefix" => {
            "oauth2_provider_app_token_rotations_pkey"
        }
        "groups.name, groups.organization_id" => "groups_name_organization_id_key",
        "organization_members.organization_id, organization_members.user_id" => {
            "organization_members_pkey"
        }
        "group_members.user_id, group_members.group_id" => "group_members_user_id_group_id_key",
        "site_configs.key" => "site_configs_pkey",
        "files.hash, files.created_by" => "files_hash_created_by_key",
        "template_versions.template_id, template_versions.name" => {
            "template_versions_template_id_name_key"
        }
        "template_versions.job_id" => "template_versions_job_id_key",
        "workspace_apps.agent_id, workspace_apps.slug" => "workspace_apps_agent_id_slug_idx",
        "workspace_builds.workspace_id, workspace_builds.build_number" => {
            "workspace_builds_workspace_id_build_number_key"
        }
        "workspace_builds.job_id" => "workspace_builds_job_id_key",
        "workspace_build_parameters.workspace_build_id, workspace_build_parameters.name" => {
            "workspace_build_parameters_workspace_build_id_name_key"
        }
        "template_version_parameters.template_version_id, template_version_parameters.name" => {
            "template_version_parameters_template_version_id_name_key"
        }
        "template_version_variables.template_version_id, template_version_variables.name" => {
            "template_version_variables_template_version_id_name_key"
        }
        "template_version_presets.template_version_id, template_version_presets.name" => {
            "idx_unique_preset_name"
        }
        "template_version_presets.template_version_id" => "idx_template_version_presets_default",
        other => other,
    }
    .to_string()
}

fn tagged(message: &str) -> Option<StoreError> {
    let rest = message.strip_prefix("hangar:")?;
    let (rule, text) = match rest.split_once(": ") {
        Some((rule, text)) => (rule.to_string(), text.to_string()),
        None => (
            rest.to_string(),
            rule_message(rest).unwrap_or_default().to_string(),
        ),
    };
    let message = if text.is_empty() {
        format!("hangar:{rule}")
    } else {
        format!("hangar:{rule}: {text}")
    };
    Some(StoreError::Violation { rule, message })
}

fn from_sqlx(e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message();
            if let Some(v) = tagged(message) {
                return v;
            }
            let code = db.code().unwrap_or_default();
            if code == "23505" || code == "23503" {
                return StoreError::Conflict {
                    constraint: db.constraint().unwrap_or_default().to_string(),
                };
            }
            if let Some(detail) = message.strip_prefix("UNIQUE constraint failed: ") {
                return StoreError::Conflict {
                    constraint: sqlite_constraint_name(detail),
                };
            }
            if message.starts_with("FOREIGN KEY constraint failed") {
                return StoreError::Conflict {
                    constraint: "foreign_key".into(),
                };
            }
            // Class 08 (connection exception), 57P (operator intervention), 53 (resources).
            if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
                return StoreError::Unavailable;
            }
            StoreError::Other(format!("database error {code}: {message}"))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => StoreError::Unavailable,
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::Other(other.to_string()),
    }
}

pub fn map_db_err(e: DbErr) -> StoreError {
    match &e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            from_sqlx(inner)
        }
        DbErr::RecordNotFound(_) => StoreError::NotFound,
        _ => {
            let text = e.to_string();
            if let Some(pos) = text.find("hangar:")
                && let Some(v) = tagged(&text[pos..])
            {
                return v;
            }
            StoreError::Other(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_violations() {
        match tagged("hangar:user_deleted").unwrap() {
            StoreError::Violation { rule, message } => {
                assert_eq!(rule, "user_deleted");
                assert_eq!(
                    message,
                    "hangar:user_deleted: Cannot create API key for deleted user"
                );
            }
            other => panic!("{other:?}"),
        }
        match tagged("hangar:org_not_empty: cannot delete organization: x").unwrap() {
            StoreError::Violation { rule, message } => {
                assert_eq!(rule, "org_not_empty");
                assert_eq!(
                    message,
                    "hangar:org_not_empty: cannot delete organization: x"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(tagged("other").is_none());
    }

    #[test]
    fn sqlite_names_map_to_postgres_names() {
        assert_eq!(
            sqlite_constraint_name("index 'users_username_lower_idx'"),
            "users_username_lower_idx"
        );
        assert_eq!(
            sqlite_constraint_name("api_keys.user_id, api_keys.token_name"),
            "idx_api_key_name"
        );
    }
}
