//! JSON bodies, with Coder's field names (02 §4.4). Every field is always present.

use chrono::{DateTime, Utc};
use hangar_core::rbac::role_display_name;
use hangar_identity::model::*;
use hangar_identity::service::UserView;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Role {
    pub name: String,
    pub display_name: String,
}

#[derive(Debug, Serialize)]
pub struct OrgRole {
    pub name: String,
    pub display_name: String,
    pub organization_id: Uuid,
}

fn site_roles(roles: &[String]) -> Vec<Role> {
    roles
        .iter()
        .map(|r| Role {
            name: r.clone(),
            display_name: role_display_name(r).to_string(),
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct UserJson {
    pub id: Uuid,
    pub username: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub status: UserStatus,
    pub login_type: LoginType,
    pub organization_ids: Vec<Uuid>,
    pub roles: Vec<Role>,
}

impl From<UserView> for UserJson {
    fn from(v: UserView) -> Self {
        let u = v.user;
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_seen_at: u.last_seen_at,
            status: u.status,
            login_type: u.login_type,
            organization_ids: v.organization_ids,
            roles: site_roles(&u.rbac_roles),
        }
    }
}

/// The user fields a group lists.
#[derive(Debug, Serialize)]
pub struct ReducedUserJson {
    pub id: Uuid,
    pub username: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub status: UserStatus,
    pub login_type: LoginType,
}

impl From<User> for ReducedUserJson {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_seen_at: u.last_seen_at,
            status: u.status,
            login_type: u.login_type,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApiKeyJson {
    pub id: String,
    pub user_id: Uuid,
    pub last_used: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub login_type: LoginType,
    pub scope: ApiKeyScope,
    pub token_name: String,
    pub lifetime_seconds: i64,
}

impl From<ApiKey> for ApiKeyJson {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            last_used: k.last_used,
            expires_at: k.expires_at,
            created_at: k.created_at,
            updated_at: k.updated_at,
            login_type: k.login_type,
            scope: k.scope,
            token_name: k.token_name,
            lifetime_seconds: k.lifetime_seconds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenJson {
    #[serde(flatten)]
    pub key: ApiKeyJson,
    pub username: String,
}

#[derive(Debug, Serialize)]
pub struct OrganizationJson {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_default: bool,
}

impl From<Organization> for OrganizationJson {
    fn from(o: Organization) -> Self {
        Self {
            id: o.id,
            name: o.name,
            display_name: o.display_name,
            description: o.description,
            icon: o.icon,
            created_at: o.created_at,
            updated_at: o.updated_at,
            is_default: o.is_default,
        }
    }
}

fn org_roles(m: &Member) -> Vec<OrgRole> {
    m.roles
        .iter()
        .map(|r| OrgRole {
            name: r.clone(),
            display_name: role_display_name(r).to_string(),
            organization_id: m.organization_id,
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct MemberJson {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub roles: Vec<OrgRole>,
}

impl From<Member> for MemberJson {
    fn from(m: Member) -> Self {
        Self {
            roles: org_roles(&m),
            user_id: m.user_id,
            organization_id: m.organization_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MemberWithUserJson {
    #[serde(flatten)]
    pub member: MemberJson,
    pub username: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub global_roles: Vec<Role>,
}

impl From<MemberWithUser> for MemberWithUserJson {
    fn from(m: MemberWithUser) -> Self {
        Self {
            global_roles: site_roles(&m.user.rbac_roles),
            username: m.user.username,
            name: m.user.name,
            email: m.user.email,
            avatar_url: m.user.avatar_url,
            member: m.member.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupJson {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_display_name: String,
    pub avatar_url: String,
    pub quota_allowance: i32,
    pub source: GroupSource,
    pub members: Vec<ReducedUserJson>,
    pub total_member_count: usize,
}

impl GroupJson {
    pub fn new(g: Group, org: &Organization, members: Vec<User>) -> Self {
        Self {
            id: g.id,
            name: g.name,
            display_name: g.display_name,
            organization_id: g.organization_id,
            organization_name: org.name.clone(),
            organization_display_name: org.display_name.clone(),
            avatar_url: g.avatar_url,
            quota_allowance: g.quota_allowance,
            source: g.source,
            total_member_count: members.len(),
            members: members.into_iter().map(Into::into).collect(),
        }
    }
}
