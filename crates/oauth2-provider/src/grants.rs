//! The protocol flows over the store (03 §5.3–5.5): authorize checks and approval, the token
//! endpoint's two grants with rotation and reuse detection, revocation and grant removal.
//! Every failure is an [`OAuthError`] with the RFC code; storage failures become
//! `server_error` and are logged by the caller.

use crate::authorize::{AuthorizeParams, check_redirected_errors, parse_query, redirect_with};
use crate::error::OAuthError;
use crate::form::{basic_credentials, is_basic, single};
use crate::model::{App, AppSecret, Code, Token};
use crate::pkce::{valid_pkce_value, verify_pkce_s256};
use crate::redirect::match_redirect_uri;
use crate::resource::{CanonicalUri, canonical_resource};
use crate::secret::{generate_secret, hash_matches, parse_secret};
use crate::store::{OAuth2Store, SweepKind, Usage};
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::{Clock, StoreError};
use hangar_identity::IdentityStore;
use hangar_identity::apikey;
use hangar_identity::model::{ApiKey, ApiKeyScope, LoginType, UserStatus};
use std::sync::Arc;
use uuid::Uuid;

/// Authorization codes live 10 minutes (03 §3).
pub const CODE_LIFETIME: TimeDelta = TimeDelta::minutes(10);

#[derive(Debug, Clone)]
pub struct Lifetimes {
    /// `--oauth2-access-token-lifetime` (1h), never extended on use.
    pub access: TimeDelta,
    /// `--default-oauth-refresh-lifetime` (720h).
    pub refresh: TimeDelta,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access: TimeDelta::hours(1),
            refresh: TimeDelta::hours(720),
        }
    }
}

/// A successful token response (RFC 6749 §5.1); never `scope`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub expiry: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Which usage timestamps are stale enough to write (see [`Usage`]).
fn usage(app: &App, secret: Option<&AppSecret>, now: DateTime<Utc>) -> Usage {
    let stale = |t: Option<DateTime<Utc>>, after: TimeDelta| t.is_none_or(|t| t < now - after);
    Usage {
        app: stale(app.last_used_at, TimeDelta::minutes(1)).then_some(app.id),
        secret: secret
            .filter(|s| stale(s.last_used_at, TimeDelta::hours(1)))
            .map(|s| s.id),
    }
}

/// Which grant a token request used, for metrics.
pub fn grant_label(form: &[(String, String)]) -> &'static str {
    match form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str())
    {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        None | Some("") => "none",
        Some(_) => "other",
    }
}

/// A valid authorize request: what the consent page shows and the approval needs.
#[derive(Debug, Clone)]
pub struct ValidAuthorize {
    pub app: App,
    pub params: AuthorizeParams,
    /// The URI the answer goes to (the presented one, or the only registered one).
    pub redirect_uri: String,
    pub resource: Option<CanonicalUri>,
}

/// Why an authorize request cannot proceed: shown locally (steps 1–3) or sent back to the
/// client's redirect URI (step 4).
#[derive(Debug)]
pub enum AuthorizeError {
    Local(OAuthError),
    Redirect(String),
}

/// What reuse detection found, for the caller's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    Code,
    RefreshToken,
}

pub struct Provider<S> {
    store: S,
    clock: Arc<dyn Clock>,
    access_url: CanonicalUri,
    lifetimes: Lifetimes,
    rng: ring::rand::SystemRandom,
    /// Called when a reused code or refresh token revoked a family.
    on_reuse: Option<Box<dyn Fn(Reuse) + Send + Sync>>,
}

fn store_err(e: StoreError) -> OAuthError {
    tracing::error!(error = %e, "oauth2 storage error");
    OAuthError::server_error()
}

