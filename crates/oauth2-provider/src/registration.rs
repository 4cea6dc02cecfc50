//! Dynamic client registration (RFC 7591) and its management by registration access token
//! (RFC 7592), 03 §5.6. Apps made here are marked `dynamically_registered`; the consent page
//! warns about them.

use crate::dcr::{ClientMetadata, registration_response, validate_registration, validate_update};
use crate::error::OAuthError;
use crate::grants::Provider;
use crate::model::{App, AppSecret};
use crate::secret::{display_secret, generate_registration_token, generate_secret, hash_matches};
use crate::store::OAuth2Store;
use hangar_core::StoreError;
use hangar_identity::IdentityStore;
use serde_json::Value;
use uuid::Uuid;

fn store_err(e: StoreError) -> OAuthError {
    tracing::error!(error = %e, "oauth2 registration storage error");
    OAuthError::server_error()
}

fn meta_of(app: &App) -> ClientMetadata {
    ClientMetadata {
        redirect_uris: app.redirect_uris.clone(),
        client_name: app.name.clone(),
        grant_types: app.grant_types.clone(),
        response_types: app.response_types.clone(),
        token_endpoint_auth_method: app.token_endpoint_auth_method.clone(),
        contacts: app.contacts.clone(),
        scope: app.scope.clone(),
        client_uri: app.client_uri.clone(),
        logo_uri: app.logo_uri.clone(),
        tos_uri: app.tos_uri.clone(),
        policy_uri: app.policy_uri.clone(),
        jwks_uri: app.jwks_uri.clone(),
        jwks: app.jwks.clone(),
        software_id: app.software_id.clone(),
        software_version: app.software_version.clone(),
    }
}

/// Copies validated metadata onto the app row.
fn apply(app: &mut App, meta: ClientMetadata) {
    app.callback_url = meta.redirect_uris[0].clone();
    app.client_type = meta.client_type().to_owned();
    app.name = meta.client_name;
    app.redirect_uris = meta.redirect_uris;
    app.grant_types = meta.grant_types;
    app.response_types = meta.response_types;
    app.token_endpoint_auth_method = meta.token_endpoint_auth_method;
    app.contacts = meta.contacts;
    app.scope = meta.scope;
    app.client_uri = meta.client_uri;
    app.logo_uri = meta.logo_uri;
    app.tos_uri = meta.tos_uri;
    app.policy_uri = meta.policy_uri;
    app.jwks_uri = meta.jwks_uri;
    app.jwks = meta.jwks;
    app.software_id = meta.software_id;
    app.software_version = meta.software_version;
}

impl<S: OAuth2Store + IdentityStore> Provider<S> {
    fn client_uri(&self, id: Uuid) -> String {
        format!(
            "{}/oauth2/clients/{id}",
            crate::metadata::issuer(self.access_url())
        )
    }

    /// `POST /oauth2/register`: 201 with the client id, the secret (confidential clients) and
    /// the registration access token, each shown this once.
    pub async fn register(&self, body: &Value) -> Result<Value, OAuthError> {
        let meta = validate_registration(body)?;
        let now = self.now();
        let id = Uuid::new_v4();
        let mut app = App::managed(id, String::new(), String::new(), String::new(), now);
        apply(&mut app, meta.clone());
        app.dynamically_registered = true;
        app.registration_client_uri = Some(self.client_uri(id));
        let (rat, rat_hash) = generate_registration_token(self.rng());
        app.registration_access_token = Some(rat_hash);
        let secret = (!meta.is_public()).then(|| generate_secret(self.rng()));
        let row = secret.as_ref().map(|g| AppSecret {
            id: Uuid::new_v4(),
            created_at: now,
            last_used_at: None,
            hashed_secret: g.hashed.clone(),
            display_secret: display_secret(&g.full),
            app_id: id,
            secret_prefix: g.prefix.clone().into_bytes(),
        });
        self.store()
            .register_app(&app, row.as_ref())
            .await
            .map_err(store_err)?;
        Ok(registration_response(
            &meta,
            &id.to_string(),
            now.timestamp(),
            secret.as_ref().map(|g| g.full.as_str()),
            Some(&rat),
            &self.client_uri(id),
        ))
    }

    /// The app behind a client management request, if `authorization` carries its RAT. Every
    /// failure is the same 401, so existence is not revealed.
    async fn registered(
        &self,
        client_id: &str,
        authorization: Option<&str>,
    ) -> Result<App, OAuthError> {
        let rat = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(OAuthError::invalid_token)?;
        let id = Uuid::parse_str(client_id).map_err(|_| OAuthError::invalid_token())?;
        let app = self
            .store()
            .app_by_id(id)
            .await
            .map_err(store_err)?
            .ok_or_else(OAuthError::invalid_token)?;
        match &app.registration_access_token {
            Some(hash) if app.dynamically_registered && hash_matches(hash, rat) => Ok(app),
            _ => Err(OAuthError::invalid_token()),
        }
    }

    fn client_doc(&self, app: &App) -> Value {
        registration_response(
            &meta_of(app),
            &app.id.to_string(),
            app.client_id_issued_at.timestamp(),
            None,
            None,
            &self.client_uri(app.id),
        )
    }

    /// `GET /oauth2/clients/{id}`.
    pub async fn read_client(
        &self,
        client_id: &str,
        authorization: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let app = self.registered(client_id, authorization).await?;
        Ok(self.client_doc(&app))
    }

    /// `PUT /oauth2/clients/{id}`: full replacement, same rules as registration.
    pub async fn update_client(
        &self,
        client_id: &str,
        authorization: Option<&str>,
        body: &Value,
    ) -> Result<Value, OAuthError> {
        let mut app = self.registered(client_id, authorization).await?;
        let meta = validate_update(body, client_id, &app.token_endpoint_auth_method)?;
        apply(&mut app, meta);
        app.updated_at = self.now();
        self.store().update_app(&app).await.map_err(store_err)?;
        Ok(self.client_doc(&app))
    }

    /// `DELETE /oauth2/clients/{id}`: the app and everything issued to it.
    pub async fn delete_client(
        &self,
        client_id: &str,
        authorization: Option<&str>,
    ) -> Result<(), OAuthError> {
        let app = self.registered(client_id, authorization).await?;
        self.store().delete_app(app.id).await.map_err(store_err)?;
        Ok(())
    }
}
