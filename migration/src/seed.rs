//! `identity_seed` (02 §2.5): the default org and its Everyone group, the prebuilds system
//! user and its membership, and the deployment id.

use crate::stmt;
use hangar_core::{Clock, PREBUILDS_SYSTEM_USER_ID, SystemClock};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use sea_orm_migration::prelude::*;
use uuid::Uuid;

pub struct IdentitySeed;

impl MigrationName for IdentitySeed {
    fn name(&self) -> &str {
        "m0002_identity_seed"
    }
}

fn uuid_value(backend: DbBackend, id: Uuid) -> Value {
    match backend {
        DbBackend::Postgres => Value::Uuid(Some(id)),
        _ => Value::String(Some(id.to_string())),
    }
}

fn time_value(backend: DbBackend) -> Value {
    let now = SystemClock.now();
    match backend {
        DbBackend::Postgres => Value::ChronoDateTimeUtc(Some(now)),
        _ => Value::String(Some(now.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())),
    }
}

/// `::type` casts are needed by PostgreSQL's enums and meaningless to SQLite.
fn cast(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => sql.to_string(),
        _ => sql
            .replace("::user_status", "")
            .replace("::login_type", "")
            .replace("::jsonb", ""),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentitySeed {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let b = manager.get_database_backend();
        let now = time_value(b);

        let has_org = db
            .query_one_raw(stmt(b, "SELECT 1 AS x FROM organizations LIMIT 1", vec![]))
            .await?
            .is_some();
        let default_org = if has_org {
            None
        } else {
            let org = Uuid::new_v4();
            db.execute_raw(stmt(
                b,
                "INSERT INTO organizations (id, name, display_name, description, created_at, updated_at, is_default) \
                 VALUES ($1, 'hangar', 'Hangar', 'Builtin default organization.', $2, $2, TRUE)",
                vec![uuid_value(b, org), now.clone()],
            ))
            .await?;
            // Everyone: the group whose id is the org's id.
            db.execute_raw(stmt(
                b,
                "INSERT INTO groups (id, name, display_name, organization_id) VALUES ($1, 'Everyone', '', $1)",
                vec![uuid_value(b, org)],
            ))
            .await?;
            Some(org)
        };

        db.execute_raw(stmt(
            b,
            &cast(
                b,
                "INSERT INTO users (id, email, username, name, hashed_password, created_at, updated_at, status, rbac_roles, login_type, is_system) \
                 VALUES ($1, 'prebuilds@system', 'prebuilds', 'Prebuilds Owner', $2, $3, $3, 'active'::user_status, '[]'::jsonb, 'none'::login_type, TRUE)",
            ),
            vec![uuid_value(b, PREBUILDS_SYSTEM_USER_ID), Value::Bytes(Some(b"none".to_vec())), now.clone()],
        ))
        .await?;

        let org_row = db
            .query_one_raw(stmt(
                b,
                "SELECT id FROM organizations WHERE is_default = TRUE",
                vec![],
            ))
            .await?;
        let org_id: Option<Value> = match (default_org, org_row) {
            (Some(id), _) => Some(uuid_value(b, id)),
            (None, Some(row)) => Some(match b {
                DbBackend::Postgres => Value::Uuid(Some(row.try_get::<Uuid>("", "id")?)),
                _ => Value::String(Some(row.try_get::<String>("", "id")?)),
            }),
            (None, None) => None,
        };
        if let Some(org) = org_id {
            db.execute_raw(stmt(
                b,
                &cast(
                    b,
                    "INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles) \
                     VALUES ($1, $2, $3, $3, '[]'::jsonb)",
                ),
                vec![uuid_value(b, PREBUILDS_SYSTEM_USER_ID), org, now],
            ))
            .await?;
        }

        db.execute_raw(stmt(
            b,
            "INSERT INTO site_configs (key, value) VALUES ('deployment_id', $1)",
            vec![Value::String(Some(Uuid::new_v4().to_string()))],
        ))
        .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
