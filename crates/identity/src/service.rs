//! The identity service: every rule of 02 §4 that is not HTTP. Handlers parse input, call
//! one method with the caller, and map the result.

use crate::apikey;
use crate::error::{IdentityError, check_fields};
use crate::model::*;
use crate::password;
use crate::store::IdentityStore;
use crate::validate;
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::rbac::{self, Action, Object, Resource, Scope, Subject, UserSubject};
use hangar_core::{Clock, PREBUILDS_SYSTEM_USER_ID, Pagination, StoreError};
use std::sync::Arc;
use uuid::Uuid;

type Result<T> = std::result::Result<T, IdentityError>;

/// Deployment settings the rules depend on (02 §7).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub session_duration: TimeDelta,
    pub disable_session_expiry_refresh: bool,
    pub max_token_lifetime: TimeDelta,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            session_duration: TimeDelta::hours(24),
            disable_session_expiry_refresh: false,
            max_token_lifetime: TimeDelta::hours(876_600),
        }
    }
}

/// An authenticated caller: the subject for RBAC plus the user and key behind it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: Subject,
    pub user: User,
    pub key: ApiKey,
}

impl Caller {
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }
}

/// A successful authentication, with the kind of bookkeeping write it caused (for the
/// `hangar_api_key_writes_total` metric).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Caller,
    /// The resource an OAuth2 access token was issued for; the API checks it (03 §5.8).
    pub audience: Option<String>,
    /// `last_used` or `expiry_refresh` when the usage row was written.
    pub usage_write: Option<&'static str>,
}

/// Why a presented token did not authenticate (02 §4.1). Every variant is a 401 whose
/// detail is [`AuthFailure::detail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    Format(String),
    Invalid,
    SecretInvalid,
    Expired(DateTime<Utc>),
    NotActive(UserStatus),
}

impl AuthFailure {
    pub fn detail(&self) -> String {
        match self {
            AuthFailure::Format(reason) => format!("Invalid API key format: {reason}"),
            AuthFailure::Invalid => "API key is invalid.".into(),
            AuthFailure::SecretInvalid => "API key secret is invalid.".into(),
            AuthFailure::Expired(at) => {
                format!(
                    "API key expired at {:?}.",
                    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                )
            }
            AuthFailure::NotActive(status) => format!(
                "User is not active (status = {:?}). Contact an admin to reactivate your account.",
                status.as_str()
            ),
        }
    }
}

/// A request to create the first user or any user.
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub email: String,
    pub username: String,
    pub name: String,
    pub password: String,
    pub login_type: Option<LoginType>,
    pub status: Option<UserStatus>,
    pub organization_ids: Vec<Uuid>,
}

/// A user with the org ids its JSON carries.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub organization_ids: Vec<Uuid>,
}

/// A token creation request (02 §4.3).
#[derive(Debug, Clone, Default)]
pub struct CreateToken {
    /// Nanoseconds; 0 means the default.
    pub lifetime_ns: i64,
    pub scope: Option<String>,
    pub token_name: String,
}

/// Result of a login: the token for the client and the stored key.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub key: ApiKey,
}

pub struct Identity<S, C: ?Sized = dyn Clock> {
    store: S,
    clock: Arc<C>,
    config: IdentityConfig,
    /// PBKDF2 takes tens of milliseconds of CPU; bounding how many run at once (and their
    /// duty cycle, see [`Self::pbkdf2`]) keeps a burst of logins from starving every other
    /// request (02 §10.1's mixed load).
    hashing: tokio::sync::Semaphore,
}

