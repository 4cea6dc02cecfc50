//! The storage contract of the identity area, implemented by `crates/db` on both backends.
//! Methods that change several rows are atomic inside the store.

use crate::model::*;
use chrono::{DateTime, Utc};
use hangar_core::{Pagination, StoreError};
use std::future::Future;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

pub trait IdentityStore: Send + Sync + 'static {
    // --- users ---
    /// Inserts the first user with the owner role and its membership of the default org, but
    /// only while no human user exists (serialised: advisory lock 2 / `BEGIN IMMEDIATE`).
    /// `Conflict { constraint: "first_user" }` when one exists. Returns the default org id.
    fn insert_first_user(&self, user: NewUser) -> impl Future<Output = R<(User, Uuid)>> + Send;
    /// Inserts a user and its memberships in one transaction. `NotFound` if an org is gone.
    fn insert_user(
        &self,
        user: NewUser,
        org_ids: Vec<Uuid>,
    ) -> impl Future<Output = R<User>> + Send;
    fn count_users(&self, include_system: bool) -> impl Future<Output = R<u64>> + Send;
    /// A live (not deleted) user by id.
    fn user_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<User>>> + Send;
    /// A live user by username, case-insensitively.
    fn user_by_username(&self, username: &str) -> impl Future<Output = R<Option<User>>> + Send;
    /// A live user by email, case-insensitively.
    fn user_by_email(&self, email: &str) -> impl Future<Output = R<Option<User>>> + Send;
    /// Users by id, deleted ones included (history).
    fn users_by_ids(&self, ids: Vec<Uuid>) -> impl Future<Output = R<Vec<User>>> + Send;
    /// Live users ordered by `lower(username)`, with the total count of the filter.
    fn list_users(
        &self,
        filter: UserFilter,
        page: Pagination,
    ) -> impl Future<Output = R<(Vec<User>, u64)>> + Send;
    fn update_user_status(
        &self,
        id: Uuid,
        status: UserStatus,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<User>> + Send;
    fn update_user_roles(
        &self,
        id: Uuid,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<User>> + Send;
    /// Sets the password hash and deletes every key of the user, atomically.
    fn update_user_password(
        &self,
        id: Uuid,
        hashed: Vec<u8>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Soft-deletes the user (the trigger removes its keys).
    fn soft_delete_user(&self, id: Uuid, now: DateTime<Utc>) -> impl Future<Output = R<()>> + Send;
    fn user_workspace_count(&self, id: Uuid) -> impl Future<Output = R<i64>> + Send;
    /// Status, site roles, org memberships with roles, and groups: one SELECT.
    fn auth_roles(&self, user_id: Uuid) -> impl Future<Output = R<AuthRoles>> + Send;

    // --- API keys ---
    fn insert_api_key(&self, key: ApiKey) -> impl Future<Output = R<ApiKey>> + Send;
    /// The key joined to its user, in one SELECT.
    fn api_key_with_user(&self, id: &str) -> impl Future<Output = R<Option<KeyAndUser>>> + Send;
    fn api_key_by_id(&self, id: &str) -> impl Future<Output = R<Option<ApiKey>>> + Send;
    fn api_key_by_name(
        &self,
        user_id: Uuid,
        token_name: &str,
    ) -> impl Future<Output = R<Option<ApiKey>>> + Send;
    /// Token-type keys of one user, or of everyone when `user_id` is `None`.
    fn list_tokens(
        &self,
        user_id: Option<Uuid>,
    ) -> impl Future<Output = R<Vec<KeyWithOwner>>> + Send;
    fn delete_api_key(&self, id: &str) -> impl Future<Output = R<bool>> + Send;
    fn delete_application_connect_keys(&self, user_id: Uuid) -> impl Future<Output = R<()>> + Send;
    /// The conditional usage write; returns whether a row was written. Also moves the
    /// user's `last_seen_at` and turns a dormant user active when it writes.
    fn touch_api_key(&self, touch: KeyTouch) -> impl Future<Output = R<bool>> + Send;
    /// Makes a dormant user active (first request after creation).
    fn activate_dormant_user(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;

    // --- organizations ---
    fn organization_by_id(
        &self,
        id: Uuid,
        include_deleted: bool,
    ) -> impl Future<Output = R<Option<Organization>>> + Send;
    fn organization_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = R<Option<Organization>>> + Send;
    fn default_organization(&self) -> impl Future<Output = R<Organization>> + Send;
    /// Live orgs, all of them or those in `only`, ordered by name.
    fn list_organizations(
        &self,
        only: Option<Vec<Uuid>>,
    ) -> impl Future<Output = R<Vec<Organization>>> + Send;
    fn user_organizations(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = R<Vec<Organization>>> + Send;
    /// The org, its Everyone group and the creator's membership, in one transaction.
    fn insert_organization_with_creator(
        &self,
        org: Organization,
        creator: Uuid,
        creator_roles: Vec<String>,
    ) -> impl Future<Output = R<Organization>> + Send;
    fn update_organization(
        &self,
        id: Uuid,
        patch: OrganizationPatch,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Organization>> + Send;
    /// Soft-deletes a live, non-default org. `Ok(false)` if no row matched; the guard
    /// trigger's refusal is `Violation { rule: "org_not_empty", .. }` on both backends.
    fn soft_delete_organization(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<bool>> + Send;
    fn organization_resource_counts(
        &self,
        id: Uuid,
    ) -> impl Future<Output = R<ResourceCounts>> + Send;

    // --- members ---
    fn insert_member(
        &self,
        org: Uuid,
        user: Uuid,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Member>> + Send;
    fn member(&self, org: Uuid, user: Uuid) -> impl Future<Output = R<Option<Member>>> + Send;
    /// Members with live users; system users only with `include_system`.
    fn list_members(
        &self,
        org: Uuid,
        include_system: bool,
    ) -> impl Future<Output = R<Vec<MemberWithUser>>> + Send;
    fn delete_member(&self, org: Uuid, user: Uuid) -> impl Future<Output = R<bool>> + Send;
    fn update_member_roles(
        &self,
        org: Uuid,
        user: Uuid,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Member>> + Send;
    /// Adds the prebuilds system user to the org unless it is already a member.
    fn ensure_system_member(
        &self,
        org: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Active, live, non-system users with a template-admin-capable role in the org.
    fn template_admins(&self, org: Uuid) -> impl Future<Output = R<Vec<User>>> + Send;

    // --- groups ---
    fn insert_group(&self, group: Group) -> impl Future<Output = R<Group>> + Send;
    fn group_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<Group>>> + Send;
    fn list_groups(&self, org: Uuid) -> impl Future<Output = R<Vec<Group>>> + Send;
    /// Live, non-system members (Everyone: every such org member).
    fn group_members(&self, group: &Group) -> impl Future<Output = R<Vec<User>>> + Send;
    /// Applies a patch, including member changes, in one transaction.
    fn update_group(&self, id: Uuid, patch: GroupPatch) -> impl Future<Output = R<Group>> + Send;
    fn delete_group(&self, id: Uuid) -> impl Future<Output = R<bool>> + Send;

    // --- platform ---
    fn deployment_id(&self) -> impl Future<Output = R<String>> + Send;
}
