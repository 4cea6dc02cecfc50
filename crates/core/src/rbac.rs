//! Role-based access control: the only place that decides access (02 §3.1).
//!
//! [`authorize`] answers one question about one object; [`visibility`] answers the same
//! question for a whole resource type so list queries can filter in SQL. A test checks that
//! the two agree.

use std::collections::BTreeMap;
use uuid::Uuid;

/// Actions, with Coder's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    ReadPersonal,
    UpdatePersonal,
    Use,
    Start,
    Stop,
    Ssh,
    ApplicationConnect,
    Assign,
    Unassign,
    ViewInsights,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::ReadPersonal,
        Action::UpdatePersonal,
        Action::Use,
        Action::Start,
        Action::Stop,
        Action::Ssh,
        Action::ApplicationConnect,
        Action::Assign,
        Action::Unassign,
        Action::ViewInsights,
    ];
}

/// Resource types, with Coder's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    ApiKey,
    AssignOrgRole,
    AssignRole,
    AuditLog,
    DeploymentConfig,
    File,
    Group,
    GroupMember,
    InboxNotification,
    NotificationPreference,
    NotificationTemplate,
    OAuth2App,
    OAuth2AppCodeToken,
    OAuth2AppSecret,
    Organization,
    OrganizationMember,
    PrebuiltWorkspace,
    ProvisionerDaemon,
    ProvisionerJobs,
    System,
    Template,
    User,
    WebpushSubscription,
    Workspace,
}

impl Resource {
    pub const ALL: [Resource; 24] = [
        Resource::ApiKey,
        Resource::AssignOrgRole,
        Resource::AssignRole,
        Resource::AuditLog,
        Resource::DeploymentConfig,
        Resource::File,
        Resource::Group,
        Resource::GroupMember,
        Resource::InboxNotification,
        Resource::NotificationPreference,
        Resource::NotificationTemplate,
        Resource::OAuth2App,
        Resource::OAuth2AppCodeToken,
        Resource::OAuth2AppSecret,
        Resource::Organization,
        Resource::OrganizationMember,
        Resource::PrebuiltWorkspace,
        Resource::ProvisionerDaemon,
        Resource::ProvisionerJobs,
        Resource::System,
        Resource::Template,
        Resource::User,
        Resource::WebpushSubscription,
        Resource::Workspace,
    ];
}

/// Site-wide roles.
pub const ROLE_OWNER: &str = "owner";
pub const ROLE_TEMPLATE_ADMIN: &str = "template-admin";
pub const ROLE_USER_ADMIN: &str = "user-admin";
pub const ROLE_AUDITOR: &str = "auditor";
pub const ROLE_MEMBER: &str = "member";
/// Organization roles.
pub const ROLE_ORG_ADMIN: &str = "organization-admin";
pub const ROLE_ORG_TEMPLATE_ADMIN: &str = "organization-template-admin";
pub const ROLE_ORG_USER_ADMIN: &str = "organization-user-admin";
pub const ROLE_ORG_AUDITOR: &str = "organization-auditor";
pub const ROLE_ORG_MEMBER: &str = "organization-member";

/// Site roles that can be assigned (the implicit `member` cannot).
pub const ASSIGNABLE_SITE_ROLES: [&str; 4] = [
    ROLE_OWNER,
    ROLE_TEMPLATE_ADMIN,
    ROLE_USER_ADMIN,
    ROLE_AUDITOR,
];
/// Org roles that can be assigned.
pub const ASSIGNABLE_ORG_ROLES: [&str; 4] = [
    ROLE_ORG_ADMIN,
    ROLE_ORG_TEMPLATE_ADMIN,
    ROLE_ORG_USER_ADMIN,
    ROLE_ORG_AUDITOR,
];