impl<S: OAuth2Store + IdentityStore> Provider<S> {
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        access_url: CanonicalUri,
        lifetimes: Lifetimes,
    ) -> Self {
        Self {
            store,
            clock,
            access_url,
            lifetimes,
            rng: ring::rand::SystemRandom::new(),
            on_reuse: None,
        }
    }

    pub fn on_reuse(mut self, f: impl Fn(Reuse) + Send + Sync + 'static) -> Self {
        self.on_reuse = Some(Box::new(f));
        self
    }

    pub fn access_url(&self) -> &CanonicalUri {
        &self.access_url
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn rng(&self) -> &ring::rand::SystemRandom {
        &self.rng
    }

    fn issuer(&self) -> String {
        crate::metadata::issuer(&self.access_url)
    }

    fn reused(&self, kind: Reuse) {
        if let Some(f) = &self.on_reuse {
            f(kind);
        }
    }

    // ------------------------------------------------------------------ authorize

    /// Steps 2–4 of §5.3 (the caller did step 1, the user).
    pub async fn authorize_check(
        &self,
        pairs: &[(String, String)],
    ) -> Result<ValidAuthorize, AuthorizeError> {
        let params = parse_query(pairs).map_err(AuthorizeError::Local)?;
        let Some(client_id) = params.client_id.clone() else {
            return Err(AuthorizeError::Local(OAuthError::invalid_request(
                "client_id is required",
            )));
        };
        let app = self
            .app(&client_id)
            .await
            .map_err(AuthorizeError::Local)?
            .ok_or(AuthorizeError::Local(OAuthError::invalid_client()))?;
        let Some(redirect_uri) =
            match_redirect_uri(&app.redirect_uris, params.redirect_uri.as_deref())
        else {
            let why = if params.redirect_uri.is_some() {
                "redirect_uri does not match a registered redirect URI"
            } else {
                "redirect_uri is required when the client has several redirect URIs"
            };
            return Err(AuthorizeError::Local(OAuthError::invalid_request(why)));
        };
        match check_redirected_errors(&params, &app.grant_types, app.is_public(), &self.access_url)
        {
            Ok(resource) => Ok(ValidAuthorize {
                app,
                params,
                redirect_uri,
                resource,
            }),
            Err(e) => Err(AuthorizeError::Redirect(self.error_redirect(
                &redirect_uri,
                &e,
                params.state.as_deref(),
            ))),
        }
    }

    /// The redirect carrying an error to the client (and the consent page's Cancel link).
    pub fn error_redirect(
        &self,
        redirect_uri: &str,
        e: &OAuthError,
        state: Option<&str>,
    ) -> String {
        let iss = self.issuer();
        let mut pairs = vec![
            ("error", e.code),
            ("error_description", e.description.as_str()),
        ];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", iss.as_str()));
        redirect_with(redirect_uri, &pairs)
    }

    async fn app(&self, client_id: &str) -> Result<Option<App>, OAuthError> {
        let Ok(id) = Uuid::parse_str(client_id) else {
            return Ok(None);
        };
        self.store.app_by_id(id).await.map_err(store_err)
    }

    /// Step 6: the user approved; issue a code and build the redirect.
    pub async fn approve(&self, user: Uuid, v: &ValidAuthorize) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let g = generate_secret(&self.rng);
        let code = Code {
            id: Uuid::new_v4(),
            created_at: now,
            expires_at: now + CODE_LIFETIME,
            secret_prefix: g.prefix.clone().into_bytes(),
            hashed_secret: g.hashed.clone(),
            user_id: user,
            app_id: v.app.id,
            resource_uri: v.resource.as_ref().map(|r| r.as_str().to_owned()),
            code_challenge: v.params.code_challenge.clone(),
            code_challenge_method: v.params.challenge_method().map(str::to_owned),
            redirect_uri: v.params.redirect_uri.clone(),
            consumed_at: None,
        };
        self.store
            .replace_unused_codes_and_insert(&code)
            .await
            .map_err(store_err)?;
        let iss = self.issuer();
        let mut pairs = vec![("code", g.full.as_str())];
        if let Some(s) = v.params.state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", iss.as_str()));
        Ok(redirect_with(&v.redirect_uri, &pairs))
    }

    // ------------------------------------------------------------------ client auth

    /// §5.4 client authentication (token and revoke): Basic, else body credentials, else a
    /// public client's bare `client_id`.
    pub async fn authenticate_client(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<(App, Option<AppSecret>), OAuthError> {
        let (app, secret, candidate) = self.claimed_client(authorization, form).await?;
        let secret = Self::verify_client(&app, secret, candidate)?;
        Ok((app, secret))
    }

    /// The app the request names and the secret it presents, not yet checked.
    async fn claimed_client(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<(App, Option<String>, Option<AppSecret>), OAuthError> {
        let body_id = single(form, "client_id")?;
        let body_secret = single(form, "client_secret")?;
        let (client_id, secret) = match authorization.filter(|h| is_basic(h)) {
            Some(h) => {
                let (id, secret) = basic_credentials(h)?;
                if body_secret.is_some() || body_id.as_ref().is_some_and(|b| *b != id) {
                    return Err(OAuthError::invalid_request(
                        "client credentials must be sent in one place",
                    ));
                }
                (id, Some(secret).filter(|s| !s.is_empty()))
            }
            None => (body_id.ok_or_else(OAuthError::invalid_client)?, body_secret),
        };
        let id = Uuid::parse_str(&client_id).map_err(|_| OAuthError::invalid_client())?;
        let prefix = secret.as_deref().and_then(parse_secret).map(|p| p.prefix);
        let (app, candidate) = self
            .store
            .client_by_id(id, prefix.as_deref().map(str::as_bytes))
            .await
            .map_err(store_err)?
            .ok_or_else(OAuthError::invalid_client)?;
        Ok((app, secret, candidate))
    }

    /// A public app must present no secret; a confidential one one of its own secrets
    /// (`candidate`: the app's secret with the presented prefix, read with the app).
    fn verify_client(
        app: &App,
        secret: Option<String>,
        candidate: Option<AppSecret>,
    ) -> Result<Option<AppSecret>, OAuthError> {
        match (app.is_public(), secret) {
            (true, None) => Ok(None),
            (true, Some(_)) | (false, None) => Err(OAuthError::invalid_client()),
            (false, Some(s)) => {
                let parsed = parse_secret(&s).ok_or_else(OAuthError::invalid_client)?;
                let row = candidate.ok_or_else(OAuthError::invalid_client)?;
                if row.app_id != app.id || !hash_matches(&row.hashed_secret, &parsed.secret) {
                    return Err(OAuthError::invalid_client());
                }
                Ok(Some(row))
            }
        }
    }

    // ------------------------------------------------------------------ token

    /// `POST /oauth2/tokens`.
    pub async fn token(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<TokenResponse, OAuthError> {
        let grant = single(form, "grant_type")?
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        if grant != "authorization_code" && grant != "refresh_token" {
            return Err(OAuthError::unsupported_grant_type());
        }
        // §5.4 order: the app's grant types are checked before its credentials.
        let (app, presented, candidate) = self.claimed_client(authorization, form).await?;
        if !app.grant_types.contains(&grant) {
            return Err(OAuthError::unauthorized_client());
        }
        let secret = Self::verify_client(&app, presented, candidate)?;
        if grant == "authorization_code" {
            self.code_grant(&app, secret.as_ref(), form).await
        } else {
            self.refresh_grant(&app, secret.as_ref(), form).await
        }
    }

    async fn user_active(&self, user: Uuid) -> Result<bool, OAuthError> {
        let Some(u) = self.store.user_by_id(user).await.map_err(store_err)? else {
            return Ok(false);
        };
        if u.deleted || u.status == UserStatus::Suspended {
            return Ok(false);
        }
        Ok(true)
    }

    fn requested_resource(&self, form: &[(String, String)]) -> Result<Option<String>, OAuthError> {
        single(form, "resource")?
            .map(|r| {
                canonical_resource(&r)
                    .map(|c| c.as_str().to_owned())
                    .map_err(|_| {
                        OAuthError::invalid_target(
                            "resource must be an absolute http(s) URI without a fragment",
                        )
                    })
            })
            .transpose()
    }

    async fn code_grant(
        &self,
        app: &App,
        secret: Option<&AppSecret>,
        form: &[(String, String)],
    ) -> Result<TokenResponse, OAuthError> {
        let raw =
            single(form, "code")?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let invalid = || OAuthError::invalid_grant("The authorization code is invalid or expired.");
        let parsed = parse_secret(&raw).ok_or_else(invalid)?;
        let now = self.clock.now();
        let code = self
            .store
            .code_by_prefix(parsed.prefix.as_bytes(), app.id)
            .await
            .map_err(store_err)?
            .ok_or_else(invalid)?;
        if !hash_matches(&code.hashed_secret, &parsed.secret) || code.expires_at <= now {
            return Err(invalid());
        }
        let won = code.consumed_at.is_none()
            && self
                .store
                .consume_code(code.id, now)
                .await
                .map_err(store_err)?;
        if !won {
            self.store
                .revoke_code_family(code.id)
                .await
                .map_err(store_err)?;
            self.reused(Reuse::Code);
            return Err(invalid());
        }
        if !self.user_active(code.user_id).await? {
            return Err(invalid());
        }
        let sent_redirect = single(form, "redirect_uri")?;
        let redirect_ok = match (&code.redirect_uri, &sent_redirect) {
            (Some(stored), sent) => sent.as_deref() == Some(stored.as_str()),
            (None, Some(sent)) => match_redirect_uri(&app.redirect_uris, Some(sent)).is_some(),
            (None, None) => true,
        };
        if !redirect_ok {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request.",
            ));
        }
        let verifier = single(form, "code_verifier")?;
        let pkce_ok = match (&code.code_challenge, &verifier) {
            (Some(challenge), Some(v)) => valid_pkce_value(v) && verify_pkce_s256(v, challenge),
            (None, None) => true,
            _ => false,
        };
        if !pkce_ok {
            return Err(OAuthError::invalid_grant(
                "The code_verifier does not match the code challenge.",
            ));
        }
        if self.requested_resource(form)? != code.resource_uri {
            return Err(OAuthError::invalid_target(
                "resource must be the one of the authorization request",
            ));
        }
        let (key, access) = self.new_key(code.user_id, app.id, now);
        let (token, refresh) = self.new_token(
            &key,
            app.id,
            code.user_id,
            secret.map(|s| s.id),
            code.resource_uri.clone(),
            code.id,
            now,
        );
        match self
            .store
            .issue_tokens(&key, &token, Some(code.id), usage(app, secret, now), now)
            .await
        {
            Ok(()) => {}
            // A concurrent reuse of the code revoked it before this exchange committed.
            Err(StoreError::Conflict { .. }) => return Err(invalid()),
            Err(e) => return Err(store_err(e)),
        }
        Ok(self.response(app, access, refresh, key.expires_at, now))
    }

    async fn refresh_grant(
        &self,
        app: &App,
        secret: Option<&AppSecret>,
        form: &[(String, String)],
    ) -> Result<TokenResponse, OAuthError> {
        let raw = single(form, "refresh_token")?
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let invalid = || OAuthError::invalid_grant("The refresh token is invalid or expired.");
        let parsed = parse_secret(&raw).ok_or_else(invalid)?;
        let now = self.clock.now();
        // Only tokens of users who may still sign in: a suspended or deleted user's token is
        // refused like an unknown one, with nothing changed.
        let Some(old) = self
            .store
            .live_token_by_prefix(parsed.prefix.as_bytes())
            .await
            .map_err(store_err)?
        else {
            let spent = self
                .store
                .rotation_by_prefix(parsed.prefix.as_bytes())
                .await
                .map_err(store_err)?;
            if let Some(r) = spent
                && r.app_id == app.id
                && hash_matches(&r.refresh_hash, &parsed.secret)
            {
                self.store
                    .revoke_family(r.family_id)
                    .await
                    .map_err(store_err)?;
                self.reused(Reuse::RefreshToken);
            }
            return Err(invalid());
        };
        if old.app_id != app.id
            || !hash_matches(&old.refresh_hash, &parsed.secret)
            || old.expires_at <= now
        {
            return Err(invalid());
        }
        if let Some(r) = self.requested_resource(form)?
            && old.audience.as_deref() != Some(r.as_str())
        {
            return Err(OAuthError::invalid_target(
                "resource must be the audience of the refreshed token",
            ));
        }
        let (key, access) = self.new_key(old.user_id, app.id, now);
        let (token, refresh) = self.new_token(
            &key,
            app.id,
            old.user_id,
            secret.map(|s| s.id),
            old.audience.clone(),
            old.family_id,
            now,
        );
        match self
            .store
            .rotate(&old, &key, &token, usage(app, secret, now), now)
            .await
        {
            Ok(()) => Ok(self.response(app, access, refresh, key.expires_at, now)),
            Err(StoreError::Conflict { .. }) => {
                // A concurrent refresh of the same token won: that is reuse (RFC 9700).
                self.store
                    .revoke_family(old.family_id)
                    .await
                    .map_err(store_err)?;
                self.reused(Reuse::RefreshToken);
                Err(invalid())
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// The API key that is the access token, and its text.
    fn new_key(&self, user: Uuid, app: Uuid, now: DateTime<Utc>) -> (ApiKey, String) {
        let g = apikey::generate();
        let key = ApiKey {
            id: g.id.clone(),
            hashed_secret: g.hashed_secret.clone(),
            user_id: user,
            last_used: now,
            expires_at: now + self.lifetimes.access,
            created_at: now,
            updated_at: now,
            login_type: LoginType::OAuth2ProviderApp,
            lifetime_seconds: self.lifetimes.access.num_seconds(),
            ip_address: "0.0.0.0".into(),
            scope: ApiKeyScope::All,
            token_name: format!("{user}_{app}_oauth_session_token"),
        };
        (key, g.token())
    }

    #[allow(clippy::too_many_arguments)]
    fn new_token(
        &self,
        key: &ApiKey,
        app: Uuid,
        user: Uuid,
        secret: Option<Uuid>,
        audience: Option<String>,
        family: Uuid,
        now: DateTime<Utc>,
    ) -> (Token, String) {
        let g = generate_secret(&self.rng);
        let token = Token {
            id: Uuid::new_v4(),
            created_at: now,
            expires_at: now + self.lifetimes.refresh,
            hash_prefix: g.prefix.into_bytes(),
            refresh_hash: g.hashed,
            app_secret_id: secret,
            api_key_id: key.id.clone(),
            audience,
            user_id: user,
            app_id: app,
            family_id: family,
        };
        (token, g.full)
    }

    fn response(
        &self,
        app: &App,
        access: String,
        refresh: String,
        expiry: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: (expiry - now).num_seconds(),
            expiry,
            refresh_token: app
                .grant_types
                .iter()
                .any(|g| g == "refresh_token")
                .then_some(refresh),
        }
    }

    // ------------------------------------------------------------------ sweep

    /// One sweeper pass (§7): each kind in batches of 1000 until a batch is short; a failing
    /// kind is logged and the pass goes on. Returns the rows deleted per kind.
    pub async fn sweep(&self, unused_client_ttl: Option<TimeDelta>) -> Vec<(SweepKind, u64)> {
        let now = self.clock.now();
        // "Never" is a cutoff no client can be older than.
        let unused_before = unused_client_ttl.map_or(DateTime::<Utc>::MIN_UTC, |ttl| now - ttl);
        let mut out = vec![];
        for kind in SweepKind::ALL {
            if kind == SweepKind::Clients && unused_client_ttl.is_none() {
                continue;
            }
            let mut total = 0;
            // Bounded: at most 100 batches per kind per pass.
            for _ in 0..100 {
                match self.store.sweep(kind, now, unused_before).await {
                    Ok(Some(n)) => {
                        total += n;
                        if n < 1000 {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "oauth2 sweep failed");
                        break;
                    }
                }
            }
            out.push((kind, total));
        }
        out
    }

    // ------------------------------------------------------------------ revoke

    /// `POST /oauth2/revoke` (RFC 7009): a token of another client, or none at all, is a
    /// silent no-op.
    pub async fn revoke(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<bool, OAuthError> {
        let (app, _) = self.authenticate_client(authorization, form).await?;
        let raw = single(form, "token")?
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let token = if let Some(p) = parse_secret(&raw) {
            self.store
                .token_by_prefix(p.prefix.as_bytes())
                .await
                .map_err(store_err)?
                .filter(|t| hash_matches(&t.refresh_hash, &p.secret))
        } else if let Ok((id, secret)) = apikey::split(&raw) {
            let key = self.store.api_key_by_id(id).await.map_err(store_err)?;
            match key {
                Some(k) if apikey::secret_matches(secret, &k.hashed_secret) => {
                    self.store.token_by_api_key(id).await.map_err(store_err)?
                }
                _ => None,
            }
        } else {
            None
        };
        match token.filter(|t| t.app_id == app.id) {
            Some(t) => self.store.delete_token(t.id).await.map_err(store_err),
            None => Ok(false),
        }
    }

    /// `DELETE /oauth2/tokens?client_id=`: the user withdraws every grant of the app.
    pub async fn remove_grants(
        &self,
        user: Uuid,
        client_id: Option<&str>,
    ) -> Result<(), OAuthError> {
        let id = client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
        let app = self.app(id).await?.ok_or_else(OAuthError::invalid_client)?;
        self.store
            .delete_user_app_grants(user, app.id)
            .await
            .map_err(store_err)
    }
}
