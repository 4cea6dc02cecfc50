//! The management API's rules (03 §5.7): apps and their secrets, for site owners; any user may
//! read apps. A caller authenticated by an OAuth2 access token gets 403 on all of it (no
//! escalation from a delegated token).

use crate::model::{App, AppSecret};
use crate::secret::{display_secret, generate_secret};
use crate::store::OAuth2Store;
use hangar_core::rbac::{self, Action, Object, Resource};
use hangar_core::wire::Validation;
use hangar_core::{Clock, StoreError};
use hangar_identity::model::LoginType;
use hangar_identity::service::Caller;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("Resource not found or you do not have access to this resource")]
    NotFound,
    #[error("Forbidden.")]
    Forbidden,
    #[error("{message}")]
    Invalid {
        message: String,
        validations: Vec<Validation>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, ManageError>;

/// The body of `POST /apps` and `PUT /apps/{app}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AppRequest {
    pub name: String,
    pub callback_url: String,
    pub icon: String,
}

pub struct Apps<S> {
    store: S,
    clock: Arc<dyn Clock>,
    rng: ring::rand::SystemRandom,
}

impl<S: OAuth2Store> Apps<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            rng: ring::rand::SystemRandom::new(),
        }
    }

    fn require(&self, caller: &Caller, action: Action, resource: Resource) -> Result<()> {
        if caller.key.login_type == LoginType::OAuth2ProviderApp {
            return Err(ManageError::Forbidden);
        }
        if rbac::authorize(&caller.subject, action, &Object::of(resource)) {
            Ok(())
        } else {
            Err(ManageError::Forbidden)
        }
    }

    /// Apps by name; with `user`, those the user has a live grant for (another user's: owner).
    pub async fn list(&self, caller: &Caller, user: Option<Uuid>) -> Result<Vec<App>> {
        self.require(caller, Action::Read, Resource::OAuth2App)?;
        if user.is_some_and(|u| u != caller.user_id()) {
            self.require(caller, Action::Read, Resource::OAuth2AppCodeToken)?;
        }
        Ok(self.store.list_apps(user).await?)
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<App> {
        self.require(caller, Action::Read, Resource::OAuth2App)?;
        self.store.app_by_id(id).await?.ok_or(ManageError::NotFound)
    }

    pub async fn create(&self, caller: &Caller, req: AppRequest) -> Result<App> {
        self.require(caller, Action::Create, Resource::OAuth2App)?;
        let req = validate(req)?;
        let app = App::managed(
            Uuid::new_v4(),
            req.name,
            req.callback_url,
            req.icon,
            self.clock.now(),
        );
        self.store.insert_app(&app).await?;
        Ok(app)
    }

    pub async fn update(&self, caller: &Caller, id: Uuid, req: AppRequest) -> Result<App> {
        self.require(caller, Action::Update, Resource::OAuth2App)?;
        let mut app = self
            .store
            .app_by_id(id)
            .await?
            .ok_or(ManageError::NotFound)?;
        if app.dynamically_registered {
            return Err(ManageError::Invalid {
                message: "Dynamically registered apps are managed through their registration access token.".into(),
                validations: vec![],
            });
        }
        let req = validate(req)?;
        app.name = req.name;
        app.icon = req.icon;
        app.redirect_uris = vec![req.callback_url.clone()];
        app.callback_url = req.callback_url;
        app.updated_at = self.clock.now();
        self.store.update_app(&app).await?;
        Ok(app)
    }

    pub async fn delete(&self, caller: &Caller, id: Uuid) -> Result<()> {
        self.require(caller, Action::Delete, Resource::OAuth2App)?;
        if self.store.delete_app(id).await? {
            Ok(())
        } else {
            Err(ManageError::NotFound)
        }
    }

    pub async fn secrets(&self, caller: &Caller, app: Uuid) -> Result<Vec<AppSecret>> {
        self.require(caller, Action::Read, Resource::OAuth2AppSecret)?;
        self.store
            .app_by_id(app)
            .await?
            .ok_or(ManageError::NotFound)?;
        Ok(self.store.secrets_of(app).await?)
    }

    /// A new secret; the full text is returned this once and never stored.
    pub async fn create_secret(&self, caller: &Caller, app: Uuid) -> Result<(AppSecret, String)> {
        self.require(caller, Action::Create, Resource::OAuth2AppSecret)?;
        let a = self
            .store
            .app_by_id(app)
            .await?
            .ok_or(ManageError::NotFound)?;
        if a.is_public() {
            return Err(ManageError::Invalid {
                message: "Public clients cannot have secrets.".into(),
                validations: vec![],
            });
        }
        let g = generate_secret(&self.rng);
        let secret = AppSecret {
            id: Uuid::new_v4(),
            created_at: self.clock.now(),
            last_used_at: None,
            hashed_secret: g.hashed,
            display_secret: display_secret(&g.full),
            app_id: app,
            secret_prefix: g.prefix.into_bytes(),
        };
        self.store.insert_secret(&secret).await?;
        Ok((secret, g.full))
    }

    pub async fn delete_secret(&self, caller: &Caller, app: Uuid, secret: Uuid) -> Result<()> {
        self.require(caller, Action::Delete, Resource::OAuth2AppSecret)?;
        if self.store.delete_secret(app, secret).await? {
            Ok(())
        } else {
            Err(ManageError::NotFound)
        }
    }
}

/// Field rules of §5.7: name 1–64 characters after trimming, no control characters; the
/// callback by the registration redirect rules; icon at most 256 characters.
fn validate(mut req: AppRequest) -> Result<AppRequest> {
    let mut v = vec![];
    req.name = req.name.trim().to_owned();
    let n = req.name.chars().count();
    if n == 0 || n > 64 || req.name.chars().any(char::is_control) {
        v.push(Validation::new(
            "name",
            "must be 1 to 64 characters without control characters",
        ));
    }
    if let Err(reason) = crate::redirect::validate_redirect_uri(&req.callback_url) {
        v.push(Validation::new("callback_url", reason));
    }
    if req.icon.chars().count() > 256 || req.icon.chars().any(char::is_control) {
        v.push(Validation::new(
            "icon",
            "must be at most 256 characters without control characters",
        ));
    }
    if v.is_empty() {
        Ok(req)
    } else {
        Err(ManageError::Invalid {
            message: "Validation failed.".into(),
            validations: v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        let ok = AppRequest {
            name: "  My App ".into(),
            callback_url: "http://localhost:9876/callback".into(),
            icon: String::new(),
        };
        assert_eq!(validate(ok).unwrap().name, "My App");
        let bad = AppRequest {
            name: "a\u{7}".into(),
            callback_url: "javascript:alert(1)".into(),
            icon: "x".repeat(257),
        };
        let Err(ManageError::Invalid { validations, .. }) = validate(bad) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = validations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "callback_url", "icon"]);
    }
}