/// Coder's display name of a built-in role.
pub fn role_display_name(role: &str) -> &'static str {
    match role {
        ROLE_OWNER => "Owner",
        ROLE_TEMPLATE_ADMIN => "Template Admin",
        ROLE_USER_ADMIN => "User Admin",
        ROLE_AUDITOR => "Auditor",
        ROLE_MEMBER => "Member",
        ROLE_ORG_ADMIN => "Organization Admin",
        ROLE_ORG_TEMPLATE_ADMIN => "Organization Template Admin",
        ROLE_ORG_USER_ADMIN => "Organization User Admin",
        ROLE_ORG_AUDITOR => "Organization Auditor",
        ROLE_ORG_MEMBER => "Organization Member",
        _ => "",
    }
}

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    All,
    ApplicationConnect,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(UserSubject),
    /// A background loop; allowed everything (and logged by the caller).
    System(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSubject {
    pub user_id: Uuid,
    pub site_roles: Vec<String>,
    /// Every org the user is a member of, with the roles it holds there.
    pub org_roles: BTreeMap<Uuid, Vec<String>>,
    pub groups: Vec<Uuid>,
    pub scope: Scope,
}

impl Subject {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Subject::User(u) => Some(u.user_id),
            Subject::System(_) => None,
        }
    }

    pub fn has_site_role(&self, role: &str) -> bool {
        match self {
            Subject::User(u) => u.site_roles.iter().any(|r| r == role),
            Subject::System(_) => false,
        }
    }
}

/// The thing acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub resource: Resource,
    pub id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
}

impl Object {
    /// A resource type with no particular owner or org (site-wide checks).
    pub fn of(resource: Resource) -> Self {
        Self {
            resource,
            id: None,
            owner_id: None,
            org_id: None,
        }
    }

    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    pub fn owned_by(mut self, owner: Uuid) -> Self {
        self.owner_id = Some(owner);
        self
    }

    pub fn in_org(mut self, org: Uuid) -> Self {
        self.org_id = Some(org);
        self
    }

    /// A user object: a user owns itself.
    pub fn user(id: Uuid) -> Self {
        Self::of(Resource::User).with_id(id).owned_by(id)
    }

    /// An organization object: its org is itself.
    pub fn organization(id: Uuid) -> Self {
        Self::of(Resource::Organization).with_id(id).in_org(id)
    }
}

