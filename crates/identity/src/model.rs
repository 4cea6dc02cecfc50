//! Identity records as the domain sees them.

use chrono::{DateTime, Utc};
use hangar_core::text_enum;
use std::collections::BTreeMap;
use uuid::Uuid;

text_enum!(UserStatus { Active = "active", Suspended = "suspended", Dormant = "dormant" });
text_enum!(LoginType {
    Password = "password",
    Github = "github",
    Oidc = "oidc",
    Token = "token",
    None = "none",
    OAuth2ProviderApp = "oauth2_provider_app",
});
text_enum!(ApiKeyScope { All = "all", ApplicationConnect = "application_connect" });
text_enum!(GroupSource { User = "user", Oidc = "oidc" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub name: String,
    pub avatar_url: String,
    pub hashed_password: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub status: UserStatus,
    pub rbac_roles: Vec<String>,
    pub login_type: LoginType,
    pub deleted: bool,
    pub is_system: bool,
}

/// A user to insert; the store fills nothing in.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub name: String,
    pub hashed_password: Vec<u8>,
    pub status: UserStatus,
    pub rbac_roles: Vec<String>,
    pub login_type: LoginType,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Matches username or email, case-insensitively.
    pub search: String,
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    pub include_system: bool,
    /// Restrict to one user (a plain member sees only themself).
    pub only: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_default: bool,
    pub deleted: bool,
}

/// Fields of an org PATCH; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberWithUser {
    pub member: Member,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub organization_id: Uuid,
    pub avatar_url: String,
    pub quota_allowance: i32,
    pub source: GroupSource,
}

impl Group {
    /// The Everyone group shares its org's id.
    pub fn is_everyone(&self) -> bool {
        self.id == self.organization_id
    }
}

#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub quota_allowance: Option<i32>,
    pub add_users: Vec<Uuid>,
    pub remove_users: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub hashed_secret: Vec<u8>,
    pub user_id: Uuid,
    pub last_used: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub login_type: LoginType,
    pub lifetime_seconds: i64,
    pub ip_address: String,
    pub scope: ApiKeyScope,
    pub token_name: String,
}

/// The counts that block an org delete (the `organization_resource_counts` view).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceCounts {
    pub workspace_count: i64,
    pub template_count: i64,
    pub group_count: i64,
    pub member_count: i64,
    pub provisioner_key_count: i64,
}

impl ResourceCounts {
    /// The API's list of blockers (02 §4.5): workspaces, templates, members and groups beyond
    /// the caller and Everyone, provisioner keys; singular or plural; zeros left out.
    pub fn blocker_parts(&self) -> Vec<String> {
        let part = |n: i64, noun: &str| match n {
            n if n <= 0 => None,
            1 => Some(format!("1 {noun}")),
            n => Some(format!("{n} {noun}s")),
        };
        [
            part(self.workspace_count, "workspace"),
            part(self.template_count, "template"),
            part(self.member_count - 1, "member"),
            part(self.group_count - 1, "group"),
            part(self.provisioner_key_count, "provisioner key"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The trigger's text (02 §2.4), which the SQLite store composes itself.
    pub fn trigger_message(&self) -> Option<String> {
        let plural = |n: i64, noun: &str| (n > 0).then(|| format!("{n} {noun}"));
        let parts: Vec<String> = [
            plural(self.workspace_count, "workspaces"),
            plural(self.template_count, "templates"),
            plural(self.provisioner_key_count, "provisioner keys"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let has = |what: String| {
            Some(format!(
                "cannot delete organization: organization has {what} that must be deleted first"
            ))
        };
        if !parts.is_empty() {
            has(parts.join(", "))
        } else if self.group_count > 1 {
            has(format!("{} groups", self.group_count - 1))
        } else if self.member_count > 1 {
            has(format!("{} members", self.member_count - 1))
        } else {
            None
        }
    }
}

/// What the auth middleware needs beyond the key: status, roles, memberships, groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRoles {
    pub status: UserStatus,
    pub site_roles: Vec<String>,
    pub org_roles: BTreeMap<Uuid, Vec<String>>,
    pub groups: Vec<Uuid>,
}

/// A key joined to its user, as the one auth SELECT returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAndUser {
    pub key: ApiKey,
    pub user: User,
    /// The audience of the OAuth2 token row of this key, if it is one and is bound (03 §5.8).
    pub audience: Option<String>,
}

/// A key with its owner's username, for token listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWithOwner {
    pub key: ApiKey,
    pub username: String,
}

/// The conditional usage write of 02 §4.1 step 6.
#[derive(Debug, Clone)]
pub struct KeyTouch {
    pub id: String,
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    pub ip: String,
    /// Write only if `last_used` is older than this…
    pub stale_before: DateTime<Utc>,
    /// …or, for refreshable keys, if `expires_at` is at or before the first instant and the
    /// key is then extended to the second.
    pub refresh: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocker_parts_follow_the_spec() {
        let c = ResourceCounts {
            workspace_count: 2,
            template_count: 1,
            group_count: 2,
            member_count: 2,
            provisioner_key_count: 0,
        };
        assert_eq!(
            c.blocker_parts().join(", "),
            "2 workspaces, 1 template, 1 member, 1 group"
        );
        assert_eq!(
            c.trigger_message().unwrap(),
            "cannot delete organization: organization has 2 workspaces, 1 templates that must be deleted first"
        );
        let c = ResourceCounts {
            group_count: 3,
            member_count: 3,
            ..Default::default()
        };
        assert_eq!(
            c.trigger_message().unwrap(),
            "cannot delete organization: organization has 2 groups that must be deleted first"
        );
        let c = ResourceCounts {
            group_count: 1,
            member_count: 3,
            ..Default::default()
        };
        assert_eq!(
            c.trigger_message().unwrap(),
            "cannot delete organization: organization has 2 members that must be deleted first"
        );
        let c = ResourceCounts {
            group_count: 1,
            member_count: 1,
            ..Default::default()
        };
        assert!(c.trigger_message().is_none());
        assert!(c.blocker_parts().is_empty());
    }

    #[test]
    fn enums_round_trip() {
        for s in LoginType::ALL {
            assert_eq!(s.as_str().parse::<LoginType>().unwrap(), *s);
        }
        assert!("bogus".parse::<UserStatus>().is_err());
    }
}