/// Formats a duration like Go's `time.Duration.String()` for whole seconds (`720h0m0s`).
pub fn go_duration(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn not_found_if_none<T>(v: Option<T>) -> Result<T> {
    v.ok_or(IdentityError::NotFound)
}

fn guard_system(user: &User) -> Result<()> {
    if user.is_system {
        Err(IdentityError::SystemUser)
    } else {
        Ok(())
    }
}

impl<S: IdentityStore, C: Clock + ?Sized> Identity<S, C> {
    pub fn new(store: S, clock: Arc<C>, config: IdentityConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hashing = tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1));
        Self {
            store,
            clock,
            config,
            hashing,
        }
    }

    /// Runs a password hash or check on the blocking pool, a bounded number at a time.
    ///
    /// Each permit rests twice as long as its hash ran before it is released, so hashing
    /// uses at most a third of the permitted cores even under a flood of logins, and API
    /// requests keep the rest (02 §10.1: the authenticated rate with 16 logins running).
    async fn pbkdf2<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.hashing.acquire().await.ok()?;
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(f).await.ok();
        tokio::time::sleep(started.elapsed() * 2).await;
        out
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn require(&self, caller: &Caller, action: Action, object: Object) -> Result<()> {
        if rbac::authorize(&caller.subject, action, &object) {
            Ok(())
        } else {
            Err(IdentityError::Forbidden)
        }
    }

    /// Reads hide what the caller may not see behind a 404.
    fn require_read(&self, caller: &Caller, object: Object) -> Result<()> {
        if rbac::authorize(&caller.subject, Action::Read, &object) {
            Ok(())
        } else {
            Err(IdentityError::NotFound)
        }
    }

    // ---------------------------------------------------------------- authentication

    /// Authenticates a token (02 §4.1 steps 2–7, the audience check aside).
    pub async fn authenticate(
        &self,
        token: &str,
        ip: &str,
    ) -> Result<std::result::Result<Authenticated, AuthFailure>> {
        let (id, secret) = match apikey::split(token) {
            Ok(parts) => parts,
            Err(reason) => return Ok(Err(AuthFailure::Format(reason))),
        };
        let Some(KeyAndUser {
            key,
            user,
            audience,
        }) = self.store.api_key_with_user(id).await?
        else {
            return Ok(Err(AuthFailure::Invalid));
        };
        if user.deleted || user.is_system {
            return Ok(Err(AuthFailure::Invalid));
        }
        if !apikey::secret_matches(secret, &key.hashed_secret) {
            return Ok(Err(AuthFailure::SecretInvalid));
        }
        let now = self.now();
        if key.expires_at <= now {
            return Ok(Err(AuthFailure::Expired(key.expires_at)));
        }
        let roles = self.store.auth_roles(user.id).await?;
        if roles.status == UserStatus::Suspended {
            return Ok(Err(AuthFailure::NotActive(UserStatus::Suspended)));
        }
        let lifetime = TimeDelta::seconds(key.lifetime_seconds);
        let refresh = (key.login_type == LoginType::Password
            && !self.config.disable_session_expiry_refresh)
            .then(|| (now + lifetime - TimeDelta::hours(1), now + lifetime));
        let touch = KeyTouch {
            id: key.id.clone(),
            user_id: user.id,
            now,
            ip: ip.to_string(),
            stale_before: now - TimeDelta::hours(1),
            refresh,
        };
        let refreshing = refresh.is_some_and(|(threshold, _)| key.expires_at <= threshold);
        let mut usage_write = None;
        if key.last_used < touch.stale_before || refreshing {
            // Bookkeeping must not fail the request (02 §9).
            match self.store.touch_api_key(touch).await {
                Ok(true) => {
                    usage_write = Some(if refreshing {
                        "expiry_refresh"
                    } else {
                        "last_used"
                    })
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(key_id = %key.id, error = %e, "failed to record API key use")
                }
            }
        }
        if roles.status == UserStatus::Dormant
            && let Err(e) = self.store.activate_dormant_user(user.id, now).await
        {
            tracing::warn!(user_id = %user.id, error = %e, "failed to activate dormant user");
        }
        let scope = match key.scope {
            ApiKeyScope::All => Scope::All,
            ApiKeyScope::ApplicationConnect => Scope::ApplicationConnect,
        };
        let subject = Subject::User(UserSubject {
            user_id: user.id,
            site_roles: roles.site_roles,
            org_roles: roles.org_roles,
            groups: roles.groups,
            scope,
        });
        Ok(Ok(Authenticated {
            caller: Caller { subject, user, key },
            audience,
            usage_write,
        }))
    }

    /// Password login (02 §6). Unknown users, non-password users and system users all take
    /// the same path through a dummy hash, so timing reveals nothing.
    pub async fn login(&self, email: &str, password_text: &str, ip: &str) -> Result<Session> {
        let user = self.store.user_by_email(email).await?;
        let usable = user.filter(|u| u.login_type == LoginType::Password && !u.is_system);
        let stored = usable
            .as_ref()
            .map(|u| String::from_utf8_lossy(&u.hashed_password).into_owned())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let pw = password_text.to_string();
        let ok = self
            .pbkdf2(move || password::verify(&pw, &stored))
            .await
            .unwrap_or(false);
        let bad = || IdentityError::Unauthenticated {
            message: "Incorrect email or password.".into(),
            detail: String::new(),
        };
        let user = match usable {
            Some(u) if ok => u,
            _ => return Err(bad()),
        };
        if user.status == UserStatus::Suspended {
            return Err(IdentityError::Unauthenticated {
                message: "Your account is suspended. Contact an admin to reactivate your account."
                    .into(),
                detail: String::new(),
            });
        }
        let now = self.now();
        if user.status == UserStatus::Dormant {
            self.store.activate_dormant_user(user.id, now).await?;
        }
        self.insert_key(
            user.id,
            LoginType::Password,
            self.config.session_duration,
            ApiKeyScope::All,
            None,
            ip,
        )
        .await
    }

    async fn insert_key(
        &self,
        user_id: Uuid,
        login_type: LoginType,
        lifetime: TimeDelta,
        scope: ApiKeyScope,
        token_name: Option<String>,
        ip: &str,
    ) -> Result<Session> {
        let now = self.now();
        let generated = apikey::generate();
        let key = ApiKey {
            id: generated.id.clone(),
            hashed_secret: generated.hashed_secret.clone(),
            user_id,
            last_used: now,
            expires_at: now + lifetime,
            created_at: now,
            updated_at: now,
            login_type,
            lifetime_seconds: lifetime.num_seconds(),
            ip_address: if ip.is_empty() {
                "0.0.0.0".into()
            } else {
                ip.to_string()
            },
            scope,
            // An unnamed token is named after its id, as in Coder.
            token_name: match token_name {
                Some(n) if !n.is_empty() => n,
                _ if login_type == LoginType::Token => generated.id.clone(),
                _ => String::new(),
            },
        };
        let key = self.store.insert_api_key(key).await?;
        Ok(Session {
            token: generated.token(),
            key,
        })
    }

    /// Logout: deletes this key and the user's `application_connect` keys.
    pub async fn logout(&self, caller: &Caller) -> Result<()> {
        self.store.delete_api_key(&caller.key.id).await?;
        self.store
            .delete_application_connect_keys(caller.user.id)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- users

    pub async fn first_user_exists(&self) -> Result<bool> {
        Ok(self.store.count_users(false).await? > 0)
    }

    fn validate_new_user(&self, req: &CreateUser, login_type: LoginType) -> Result<()> {
        let mut checks = vec![
            ("username", validate::username(&req.username)),
            ("email", validate::email(&req.email)),
        ];
        if !req.name.is_empty() {
            checks.push(("name", validate::display_name(&req.name)));
        }
        check_fields(checks)?;
        if login_type == LoginType::Password
            && let Err(detail) = password::check_strength(&req.password)
        {
            return Err(IdentityError::Invalid {
                message: "Password not strong enough!".into(),
                detail: String::new(),
                validations: vec![hangar_core::wire::Validation::new("password", detail)],
            });
        }
        Ok(())
    }

    async fn hash_password(&self, pw: &str) -> Vec<u8> {
        let pw = pw.to_string();
        self.pbkdf2(move || password::hash(&pw))
            .await
            .unwrap_or_default()
            .into_bytes()
    }

    /// `POST /users/first`: an active owner in the default org, exactly once.
    pub async fn create_first_user(&self, req: CreateUser) -> Result<(User, Uuid)> {
        self.validate_new_user(&req, LoginType::Password)?;
        let hashed = self.hash_password(&req.password).await;
        let new = NewUser {
            id: Uuid::new_v4(),
            email: req.email,
            username: req.username,
            name: req.name,
            hashed_password: hashed,
            status: UserStatus::Active,
            rbac_roles: vec![rbac::ROLE_OWNER.to_string()],
            login_type: LoginType::Password,
            now: self.now(),
        };
        match self.store.insert_first_user(new).await {
            Ok(r) => Ok(r),
            Err(e) if e.is_conflict_on("first_user") => Err(IdentityError::conflict(
                "The initial user has already been created.",
            )),
            Err(e) => Err(user_conflict(e)),
        }
    }

    /// `POST /users`.
    pub async fn create_user(&self, caller: &Caller, req: CreateUser) -> Result<UserView> {
        self.require(caller, Action::Create, Object::of(Resource::User))?;
        let login_type = req.login_type.unwrap_or(LoginType::Password);
        if req.organization_ids.is_empty() {
            return Err(IdentityError::invalid_detail(
                "No organization specified to place the user as a member of. It is required to specify at least one organization id to place the user in.",
                "required at least 1 value for the array 'organization_ids'",
            ));
        }
        match login_type {
            LoginType::Github
            | LoginType::Oidc
            | LoginType::Token
            | LoginType::OAuth2ProviderApp => {
                return Err(IdentityError::invalid(format!(
                    "Login type {:?} is not supported.",
                    login_type.as_str()
                )));
            }
            LoginType::None if !req.password.is_empty() => {
                return Err(IdentityError::invalid(format!(
                    "Password cannot be set for login type {:?}.",
                    login_type.as_str()
                )));
            }
            _ => {}
        }
        self.validate_new_user(&req, login_type)?;
        for org in &req.organization_ids {
            if self.store.organization_by_id(*org, false).await?.is_none() {
                return Err(IdentityError::invalid(format!(
                    "Organization does not exist with the provided id {org:?}."
                )));
            }
            self.require(
                caller,
                Action::Create,
                Object::of(Resource::OrganizationMember).in_org(*org),
            )?;
        }
        let hashed = if login_type == LoginType::Password {
            self.hash_password(&req.password).await
        } else {
            b"none".to_vec()
        };
        let new = NewUser {
            id: Uuid::new_v4(),
            email: req.email,
            username: req.username,
            name: req.name,
            hashed_password: hashed,
            status: req.status.unwrap_or(UserStatus::Dormant),
            rbac_roles: vec![],
            login_type,
            now: self.now(),
        };
        let orgs = req.organization_ids.clone();
        let user = self
            .store
            .insert_user(new, orgs.clone())
            .await
            .map_err(user_conflict)?;
        Ok(UserView {
            user,
            organization_ids: orgs,
        })
    }

    /// Resolves `{user}`: an id, a username or `me`, hidden behind 404 when unreadable.
    pub async fn resolve_user(&self, caller: &Caller, ident: &str) -> Result<User> {
        let user = if ident.eq_ignore_ascii_case("me") {
            Some(caller.user.clone())
        } else if let Ok(id) = Uuid::parse_str(ident) {
            self.store.user_by_id(id).await?
        } else {
            self.store.user_by_username(ident).await?
        };
        let user = not_found_if_none(user)?;
        self.require_read(caller, Object::user(user.id))?;
        Ok(user)
    }

    pub async fn view(&self, user: User) -> Result<UserView> {
        let orgs = self.store.user_organizations(user.id).await?;
        Ok(UserView {
            organization_ids: orgs.into_iter().map(|o| o.id).collect(),
            user,
        })
    }

    pub async fn list_users(
        &self,
        caller: &Caller,
        mut filter: UserFilter,
        page: Pagination,
    ) -> Result<(Vec<UserView>, u64)> {
        if !rbac::authorize(&caller.subject, Action::Read, &Object::of(Resource::User)) {
            filter.only = Some(caller.user.id);
        }
        let (users, count) = self.store.list_users(filter, page).await?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(self.view(u).await?);
        }
        Ok((out, count))
    }

    pub async fn user_organizations(
        &self,
        caller: &Caller,
        user: &User,
    ) -> Result<Vec<Organization>> {
        let orgs = self.store.user_organizations(user.id).await?;
        Ok(orgs
            .into_iter()
            .filter(|o| rbac::authorize(&caller.subject, Action::Read, &Object::organization(o.id)))
            .collect())
    }

    pub async fn set_status(
        &self,
        caller: &Caller,
        user: &User,
        status: UserStatus,
    ) -> Result<UserView> {
        guard_system(user)?;
        self.require(caller, Action::Update, Object::user(user.id))?;
        if status == UserStatus::Suspended {
            if user.id == caller.user.id {
                return Err(IdentityError::invalid("You cannot suspend yourself."));
            }
            if user.rbac_roles.iter().any(|r| r == rbac::ROLE_OWNER) {
                return Err(IdentityError::invalid(
                    "You cannot suspend a user with the \"owner\" role. You must remove the role first.",
                ));
            }
        }
        let updated = if user.status == status {
            user.clone()
        } else {
            self.store
                .update_user_status(user.id, status, self.now())
                .await?
        };
        self.view(updated).await
    }

    pub async fn delete_user(&self, caller: &Caller, user: &User) -> Result<()> {
        guard_system(user)?;
        self.require(caller, Action::Delete, Object::user(user.id))?;
        if user.id == caller.user.id {
            return Err(IdentityError::SelfDelete);
        }
        if self.store.user_workspace_count(user.id).await? > 0 {
            return Err(IdentityError::HasWorkspaces);
        }
        self.store.soft_delete_user(user.id, self.now()).await?;
        Ok(())
    }

    pub async fn change_password(
        &self,
        caller: &Caller,
        user: &User,
        old: &str,
        new: &str,
    ) -> Result<()> {
        guard_system(user)?;
        let own = user.id == caller.user.id;
        let action = if own {
            Action::UpdatePersonal
        } else {
            Action::Update
        };
        self.require(caller, action, Object::user(user.id))?;
        if user.login_type != LoginType::Password {
            return Err(IdentityError::invalid(
                "Users without password login type cannot change their password.",
            ));
        }
        if let Err(detail) = password::check_strength(new) {
            return Err(IdentityError::Invalid {
                message: "Invalid password.".into(),
                detail: String::new(),
                validations: vec![hangar_core::wire::Validation::new("password", detail)],
            });
        }
        let stored = String::from_utf8_lossy(&user.hashed_password).into_owned();
        if own {
            if old.is_empty() {
                return Err(IdentityError::Invalid {
                    message: "Old password is required.".into(),
                    detail: String::new(),
                    validations: vec![hangar_core::wire::Validation::new(
                        "old_password",
                        "Old password is required.",
                    )],
                });
            }
            let (o, s) = (old.to_string(), stored.clone());
            let ok = self
                .pbkdf2(move || password::verify(&o, &s))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(IdentityError::Invalid {
                    message: "Old password is incorrect.".into(),
                    detail: String::new(),
                    validations: vec![hangar_core::wire::Validation::new(
                        "old_password",
                        "Old password is incorrect.",
                    )],
                });
            }
        }
        let (n, s) = (new.to_string(), stored);
        if self
            .pbkdf2(move || password::verify(&n, &s))
            .await
            .unwrap_or(false)
        {
            return Err(IdentityError::invalid(
                "New password cannot match old password.",
            ));
        }
        let hashed = self.hash_password(new).await;
        self.store
            .update_user_password(user.id, hashed, self.now())
            .await?;
        Ok(())
    }

    /// `PUT /users/{user}/roles`: replaces the site roles, checking each change.
    pub async fn set_site_roles(
        &self,
        caller: &Caller,
        user: &User,
        roles: Vec<String>,
    ) -> Result<UserView> {
        guard_system(user)?;
        if user.id == caller.user.id {
            return Err(IdentityError::invalid("You cannot change your own roles."));
        }
        let mut wanted: Vec<String> = roles
            .into_iter()
            .filter(|r| r != rbac::ROLE_MEMBER)
            .collect();
        wanted.sort();
        wanted.dedup();
        if let Some(bad) = wanted
            .iter()
            .find(|r| !rbac::ASSIGNABLE_SITE_ROLES.contains(&r.as_str()))
        {
            return Err(IdentityError::invalid_detail(
                "Invalid roles.",
                format!("role {bad:?} does not exist"),
            ));
        }
        for r in wanted.iter().filter(|r| !user.rbac_roles.contains(r)) {
            if !rbac::may_assign_site_role(&caller.subject, Action::Assign, r) {
                return Err(IdentityError::Forbidden);
            }
        }
        for r in user.rbac_roles.iter().filter(|r| !wanted.contains(r)) {
            if !rbac::may_assign_site_role(&caller.subject, Action::Unassign, r) {
                return Err(IdentityError::Forbidden);
            }
        }
        let updated = self
            .store
            .update_user_roles(user.id, wanted, self.now())
            .await?;
        self.view(updated).await
    }

    /// `GET /users/{user}/roles`: site roles and roles per org.
    pub async fn roles_of(&self, user: &User) -> Result<(Vec<String>, Vec<(Uuid, Vec<String>)>)> {
        let roles = self.store.auth_roles(user.id).await?;
        Ok((roles.site_roles, roles.org_roles.into_iter().collect()))
    }

    // ---------------------------------------------------------------- keys

    fn require_key_access(&self, caller: &Caller, action: Action, user: &User) -> Result<()> {
        let object = Object::of(Resource::ApiKey).owned_by(user.id);
        if action == Action::Read {
            self.require_read(caller, object)
        } else {
            self.require(caller, action, object)
        }
    }

    fn refuse_oauth_keys(caller: &Caller) -> Result<()> {
        if caller.key.login_type == LoginType::OAuth2ProviderApp {
            Err(IdentityError::Forbidden)
        } else {
            Ok(())
        }
    }

    /// `POST /users/{user}/keys`: a 7-day `password` key.
    pub async fn create_session_key(
        &self,
        caller: &Caller,
        user: &User,
        ip: &str,
    ) -> Result<Session> {
        guard_system(user)?;
        Self::refuse_oauth_keys(caller)?;
        self.require_key_access(caller, Action::Create, user)?;
        self.insert_key(
            user.id,
            LoginType::Password,
            TimeDelta::days(7),
            ApiKeyScope::All,
            None,
            ip,
        )
        .await
    }

    pub async fn create_token(
        &self,
        caller: &Caller,
        user: &User,
        req: CreateToken,
        ip: &str,
    ) -> Result<Session> {
        guard_system(user)?;
        Self::refuse_oauth_keys(caller)?;
        self.require_key_access(caller, Action::Create, user)?;
        let scope = match req.scope.as_deref() {
            None | Some("") | Some("all") => ApiKeyScope::All,
            Some("application_connect") => ApiKeyScope::ApplicationConnect,
            Some(other) => {
                return Err(IdentityError::field(
                    "scope",
                    format!("unknown scope {other:?}"),
                ));
            }
        };
        if !req.token_name.is_empty() {
            check_fields(vec![("token_name", validate::token_name(&req.token_name))])?;
        }
        let max = self.config.max_token_lifetime;
        let bad_lifetime = |detail: String| {
            IdentityError::invalid_detail("Failed to validate create API key request.", detail)
        };
        let lifetime = if req.lifetime_ns < 0 {
            return Err(bad_lifetime(
                "lifetime must be positive number greater than 0".into(),
            ));
        } else if req.lifetime_ns == 0 {
            TimeDelta::days(30).min(max)
        } else {
            let d = TimeDelta::nanoseconds(req.lifetime_ns);
            if d > max {
                return Err(bad_lifetime(format!(
                    "lifetime must be less than {}",
                    go_duration(max)
                )));
            }
            if d.num_seconds() < 1 {
                return Err(bad_lifetime(
                    "lifetime must be positive number greater than 0".into(),
                ));
            }
            d
        };
        let name = req.token_name.clone();
        let session = match self
            .insert_key(
                user.id,
                LoginType::Token,
                lifetime,
                scope,
                Some(name.clone()),
                ip,
            )
            .await
        {
            Err(IdentityError::Store(e)) if e.is_conflict_on("idx_api_key_name") => {
                return Err(IdentityError::conflict(format!(
                    "A token with name {name:?} already exists."
                )));
            }
            other => other?,
        };
        Ok(session)
    }

    pub async fn list_tokens(
        &self,
        caller: &Caller,
        user: &User,
        include_all: bool,
    ) -> Result<Vec<KeyWithOwner>> {
        self.require_key_access(caller, Action::Read, user)?;
        let all = include_all
            && rbac::authorize(&caller.subject, Action::Read, &Object::of(Resource::ApiKey));
        let keys = self
            .store
            .list_tokens(if all { None } else { Some(user.id) })
            .await?;
        Ok(keys)
    }

    pub async fn token_by_name(&self, caller: &Caller, user: &User, name: &str) -> Result<ApiKey> {
        self.require_key_access(caller, Action::Read, user)?;
        not_found_if_none(self.store.api_key_by_name(user.id, name).await?)
    }

    /// A key of `{user}`; another user's key is 404 even for an owner (02 §9).
    pub async fn key_of(&self, caller: &Caller, user: &User, id: &str) -> Result<ApiKey> {
        self.require_key_access(caller, Action::Read, user)?;
        let key = not_found_if_none(self.store.api_key_by_id(id).await?)?;
        if key.user_id != user.id {
            return Err(IdentityError::NotFound);
        }
        Ok(key)
    }

    pub async fn delete_key(&self, caller: &Caller, user: &User, id: &str) -> Result<()> {
        let key = self.key_of(caller, user, id).await?;
        self.require_key_access(caller, Action::Delete, user)?;
        self.store.delete_api_key(&key.id).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- organizations

    /// Resolves `{organization}`: an id, a name (case-insensitive) or `default`.
    pub async fn resolve_org(&self, caller: &Caller, ident: &str) -> Result<Organization> {
        let org = if let Ok(id) = Uuid::parse_str(ident) {
            self.store.organization_by_id(id, false).await?
        } else {
            match self.store.organization_by_name(ident).await? {
                Some(o) => Some(o),
                None if ident.eq_ignore_ascii_case("default") => {
                    Some(self.store.default_organization().await?)
                }
                None => None,
            }
        };
        let org = not_found_if_none(org)?;
        self.require_read(caller, Object::organization(org.id))?;
        Ok(org)
    }

    pub async fn list_organizations(&self, caller: &Caller) -> Result<Vec<Organization>> {
        let only = match rbac::visibility(&caller.subject, Action::Read, Resource::Organization) {
            rbac::Visibility::All => None,
            rbac::Visibility::Scoped { org_ids, .. } => Some(org_ids),
        };
        Ok(self.store.list_organizations(only).await?)
    }

    pub async fn create_organization(
        &self,
        caller: &Caller,
        name: String,
        display_name: Option<String>,
        description: String,
        icon: String,
    ) -> Result<Organization> {
        self.require(caller, Action::Create, Object::of(Resource::Organization))?;
        let display = display_name
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| name.clone());
        check_fields(vec![
            ("name", validate::name(&name)),
            ("display_name", validate::display_name(&display)),
        ])?;
        if name.eq_ignore_ascii_case("default") {
            return Err(IdentityError::invalid(format!(
                "Organization name {name:?} is reserved."
            )));
        }
        let now = self.now();
        let org = Organization {
            id: Uuid::new_v4(),
            name,
            display_name: display,
            description,
            icon,
            created_at: now,
            updated_at: now,
            is_default: false,
            deleted: false,
        };
        self.store
            .insert_organization_with_creator(
                org,
                caller.user.id,
                vec![rbac::ROLE_ORG_ADMIN.to_string()],
            )
            .await
            .map_err(|e| match e {
                e if e.is_conflict_on("idx_organization_name_lower") => {
                    IdentityError::conflict("Organization already exists with that name.")
                }
                e => e.into(),
            })
    }

    pub async fn update_organization(
        &self,
        caller: &Caller,
        org: &Organization,
        patch: OrganizationPatch,
    ) -> Result<Organization> {
        self.require(caller, Action::Update, Object::organization(org.id))?;
        let mut checks = vec![];
        if let Some(n) = &patch.name {
            checks.push(("name", validate::name(n)));
        }
        if let Some(d) = &patch.display_name {
            checks.push(("display_name", validate::display_name(d)));
        }
        check_fields(checks)?;
        if let Some(n) = &patch.name {
            if n.eq_ignore_ascii_case("default") {
                return Err(IdentityError::invalid(format!(
                    "Organization name {n:?} is reserved."
                )));
            }
            if org.is_default && n != &org.name {
                return Err(IdentityError::invalid(
                    "Default organization cannot be renamed.",
                ));
            }
        }
        let name = patch.name.clone();
        self.store
            .update_organization(org.id, patch, self.now())
            .await
            .map_err(|e| match e {
                e if e.is_conflict_on("idx_organization_name_lower") => {
                    IdentityError::conflict(format!(
                        "Organization already exists with the name {:?}.",
                        name.unwrap_or_default()
                    ))
                }
                StoreError::NotFound => IdentityError::NotFound,
                e => e.into(),
            })
    }

    /// Soft-deletes an org (02 §4.5).
    pub async fn delete_organization(&self, caller: &Caller, org: &Organization) -> Result<()> {
        self.require(caller, Action::Delete, Object::organization(org.id))?;
        if org.is_default {
            return Err(IdentityError::invalid(
                "Default organization cannot be deleted.",
            ));
        }
        for attempt in 0..2 {
            match self
                .store
                .soft_delete_organization(org.id, self.now())
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(IdentityError::NotFound),
                Err(StoreError::Violation { rule, .. }) if rule == "org_not_empty" => {
                    let counts = self.store.organization_resource_counts(org.id).await?;
                    let parts = counts.blocker_parts();
                    if parts.is_empty() && attempt == 0 {
                        continue; // the blocker went away; try once more
                    }
                    return Err(IdentityError::Conflict {
                        message: "Error deleting organization.".into(),
                        detail: format!(
                            "This organization has {} that must be deleted first.",
                            parts.join(", ")
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(IdentityError::Conflict {
            message: "Error deleting organization.".into(),
            detail: "The organization changed while it was being deleted; try again.".into(),
        })
    }

    // ---------------------------------------------------------------- members

    pub async fn list_members(
        &self,
        caller: &Caller,
        org: &Organization,
        include_system: bool,
    ) -> Result<Vec<MemberWithUser>> {
        self.require_read(
            caller,
            Object::of(Resource::OrganizationMember).in_org(org.id),
        )?;
        Ok(self.store.list_members(org.id, include_system).await?)
    }

    pub async fn add_member(
        &self,
        caller: &Caller,
        org: &Organization,
        user: &User,
    ) -> Result<Member> {
        guard_system(user)?;
        self.require(
            caller,
            Action::Create,
            Object::of(Resource::OrganizationMember).in_org(org.id),
        )?;
        if self.store.member(org.id, user.id).await?.is_some() {
            return Err(IdentityError::invalid(
                "User is already an organization member",
            ));
        }
        self.store
            .insert_member(org.id, user.id, vec![], self.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    IdentityError::invalid("User is already an organization member")
                }
                StoreError::NotFound => IdentityError::NotFound,
                e => e.into(),
            })
    }

    pub async fn remove_member(
        &self,
        caller: &Caller,
        org: &Organization,
        user: &User,
    ) -> Result<()> {
        guard_system(user)?;
        self.require(
            caller,
            Action::Delete,
            Object::of(Resource::OrganizationMember).in_org(org.id),
        )?;
        if user.id == caller.user.id {
            return Err(IdentityError::invalid(
                "cannot remove self from an organization",
            ));
        }
        if !self.store.delete_member(org.id, user.id).await? {
            return Err(IdentityError::NotFound);
        }
        Ok(())
    }

    pub async fn set_member_roles(
        &self,
        caller: &Caller,
        org: &Organization,
        user: &User,
        roles: Vec<String>,
    ) -> Result<Member> {
        guard_system(user)?;
        if user.id == caller.user.id {
            return Err(IdentityError::invalid(
                "You cannot change your own organization roles.",
            ));
        }
        let member = not_found_if_none(self.store.member(org.id, user.id).await?)?;
        let mut wanted: Vec<String> = roles
            .into_iter()
            .filter(|r| r != rbac::ROLE_ORG_MEMBER)
            .collect();
        wanted.sort();
        wanted.dedup();
        if let Some(bad) = wanted
            .iter()
            .find(|r| !rbac::ASSIGNABLE_ORG_ROLES.contains(&r.as_str()))
        {
            return Err(IdentityError::invalid_detail(
                "Invalid roles.",
                format!("role {bad:?} does not exist"),
            ));
        }
        let object = Object::of(Resource::AssignOrgRole).in_org(org.id);
        if wanted.iter().any(|r| !member.roles.contains(r)) {
            self.require(caller, Action::Assign, object)?;
        }
        if member.roles.iter().any(|r| !wanted.contains(r)) {
            self.require(caller, Action::Unassign, object)?;
        }
        Ok(self
            .store
            .update_member_roles(org.id, user.id, wanted, self.now())
            .await?)
    }

    /// For other areas: users who administer templates in `org` (02 §3).
    pub async fn template_admins(&self, org: Uuid) -> Result<Vec<User>> {
        Ok(self.store.template_admins(org).await?)
    }

    /// For other areas: makes the prebuilds user a member of `org` (idempotent).
    pub async fn ensure_system_member(&self, org: Uuid) -> Result<()> {
        Ok(self.store.ensure_system_member(org, self.now()).await?)
    }

    // ---------------------------------------------------------------- groups

    pub async fn list_groups(&self, caller: &Caller, org: &Organization) -> Result<Vec<Group>> {
        self.require_read(caller, Object::of(Resource::Group).in_org(org.id))?;
        Ok(self.store.list_groups(org.id).await?)
    }

    pub async fn group(&self, caller: &Caller, id: Uuid) -> Result<Group> {
        let g = not_found_if_none(self.store.group_by_id(id).await?)?;
        self.require_read(
            caller,
            Object::of(Resource::Group).in_org(g.organization_id),
        )?;
        Ok(g)
    }

    pub async fn group_members(&self, group: &Group) -> Result<Vec<User>> {
        Ok(self.store.group_members(group).await?)
    }

    pub async fn create_group(
        &self,
        caller: &Caller,
        org: &Organization,
        name: String,
        display_name: String,
        avatar_url: String,
        quota_allowance: i32,
    ) -> Result<Group> {
        self.require(
            caller,
            Action::Create,
            Object::of(Resource::Group).in_org(org.id),
        )?;
        let mut checks = vec![("name", validate::name(&name))];
        if !display_name.is_empty() {
            checks.push(("display_name", validate::display_name(&display_name)));
        }
        if quota_allowance < 0 {
            checks.push(("quota_allowance", Err("must be >= 0".into())));
        }
        check_fields(checks)?;
        if name.eq_ignore_ascii_case("everyone") {
            return Err(IdentityError::invalid(format!(
                "{name:?} is a reserved keyword and cannot be used for a group name."
            )));
        }
        let g = Group {
            id: Uuid::new_v4(),
            name: name.clone(),
            display_name,
            organization_id: org.id,
            avatar_url,
            quota_allowance,
            source: GroupSource::User,
        };
        self.store.insert_group(g).await.map_err(|e| match e {
            e if e.is_conflict_on("groups_name_organization_id_key") => {
                IdentityError::conflict(format!("Group with name {name:?} already exists."))
            }
            e => e.into(),
        })
    }

    pub async fn update_group(
        &self,
        caller: &Caller,
        group: &Group,
        patch: GroupPatch,
    ) -> Result<Group> {
        self.require(
            caller,
            Action::Update,
            Object::of(Resource::Group).in_org(group.organization_id),
        )?;
        if group.is_everyone() {
            return Err(IdentityError::invalid(
                "Cannot modify the \"Everyone\" group.",
            ));
        }
        let mut checks = vec![];
        if let Some(n) = &patch.name {
            checks.push(("name", validate::name(n)));
        }
        if let Some(d) = &patch.display_name
            && !d.is_empty()
        {
            checks.push(("display_name", validate::display_name(d)));
        }
        if patch.quota_allowance.is_some_and(|q| q < 0) {
            checks.push(("quota_allowance", Err("must be >= 0".into())));
        }
        check_fields(checks)?;
        for u in &patch.add_users {
            if *u == PREBUILDS_SYSTEM_USER_ID {
                return Err(IdentityError::SystemUser);
            }
            if self
                .store
                .member(group.organization_id, *u)
                .await?
                .is_none()
            {
                return Err(IdentityError::invalid(format!(
                    "User {u:?} must be a member of organization {:?}",
                    group.organization_id
                )));
            }
        }
        let name = patch.name.clone();
        self.store
            .update_group(group.id, patch)
            .await
            .map_err(|e| match e {
                e if e.is_conflict_on("groups_name_organization_id_key") => {
                    IdentityError::conflict(format!(
                        "Group with name {:?} already exists.",
                        name.unwrap_or_default()
                    ))
                }
                StoreError::NotFound => IdentityError::NotFound,
                e => e.into(),
            })
    }

    pub async fn delete_group(&self, caller: &Caller, group: &Group) -> Result<()> {
        self.require(
            caller,
            Action::Delete,
            Object::of(Resource::Group).in_org(group.organization_id),
        )?;
        if group.is_everyone() {
            return Err(IdentityError::invalid(
                "An organization's \"Everyone\" group cannot be deleted.",
            ));
        }
        self.store.delete_group(group.id).await?;
        Ok(())
    }

    pub async fn deployment_id(&self) -> Result<String> {
        Ok(self.store.deployment_id().await?)
    }
}

/// Maps unique-index conflicts on users to Coder's 409.
fn user_conflict(e: StoreError) -> IdentityError {
    match e {
        StoreError::Conflict { constraint }
            if constraint == "users_username_lower_idx"
                || constraint == "users_email_lower_idx" =>
        {
            IdentityError::conflict("User already exists.")
        }
        StoreError::NotFound => IdentityError::invalid("Organization does not exist."),
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(TimeDelta::hours(720)), "720h0m0s");
        assert_eq!(go_duration(TimeDelta::hours(876_600)), "876600h0m0s");
        assert_eq!(go_duration(TimeDelta::seconds(90)), "1m30s");
        assert_eq!(go_duration(TimeDelta::seconds(5)), "5s");
    }

    #[test]
    fn auth_failure_details() {
        let at: DateTime<Utc> = "2024-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(
            AuthFailure::Expired(at).detail(),
            "API key expired at \"2024-01-02T03:04:05Z\"."
        );
        assert_eq!(
            AuthFailure::NotActive(UserStatus::Suspended).detail(),
            "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."
        );
    }
}