/// A set of allowed actions on one resource.
#[derive(Clone, Copy)]
enum Actions {
    All,
    Only(&'static [Action]),
}

impl Actions {
    fn contains(self, a: Action) -> bool {
        match self {
            Actions::All => true,
            Actions::Only(list) => list.contains(&a),
        }
    }
}

type Grants = &'static [(Resource, Actions)];

use Action as A;
use Resource as R;

const READ: Actions = Actions::Only(&[A::Read]);

const TEMPLATE_ADMIN: Grants = &[
    (R::Template, Actions::All),
    (R::File, Actions::All),
    (R::Workspace, READ),
    (R::ProvisionerJobs, READ),
    (R::ProvisionerDaemon, READ),
    (R::User, READ),
    (R::Organization, READ),
    (R::OrganizationMember, READ),
    (R::Group, READ),
    (R::GroupMember, READ),
    (
        R::PrebuiltWorkspace,
        Actions::Only(&[A::Read, A::Update, A::Delete]),
    ),
];

const USER_ADMIN: Grants = &[
    (
        R::User,
        Actions::Only(&[A::Create, A::Read, A::Update, A::Delete]),
    ),
    (R::OrganizationMember, Actions::All),
    (R::Group, Actions::All),
    (R::GroupMember, Actions::All),
    (R::AssignOrgRole, Actions::All),
    (
        R::AssignRole,
        Actions::Only(&[A::Read, A::Assign, A::Unassign]),
    ),
    (R::Organization, READ),
];

const AUDITOR: Grants = &[
    (R::AuditLog, READ),
    (R::Template, READ),
    (R::User, READ),
    (R::Organization, READ),
    (R::OrganizationMember, READ),
    (R::Group, READ),
    (R::GroupMember, READ),
    (R::DeploymentConfig, READ),
];

/// The implicit member role, site-wide part.
const MEMBER_SITE: Grants = &[(R::AssignRole, READ), (R::OAuth2App, READ)];

/// The implicit member role, own-object part.
const MEMBER_OWN: Grants = &[
    (
        R::User,
        Actions::Only(&[A::Read, A::ReadPersonal, A::UpdatePersonal]),
    ),
    (R::ApiKey, Actions::All),
    (
        R::Workspace,
        Actions::Only(&[
            A::Create,
            A::Read,
            A::Update,
            A::Delete,
            A::Start,
            A::Stop,
            A::Ssh,
            A::ApplicationConnect,
        ]),
    ),
    (R::WebpushSubscription, Actions::All),
    (R::NotificationPreference, Actions::All),
    (R::InboxNotification, Actions::All),
    (R::OAuth2AppCodeToken, Actions::All),
];

const ORG_ADMIN: Grants = &[
    (R::Organization, Actions::Only(&[A::Read, A::Update])),
    (R::ApiKey, Actions::All),
    (R::AssignOrgRole, Actions::All),
    (R::AuditLog, Actions::All),
    (R::File, Actions::All),
    (R::Group, Actions::All),
    (R::GroupMember, Actions::All),
    (R::OrganizationMember, Actions::All),
    (R::PrebuiltWorkspace, Actions::All),
    (R::ProvisionerDaemon, Actions::All),
    (R::ProvisionerJobs, Actions::All),
    (R::Template, Actions::All),
    (R::User, READ),
    (R::Workspace, Actions::All),
];

const ORG_USER_ADMIN: Grants = &[
    (R::OrganizationMember, Actions::All),
    (R::Group, Actions::All),
    (R::GroupMember, Actions::All),
    (R::AssignOrgRole, Actions::All),
    (R::User, READ),
    (R::Organization, READ),
];

const ORG_AUDITOR: Grants = &[
    (R::AuditLog, READ),
    (R::Template, READ),
    (R::OrganizationMember, READ),
    (R::Group, READ),
    (R::GroupMember, READ),
];

const ORG_MEMBER: Grants = &[
    (R::Organization, READ),
    (R::OrganizationMember, READ),
    (R::Group, READ),
    (R::GroupMember, READ),
    (R::Template, Actions::Only(&[A::Read, A::Use])),
];

fn site_grants(role: &str) -> Grants {
    match role {
        ROLE_TEMPLATE_ADMIN => TEMPLATE_ADMIN,
        ROLE_USER_ADMIN => USER_ADMIN,
        ROLE_AUDITOR => AUDITOR,
        _ => &[],
    }
}

fn org_grants(role: &str) -> Grants {
    match role {
        ROLE_ORG_ADMIN => ORG_ADMIN,
        ROLE_ORG_TEMPLATE_ADMIN => TEMPLATE_ADMIN,
        ROLE_ORG_USER_ADMIN => ORG_USER_ADMIN,
        ROLE_ORG_AUDITOR => ORG_AUDITOR,
        _ => &[],
    }
}

fn grants_allow(grants: Grants, resource: Resource, action: Action) -> bool {
    grants
        .iter()
        .any(|(r, a)| *r == resource && a.contains(action))
}

fn site_allows(u: &UserSubject, resource: Resource, action: Action) -> bool {
    if u.site_roles.iter().any(|r| r == ROLE_OWNER) {
        return true;
    }
    grants_allow(MEMBER_SITE, resource, action)
        || u.site_roles
            .iter()
            .any(|r| grants_allow(site_grants(r), resource, action))
}

fn org_allows(u: &UserSubject, org: Uuid, resource: Resource, action: Action) -> bool {
    let Some(roles) = u.org_roles.get(&org) else {
        return false;
    };
    grants_allow(ORG_MEMBER, resource, action)
        || roles
            .iter()
            .any(|r| grants_allow(org_grants(r), resource, action))
}

fn scope_allows(u: &UserSubject, resource: Resource, action: Action) -> bool {
    match u.scope {
        Scope::All => true,
        Scope::ApplicationConnect => resource == R::Workspace && action == A::ApplicationConnect,
    }
}

/// The access decision. Rules in order; the first match decides (02 §3.1).
pub fn authorize(subject: &Subject, action: Action, object: &Object) -> bool {
    let u = match subject {
        Subject::System(_) => return true,
        Subject::User(u) => u,
    };
    if !scope_allows(u, object.resource, action) {
        return false;
    }
    if site_allows(u, object.resource, action) {
        return true;
    }
    if let Some(org) = object.org_id
        && org_allows(u, org, object.resource, action)
    {
        return true;
    }
    if object.owner_id == Some(u.user_id)
        && grants_allow(MEMBER_OWN, object.resource, action)
        && object
            .org_id
            .is_none_or(|org| u.org_roles.contains_key(&org))
    {
        return true;
    }
    false
}

/// May `subject` assign or remove the site role `role`? `owner` needs an owner.
pub fn may_assign_site_role(subject: &Subject, action: Action, role: &str) -> bool {
    if role == ROLE_OWNER
        && !matches!(subject, Subject::System(_))
        && !subject.has_site_role(ROLE_OWNER)
    {
        return false;
    }
    authorize(subject, action, &Object::of(R::AssignRole))
}

/// Which objects of a type an actor may act on, for SQL filtering of lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    All,
    /// Objects in `org_ids`, plus the actor's own objects (`owner_id`) that are in no org or
    /// in one of `member_orgs`.
    Scoped {
        org_ids: Vec<Uuid>,
        owner_id: Option<Uuid>,
        member_orgs: Vec<Uuid>,
    },
}

