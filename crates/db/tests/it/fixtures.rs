//! Rows the identity API cannot create yet (templates, workspaces, keys of other areas).

use chrono::Utc;
use hangar_core::{Clock, SystemClock};
use hangar_db::Db;
use hangar_identity::model::*;
use hangar_identity::store::IdentityStore;
use uuid::Uuid;

pub fn now() -> chrono::DateTime<Utc> {
    SystemClock.now()
}

pub async fn user(db: &Db, name: &str) -> User {
    db.insert_user(
        NewUser {
            id: Uuid::new_v4(),
            email: format!("{name}@example.com"),
            username: name.to_string(),
            name: String::new(),
            hashed_password: b"x".to_vec(),
            status: UserStatus::Active,
            rbac_roles: vec![],
            login_type: LoginType::Password,
            now: now(),
        },
        vec![],
    )
    .await
    .expect("insert user")
}

pub async fn org(db: &Db, name: &str, creator: &User) -> Organization {
    let t = now();
    db.insert_organization_with_creator(
        Organization {
            id: Uuid::new_v4(),
            name: name.into(),
            display_name: name.into(),
            description: String::new(),
            icon: String::new(),
            created_at: t,
            updated_at: t,
            is_default: false,
            deleted: false,
        },
        creator.id,
        vec![],
    )
    .await
    .expect("insert org")
}

pub async fn template(db: &Db, org: Uuid, by: Uuid) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner, active_version_id, created_by) \
         VALUES ($1, $2, $2, $3, $4, 'echo'::provisioner_type, $5, $6)",
        vec![c.uuid(id), c.ts(now()), c.uuid(org), c.text(format!("t{}", &id.simple().to_string()[..8])), c.uuid(Uuid::new_v4()), c.uuid(by)],
    )
    .await
    .expect("insert template");
    id
}

pub async fn workspace(db: &Db, org: Uuid, template: Uuid, owner: Uuid) -> Uuid {
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name) \
         VALUES ($1, $2, $2, $3, $4, $5, $6)",
        vec![c.uuid(id), c.ts(now()), c.uuid(owner), c.uuid(org), c.uuid(template), c.text(format!("w{}", &id.simple().to_string()[..8]))],
    )
    .await
    .expect("insert workspace");
    id
}

pub async fn soft_delete(db: &Db, table: &str, id: Uuid) {
    let c = db.ctx();
    db.execute(
        &format!("UPDATE {table} SET deleted = TRUE WHERE id = $1"),
        vec![c.uuid(id)],
    )
    .await
    .expect("soft delete");
}

pub async fn group(db: &Db, org: Uuid, name: &str) -> Group {
    db.insert_group(Group {
        id: Uuid::new_v4(),
        name: name.into(),
        display_name: String::new(),
        organization_id: org,
        avatar_url: String::new(),
        quota_allowance: 0,
        source: GroupSource::User,
    })
    .await
    .expect("insert group")
}