impl Visibility {
    /// Whether one object falls inside the visible set.
    pub fn allows(&self, object: &Object) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Scoped {
                org_ids,
                owner_id,
                member_orgs,
            } => {
                object.org_id.is_some_and(|o| org_ids.contains(&o))
                    || (owner_id.is_some()
                        && object.owner_id == *owner_id
                        && object.org_id.is_none_or(|o| member_orgs.contains(&o)))
            }
        }
    }
}

/// The set form of [`authorize`] for one (action, resource type).
pub fn visibility(subject: &Subject, action: Action, resource: Resource) -> Visibility {
    let u = match subject {
        Subject::System(_) => return Visibility::All,
        Subject::User(u) => u,
    };
    let nothing = Visibility::Scoped {
        org_ids: vec![],
        owner_id: None,
        member_orgs: vec![],
    };
    if !scope_allows(u, resource, action) {
        return nothing;
    }
    if site_allows(u, resource, action) {
        return Visibility::All;
    }
    let org_ids = u
        .org_roles
        .keys()
        .copied()
        .filter(|org| org_allows(u, *org, resource, action))
        .collect();
    let owner_id = grants_allow(MEMBER_OWN, resource, action).then_some(u.user_id);
    Visibility::Scoped {
        org_ids,
        owner_id,
        member_orgs: u.org_roles.keys().copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(site: &[&str], orgs: &[(Uuid, &[&str])]) -> Subject {
        Subject::User(UserSubject {
            user_id: Uuid::new_v4(),
            site_roles: site.iter().map(|s| s.to_string()).collect(),
            org_roles: orgs
                .iter()
                .map(|(o, r)| (*o, r.iter().map(|s| s.to_string()).collect()))
                .collect(),
            groups: vec![],
            scope: Scope::All,
        })
    }

    fn uid(s: &Subject) -> Uuid {
        s.user_id().unwrap()
    }

    #[test]
    fn authorize_table() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let owner = user(&[ROLE_OWNER], &[]);
        let member_a = user(&[], &[(a, &[])]);
        let other = user(&[], &[(a, &[])]);
        let tadmin_a = user(&[], &[(a, &[ROLE_ORG_TEMPLATE_ADMIN])]);
        let mut app = user(&[ROLE_OWNER], &[(a, &[])]);
        if let Subject::User(u) = &mut app {
            u.scope = Scope::ApplicationConnect;
        }
        let uadmin = user(&[ROLE_USER_ADMIN], &[]);
        let ws_a = |owner: Uuid| Object::of(R::Workspace).in_org(a).owned_by(owner);
        let cases: Vec<(&str, &Subject, Action, Object, bool)> = vec![
            (
                "owner deletes any org",
                &owner,
                A::Delete,
                Object::organization(b),
                true,
            ),
            (
                "member reads own org",
                &member_a,
                A::Read,
                Object::organization(a),
                true,
            ),
            (
                "member cannot read other org",
                &member_a,
                A::Read,
                Object::organization(b),
                false,
            ),
            (
                "member cannot delete own org",
                &member_a,
                A::Delete,
                Object::organization(a),
                false,
            ),
            (
                "member creates own api key",
                &member_a,
                A::Create,
                Object::of(R::ApiKey).owned_by(uid(&member_a)),
                true,
            ),
            (
                "member cannot create another's api key",
                &member_a,
                A::Create,
                Object::of(R::ApiKey).owned_by(uid(&other)),
                false,
            ),
            (
                "org template admin updates template in A",
                &tadmin_a,
                A::Update,
                Object::of(R::Template).in_org(a),
                true,
            ),
            (
                "org template admin cannot update template in B",
                &tadmin_a,
                A::Update,
                Object::of(R::Template).in_org(b),
                false,
            ),
            (
                "application_connect key connects",
                &app,
                A::ApplicationConnect,
                ws_a(uid(&app)),
                true,
            ),
            (
                "application_connect key cannot read",
                &app,
                A::Read,
                ws_a(uid(&app)),
                false,
            ),
            (
                "member reads own user",
                &member_a,
                A::Read,
                Object::user(uid(&member_a)),
                true,
            ),
            (
                "member cannot read other user",
                &member_a,
                A::Read,
                Object::user(uid(&other)),
                false,
            ),
            (
                "user admin reads users",
                &uadmin,
                A::Read,
                Object::user(uid(&other)),
                true,
            ),
            (
                "member starts own workspace",
                &member_a,
                A::Start,
                ws_a(uid(&member_a)),
                true,
            ),
            (
                "member cannot start other's workspace",
                &member_a,
                A::Start,
                ws_a(uid(&other)),
                false,
            ),
            (
                "own workspace in a foreign org is denied",
                &member_a,
                A::Read,
                Object::of(R::Workspace).in_org(b).owned_by(uid(&member_a)),
                false,
            ),
            (
                "member reads templates of own org",
                &member_a,
                A::Use,
                Object::of(R::Template).in_org(a),
                true,
            ),
            (
                "member cannot update templates",
                &member_a,
                A::Update,
                Object::of(R::Template).in_org(a),
                false,
            ),
        ];
        for (name, s, action, object, want) in cases {
            assert_eq!(authorize(s, action, &object), want, "{name}");
        }
        assert!(authorize(
            &Subject::System("test"),
            A::Delete,
            &Object::organization(a)
        ));
    }

    #[test]
    fn assigning_owner_needs_owner() {
        let uadmin = user(&[ROLE_USER_ADMIN], &[]);
        let owner = user(&[ROLE_OWNER], &[]);
        let member = user(&[], &[]);
        assert!(!may_assign_site_role(&uadmin, A::Assign, ROLE_OWNER));
        assert!(may_assign_site_role(&uadmin, A::Assign, ROLE_AUDITOR));
        assert!(may_assign_site_role(&owner, A::Assign, ROLE_OWNER));
        assert!(!may_assign_site_role(&member, A::Assign, ROLE_AUDITOR));
    }

    /// `visibility` must agree with `authorize` on every object: a property test over a
    /// deterministic sweep of subjects, actions, resources and objects.
    #[test]
    fn visibility_matches_authorize() {
        let orgs = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let roles_site: [&[&str]; 5] = [
            &[],
            &[ROLE_OWNER],
            &[ROLE_TEMPLATE_ADMIN],
            &[ROLE_USER_ADMIN],
            &[ROLE_AUDITOR],
        ];
        let roles_org: [&[&str]; 5] = [
            &[],
            &[ROLE_ORG_ADMIN],
            &[ROLE_ORG_TEMPLATE_ADMIN],
            &[ROLE_ORG_USER_ADMIN],
            &[ROLE_ORG_AUDITOR],
        ];
        let mut subjects = vec![];
        for site in roles_site {
            for org in roles_org {
                for scope in [Scope::All, Scope::ApplicationConnect] {
                    let mut s = user(site, &[(orgs[0], org), (orgs[1], &[])]);
                    if let Subject::User(u) = &mut s {
                        u.scope = scope;
                    }
                    subjects.push(s);
                }
            }
        }
        let stranger = Uuid::new_v4();
        for s in &subjects {
            let me = uid(s);
            for resource in Resource::ALL {
                for action in Action::ALL {
                    let vis = visibility(s, action, resource);
                    for org in [None, Some(orgs[0]), Some(orgs[1]), Some(orgs[2])] {
                        for owner in [None, Some(me), Some(stranger)] {
                            let object = Object {
                                resource,
                                id: None,
                                owner_id: owner,
                                org_id: org,
                            };
                            let want = authorize(s, action, &object);
                            let got = vis.allows(&object);
                            assert_eq!(
                                got, want,
                                "{resource:?} {action:?} org={org:?} owner={owner:?} subject={s:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
